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
from tests.helpers import TOKEN, ZONE_ID, subprocess_env, unprivileged

SITE_URL = "https://docs.example.com/"


@dataclass
class Case:
    args: list[str]
    expect: str  # the option or file the message must name
    env: dict[str, str | None] = field(default_factory=dict)
    prepare: Callable[[Path], None] | None = None
    unprivileged: bool = False  # file permissions must apply (root reads anything otherwise)


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


# --- issue 13: each class of bad input it found, in general -------------------------------------

NESTED = "[" * 20_000 + "]" * 20_000  # RecursionError in json.loads


def _pending(requests: object = (), next_manifest: object = None, **extra: object) -> str:
    return json.dumps(
        {
            "version": 1,
            "site_url": SITE_URL,
            "requests": list(requests) if isinstance(requests, tuple) else requests,
            "next_manifest": next_manifest,
            **extra,
        }
    )


def _plan(requests: object, **fields: object) -> str:
    data = {"version": 1, "site_url": SITE_URL, "zone_id": ZONE_ID, "changes": [], **fields}
    return json.dumps({**data, "requests": requests})


def _manifest(files: dict[str, str]) -> str:
    return json.dumps({"version": 1, "algorithm": "sha256", "site_url": SITE_URL, "files": files})


def _unreadable_file(root: Path) -> None:
    secret = root / "site" / "secret.html"
    secret.write_text("x")
    secret.chmod(0)


def _unlistable_folder(root: Path) -> None:
    locked = root / "site" / "locked"
    locked.mkdir()
    (locked / "index.html").write_text("x")
    locked.chmod(0)


GOOD_HASH = "a" * 64
PLAN_ARGS = ["--plan", "@plan.json"]

CASES.update(
    {
        # class 4: a saved plan (or pending.json) is checked like a fresh plan
        "4: plan purging everything": Case(
            PLAN_ARGS, "plan.json", prepare=_write("plan.json", _plan([{"purge_everything": True}]))
        ),
        "4: plan purging an apex host": Case(
            PLAN_ARGS, "plan.json", prepare=_write("plan.json", _plan([{"hosts": ["example.com"]}]))
        ),
        "4: plan with a URL on a foreign host": Case(
            PLAN_ARGS,
            "www.example.com",
            prepare=_write("plan.json", _plan([{"files": ["https://www.example.com/x"]}])),
        ),
        "4: plan with an ftp URL": Case(
            PLAN_ARGS,
            "ftp",
            prepare=_write("plan.json", _plan([{"files": ["ftp://docs.example.com/x"]}])),
        ),
        "4: plan for another zone": Case(
            PLAN_ARGS,
            "fedcba9876543210fedcba9876543210",
            prepare=_write(
                "plan.json",
                _plan([{"files": [SITE_URL]}], zone_id="fedcba9876543210fedcba9876543210"),
            ),
        ),
        "4: pending with a URL on a foreign host": Case(
            [],
            "pending.json",
            prepare=_write("state/pending.json", _pending([{"files": ["https://evil.org/"]}])),
        ),
        # class 6: everything read from state is validated like a manifest
        "6: pending next_manifest climbing out of the site": Case(
            [],
            "pending.json",
            prepare=_write(
                "state/pending.json",
                _pending((), {"site_url": SITE_URL, "files": {"../etc/passwd": GOOD_HASH}}),
            ),
        ),
        "6: pending next_manifest of another site": Case(
            [],
            "pending.json",
            prepare=_write(
                "state/pending.json",
                _pending((), {"site_url": "https://other.example.org/", "files": {}}),
            ),
        ),
        "6: pending next_manifest with a hash that is none": Case(
            [],
            "pending.json",
            prepare=_write(
                "state/pending.json",
                _pending((), {"site_url": SITE_URL, "files": {"index.html": "<script>"}}),
            ),
        ),
        "6: pending refused entry of no kind": Case(
            [],
            "pending.json",
            prepare=_write("state/pending.json", _pending(refused=[{"entry": 1}])),
        ),
        "6: manifest with an absolute path": Case(
            [], "manifest.json", prepare=_write("state/manifest.json", _manifest({"/x": GOOD_HASH}))
        ),
        "6: manifest with a path holding a newline": Case(
            [],
            "manifest.json",
            prepare=_write("state/manifest.json", _manifest({"a\nb.html": GOOD_HASH})),
        ),
        # class 7: host names are DNS names
        "7: host with a space": Case(["--host", "do cs.example.com"], "hosts"),
        "7: host with an empty label": Case(["--host", "docs..example.com"], "hosts"),
        "7: host starting with a hyphen": Case(["--host", "-docs.example.com"], "hosts"),
        "7: site_url host with a space": Case(
            ["--site-url", "https://do cs.example.com/"], "site_url"
        ),
        "7: extra URL host with a space": Case(
            ["--extra-url", "https://do cs.example.com/x"], "extra_urls"
        ),
        "7: CNAME naming no host": Case([], "CNAME", prepare=_write("site/CNAME", "not a host!\n")),
        "7: CNAME that is a URL": Case(
            [], "CNAME", prepare=_write("site/CNAME", "https://docs.example.com/\n")
        ),
        "7: invalid IDNA host": Case(["--host", "xn--zz.example.com"], "hosts"),
        # class 8: no traceback, the file named, the documented exit code
        "8: manifest nested too deeply": Case(
            [], "manifest.json", prepare=_write("state/manifest.json", NESTED)
        ),
        "8: pending nested too deeply": Case(
            [], "pending.json", prepare=_write("state/pending.json", NESTED)
        ),
        "8: plan nested too deeply": Case(
            PLAN_ARGS, "plan.json", prepare=_write("plan.json", NESTED)
        ),
        "8: cache key header nested too deeply": Case(
            ["--cache-key-header", NESTED], "cache_key_headers"
        ),
        "8: plan not UTF-8": Case(
            PLAN_ARGS, "plan.json", prepare=_write("plan.json", b"\xff\xfe{")
        ),
        "8: unreadable site file": Case(
            [], "secret.html", prepare=_unreadable_file, unprivileged=True
        ),
        # class 9: the dry-run switch fails closed
        "9: CFPURGE_DRY_RUN=2": Case([], "CFPURGE_DRY_RUN", env={"CFPURGE_DRY_RUN": "2"}),
        "9: CFPURGE_DRY_RUN=maybe": Case([], "CFPURGE_DRY_RUN", env={"CFPURGE_DRY_RUN": "maybe"}),
        # class 10: a folder that cannot be listed is an error naming it
        "10: unlistable folder": Case([], "locked", prepare=_unlistable_folder, unprivileged=True),
    }
)


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
    prefix = unprivileged() if case.unprivileged else []
    result = subprocess.run(
        [
            *prefix,
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
