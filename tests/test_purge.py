"""Purge for real, end to end: real MkDocs builds, the pipeline, the CLI and the plugin against the
local Cloudflare over HTTP on 127.0.0.1, and visitors' fetches through its edge cache.

Every body the server receives is checked against Cloudflare's published schema, and no test
leaves the API token in its output, its logs or any file it wrote (see `_guards`).
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import httpx
import pytest
import yaml
from mkdocs.commands.build import build
from mkdocs.config import load_config
from mkdocs.exceptions import Abort, PluginError

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge import state as state_module
from mkdocs_cfpurge.cloudflare.client import CloudflareClient, RetryPolicy
from mkdocs_cfpurge.errors import CfPurgeError
from mkdocs_cfpurge.localcf import LocalCloudflare, PurgeRecord
from mkdocs_cfpurge.plan.changes import Status
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.settings import Settings
from tests.cfschema import load_purge_body_validator
from tests.helpers import (
    EPOCH,
    MANIFEST_FILE,
    TOKEN,
    ZONE_ID,
    MakeCf,
    hold_first_purge,
    make_site,
    run_build,
    run_main,
    settings_for,
    subprocess_env,
    write_files,
)

validate_body = load_purge_body_validator()

SITE_URL = "https://example.com/"
BAD_TOKEN = "tok-BAD-0d15ea5e-99"
LOGGER = "mkdocs.plugins.cfpurge"

PAGES_V1 = {
    "index.md": "# Home\n\nWelcome.\n",
    "guide/index.md": "# Guide\n\nThe first version of the guide.\n",
    "about.md": "# About\n\nWho we are.\n",
    "assets/site.css": "body { color: black; }\n",
    "assets/old.txt": "a file the next build drops\n",
}
# Body text only: the nav (and so every other page) stays the same.
PAGES_V2 = {
    **{k: v for k, v in PAGES_V1.items() if k != "assets/old.txt"},
    "guide/index.md": "# Guide\n\nThe second version of the guide.\n",
    "about.md": "# About\n\nWho we are, and what we do now.\n",
    "assets/new.txt": "a file the first build did not have\n",
}
PAGES_V3 = {**PAGES_V2, "index.md": "# Home\n\nWelcome back.\n"}


# --- guards and helpers ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _guards(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[None]:
    # Two builds of the same sources are byte-identical.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    caplog.set_level(logging.INFO, LOGGER)
    yield
    out, err = capsys.readouterr()
    # caplog.text would be the teardown phase's (empty) log: read the test's own records.
    logged = "\n".join(
        record.getMessage() for when in ("setup", "call") for record in caplog.get_records(when)
    )
    for secret in (TOKEN, BAD_TOKEN):
        assert secret not in out + err + logged
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def check_bodies(server: LocalCloudflare) -> list[dict[str, Any]]:
    """The purge POSTs the server got, each validated against Cloudflare's schema."""
    posts = [r for r in server.requests if r["method"] == "POST"]
    for post in posts:
        validate_body(post["body"])
    return posts


def accepted(*servers: LocalCloudflare) -> list[Any]:
    """Every item of every purge the servers accepted (URL strings for `files`)."""
    return [item for server in servers for record in server.purges for item in record.items]


def body_items(bodies: list[dict[str, Any]]) -> list[Any]:
    return [item for body in bodies for item in body.get("files", [])]


def build_site(root: Path, pages: Mapping[str, str]) -> Path:
    """A real `mkdocs build` of `pages` (no cfpurge plugin) into root/site; returns site_dir."""
    docs = root / "docs"
    shutil.rmtree(docs, ignore_errors=True)  # pages left out of `pages` are gone
    write_files(docs, pages)
    config_file = root / "mkdocs.yml"
    if not config_file.exists():
        raw = {"site_name": "Test", "site_url": SITE_URL, "plugins": ["search"]}
        config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = load_config(config_file=str(config_file))
    build(config)
    return Path(config.site_dir)


def fast_clients(
    sleeps: list[float], *, attempts: int = 4, timeout: float = 10.0
) -> Callable[[Settings], CloudflareClient]:
    """A client_factory: the real client, with quick retries and a recording sleep."""
    return functools.partial(
        pipeline.default_client,
        retry=RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.05),
        timeout=timeout,
        sleep=sleeps.append,
        transport=httpx.HTTPTransport(verify=False),  # plain http to 127.0.0.1: no CA bundle
    )


def baseline(root: Path, settings: Settings, pages: Mapping[str, str] = PAGES_V1) -> bytes:
    """Build `pages` and record them as the last deploy; return the manifest's bytes."""
    site_dir = build_site(root, pages)
    pipeline.scan(site_dir, settings).save(settings.manifest_path)
    return settings.manifest_path.read_bytes()


class Deployed(NamedTuple):
    manifest: Path  # the last deploy's manifest (in tmp_path/state)
    settings: Settings  # no credentials: for scans and previews
    before: bytes  # that manifest's bytes, to prove it unchanged
    site_dir: Path  # the next build, not deployed yet


def deployed_then_built(tmp_path: Path, **options: Any) -> Deployed:
    """PAGES_V1 built and recorded as the last deploy, then PAGES_V2 built."""
    manifest = tmp_path / "state" / "manifest.json"
    settings = Settings.create(
        **{"site_url": SITE_URL, "manifest_path": manifest, "env": {}, **options}
    )
    before = baseline(tmp_path, settings)
    return Deployed(manifest, settings, before, build_site(tmp_path, PAGES_V2))


def change_urls(plan: PurgePlan) -> set[str]:
    return {url for change in plan.changes for url in change.urls}


# --- the pipeline --------------------------------------------------------------------------------


def test_a_real_two_build_change_is_purged_then_committed(tmp_path: Path, make_cf: MakeCf) -> None:
    seen_pending: list[dict[str, Any]] = []

    def look_at_pending(record: PurgeRecord) -> None:
        # Before any answer reaches the client, what is owed is already on disk.
        seen_pending.append(json.loads((tmp_path / "state" / "pending.json").read_bytes()))

    cf = make_cf(on_purge=look_at_pending)
    settings = settings_for(tmp_path / "state", cf, site_url=SITE_URL, max_files_per_request=4)
    baseline(tmp_path, settings)
    site_dir = build_site(tmp_path, PAGES_V2)
    new = pipeline.scan(site_dir, settings)

    result = pipeline.purge(settings, new, client_factory=fast_clients([]))
    posts = check_bodies(cf)

    plan = result.plan
    assert sorted((c.path, c.status) for c in plan.changes) == [
        ("about/index.html", Status.MODIFIED),
        ("assets/new.txt", Status.ADDED),
        ("assets/old.txt", Status.DELETED),
        ("guide/index.html", Status.MODIFIED),
        ("search/search_index.json", Status.MODIFIED),
    ]
    expected = {
        SITE_URL + path
        for path in [
            "about/",
            "about/index.html",
            "guide/",
            "guide/index.html",
            "assets/new.txt",
            "assets/old.txt",
            "search/search_index.json",
        ]
    }
    assert change_urls(plan) == expected
    purged = accepted(cf)
    assert sorted(purged) == sorted(expected)  # each URL once, nothing else
    assert all(len(r.items) <= 4 for r in cf.purges)
    assert result.requests_sent == len(cf.purges) == len(posts) == 2
    assert [p["path"] for p in posts] == [f"/client/v4/zones/{ZONE_ID}/purge_cache"] * 2
    # Committed only now: the new manifest, and nothing left owed.
    assert settings.manifest_path.read_bytes() == new.to_json()
    assert not (tmp_path / "state" / "pending.json").exists()
    # Seen from inside the first purge: the whole plan, and the manifest it leads to.
    first = seen_pending[0]
    assert first["requests"] == plan.requests
    assert first["next_manifest"]["files"] == new.files


def test_nothing_changed_sends_nothing(cf: LocalCloudflare, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "state", cf, site_url=SITE_URL)
    before = baseline(tmp_path, settings)
    new = pipeline.scan(build_site(tmp_path, PAGES_V1), settings)
    result = pipeline.purge(settings, new, client_factory=fast_clients([]))
    assert result.requests_sent == 0 and result.plan.is_empty
    assert cf.requests == []
    assert settings.manifest_path.read_bytes() == before


@pytest.mark.parametrize(("method", "fresh_status"), [("purge", "MISS"), ("invalidate", "EXPIRED")])
def test_through_the_edge_changed_pages_are_fresh_and_the_rest_stays_cached(
    tmp_path: Path, method: str, fresh_status: str, make_cf: MakeCf
) -> None:
    site_dir = build_site(tmp_path, PAGES_V1)
    cf = make_cf(origin=site_dir)
    settings = settings_for(tmp_path / "state", cf, site_url=SITE_URL, method=method)
    old = pipeline.scan(site_dir, settings)
    old.save(settings.manifest_path)
    mapper = settings.mapper()
    every_url = {url for path in old.files for url in mapper.urls(path)}
    new_file_url = SITE_URL + "assets/new.txt"
    for url in [*sorted(every_url), new_file_url]:  # visitors warm the cache (and a 404)
        cf.edge_fetch(url)
    assert {cf.edge_fetch(url).cache_status for url in every_url} == {"HIT"}
    old_bytes = {url: cf.edge_fetch(url).body for url in every_url}

    site_dir = build_site(tmp_path, PAGES_V2)
    new = pipeline.scan(site_dir, settings)
    plan = pipeline.preview(settings, new)
    changed = {c.path: c for c in plan.changes}
    assert set(changed) >= {"about/index.html", "guide/index.html", "assets/new.txt"}

    # Control: without the purge, the edge keeps serving the old build.
    for change in plan.changes:
        for url in change.urls:
            stale = cf.edge_fetch(url)
            assert stale.cache_status == "HIT", url
            if change.status is Status.ADDED:
                assert stale.status == 404, url
            else:
                assert stale.body == old_bytes[url], url
            if change.status is not Status.DELETED:
                assert stale.body != (site_dir / change.path).read_bytes(), url

    pipeline.purge(settings, new, client_factory=fast_clients([]))
    assert {r.method for r in cf.purges} == {f"{method}_cache"}

    for change in plan.changes:
        for url in change.urls:
            fresh = cf.edge_fetch(url)
            assert fresh.cache_status == fresh_status, url
            if change.status is Status.DELETED:
                assert fresh.status == 404, url
            else:
                now_built = (site_dir / change.path).read_bytes()
                assert (fresh.status, fresh.body) == (200, now_built), url
    unchanged = every_url - change_urls(plan)
    assert SITE_URL in unchanged and SITE_URL + "assets/site.css" in unchanged
    assert {cf.edge_fetch(url).cache_status for url in unchanged} == {"HIT"}
    check_bodies(cf)


@pytest.mark.parametrize("fault", ["429", "5xx", "drop"])
def test_transient_failures_are_retried_and_everything_is_purged(
    cf: LocalCloudflare, tmp_path: Path, fault: str
) -> None:
    settings = settings_for(tmp_path / "state", cf, site_url=SITE_URL)
    baseline(tmp_path, settings)
    new = pipeline.scan(build_site(tmp_path, PAGES_V2), settings)
    if fault == "429":
        cf.fail_next(3, 429, retry_after=1)
    elif fault == "5xx":
        cf.fail_next(1, 500)
        cf.fail_next(1, 503)
    else:
        cf.drop_next(2)
    sleeps: list[float] = []

    result = pipeline.purge(settings, new, client_factory=fast_clients(sleeps))

    assert set(accepted(cf)) == change_urls(result.plan)
    if fault == "429":
        assert sleeps == [1.0, 1.0, 1.0]  # Retry-After, not the 0.01 s backoff
    else:
        assert len(sleeps) == 2 and all(s <= 0.05 for s in sleeps)
    assert settings.manifest_path.read_bytes() == new.to_json()
    assert not (tmp_path / "state" / "pending.json").exists()


def test_an_over_cap_batch_is_split_and_the_run_goes_on(tmp_path: Path, make_cf: MakeCf) -> None:
    site_dir = tmp_path / "site"
    write_files(site_dir, {f"p{i:02}/index.html": f"<p>{i}</p>" for i in range(45)})
    cf = make_cf(max_files_per_request=10)
    settings = settings_for(tmp_path / "state", cf, site_url=SITE_URL, max_files_per_request=30)
    pipeline.scan(site_dir, settings).save(settings.manifest_path)
    write_files(site_dir, {f"p{i:02}/index.html": f"<p>{i} v2</p>" for i in range(45)})
    new = pipeline.scan(site_dir, settings)

    result = pipeline.purge(settings, new, client_factory=fast_clients([]))
    posts = check_bodies(cf)

    assert [len(r["body"]["files"]) for r in posts if r["status"] == 400] == [30, 15]
    assert all(len(r["body"]["files"]) <= 8 for r in posts[2:])
    purged = accepted(cf)
    assert len(purged) == len(set(purged)) == 90
    assert set(purged) == change_urls(result.plan)
    assert settings.manifest_path.read_bytes() == new.to_json()


def test_two_runs_are_kept_apart_by_the_lock(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    make_cf: MakeCf,
) -> None:
    """Both runs deploy the same build; the second waits, re-plans and has nothing to send."""
    server = hold_first_purge(make_cf, request, longest=10)
    cf, in_purge, release = server.cf, server.held, server.release
    second_waits = threading.Event()
    settings = settings_for(tmp_path / "state", cf, site_url=SITE_URL)
    baseline(tmp_path, settings)
    new = pipeline.scan(build_site(tmp_path, PAGES_V2), settings)
    real_time = time  # the module state.py uses, before it is replaced

    def lock_poll_sleep(seconds: float) -> None:
        second_waits.set()
        real_time.sleep(seconds)

    monkeypatch.setattr(
        state_module, "time", SimpleNamespace(monotonic=real_time.monotonic, sleep=lock_poll_sleep)
    )

    results: dict[str, pipeline.PurgeResult] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            results[name] = pipeline.purge(settings, new, client_factory=fast_clients([]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert in_purge.wait(10)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    assert second_waits.wait(10)  # the second run is waiting for the lock...
    assert len(cf.purges) == 1  # ...and has sent nothing
    release.set()
    first.join(10)
    second.join(10)
    check_bodies(cf)

    assert errors == []
    assert results["first"].requests_sent > 0
    assert results["second"].requests_sent == 0 and results["second"].plan.is_empty
    purged = accepted(cf)
    assert len(purged) == len(set(purged))  # no URL purged twice
    assert settings.manifest_path.read_bytes() == new.to_json()


# --- the zone check ------------------------------------------------------------------------------


def test_a_zone_that_does_not_own_the_host_is_refused_before_any_purge(
    cf: LocalCloudflare, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path / "state", cf, site_url="https://docs.example.org/")
    before = baseline(tmp_path, settings)
    new = pipeline.scan(build_site(tmp_path, PAGES_V2), settings)

    with pytest.raises(CfPurgeError) as caught:
        pipeline.purge(settings, new, client_factory=fast_clients([]))

    message = str(caught.value)
    assert "is 'example.com', which does not own host(s) docs.example.org" in message
    assert "nothing was purged" in message
    assert check_bodies(cf) == []  # zero purge POSTs
    assert [(r["method"], r["path"]) for r in cf.requests] == [
        ("GET", f"/client/v4/zones/{ZONE_ID}")
    ]
    assert settings.manifest_path.read_bytes() == before
    assert not (tmp_path / "state" / "pending.json").exists()


def test_verify_zone_false_skips_the_check(cf: LocalCloudflare, tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path / "state", cf, site_url="https://docs.example.org/", verify_zone=False
    )
    baseline(tmp_path, settings)
    new = pipeline.scan(build_site(tmp_path, PAGES_V2), settings)
    pipeline.purge(settings, new, client_factory=fast_clients([]))
    # No zone read: only the cache rules read (a ruleset, not the zone) and the purges.
    assert all(r["method"] == "POST" or "/rulesets/" in r["path"] for r in cf.requests)
    assert accepted(cf)


def test_a_token_that_may_not_read_zones_warns_once_and_purges(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, make_cf: MakeCf
) -> None:
    cf = make_cf(zone_readable=False)
    settings = settings_for(tmp_path / "state", cf, site_url=SITE_URL)
    baseline(tmp_path, settings)
    new = pipeline.scan(build_site(tmp_path, PAGES_V2), settings)
    result = pipeline.purge(settings, new, client_factory=fast_clients([]))
    check_bodies(cf)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "may not read zone" in warnings[0]
    assert set(accepted(cf)) == change_urls(result.plan)
    assert settings.manifest_path.read_bytes() == new.to_json()


# --- the CLI -------------------------------------------------------------------------------------


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`mkdocs-cfpurge ARGV` in this process: exit code, stdout, stderr."""
    code, out, err = run_main(argv, capsys)
    for secret in (TOKEN, BAD_TOKEN):
        assert secret not in out + err
    return code, out, err


PointAt = Callable[[LocalCloudflare], None]


@pytest.fixture
def point_at(monkeypatch: pytest.MonkeyPatch) -> PointAt:
    """Sets the CLI's environment to a local server; the CLI's clients retry quickly."""
    monkeypatch.setattr(pipeline, "default_client", fast_clients([], attempts=3))

    def point(server: LocalCloudflare) -> None:
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
        monkeypatch.setenv("CLOUDFLARE_API_BASE", server.api_base)
        monkeypatch.setenv("CLOUDFLARE_ZONE_ID", ZONE_ID)

    return point


@pytest.fixture
def cli_env(cf: LocalCloudflare, point_at: PointAt) -> None:
    point_at(cf)


def purge_args(site_dir: Path, manifest: Path, *extra: str, command: str = "purge") -> list[str]:
    return [
        command,
        str(site_dir),
        "--site-url",
        SITE_URL,
        "--manifest",
        str(manifest),
        "--strategy",
        "files",
        *extra,
    ]


def test_cli_permanent_500_keeps_what_is_owed_and_a_healthy_rerun_sends_it(
    tmp_path: Path, point_at: PointAt, capsys: pytest.CaptureFixture[str], make_cf: MakeCf
) -> None:
    manifest, settings, before, site_dir = deployed_then_built(tmp_path, strategy="files")
    pending_path = manifest.with_name("pending.json")
    v2 = pipeline.scan(site_dir, settings)
    owed_v2 = {url for c in pipeline.preview(settings, v2).changes for url in c.urls}

    # First run: the first request is confirmed, every later one fails for good.
    def break_after_first(record: PurgeRecord) -> None:
        if len(broken.purges) == 1:
            broken.fail_next(1000, 500)

    broken = make_cf(on_purge=break_after_first)
    point_at(broken)
    code, _, err = run_cli(purge_args(site_dir, manifest, "--max-files-per-request", "2"), capsys)
    check_bodies(broken)

    assert code == 1
    assert "mkdocs-cfpurge: error:" in err and "HTTP 500" in err
    assert "still owed are saved in" in err
    assert manifest.read_bytes() == before  # nothing committed, byte for byte
    pending = json.loads(pending_path.read_bytes())
    owed_after_run_1 = body_items(pending["requests"])
    confirmed = accepted(broken)
    assert len(confirmed) == 2 and len(broken.purges) == 1
    assert set(confirmed) | set(owed_after_run_1) == owed_v2  # nothing lost
    assert set(confirmed).isdisjoint(owed_after_run_1)
    assert pending["next_manifest"]["files"] == v2.files

    # Second run, on a healthy server, of a build with one more change (the home page) and one
    # change undone: a page whose purge is still owed goes back to its first text. The diff from
    # the manifest no longer shows it, but edges may have cached the second text meanwhile: only
    # pending.json still knows that its purge is owed.
    undone = next(p for p in ("guide/", "about/") if SITE_URL + p in owed_after_run_1)
    source = {"guide/": "guide/index.md", "about/": "about.md"}[undone]
    site_dir = build_site(tmp_path, {**PAGES_V3, source: PAGES_V1[source]})
    v3 = pipeline.scan(site_dir, settings)
    assert SITE_URL + undone not in change_urls(pipeline.preview(settings, v3, None))
    healthy = make_cf()
    point_at(healthy)
    code, _, err = run_cli(purge_args(site_dir, manifest), capsys)
    check_bodies(healthy)

    assert code == 0, err
    sent = accepted(healthy)
    assert len(sent) == len(set(sent))  # pending and the new plan merged without duplicates
    assert set(sent) >= set(owed_after_run_1)
    assert SITE_URL + undone in sent and SITE_URL + undone + "index.html" in sent
    assert SITE_URL in sent and SITE_URL + "index.html" in sent  # v3's own change
    assert set(confirmed) | set(sent) >= owed_v2 | {SITE_URL, SITE_URL + "index.html"}
    assert manifest.read_bytes() == v3.to_json()
    assert not pending_path.exists()


def test_cli_purge_without_a_site_sends_what_is_pending_and_commits_its_manifest(
    tmp_path: Path, point_at: PointAt, capsys: pytest.CaptureFixture[str], make_cf: MakeCf
) -> None:
    """The deploy that could not purge (a failed run, or gh-deploy without the hook)."""
    manifest, settings, before, site_dir = deployed_then_built(tmp_path)
    v2 = pipeline.scan(site_dir, settings)
    broken = make_cf()
    broken.fail_next(1000, 503)
    point_at(broken)
    code, _, _ = run_cli(purge_args(site_dir, manifest), capsys)
    check_bodies(broken)
    assert code == 1 and broken.purges == []
    assert manifest.read_bytes() == before
    owed = json.loads(manifest.with_name("pending.json").read_bytes())["requests"]

    healthy = make_cf()
    point_at(healthy)
    args = ["purge", "--site-url", SITE_URL, "--manifest", str(manifest)]
    code, _, err = run_cli(args, capsys)
    posts = check_bodies(healthy)

    assert code == 0, err
    assert [p["body"] for p in posts] == owed
    assert manifest.read_bytes() == v2.to_json()  # the manifest pending.json was kept for
    assert not manifest.with_name("pending.json").exists()


def test_cli_plan_file_is_sent_as_it_is(
    cf: LocalCloudflare, tmp_path: Path, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, _, before, site_dir = deployed_then_built(tmp_path)
    plan_file = tmp_path / "plan.json"
    code, _, err = run_cli(
        purge_args(site_dir, manifest, "--out", str(plan_file), command="plan"), capsys
    )
    assert code == 0, err
    saved = json.loads(plan_file.read_bytes())
    assert saved["requests"]

    args = ["purge", "--plan", str(plan_file), "--site-url", SITE_URL, "--dry-run"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert cf.requests == []  # a dry run sends nothing at all
    assert json.loads(out)["requests"] == saved["requests"]

    code, _, err = run_cli(["purge", "--plan", str(plan_file), "--manifest", str(manifest)], capsys)
    assert code == 0, err
    assert [p["body"] for p in check_bodies(cf)] == saved["requests"]
    assert manifest.read_bytes() == before  # a plan carries no manifest to commit


def test_cli_dry_run_of_a_site_sends_and_changes_nothing(
    cf: LocalCloudflare, tmp_path: Path, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, _, before, site_dir = deployed_then_built(tmp_path)
    state_before = sorted(p.name for p in manifest.parent.iterdir())

    code, out, err = run_cli(purge_args(site_dir, manifest, "--dry-run"), capsys)

    assert code == 0, err
    assert cf.requests == []
    assert SITE_URL + "about/" in body_items(json.loads(out)["requests"])
    assert manifest.read_bytes() == before
    assert sorted(p.name for p in manifest.parent.iterdir()) == state_before


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        ([], {"CLOUDFLARE_API_TOKEN": None}, "option 'api_token': is not set"),
        ([], {"CLOUDFLARE_ZONE_ID": None}, "option 'zone_id': is not set"),
        (["--api-base", "http://api.example.net/client/v4"], {}, "must use https://"),
        (["--zone-id", "nope"], {}, "is not a zone id"),
    ],
)
def test_cli_configuration_errors_exit_2_and_send_nothing(
    cf: LocalCloudflare,
    tmp_path: Path,
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    env: dict[str, str | None],
    message: str,
) -> None:
    # The settings are refused before the site is read: a plain folder will do.
    manifest = tmp_path / "state" / "manifest.json"
    site_dir = tmp_path / "site"
    write_files(site_dir, {"index.html": "<p>v1</p>", "a/index.html": "<p>a</p>"})
    settings = Settings.create(site_url=SITE_URL, manifest_path=manifest, env={})
    pipeline.scan(site_dir, settings).save(manifest)
    before = manifest.read_bytes()
    write_files(site_dir, {"a/index.html": "<p>a v2</p>"})
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name)
    code, _, err = run_cli(purge_args(site_dir, manifest, *extra), capsys)
    assert code == 2
    assert message in err
    assert cf.requests == []
    assert manifest.read_bytes() == before
    assert not manifest.with_name("pending.json").exists()


def test_cli_zone_that_does_not_own_the_host_exits_2_before_any_purge(
    cf: LocalCloudflare,
    tmp_path: Path,
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = "https://docs.example.org/"
    manifest, _, before, site_dir = deployed_then_built(tmp_path, site_url=other)
    args = ["purge", str(site_dir), "--site-url", other, "--manifest", str(manifest)]

    code, _, err = run_cli(args, capsys)

    assert code == 2
    assert "does not own host(s) docs.example.org" in err
    assert check_bodies(cf) == []
    assert manifest.read_bytes() == before

    code, _, err = run_cli([*args, "--no-verify-zone"], capsys)  # the control
    assert code == 0, err
    assert check_bodies(cf)


def purge_in_a_subprocess(
    cf: LocalCloudflare, cwd: Path, site_dir: Path, manifest: Path, token: str
) -> subprocess.CompletedProcess[str]:
    """`python -m mkdocs_cfpurge purge ...`, the credentials in its environment."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs_cfpurge", *purge_args(site_dir, manifest)],
        env=subprocess_env(
            CLOUDFLARE_API_TOKEN=token, CLOUDFLARE_API_BASE=cf.api_base, CLOUDFLARE_ZONE_ID=ZONE_ID
        ),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_cli_subprocess_purges_with_credentials_from_the_environment(
    cf: LocalCloudflare, tmp_path: Path
) -> None:
    manifest, settings, _, site_dir = deployed_then_built(tmp_path)
    new = pipeline.scan(site_dir, settings)

    done = purge_in_a_subprocess(cf, tmp_path, site_dir, manifest, TOKEN)

    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    assert "purge complete" in done.stderr
    assert "cfpurge: request 1 of 1 (files) done" in done.stderr  # the progress line
    assert SITE_URL + "about/" in accepted(cf)
    assert manifest.read_bytes() == new.to_json()


def test_cli_subprocess_bad_token_fails_clearly_and_commits_nothing(
    cf: LocalCloudflare, tmp_path: Path
) -> None:
    manifest, settings, before, site_dir = deployed_then_built(tmp_path)
    owed = change_urls(pipeline.preview(settings, pipeline.scan(site_dir, settings)))

    done = purge_in_a_subprocess(cf, tmp_path, site_dir, manifest, BAD_TOKEN)

    # The zone read's 403 could be a missing Zone Read permission: one request to
    # /user/tokens/verify tells an invalid token apart, and it is reported as one (exit 2).
    assert done.returncode == 2, done.stderr
    assert BAD_TOKEN not in done.stdout + done.stderr
    assert "option 'api_token': Cloudflare does not accept this API token" in done.stderr
    assert "(GET /user/tokens/verify: HTTP 401, 1000: Invalid API Token)" in done.stderr
    assert "My Profile → API Tokens" in done.stderr
    assert "may not read zone" not in done.stderr  # not a permission problem
    assert cf.purges == [] and check_bodies(cf) == []
    assert [(r["path"], r["status"]) for r in cf.requests] == [
        (f"/client/v4/zones/{ZONE_ID}", 403),
        ("/client/v4/user/tokens/verify", 401),
    ]
    assert manifest.read_bytes() == before
    pending = manifest.with_name("pending.json")
    if pending.exists():  # whatever is kept must be everything still owed
        assert set(body_items(json.loads(pending.read_bytes())["requests"])) == owed


# --- the plugin ----------------------------------------------------------------------------------


def plugin_site(root: Path, cf: LocalCloudflare, **options: Any) -> Path:
    options = {
        "zone_id": ZONE_ID,
        "purge_on": ["build"],
        "api_base": cf.api_base,
        "strategy": "files",
        **options,
    }
    return make_site(root, options=options, pages=PAGES_V1)


def test_plugin_purges_after_a_successful_build_and_never_after_a_failed_one(
    cf: LocalCloudflare, tmp_path: Path
) -> None:
    config_file = plugin_site(tmp_path, cf)
    summary = tmp_path / "step-summary.md"  # a report the token must stay out of, as all files
    env = {"CLOUDFLARE_API_TOKEN": TOKEN, "GITHUB_STEP_SUMMARY": str(summary)}
    manifest = tmp_path / MANIFEST_FILE

    run_build(config_file, env)  # the first deploy records the baseline and purges nothing
    assert cf.requests == []
    baseline_bytes = manifest.read_bytes()

    write_files(tmp_path / "docs", {"about.md": PAGES_V2["about.md"]})
    config = run_build(config_file, env)
    purged = set(accepted(cf))
    assert purged == {
        SITE_URL + "about/",
        SITE_URL + "about/index.html",
        SITE_URL + "search/search_index.json",
    }
    assert "about/index.html" in summary.read_text(encoding="utf-8")
    settings = settings_for(tmp_path / "state", cf, site_url=SITE_URL)
    committed = manifest.read_bytes()
    assert committed != baseline_bytes
    assert committed == pipeline.scan(Path(config.site_dir), settings).to_json()
    requests_so_far = len(cf.requests)

    # A strict build that fails after on_post_build: nothing purged, nothing committed.
    write_files(tmp_path / "docs", {"about.md": "# About\n\nSee [this](missing.md).\n"})
    with pytest.raises(Abort, match="strict"):
        run_build(config_file, env, strict=True)
    assert len(cf.requests) == requests_so_far
    assert manifest.read_bytes() == committed
    assert not manifest.with_name("pending.json").exists()


def test_plugin_with_a_bad_token_fails_the_build_and_keeps_the_purge_owed(
    cf: LocalCloudflare, tmp_path: Path
) -> None:
    config_file = plugin_site(tmp_path, cf)
    run_build(config_file, {"CLOUDFLARE_API_TOKEN": TOKEN})
    before = (tmp_path / MANIFEST_FILE).read_bytes()
    write_files(tmp_path / "docs", {"about.md": PAGES_V2["about.md"]})

    with pytest.raises(PluginError, match="does not accept this API token") as caught:
        run_build(config_file, {"CLOUDFLARE_API_TOKEN": BAD_TOKEN})

    assert "My Profile → API Tokens" in str(caught.value)
    assert cf.purges == []
    assert (tmp_path / MANIFEST_FILE).read_bytes() == before
    pending = (tmp_path / MANIFEST_FILE).with_name("pending.json")
    if pending.exists():  # whatever is kept must include what is owed
        assert SITE_URL + "about/" in body_items(json.loads(pending.read_bytes())["requests"])
