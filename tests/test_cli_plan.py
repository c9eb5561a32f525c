"""The CLI's read-only commands: `manifest` records a baseline, `plan` shows what would go."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mkdocs_cfpurge.build.manifest import load_manifest
from mkdocs_cfpurge.cli import cli
from tests.cfschema import load_purge_body_validator
from tests.helpers import run_main, subprocess_env, tree_bytes, write_files

validate_body = load_purge_body_validator()
SITE_URL = "https://example.com/docs/"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site_dir = tmp_path / "site"
    write_files(
        site_dir,
        {
            "index.html": "<h1>Home</h1>",
            "guide/index.html": "<h1>Guide</h1>",
            "assets/a.css": "body {}",
            "assets/keep.js": "// unchanged",
            "café/naïve.html": "<p>ça</p>",
        },
    )
    return site_dir


@pytest.fixture
def baseline(site: Path, tmp_path: Path) -> Path:
    """The manifest of `site` as first built, then a deploy's worth of changes to `site`."""
    manifest = tmp_path / "state" / "manifest.json"
    result = CliRunner().invoke(
        cli, ["manifest", str(site), "--site-url", SITE_URL, "--out", str(manifest)]
    )
    assert result.exit_code == 0, result.output
    assert f"manifest of 5 files written to {manifest}" in result.stdout
    write_files(site, {"guide/index.html": "<h1>Guide v2</h1>", "new.html": "<p>new</p>"})
    (site / "assets" / "a.css").unlink()
    return manifest


def test_manifest_command_records_every_file(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    result = CliRunner().invoke(
        cli,
        ["manifest", str(site), "--site-url", SITE_URL, "--out", str(out), "--exclude", "*.css"],
    )
    assert result.exit_code == 0, result.output
    manifest = load_manifest(out, SITE_URL)
    assert manifest is not None
    assert sorted(manifest.files) == [
        "assets/keep.js",
        "café/naïve.html",
        "guide/index.html",
        "index.html",
    ]


def test_manifest_command_never_hashes_the_build_marker(site: Path, tmp_path: Path) -> None:
    (site / "cfpurge-build.json").write_text('{"build": "changes every time"}')
    out = tmp_path / "m.json"
    CliRunner().invoke(cli, ["manifest", str(site), "--site-url", SITE_URL, "--out", str(out)])
    manifest = load_manifest(out)
    assert manifest is not None and "cfpurge-build.json" not in manifest.files


EXPECTED_CHANGES = [
    ("assets/a.css", "deleted", ["https://example.com/docs/assets/a.css"]),
    (
        "guide/index.html",
        "modified",
        ["https://example.com/docs/guide/", "https://example.com/docs/guide/index.html"],
    ),
    ("new.html", "added", ["https://example.com/docs/new.html"]),
]


def test_plan_json_and_out(baseline: Path, site: Path, tmp_path: Path) -> None:
    out = tmp_path / "plans" / "plan.json"
    state_before = tree_bytes(baseline.parent)
    args = ["plan", str(site), "--site-url", SITE_URL, "--manifest", str(baseline)]
    result = CliRunner().invoke(cli, [*args, "--format", "json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == result.stdout.encode()
    plan = json.loads(result.stdout)
    assert [(c["path"], c["status"], c["urls"]) for c in plan["changes"]] == [
        (path, status, urls) for path, status, urls in EXPECTED_CHANGES
    ]
    assert plan["requests"] == [{"files": [url for *_, urls in EXPECTED_CHANGES for url in urls]}]
    for body in plan["requests"]:
        validate_body(body)
    # `plan` reads the state and changes nothing.
    assert tree_bytes(baseline.parent) == state_before
    # The same inputs give the same bytes.
    again = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert again.stdout == result.stdout


def test_plan_markdown(baseline: Path, site: Path) -> None:
    args = ["plan", str(site), "--site-url", SITE_URL, "--manifest", str(baseline)]
    result = CliRunner().invoke(cli, [*args, "--format", "markdown"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("### Cloudflare purge plan (dry run)\n")
    assert (
        "**3** changed file(s): 1 added, 1 modified, 1 deleted. **1** request(s): 1 files." in text
    )
    assert "| `guide/index.html` | modified | hash differs (" in text
    assert (
        "| `new.html` | added | not in the last deploy | `https://example.com/docs/new.html` |"
        in text
    )
    assert "```json" in text and '"purge_everything"' not in text


def test_plan_text(baseline: Path, site: Path) -> None:
    args = ["plan", str(site), "--site-url", SITE_URL, "--manifest", str(baseline)]
    result = CliRunner().invoke(cli, [*args, "--strategy", "files"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "cfpurge (dry run): 3 changed file(s) (1 added, 1 modified, 1 deleted); "
        "1 request(s) (1 files), strategy files"
    )
    assert lines[1:5] == [
        "  https://example.com/docs/assets/a.css",
        "  https://example.com/docs/guide/",
        "  https://example.com/docs/guide/index.html",
        "  https://example.com/docs/new.html",
    ]
    # `plan` sends nothing, not even the read of the zone's cache rules, and says so.
    assert len(lines) == 6 and lines[5].startswith("  note: the zone's cache rules were not read")


def test_plan_options_shape_the_bodies(baseline: Path, site: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "plan",
            str(site),
            "--site-url",
            SITE_URL,
            "--manifest",
            str(baseline),
            "--format",
            "json",
            "--strategy",
            "prefixes",
            "--host",
            "www.example.com",
            "--scheme",
            "https",
            "--scheme",
            "http",
            "--max-files-per-request",
            "2",
            "--cache-key-header",
            '{"CF-Device-Type": "mobile"}',
        ],
    )
    assert result.exit_code == 0, result.output
    requests = json.loads(result.stdout)["requests"]
    assert requests[0] == {
        "prefixes": [
            "example.com/docs/assets/",
            "www.example.com/docs/assets/",
            "example.com/docs/guide/",
            "www.example.com/docs/guide/",
        ]
    }
    # new.html is at the top: by URL, every scheme and host, 2 per body, then with headers.
    urls = [
        "https://example.com/docs/new.html",
        "https://www.example.com/docs/new.html",
        "http://example.com/docs/new.html",
        "http://www.example.com/docs/new.html",
    ]
    entries = [{"url": url, "headers": {"CF-Device-Type": "mobile"}} for url in urls]
    assert requests[1:] == [
        {"files": urls[:2]},
        {"files": urls[2:]},
        {"files": entries[:2]},
        {"files": entries[2:]},
    ]
    for body in requests:
        validate_body(body)


def test_plan_without_a_manifest_purges_nothing(site: Path, tmp_path: Path) -> None:
    missing = tmp_path / "none" / "manifest.json"
    result = CliRunner().invoke(
        cli,
        ["plan", str(site), "--site-url", SITE_URL, "--manifest", str(missing), "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["requests"] == [] and plan["changes"] == []
    assert "records the baseline (5 files)" in plan["notes"][0]
    assert not missing.parent.exists()


# --- exit codes ---------------------------------------------------------------------------------


def test_main_exits_zero_on_success(
    baseline: Path, site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(
        ["plan", str(site), "--site-url", SITE_URL, "--manifest", str(baseline)], capsys
    )
    assert code == 0
    assert out.startswith("cfpurge (dry run): 3 changed file(s)")


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (["--max-files-per-request", "0"], r"max[_-]files[_-]per[_-]request"),
        (["--max-files-per-request", "501"], r"max[_-]files[_-]per[_-]request"),
        (["--max-files-per-request", "lots"], r"max[_-]files[_-]per[_-]request"),
        (["--site-url", "example.com/docs/"], r"site[_-]url"),
        (["--site-url", "https://example.com/?v=1"], r"site[_-]url"),
        (["--site-url", ""], r"site[_-]url"),
        (["--host", "https://www.example.com"], r"hosts?\b"),
        (["--strategy", "bogus"], r"strategy"),
        (["--scheme", "ftp"], r"scheme"),
        (["--cache-key-header", "mobile"], r"cache[_-]key[_-]headers?"),
        (["--cache-key-header", "{}"], r"cache[_-]key[_-]headers?"),
        (["--exclude", "a\\"], r"exclude"),
    ],
)
def test_bad_option_exits_2_naming_it(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], option: str
) -> None:
    argv = ["plan", str(site), "--site-url", SITE_URL, "--manifest", str(tmp_path / "m.json")]
    code, out, err = run_main([*argv, *extra], capsys)
    assert code == 2
    assert re.search(option, err), err
    assert out == ""
    assert "Traceback" not in err


def test_missing_site_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-site"
    for command in (
        ["plan", str(missing), "--site-url", SITE_URL, "--manifest", str(tmp_path / "m.json")],
        ["manifest", str(missing), "--site-url", SITE_URL, "--out", str(tmp_path / "m.json")],
    ):
        code, _, err = run_main(command, capsys)
        assert code == 2
        assert "SITE_DIR" in err and str(missing) in err
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize(
    ("command", "option", "content", "message"),
    [
        ("manifest", "--out", b"not a manifest", "{path}"),
        ("plan", "--manifest", b'{"version": 1,', "manifest {path!r} is corrupt"),
    ],
    ids=["manifest-command-keeps-a-corrupt-file", "plan-with-corrupt-manifest-exits-2"],
)
def test_a_corrupt_manifest_exits_2_and_is_kept(
    site: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    option: str,
    content: bytes,
    message: str,
) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(content)
    code, _, err = run_main([command, str(site), "--site-url", SITE_URL, option, str(path)], capsys)
    assert code == 2
    assert message.format(path=str(path)) in err
    assert path.read_bytes() == content


def test_main_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["--help"], capsys)
    assert code == 0
    for command in ("plan", "manifest", "purge"):
        assert re.search(rf"^\s+{command}\b", out, re.MULTILINE)
    code, out, _ = run_main(["--version"], capsys)
    assert code == 0 and "0.1.0" in out


def test_python_dash_m_help() -> None:
    env = subprocess_env()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs_cfpurge", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: ")
    assert "plan" in result.stdout and "manifest" in result.stdout

    result = subprocess.run(
        [sys.executable, "-m", "mkdocs_cfpurge", "plan", "/nonexistent-site", "--site-url", "x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "site_url" in result.stderr
