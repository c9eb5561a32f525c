"""`watch`: real files, real watchdog events, purges sent to the local Cloudflare on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mkdocs_cfpurge.localcf import LocalCloudflare, PurgeRecord
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.settings import Settings
from mkdocs_cfpurge.watch import DeployWatcher, is_temporary
from tests.helpers import SITE, TOKEN, ZONE_ID, settings_for, subprocess_env, write_files

pytestmark = pytest.mark.timeout(60)

QUIET = 0.5
WAIT = 20.0  # an upper bound for slow machines, never a timing assertion

PAGES: dict[str, str | bytes] = {
    "index.html": "<h1>Home</h1>",
    "guide/index.html": "<h1>Guide v1</h1>",
    "about/index.html": "<h1>About</h1>",
    "assets/site.css": "body { color: black; }",
    "old.html": "<p>soon gone</p>",
}


def rsync_like(root: Path, files: dict[str, str | bytes], delete: tuple[str, ...] = ()) -> None:
    """What rsync does: each file goes to `.name.XXXXXX` beside its target, then is renamed."""
    for number, (rel, content) in enumerate(files.items()):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.Tmp{number:03d}")
        data = content.encode() if isinstance(content, str) else content
        temp.write_bytes(data)
        os.rename(temp, target)
    for rel in delete:
        (root / rel).unlink()


def purged_urls(records: list[PurgeRecord]) -> list[str]:
    return sorted(str(item) for record in records for item in record.items)


def urls(*paths: str) -> list[str]:
    return sorted(SITE + path for path in paths)


def assert_purged(
    records: list[PurgeRecord], plan: PurgePlan | None, changed: dict[str, str]
) -> None:
    """The purge sent exactly the plan's URLs, and the plan covers exactly the changed files.

    `changed` maps each changed file to a URL path it must be purged under; the planner may add
    other variants of the same files (which ones is its business), never another file's URL.
    """
    assert plan is not None
    paths = {change.path for change in plan.changes}
    assert set(changed) <= paths
    # Other entries may only be the planner's extras for these files (`new/` for a new folder).
    assert all(
        any(f.startswith(p.rstrip("/") + "/") for f in changed) for p in paths - set(changed)
    )
    planned = sorted(str(item) for body in plan.requests for item in body["files"])
    assert purged_urls(records) == planned
    assert set(urls(*changed.values())) <= set(planned)


Watching = Callable[[Path], DeployWatcher]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    write_files(tmp_path / "site", PAGES)
    return tmp_path / "site"


def start_watcher(site: Path, settings: Settings) -> DeployWatcher:
    watcher = DeployWatcher(site, settings, quiet_period=QUIET).start()
    assert watcher.wait_rounds(1, WAIT), "the first pass never ended"
    return watcher


@pytest.fixture
def watching(tmp_path: Path, cf: LocalCloudflare) -> Iterator[Watching]:
    started: list[DeployWatcher] = []

    def start(site: Path) -> DeployWatcher:
        watcher = start_watcher(site, settings_for(tmp_path / "state", cf))
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        watcher.stop(timeout=WAIT)


@pytest.mark.slow  # a real watcher (watchdog, quiet periods): a second or more
def test_rsync_deploy_is_one_purge_of_exactly_the_changed_urls(
    tmp_path: Path, site: Path, cf: LocalCloudflare, watching: Watching
) -> None:
    watcher = watching(site)
    [first] = watcher.rounds
    assert first.outcome == "baseline"
    assert (tmp_path / "state" / "manifest.json").exists()
    assert cf.purges == []

    rsync_like(
        site,
        {
            "guide/index.html": "<h1>Guide v2</h1>",
            "assets/site.css": "body { color: navy; }",
            "new/index.html": "<h1>New</h1>",
            "about/index.html": PAGES["about/index.html"],  # same bytes, written again
        },
        delete=("old.html",),
    )
    assert watcher.wait_rounds(2, WAIT)

    last = watcher.rounds[-1]
    assert last.outcome == "purged"
    [record] = cf.purges  # the whole deploy, one request
    assert (record.method, record.kind) == ("purge_cache", "files")
    assert_purged(
        [record],
        last.plan,
        {
            "guide/index.html": "guide/",
            "assets/site.css": "assets/site.css",
            "new/index.html": "new/",
            "old.html": "old.html",
        },
    )
    committed = json.loads((tmp_path / "state" / "manifest.json").read_bytes())
    assert "new/index.html" in committed["files"] and "old.html" not in committed["files"]
    assert not (tmp_path / "state" / "pending.json").exists()


@pytest.mark.slow  # a real watcher (watchdog, quiet periods): a second or more
def test_redeploy_of_identical_bytes_purges_nothing(
    site: Path, cf: LocalCloudflare, watching: Watching
) -> None:
    watcher = watching(site)

    rsync_like(site, dict(PAGES))  # every file rewritten, none changed
    assert watcher.wait_rounds(2, WAIT)
    assert watcher.rounds[-1].outcome == "unchanged"
    assert cf.purges == []

    # Hashing reads every file: those reads must not count as a deploy, or each pass would set
    # off the next. A negative check needs some waiting; a slow machine can only make it pass.
    assert watcher.wait_idle(WAIT)
    time.sleep(4 * QUIET)
    assert watcher.round_count == 2

    # The watcher still purges after that: the skip was about the content, not a stuck watch.
    rsync_like(site, {"index.html": "<h1>Home v2</h1>"})
    assert watcher.wait_rounds(3, WAIT)
    assert_purged(cf.purges, watcher.rounds[-1].plan, {"index.html": ""})


@pytest.mark.slow  # a real watcher (watchdog, quiet periods): a second or more
def test_transfer_in_progress_is_awaited_and_its_temp_files_never_purged(
    site: Path, cf: LocalCloudflare, watching: Watching
) -> None:
    watcher = watching(site)

    temp = site / "guide" / ".index.html.AbC123"
    temp.write_text("<h1>Guide v2, half copied")  # rsync stalls mid-transfer...
    deadline = time.monotonic() + WAIT
    while watcher.transfer_waits == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert watcher.transfer_waits > 0, "a pass ran while a temporary file was there"
    assert watcher.round_count == 1 and cf.purges == []

    temp.write_text("<h1>Guide v2</h1>")  # ...then finishes and renames
    os.rename(temp, site / "guide" / "index.html")
    assert watcher.wait_rounds(2, WAIT)
    assert_purged(cf.purges, watcher.rounds[-1].plan, {"guide/index.html": "guide/"})


@pytest.mark.parametrize(
    ("path", "temporary"),
    [
        (".index.html.AbC123", True),
        ("guide/.site.css.x1Y2z3", True),
        (".~tmp~/guide/index.html", True),
        (".nojekyll", False),
        (".well-known/security.txt", False),
        ("index.html", False),
    ],
)
def test_rsync_temporary_names(path: str, temporary: bool) -> None:
    assert is_temporary(path) is temporary


@pytest.mark.slow  # a real watcher (watchdog, quiet periods): a second or more
def test_symlink_switch_to_a_new_release_purges_the_changed_urls(
    tmp_path: Path, cf: LocalCloudflare, watching: Watching
) -> None:
    www = tmp_path / "www"
    write_files(www / "release1", PAGES)
    (www / "current").symlink_to("release1")
    watcher = watching(www / "current")

    shutil.copytree(www / "release1", www / "release2")
    write_files(www / "release2", {"about/index.html": "<h1>About v2</h1>"})
    (www / "release2" / "old.html").unlink()
    # `ln -sfn release2 current`, atomically: a new link renamed over the old one.
    (www / ".current.new").symlink_to("release2")
    os.replace(www / ".current.new", www / "current")
    assert watcher.wait_rounds(2, WAIT)
    assert_purged(
        cf.purges, watcher.rounds[-1].plan, {"about/index.html": "about/", "old.html": "old.html"}
    )

    # The watch followed the link: a change inside release2 is seen.
    rsync_like(www / "release2", {"assets/site.css": "body { color: red; }"})
    assert watcher.wait_rounds(3, WAIT)
    assert_purged(cf.purges[1:], watcher.rounds[-1].plan, {"assets/site.css": "assets/site.css"})


@pytest.mark.slow  # a real watcher (watchdog, quiet periods): a second or more
def test_folder_replaced_whole_purges_the_changed_urls(
    tmp_path: Path, cf: LocalCloudflare, watching: Watching
) -> None:
    site = tmp_path / "www" / "site"
    write_files(site, PAGES)
    build = tmp_path / "build"
    write_files(build, {**PAGES, "guide/index.html": "<h1>Guide v2</h1>"})
    watcher = watching(site)

    shutil.rmtree(site)
    shutil.copytree(build, site)
    assert watcher.wait_rounds(2, WAIT)
    assert_purged(cf.purges, watcher.rounds[-1].plan, {"guide/index.html": "guide/"})

    # The new folder is watched again.
    rsync_like(site, {"assets/site.css": "body { color: red; }"})
    assert watcher.wait_rounds(3, WAIT)
    assert_purged(cf.purges[1:], watcher.rounds[-1].plan, {"assets/site.css": "assets/site.css"})


@pytest.mark.slow  # a real watcher (watchdog, quiet periods): a second or more
def test_failed_purge_is_kept_owed_and_sent_with_the_next_deploy(
    tmp_path: Path, site: Path, cf: LocalCloudflare, watching: Watching
) -> None:
    watcher = watching(site)

    cf.fail_next(1, 403, code=10000)  # refused at once, no retry
    rsync_like(site, {"about/index.html": "<h1>About v2</h1>"})
    assert watcher.wait_rounds(2, WAIT)
    assert watcher.rounds[-1].outcome == "failed"
    assert (tmp_path / "state" / "pending.json").exists()

    rsync_like(site, {"assets/site.css": "body { color: red; }"})
    assert watcher.wait_rounds(3, WAIT)
    last = watcher.rounds[-1]
    assert last.outcome == "purged"
    # What the failed deploy owed went out with this one; the manifest moved on only now.
    assert_purged(
        cf.purges, last.plan, {"about/index.html": "about/", "assets/site.css": "assets/site.css"}
    )
    assert not (tmp_path / "state" / "pending.json").exists()


# --- the CLI command, stopped by a signal ---------------------------------------------------


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def start_cli(cf: LocalCloudflare, site: Path, state: Path, *extra: str) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "mkdocs_cfpurge",
        "watch",
        str(site),
        "--site-url",
        SITE,
        "--zone-id",
        ZONE_ID,
        "--api-base",
        cf.api_base,
        "--strategy",
        "files",
        "--manifest",
        str(state / "manifest.json"),
        "--quiet-period",
        str(QUIET),
        *extra,
    ]
    env = subprocess_env(CLOUDFLARE_API_TOKEN=TOKEN)
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=state.parent,  # the default plan file is relative to it: never in the tree
    )


def stop_cli(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"watch did not stop on SIGTERM:\n{err}")
    return process.returncode, err


@pytest.mark.slow  # a real watcher (watchdog, quiet periods): a second or more
def test_cli_watch_purges_then_stops_cleanly_on_sigterm(
    tmp_path: Path, site: Path, cf: LocalCloudflare
) -> None:
    state = tmp_path / "state"
    process = start_cli(cf, site, state)
    try:
        wait_until((state / "manifest.json").exists, "the baseline")
        rsync_like(site, {"guide/index.html": "<h1>Guide v2</h1>"})
        wait_until(lambda: len(cf.purges) == 1, "the purge")
    finally:
        code, err = stop_cli(process)

    assert code == 0, err
    purged = purged_urls(cf.purges)
    assert set(urls("guide/", "guide/index.html")) <= set(purged)
    assert all(url.startswith(SITE + "guide") for url in purged), purged
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("cfpurge watch: deploy")]
    assert len(lines) == 2, err  # one line per deploy handled: the baseline, the purge
    assert "baseline" in lines[0] and "1 changed file(s)" in lines[1]
    assert err.rstrip().splitlines()[-1].startswith("cfpurge watch: stopped")


@pytest.mark.slow  # a real watcher (watchdog, quiet periods): a second or more
def test_sigterm_mid_purge_finishes_the_request_in_flight_and_keeps_the_rest_owed(
    tmp_path: Path, cf: LocalCloudflare
) -> None:
    site, state = tmp_path / "site", tmp_path / "state"
    pages: dict[str, str | bytes] = {f"page{n}.html": f"v1 {n}" for n in range(8)}
    write_files(site, pages)
    process = start_cli(cf, site, state, "--max-files-per-request", "1")
    try:
        wait_until((state / "manifest.json").exists, "the baseline")
        baseline = (state / "manifest.json").read_bytes()
        cf.delay_next(8, 0.3)  # eight slow requests, one URL each
        rsync_like(site, {name: f"v2 {n}" for n, name in enumerate(pages)})
        wait_until(lambda: len(cf.purges) >= 1, "the first request")
    finally:
        code, err = stop_cli(process)

    assert code == 0, err
    assert "Traceback" not in err
    sent = purged_urls(cf.purges)
    pending = json.loads((state / "pending.json").read_bytes())
    owed = sorted(url for body in pending["requests"] for url in body["files"])
    assert owed, "every request went out: the stop did not stop between requests"
    assert not set(sent) & set(owed), "a request that completed is still owed"
    mapper = settings_for(state, cf).mapper()
    assert sorted(sent + owed) == sorted(url for page in pages for url in mapper.urls(page))
    assert (state / "manifest.json").read_bytes() == baseline  # not committed: still owed
    assert pending["next_manifest"]["files"].keys() == pages.keys()


@pytest.mark.slow  # a real watcher (watchdog, quiet periods): a second or more
def test_dry_run_previews_each_deploy_and_sends_nothing(
    tmp_path: Path, site: Path, cf: LocalCloudflare
) -> None:
    state = tmp_path / "state"
    settings = settings_for(state, cf, dry_run=True)
    with DeployWatcher(site, settings, quiet_period=QUIET) as watcher:
        assert watcher.wait_rounds(1, WAIT)
        rsync_like(site, {"guide/index.html": "<h1>Guide v2</h1>"})
        assert watcher.wait_rounds(2, WAIT)
        outcomes = [entry.outcome for entry in watcher.rounds]

    assert outcomes == ["dry-run", "dry-run"]
    assert cf.purges == [] and cf.requests == []
    assert not state.exists()  # no manifest, no pending, no lock: a dry run writes nothing


# --- the systemd unit in the docs -----------------------------------------------------------

UNIT = Path(__file__).resolve().parents[1] / "contrib" / "mkdocs-cfpurge-watch.service"


def unit_settings(text: str) -> dict[str, list[str]]:
    """`Key=value` lines of a unit file (continuation lines joined), comments left out."""
    entries: dict[str, list[str]] = {}
    logical = text.replace("\\\n", " ")
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        entries.setdefault(key.strip(), []).append(value.strip())
    return entries


def test_systemd_unit_runs_watch_with_options_that_exist() -> None:
    from click import Context

    from mkdocs_cfpurge.cli import cli

    text = UNIT.read_text(encoding="utf-8")
    unit = unit_settings(text)
    assert unit["KillSignal"] == ["SIGTERM"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["EnvironmentFile"] and "Environment" not in unit  # the token stays out of it
    assert "CLOUDFLARE_API_TOKEN=" in text  # the placeholder the env file holds
    [exec_start] = unit["ExecStart"]
    program, command, *args = exec_start.split()
    assert program.endswith("/mkdocs-cfpurge") and command == "watch"
    # The documented options parse as the real command's (a renamed option breaks this).
    watch_command = cli.get_command(Context(cli), "watch")
    assert watch_command is not None
    params = watch_command.make_context("watch", args).params
    assert params["site_dir"] == Path("/srv/docs/current")
    assert params["quiet_period"] == 2.0
