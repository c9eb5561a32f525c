"""Issue 13's fuzz test: generated manifests, pending files and saved plans, fed to the CLI.

Each document starts valid and is then broken in one generated way (a value replaced by any
JSON, a key dropped or added, a path or URL changed, nesting past any parser's depth, bytes that
are no JSON, a cut). Whatever the document, `mkdocs-cfpurge purge` never shows a traceback and
ends with a documented exit code: 2 naming the file when it refuses it, having sent nothing, or
0 having sent only bodies inside the site (every body the server received is checked against
the site's scope and Cloudflare's schema).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mkdocs_cfpurge.cli import main
from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.plan.scope import Scope
from mkdocs_cfpurge.plan.urls import SiteUrl, UrlMapper
from tests.cfschema import load_purge_body_validator
from tests.helpers import TOKEN, ZONE_ID, write_files

SITE_URL = "https://docs.example.com/"
HASH = "ab" * 32
validate_body = load_purge_body_validator()
SCOPE = Scope.of(UrlMapper.create(SiteUrl.parse(SITE_URL)), (), everything_allowed=False)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
# Values that look like what the documents hold, so that mutations also reach the deeper checks.
plausible = st.sampled_from(
    [
        "index.html",
        "../etc/passwd",
        "/abs.html",
        "a//b.html",
        "a\nb.html",
        HASH,
        "git-blob:" + "0" * 40,
        "<script>",
        SITE_URL,
        SITE_URL + "guide/",
        "https://docs.example.com:444/",
        "https://evil.example.org/",
        "ftp://docs.example.com/x",
        "https://do cs.example.com/",
        "https://docs.example.com/%2e%2e/admin",
        "docs.example.com/",
        "docs.example.com/guide/",
        "example.com",
        "fedcba9876543210fedcba9876543210",
        ZONE_ID,
        "",
    ]
)
anything = json_values | plausible
# Request bodies of every purge type, with entries in and out of the site.
bodies = st.one_of(
    st.builds(lambda items: {"files": items}, st.lists(plausible, min_size=1, max_size=3)),
    st.builds(lambda items: {"prefixes": items}, st.lists(plausible, min_size=1, max_size=3)),
    st.builds(lambda items: {"hosts": items}, st.lists(plausible, min_size=1, max_size=2)),
    st.builds(lambda items: {"tags": items}, st.lists(plausible, min_size=1, max_size=2)),
    st.just({"purge_everything": True}),
)


def manifest_doc(files: dict[str, str] | None = None) -> dict[str, Any]:
    files = files if files is not None else {"index.html": HASH, "guide/index.html": HASH}
    return {"version": 1, "algorithm": "sha256", "site_url": SITE_URL, "files": files}


def pending_doc() -> dict[str, Any]:
    return {
        "version": 1,
        "site_url": SITE_URL,
        "requests": [{"files": [SITE_URL + "guide/"]}, {"prefixes": ["docs.example.com/a/"]}],
        "next_manifest": {"site_url": SITE_URL, "files": {"index.html": HASH}},
        "refused": [{"kind": "files", "entry": SITE_URL + "x/", "code": 1012, "message": "no"}],
    }


def plan_doc() -> dict[str, Any]:
    return {
        "version": 1,
        "site_url": SITE_URL,
        "zone_id": ZONE_ID,
        "strategy": "files",
        "notes": [],
        "decisions": [],
        "changes": [
            {
                "path": "guide/index.html",
                "status": "modified",
                "reason": "hash-differs",
                "detail": "",
                "urls": [SITE_URL + "guide/"],
            }
        ],
        "requests": [{"files": [SITE_URL + "guide/", SITE_URL + "guide/index.html"]}],
    }


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (a key path), the root included."""
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*at, index))
    return found


def _set(doc: Any, at: tuple[Any, ...], value: Any) -> Any:
    if not at:
        return value
    holder = doc
    for key in at[:-1]:
        holder = holder[key]
    holder[at[-1]] = value
    return doc


@st.composite
def broken(draw: st.DrawFn, make: Callable[[], dict[str, Any]]) -> bytes:
    """A valid document of `make`, broken in one drawn way (or left valid now and then)."""
    doc = make()
    how = draw(
        st.sampled_from(
            ["replace", "drop", "add", "nest", "cut", "bytes", "valid", "replace", "requests"]
        )
    )
    if how == "valid":
        return json.dumps(doc).encode()
    if how == "requests" and "requests" in doc:
        doc["requests"] = draw(st.lists(bodies, min_size=1, max_size=2))
        return json.dumps(doc).encode()
    if how == "nest":
        depth = draw(st.integers(2_000, 30_000))
        return ("[" * depth + "]" * depth).encode()
    if how == "bytes":
        return draw(st.binary(max_size=64))
    if how == "cut":
        raw = json.dumps(doc).encode()
        return raw[: draw(st.integers(0, len(raw) - 1))]
    at = draw(st.sampled_from(_paths(doc)))
    if how == "replace":
        doc = _set(doc, at, draw(anything))
    elif how == "drop" and at:
        holder = doc
        for key in at[:-1]:
            holder = holder[key]
        del holder[at[-1]]
    else:
        holder = doc
        for key in at:
            holder = holder[key]
        if isinstance(holder, dict):
            holder[draw(st.text(max_size=10) | plausible)] = draw(anything)
        elif isinstance(holder, list):
            holder.append(draw(anything))
    return json.dumps(doc).encode()


@pytest.fixture
def server(make_cf: Any, monkeypatch: pytest.MonkeyPatch) -> LocalCloudflare:
    cf: LocalCloudflare = make_cf(check_bodies=False)  # checked here, example by example
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_ZONE_ID", ZONE_ID)
    monkeypatch.setenv("CLOUDFLARE_API_BASE", cf.api_base)
    return cf


def run_cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exit_:  # anything else is a traceback: the test fails on it
            code = exit_.code
    return (code if isinstance(code, int) else 1), err.getvalue()


def check_run(cf: LocalCloudflare, argv: list[str], named: str) -> None:
    seen = len(cf.requests)
    code, err = run_cli(argv)
    sent = [r for r in cf.requests[seen:] if r["method"] == "POST"]
    assert code in (0, 2), err
    assert "Traceback" not in err and TOKEN not in err
    if code == 2:
        assert named in err, err
        assert err.count("\n") == 1, err  # one line
        assert sent == []
    for post in sent:  # whatever went out is a valid body inside the site
        validate_body(post["body"])
        SCOPE.check([post["body"]])


FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def site_and_state(root: Path) -> tuple[Path, Path]:
    site = root / "site"
    write_files(site, {"index.html": "<p>home</p>", "guide/index.html": "<p>guide v2</p>"})
    return site, root / "state" / "manifest.json"


@FUZZ
@given(broken(manifest_doc))
def test_fuzzed_manifests(server: LocalCloudflare, raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        site, manifest = site_and_state(Path(folder))
        manifest.parent.mkdir()
        manifest.write_bytes(raw)
        argv = ["purge", str(site), "--site-url", SITE_URL, "--manifest", str(manifest)]
        check_run(server, argv, "manifest.json")


@FUZZ
@given(broken(pending_doc))
def test_fuzzed_pending_files(server: LocalCloudflare, raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        site, manifest = site_and_state(Path(folder))
        manifest.parent.mkdir()
        manifest.write_text(json.dumps(manifest_doc()))
        manifest.with_name("pending.json").write_bytes(raw)
        argv = ["purge", str(site), "--site-url", SITE_URL, "--manifest", str(manifest)]
        check_run(server, argv, "pending.json")


@FUZZ
@given(broken(plan_doc))
def test_fuzzed_saved_plans(server: LocalCloudflare, raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        plan = root / "plan.json"
        plan.write_bytes(raw)
        manifest = root / "state" / "manifest.json"
        argv = ["purge", "--plan", str(plan), "--site-url", SITE_URL, "--manifest", str(manifest)]
        check_run(server, argv, "plan.json")
