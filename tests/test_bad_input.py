"""Bad input: a clear message naming the option or file, exit 2, nothing sent, nothing written.

Every case runs the real console entry point (`python -m mkdocs_cfpurge purge ...`) in a
subprocess against a LocalCloudflare on 127.0.0.1 and a state folder holding a valid manifest
and plan, then checks the server saw no request at all and every file is byte-identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mkdocs_cfpurge.localcf import LocalCloudflare
from tests.helpers import TOKEN, ZONE_ID, subprocess_env

SITE_URL = "https://docs.example.com/"


@dataclass
class Case:
    args: list[str]
    expect: str  # the option or file the message must name
    env: dict[str, str | None] = field(default_factory=dict)
    prepare: Callable[[Path], None] | None = None


def _write(rel: str, data: bytes | str) -> Callable[[Path], None]:
    def prepare(root: Path) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)

    return prepare


def _symlink_loop(root: Path) -> None:
    (root / "site" / "loop").symlink_to(root / "site")


def _bad_name(root: Path) -> None:
    (root / "site").joinpath(os.fsdecode(b"caf\xe9.html")).write_text("x")


def _newline_name(root: Path) -> None:
    (root / "site" / "two\nlines.html").write_text("x")


def _empty_site(root: Path) -> None:
    for child in (root / "site").rglob("*"):
        if child.is_file():
            child.unlink()


MIXED_PLAN = json.dumps(
    {
        "version": 1,
        "site_url": SITE_URL,
        "zone_id": None,
        "changes": [],
        "requests": [{"files": [SITE_URL], "prefixes": ["docs.example.com/guide/"]}],
    }
)

CASES: dict[str, Case] = {
    "zone id not 32 hex": Case(["--zone-id", "abc123"], "zone_id"),
    "zone id from env malformed": Case([], "zone_id", env={"CLOUDFLARE_ZONE_ID": "Z" * 32}),
    "missing zone id": Case([], "zone_id", env={"CLOUDFLARE_ZONE_ID": None}),
    "missing token": Case([], "api_token", env={"CLOUDFLARE_API_TOKEN": None}),
    "empty token": Case([], "api_token", env={"CLOUDFLARE_API_TOKEN": ""}),
    "token with inner space": Case([], "api_token", env={"CLOUDFLARE_API_TOKEN": "abc def"}),
    "token and email+key": Case(
        [], "api_token", env={"CLOUDFLARE_EMAIL": "a@b.c", "CLOUDFLARE_API_KEY": "k" * 37}
    ),
    "email without key": Case(
        [], "api_key", env={"CLOUDFLARE_API_TOKEN": None, "CLOUDFLARE_EMAIL": "a@b.c"}
    ),
    "api_base plain http off loopback": Case(["--api-base", "http://api.example.com/"], "api_base"),
    "site_url without scheme": Case(["--site-url", "docs.example.com/"], "site_url"),
    "site_url with a query": Case(["--site-url", "https://docs.example.com/?v=1"], "site_url"),
    "site_url with a fragment": Case(["--site-url", "https://docs.example.com/#top"], "site_url"),
    "host with a scheme": Case(["--host", "https://www.example.com"], "hosts"),
    "max_files_per_request 0": Case(["--max-files-per-request", "0"], "max_files_per_request"),
    "max_files_per_request 501": Case(["--max-files-per-request", "501"], "max_files_per_request"),
    "invalid exclude pattern": Case(["--exclude", "!"], "exclude"),
    "invalid ignore_changes regex": Case(["--ignore-changes", "(unclosed"], "ignore_changes"),
    "bad cache key header": Case(["--cache-key-header", "{not json"], "cache_key_headers"),
    "truncated manifest": Case([], "manifest.json", prepare=_write("state/manifest.json", '{"ver')),
    "manifest of another site": Case(
        [],
        "manifest.json",
        prepare=_write(
            "state/manifest.json",
            json.dumps(
                {"version": 1, "algorithm": "sha256", "site_url": "https://other.org/", "files": {}}
            ),
        ),
    ),
    "corrupt pending file": Case([], "pending.json", prepare=_write("state/pending.json", "[")),
    "missing site folder": Case(["@nosite"], "nosite"),
    "symlink loop": Case([], "loop", prepare=_symlink_loop),
    "file name not UTF-8": Case([], "UTF-8", prepare=_bad_name),
    "file name with a newline": Case([], "two\\nlines.html", prepare=_newline_name),
    "empty site": Case([], "holds no files", prepare=_empty_site),
    "zone that does not own the host": Case(["--host", "docs.other.org"], "docs.other.org"),
    "extra URL on a host outside the zone": Case(
        ["--extra-url", "https://feeds.other.org/rss.xml"], "feeds.other.org"
    ),
}


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and p.name != "manifest.json.lock"
    }


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_untouched(name: str, tmp_path: Path, cf: LocalCloudflare) -> None:
    case = CASES[name]
    site = tmp_path / "site"
    (site / "guide").mkdir(parents=True)
    (site / "index.html").write_text("<h1>home</h1>")
    (site / "guide" / "index.html").write_text("<h1>guide</h1>")
    state = tmp_path / "state"
    baseline = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs_cfpurge",
            "manifest",
            str(site),
            "--site-url",
            SITE_URL,
            "--out",
            str(state / "manifest.json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "written" in baseline.stdout
    (site / "guide" / "index.html").write_text("<h1>guide, edited</h1>")
    if case.prepare is not None:
        case.prepare(tmp_path)
    before = _tree_bytes(state)
    seen = len(cf.requests)

    credentials = {"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ZONE_ID": ZONE_ID}
    env = subprocess_env(CLOUDFLARE_API_BASE=cf.api_base, **{**credentials, **case.env})
    args = [str(tmp_path / a[1:]) if a.startswith("@") else a for a in case.args]
    site_arg = [] if any(a.startswith("@") for a in case.args) else [str(site)]
    default_url = [] if "--site-url" in args else ["--site-url", SITE_URL]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs_cfpurge",
            "purge",
            *site_arg,
            *default_url,
            "--manifest",
            str(state / "manifest.json"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert case.expect in output, output
    assert "Traceback" not in output
    assert TOKEN not in output
    assert len(cf.requests) == seen or all(r["method"] == "GET" for r in cf.requests[seen:]), (
        "a purge request went out"
    )
    assert not [r for r in cf.requests[seen:] if r["method"] == "POST"]
    assert _tree_bytes(state) == before


def test_token_with_trailing_newline_is_stripped(tmp_path: Path, cf: LocalCloudflare) -> None:
    """A secret pasted with its newline (`echo token > file`) works rather than failing auth."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("v1")
    manifest = tmp_path / "state" / "manifest.json"
    env = subprocess_env(
        CLOUDFLARE_API_TOKEN=TOKEN + "\n",
        CLOUDFLARE_ZONE_ID=ZONE_ID,
        CLOUDFLARE_API_BASE=cf.api_base,
    )
    command = [
        sys.executable,
        "-m",
        "mkdocs_cfpurge",
        "purge",
        str(site),
        "--site-url",
        SITE_URL,
        "--manifest",
        str(manifest),
    ]
    subprocess.run(command, env=env, check=True, capture_output=True)  # baseline
    (site / "index.html").write_text("v2")
    before = len(cf.purges)
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(cf.purges) == before + 1
    assert SITE_URL in cf.purges[-1].items
