"""The fault matrix of issue 6: a long purge under 429 storms, 5xx bursts, timeouts, dropped
connections and SIGKILL at several points, and two runs on one manifest at once.

The site has 301 pages; the build under test changes 220 of them (modified, added, deleted), so
its purge is 460 URLs in 16 requests of 30. After every fault, nothing is lost yet: the manifest
is the old one or the new one (never half-written: it parses), pending.json parses if present,
and the purges accepted so far plus what pending.json still owes cover every changed URL. After
one healthy rerun: every changed URL has been purged at least once, the manifest is valid and
equals a fresh scan of the site, and pending.json is gone.

The purging process is the real CLI (`python -m mkdocs_cfpurge purge`) in a subprocess, except
for timeouts: the CLI's client waits 30 s, so those drive `pipeline.purge` in this process with
a client that gives up after 0.5 s. Every request goes to LocalCloudflare on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.build.manifest import Manifest, load_manifest
from mkdocs_cfpurge.cli import main
from mkdocs_cfpurge.cloudflare.client import CloudflareClient, RetryPolicy
from mkdocs_cfpurge.errors import CfPurgeError, PurgeIncomplete
from mkdocs_cfpurge.localcf import LocalCloudflare, PurgeRecord
from mkdocs_cfpurge.plan.bodies import Body
from mkdocs_cfpurge.settings import Settings
from mkdocs_cfpurge.state import Pending, StateStore
from tests.cfschema import load_purge_body_validator
from tests.helpers import TOKEN, ZONE_ID, settings_for, subprocess_env, write_files

validate_body = load_purge_body_validator()
pytestmark = pytest.mark.slow  # a long purge, faulted again and again: about a minute

SITE_URL = "https://docs.example.com/"  # in LocalCloudflare's zone, example.com
CLI = (sys.executable, "-m", "mkdocs_cfpurge")
MAX_FILES = 30

PAGES = range(300)  # p000/ .. p299/, plus the home page
MODIFIED = range(200)  # the build under test rewrites p000 .. p199,
DELETED = range(290, 300)  # drops p290 .. p299,
ADDED = range(10)  # and adds n000 .. n009
NEWER = range(200, 210)  # the build after it also rewrites p200 .. p209
RETRY_AFTER = 0.05  # seconds, in the Retry-After of scripted 429s and 5xx: retries stay quick


def page(name: str, version: str) -> str:
    return f"<!doctype html><title>{name}</title><h1>{name}</h1><p>{version}</p>\n"


def site_files(build: str) -> dict[str, str]:
    """The files of build v1, v2 (the one under test) or v3 (the one after it)."""
    files = {"index.html": page("home", "v1"), "assets/site.css": "body { color: black; }\n"}
    for i in PAGES:
        version = "v1"
        if build != "v1" and i in MODIFIED:
            version = "v2"
        if build == "v3" and i in NEWER:
            version = "v3"
        if build == "v1" or i not in DELETED:
            files[f"p{i:03}/index.html"] = page(f"p{i:03}", version)
    if build != "v1":
        files.update({f"n{j:03}/index.html": page(f"n{j:03}", "new") for j in ADDED})
    return files


def page_urls(name: str, *, folder_changed: bool = False) -> set[str]:
    """What must be purged for a changed page `name/index.html` (and its folder, if it came or
    went: `/name` redirects to `/name/` only while the folder exists)."""
    urls = {f"{SITE_URL}{name}/", f"{SITE_URL}{name}/index.html"}
    return urls | ({f"{SITE_URL}{name}"} if folder_changed else set())


def scan(site_dir: Path) -> Manifest:
    return pipeline.scan(site_dir, settings_for(Path("unused")))


def body_urls(bodies: Sequence[Body]) -> set[str]:
    return {url for body in bodies for url in body["files"]}


@dataclass(frozen=True)
class World:
    """The three builds, the baseline manifest the CLI recorded, and the purge under test."""

    v1: Path
    v2: Path
    v3: Path
    baseline: bytes  # manifest.json of v1, as `mkdocs-cfpurge manifest` wrote it
    v2_json: bytes  # manifest.json of v2, as a successful purge commits it
    requests: list[Body]  # the plan from v1 to v2: what one run sends
    expected: frozenset[str]  # every URL of every file changed from v1 to v2 (worked out here)
    newer: frozenset[str]  # every URL of every file changed from v2 to v3


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("faults-world")
    dirs = {}
    for build in ("v1", "v2", "v3"):
        dirs[build] = root / build
        write_files(dirs[build], site_files(build))
    baseline = root / "baseline" / "manifest.json"
    env = subprocess_env()
    done = subprocess.run(
        [*CLI, "manifest", str(dirs["v1"]), "--site-url", SITE_URL, "--out", str(baseline)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    old = load_manifest(baseline, SITE_URL)
    new = scan(dirs["v2"])
    plan = pipeline.make_plan(old, new, settings_for(baseline.parent))
    expected = set().union(
        *(page_urls(f"p{i:03}") for i in MODIFIED),
        *(page_urls(f"p{i:03}", folder_changed=True) for i in DELETED),
        *(page_urls(f"n{j:03}", folder_changed=True) for j in ADDED),
    )
    newer = set().union(*(page_urls(f"p{i:03}") for i in NEWER))
    return World(
        v1=dirs["v1"],
        v2=dirs["v2"],
        v3=dirs["v3"],
        baseline=baseline.read_bytes(),
        v2_json=new.to_json(),
        requests=plan.requests,
        expected=frozenset(expected),
        newer=frozenset(newer),
    )


@pytest.fixture
def manifest(world: World, tmp_path: Path) -> Path:
    """This test's manifest: a copy of the baseline (pending.json and the lock go beside it)."""
    path = tmp_path / "state" / "manifest.json"
    path.parent.mkdir()
    path.write_bytes(world.baseline)
    return path


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Subprocesses a test started; any still running at the end is killed (by its own pid)."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process, httpx may only reach 127.0.0.1 (the subprocesses get its api_base)."""
    real = httpx.HTTPTransport.handle_request

    def handle(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        assert request.url.host == "127.0.0.1", f"traffic to {request.url}"
        return real(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", handle)


# --- the local Cloudflare, scripted -------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour of the next purge POST(s) (see LocalCloudflare.fail_next...)."""

    kind: str  # "fail", "drop" or "delay"
    n: int
    status: int = 500
    retry_after: float | None = None
    code: int | None = None
    seconds: float = 0.0

    def __call__(self, cf: LocalCloudflare) -> None:
        if self.kind == "fail":
            cf.fail_next(self.n, self.status, retry_after=self.retry_after, code=self.code)
        elif self.kind == "drop":
            cf.drop_next(self.n)
        else:
            cf.delay_next(self.n, self.seconds)


def fail(
    n: int, status: int, *, retry_after: float | None = None, code: int | None = None
) -> Fault:
    return Fault("fail", n, status, retry_after, code)


def drop(n: int) -> Fault:
    return Fault("drop", n)


def delay(n: int, seconds: float) -> Fault:
    return Fault("delay", n, seconds=seconds)


Hook = Callable[[LocalCloudflare], None]
Script = Mapping[int, Sequence[Hook]]


@contextlib.contextmanager
def local_cf(script: Script | None = None) -> Iterator[LocalCloudflare]:
    """LocalCloudflare on 127.0.0.1. `script[k]` runs once the k-th purge is accepted, before its
    answer goes out (so a fault scripted there meets the next POST); `script[0]` runs at start."""
    script = script or {}
    lock = threading.Lock()
    count = [0]
    box: list[LocalCloudflare] = []

    def on_purge(record: PurgeRecord) -> None:
        with lock:
            count[0] += 1
            k = count[0]
        for hook in script.get(k, ()):
            hook(box[0])

    cf = LocalCloudflare(zone_id=ZONE_ID, api_token=TOKEN, rate_limit=False, on_purge=on_purge)
    box.append(cf)
    with cf:
        for hook in script.get(0, ()):
            hook(cf)
        yield cf


def posts(cf: LocalCloudflare) -> list[dict[str, Any]]:
    """The purge POSTs the server received, each checked against Cloudflare's schema."""
    received = [r for r in cf.requests if r["method"] == "POST"]
    for post in received:
        validate_body(post["body"])
        assert len(post["body"]["files"]) <= MAX_FILES
    return received


def purged(*servers: LocalCloudflare) -> list[str]:
    """Every URL of every purge the servers accepted, repeats included."""
    urls = []
    for server in servers:
        for record in server.purges:
            assert record.kind == "files" and record.method == "purge_cache"
            urls += [item if isinstance(item, str) else item[0] for item in record.items]
    return urls


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.01)


# --- running the CLI ----------------------------------------------------------------------------


def cli_env(api_base: str) -> dict[str, str]:
    return subprocess_env(
        CLOUDFLARE_API_TOKEN=TOKEN, CLOUDFLARE_ZONE_ID=ZONE_ID, CLOUDFLARE_API_BASE=api_base
    )


def purge_argv(site_dir: Path | None, manifest: Path) -> list[str]:
    """`purge SITE_DIR`, or with no SITE_DIR `purge` of what pending.json owes."""
    argv = ["purge"] if site_dir is None else ["purge", str(site_dir), "--site-url", SITE_URL]
    return [*argv, "--manifest", str(manifest), "--strategy", "files"]


@dataclass
class Run:
    code: int
    err: str


def run_cli(argv: list[str], cf: LocalCloudflare, cwd: Path) -> Run:
    done = subprocess.run(
        [*CLI, *argv],
        env=cli_env(cf.api_base),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    assert TOKEN not in done.stdout + done.stderr
    return Run(done.returncode, done.stderr)


@dataclass
class Started:
    proc: subprocess.Popen[bytes]
    err_path: Path

    def finish(self, timeout: float = 60.0) -> Run:
        self.proc.wait(timeout=timeout)
        err = self.err_path.read_text(encoding="utf-8")
        assert TOKEN not in err
        return Run(self.proc.returncode, err)


def start_cli(
    argv: Sequence[str],
    cf: LocalCloudflare,
    cwd: Path,
    procs: list[subprocess.Popen[bytes]],
    name: str,
) -> Started:
    err_path = cwd / f"{name}.stderr"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            list(argv),
            env=cli_env(cf.api_base),
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=cwd,
        )
    procs.append(proc)
    return Started(proc, err_path)


# --- the state, judged --------------------------------------------------------------------------


@dataclass
class State:
    manifest: bytes
    pending: Pending | None
    owed: set[str] = field(default_factory=set)


def read_state(manifest: Path) -> State:
    """The state a run left, read the way the next run reads it (corrupt files raise)."""
    store = StateStore(manifest, SITE_URL)
    assert store.load_manifest() is not None
    pending = store.load_pending() if store.pending_path.exists() else None
    owed = body_urls(pending.requests) if pending is not None else set()
    return State(manifest.read_bytes(), pending, owed)


def assert_nothing_lost(world: World, manifest: Path, accepted: set[str]) -> State:
    """Whatever moment the run stopped at, the next run can still purge all that is owed."""
    state = read_state(manifest)
    assert state.manifest in (world.baseline, world.v2_json), "manifest neither old nor new"
    if state.pending is not None:
        assert state.pending.next_manifest is not None
        assert state.pending.next_manifest.to_json() == world.v2_json  # what to commit
        assert state.owed <= world.expected
    missing: set[str]
    if state.manifest == world.v2_json:
        missing = set(world.expected) - accepted  # committed only once every request was confirmed
    elif state.pending is None:
        # Still the old manifest and nothing owed: only right if no purge went out yet (the next
        # run's diff from the old manifest then covers everything).
        missing = set(world.expected) if accepted else set()
    else:
        missing = set(world.expected) - accepted - state.owed
    assert not missing, f"{len(missing)} changed URL(s) lost, e.g. {sorted(missing)[:3]}"
    return state


def assert_healthy(manifest: Path, site_dir: Path, covered: set[str], owed: frozenset[str]) -> None:
    """After a healthy run: every URL owed purged, the manifest current, nothing pending."""
    fresh = scan(site_dir)
    loaded = load_manifest(manifest, SITE_URL)
    assert loaded is not None and loaded.files == fresh.files
    assert manifest.read_bytes() == fresh.to_json()
    assert not manifest.with_name("pending.json").exists()
    missing = owed - covered
    assert not missing, f"{len(missing)} changed URL(s) never purged, e.g. {sorted(missing)[:3]}"


def healthy_rerun(
    world: World, manifest: Path, cwd: Path, *, pending_only: bool = False
) -> tuple[Run, LocalCloudflare]:
    with local_cf() as healthy:
        run = run_cli(purge_argv(None if pending_only else world.v2, manifest), healthy, cwd)
        posts(healthy)
    assert run.code == 0, run.err
    return run, healthy


# --- the world ----------------------------------------------------------------------------------


def test_the_purge_under_test_is_long_and_covers_every_changed_url(world: World) -> None:
    assert len(world.requests) >= 14
    assert all(len(body["files"]) <= MAX_FILES for body in world.requests)
    # The URLs worked out above are exactly what the plan sends, each once.
    sent = [url for body in world.requests for url in body["files"]]
    assert len(sent) == len(set(sent)) == len(world.expected) == 460
    assert set(sent) == world.expected
    assert scan(world.v1).to_json() == world.baseline


# --- 429 storms, 5xx, dropped connections, timeouts, permanent failures ------------------------


def quick_client(settings: Settings) -> CloudflareClient:
    """The real client with a 0.5 s timeout and quick retries (4 attempts)."""
    return pipeline.default_client(
        settings,
        retry=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05),
        timeout=0.5,
        transport=httpx.HTTPTransport(verify=False),  # plain http to 127.0.0.1
    )


def deploy_in_process(world: World, manifest: Path, cf: LocalCloudflare) -> Run:
    settings = settings_for(manifest.parent, cf)
    try:
        pipeline.purge(settings, scan(world.v2), client_factory=quick_client)
    except CfPurgeError as exc:
        assert isinstance(exc, PurgeIncomplete), exc
        return Run(exc.exit_code, str(exc))
    return Run(0, "")


@dataclass(frozen=True)
class Scenario:
    script: Callable[[int], dict[int, list[Fault]]]  # the number of requests -> the script
    code: int  # the faulty run's exit code
    says: str  # in its stderr (or error)
    in_process: bool = False  # timeouts: driven in this process with a 0.5 s client timeout


def storm(n: int) -> dict[int, list[Fault]]:
    """Five 429s on the first request, then two on every later one."""
    script = {k: [fail(2, 429, retry_after=RETRY_AFTER)] for k in range(1, n)}
    return {0: [fail(5, 429, retry_after=RETRY_AFTER)], **script}


SCENARIOS: dict[str, Scenario] = {
    "429-storm": Scenario(storm, 0, "HTTP 429; retrying in"),
    "429-storm-outlasts-the-retries": Scenario(
        lambda n: {5: [fail(6, 429, retry_after=RETRY_AFTER)]}, 1, "HTTP 429"
    ),
    "5xx-bursts": Scenario(
        lambda n: {
            0: [fail(2, 503, retry_after=RETRY_AFTER)],
            4: [fail(1, 500)],  # no Retry-After: exponential backoff
            8: [fail(1, 502), fail(1, 520, retry_after=RETRY_AFTER)],
            12: [fail(1, 504, retry_after=RETRY_AFTER)],
        },
        0,
        "HTTP 502; retrying in",
    ),
    "dropped-connections": Scenario(
        lambda n: {0: [drop(2)], 8: [drop(1)]}, 0, "RemoteProtocolError; retrying in"
    ),
    "mixed-on-one-request": Scenario(
        lambda n: {
            3: [
                drop(1),
                fail(2, 429, retry_after=RETRY_AFTER),
                fail(1, 503, retry_after=RETRY_AFTER),
            ]
        },
        0,
        "HTTP 503; retrying in",
    ),
    "permanent-500-from-the-first-request": Scenario(
        lambda n: {0: [fail(1000, 500, retry_after=RETRY_AFTER)]}, 1, "HTTP 500"
    ),
    "permanent-500-mid-purge": Scenario(
        lambda n: {5: [fail(1000, 500, retry_after=RETRY_AFTER)]}, 1, "HTTP 500"
    ),
    "permanent-503-on-the-last-request": Scenario(
        lambda n: {n - 1: [fail(1000, 503, retry_after=RETRY_AFTER)]}, 1, "HTTP 503"
    ),
    "token-revoked-mid-purge": Scenario(
        lambda n: {7: [fail(1000, 403, code=10000)]}, 1, "HTTP 403 (10000"
    ),
    "timeouts": Scenario(
        lambda n: {0: [delay(1, 1.5)], 6: [delay(2, 1.5)]}, 0, "", in_process=True
    ),
    "timeouts-outlast-the-retries": Scenario(
        lambda n: {4: [delay(1000, 1.0)]}, 1, "ReadTimeout", in_process=True
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_fault_then_one_healthy_rerun_loses_no_purge(
    name: str, world: World, manifest: Path, tmp_path: Path
) -> None:
    scenario = SCENARIOS[name]
    n = len(world.requests)
    script = scenario.script(n)
    with local_cf(script) as faulty:
        if scenario.in_process:
            run = deploy_in_process(world, manifest, faulty)
        else:
            run = run_cli(purge_argv(world.v2, manifest), faulty, tmp_path)
        confirmed = set(purged(faulty))
        if scenario.in_process and run.code == 0:
            # Timed-out requests reach the server late, and Cloudflare applies them all the same.
            timed_out = sum(f.n for faults in script.values() for f in faults)
            wait_for(lambda: len(posts(faulty)) == n + timed_out, "the late requests")
        received = posts(faulty)

    assert run.code == scenario.code, run.err
    assert scenario.says in run.err
    state = assert_nothing_lost(world, manifest, confirmed)
    if run.code == 0:
        assert state.manifest == world.v2_json and state.pending is None
        assert world.expected <= confirmed
        if not scenario.in_process:  # every scripted fault met a request, and was survived
            scripted: Counter[int] = Counter()  # answers by status; 0: dropped
            for faults in script.values():
                for f in faults:
                    scripted[f.status if f.kind == "fail" else 0] += f.n
            assert Counter(p["status"] for p in received if p["status"] != 200) == scripted
    else:
        # Nothing committed; pending.json owes exactly what Cloudflare did not confirm (a request
        # that timed out may have been applied anyway: it stays owed).
        assert state.manifest == world.baseline and state.pending is not None
        assert state.owed >= world.expected - confirmed
        if not scenario.in_process:
            assert state.owed == world.expected - confirmed
            assert "still owed are saved in" in run.err and "pending.json" in run.err

    rerun, healthy = healthy_rerun(world, manifest, tmp_path)
    if run.code == 0:
        assert "nothing to purge" in rerun.err and posts(healthy) == []
    else:
        assert set(purged(healthy)) >= state.owed
    assert_healthy(manifest, world.v2, set(purged(faulty, healthy)), world.expected)


# --- SIGKILL at several points of a long purge -------------------------------------------------

# Runs the CLI, pausing (so the test can SIGKILL it) at the `nth` write of a file whose name holds
# `name` (a temp file beside it included). "before": at os.replace onto it, the new content complete
# in a temp file; "after": just after that rename; "torn": half of the content written and synced.
PAUSE_AT = """
import builtins, io, os, sys, time
# Imported before open() is patched: Python 3.10's pathlib keeps io.open as a class attribute at
# import, and a Python function there would be bound as a method (open(self, path, mode...)).
import pathlib
name, nth, when, flag = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
seen = [0]

def pause():
    with open(flag, "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(60)  # the test kills this process here
    os._exit(99)

def hit(path):
    if name not in os.path.basename(path):
        return False
    seen[0] += 1
    return seen[0] == nth

real_replace = os.replace

def replace(src, dst, *args, **kwargs):
    if when != "torn" and os.path.basename(os.fspath(dst)) == name and hit(os.fspath(dst)):
        if when == "after":
            real_replace(src, dst, *args, **kwargs)
        pause()
    return real_replace(src, dst, *args, **kwargs)

class Torn:
    def __init__(self, handle):
        self._handle = handle
    def write(self, data):
        self._handle.write(data[: len(data) // 2])
        self._handle.flush()
        os.fsync(self._handle.fileno())
        pause()
    def __getattr__(self, attr):
        return getattr(self._handle, attr)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)

real_open = io.open

def opener(file, mode="r", *args, **kwargs):
    handle = real_open(file, mode, *args, **kwargs)
    if when == "torn" and "w" in mode:
        path = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else os.fspath(file)
        if hit(path):
            return Torn(handle)
    return handle

os.replace = replace
io.open = builtins.open = opener
from mkdocs_cfpurge.cli import main
main(sys.argv[5:])
"""

# kill point -> (accepted purges at which to kill, or the file whose replace to pause at).
KILL_POINTS: dict[str, Callable[[int], int | tuple[str, int, str]]] = {
    "pending-written-before-the-first-request": lambda n: 0,
    "after-the-1st-purge": lambda n: 1,
    "mid-purge": lambda n: n // 2,
    "after-the-next-to-last-purge": lambda n: n - 1,
    "after-the-last-purge-before-its-answer": lambda n: n,
    "commit-manifest-half-written": lambda n: ("manifest.json", 1, "torn"),
    "commit-manifest-written-not-renamed": lambda n: ("manifest.json", 1, "before"),
    "commit-manifest-renamed-pending-not-removed": lambda n: ("manifest.json", 1, "after"),
    "failure-pending-being-rewritten": lambda n: ("pending.json", 2, "before"),
}


# Every kill point gets the usual rerun (`purge SITE_DIR`); a few also get `purge` with no
# SITE_DIR, which knows only what pending.json says: proof that it alone is enough.
KILL_RERUNS = [
    *((point, "site") for point in KILL_POINTS),
    *(
        (point, "pending-only")
        for point in (
            "pending-written-before-the-first-request",
            "mid-purge",
            "commit-manifest-written-not-renamed",
            "failure-pending-being-rewritten",
        )
    ),
]


@pytest.mark.parametrize(("point", "rerun"), KILL_RERUNS)
def test_sigkill_then_one_healthy_rerun_loses_no_purge(
    point: str,
    rerun: str,
    world: World,
    manifest: Path,
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    n = len(world.requests)
    where = KILL_POINTS[point](n)
    pending_path = manifest.with_name("pending.json")
    argv = purge_argv(world.v2, manifest)
    box: list[Started] = []
    at_kill: list[set[str]] = []

    def kill(cf: LocalCloudflare) -> None:
        # In the server's thread, once the k-th purge is accepted and before its answer.
        wait_for(lambda: bool(box), "the purge process")
        at_kill.append(set(purged(cf)))
        os.kill(box[0].proc.pid, signal.SIGKILL)

    script: dict[int, list[Hook]] = {}
    flag = tmp_path / "paused"
    if isinstance(where, int) and where > 0:
        script[where] = [kill]
    elif isinstance(where, int):
        script[0] = [delay(1, 30)]  # the first request hangs; the kill comes first
    else:
        name, nth, when = where
        argv = [sys.executable, "-c", PAUSE_AT, name, str(nth), when, str(flag), *argv]
        if name == "pending.json":  # rewritten after a failure: make one happen
            script[5] = [fail(1000, 403, code=10000)]

    with local_cf(script) as faulty:
        command = argv if argv[0] == sys.executable else [*CLI, *argv]
        box.append(start_cli(command, faulty, tmp_path, procs, "killed"))
        proc = box[0].proc
        if where == 0:
            wait_for(pending_path.exists, "pending.json")
            at_kill.append(set(purged(faulty)))
            os.kill(proc.pid, signal.SIGKILL)
        elif not isinstance(where, int):
            wait_for(lambda: flag.exists() or proc.poll() is not None, "the pause")
            assert proc.poll() is None, box[0].finish().err
            at_kill.append(set(purged(faulty)))
            os.kill(proc.pid, signal.SIGKILL)
        killed = box[0].finish()

    assert at_kill and killed.code == -signal.SIGKILL, killed.err  # killed, not finished
    accepted = at_kill[0]
    state = assert_nothing_lost(world, manifest, accepted)
    # pending.json was written before the first request, with every request of the run.
    assert state.pending is not None and state.pending.requests == world.requests
    if point == "commit-manifest-renamed-pending-not-removed":
        assert state.manifest == world.v2_json
    else:
        assert state.manifest == world.baseline
    if point in ("commit-manifest-half-written", "commit-manifest-written-not-renamed"):
        temps = [t.read_bytes() for t in manifest.parent.glob(".manifest.json.*.tmp")]
        half = len(world.v2_json) // 2
        whole = point == "commit-manifest-written-not-renamed"
        assert temps == [world.v2_json if whole else world.v2_json[:half]]  # killed mid-commit
    if where == 0:
        assert accepted == set()

    pending_only = rerun == "pending-only"
    _, healthy = healthy_rerun(world, manifest, tmp_path, pending_only=pending_only)
    assert set(purged(healthy)) >= state.owed  # what was owed is sent again
    assert_healthy(manifest, world.v2, accepted | set(purged(healthy)), world.expected)


# --- two runs on one manifest at once ----------------------------------------------------------


def waits_at_lock(run: Started, path: Path) -> bool:
    """Whether the run found the lock `path` taken and is polling it (it says so, once)."""
    with contextlib.suppress(OSError):
        err = run.err_path.read_text(encoding="utf-8")
        return f"another run holds the lock {path}; waiting" in err
    return False


@contextlib.contextmanager
def _released(release: threading.Event) -> Iterator[None]:
    """Whatever happens, the held purge is let go (its server thread waits on `release`)."""
    try:
        yield
    finally:
        release.set()


@pytest.mark.parametrize("case", ["same-build", "newer-build", "newer-build-first-killed"])
def test_two_runs_on_one_manifest_wait_or_stop_and_never_corrupt_it(
    case: str,
    world: World,
    manifest: Path,
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The first run is held inside its first purge (lock held); a second run on the same
    manifest, for the same build or a newer one, either stops at once with a clear message or
    waits, then plans again from what the first left: the committed manifest, or (first run
    SIGKILLed meanwhile) the old manifest and pending.json."""
    second_site = world.v2 if case == "same-build" else world.v3
    lock_path = manifest.with_name("manifest.json.lock")
    pending_path = manifest.with_name("pending.json")
    held, release = threading.Event(), threading.Event()

    def hold(cf: LocalCloudflare) -> None:  # the first run's first purge, lock held
        held.set()
        release.wait(60)

    with local_cf({1: [hold]}) as cf, _released(release):
        first = start_cli([*CLI, *purge_argv(world.v2, manifest)], cf, tmp_path, procs, "first")
        wait_for(held.is_set, "the first run's first purge")
        seen = len(cf.requests)
        pending_bytes = pending_path.read_bytes()

        # A run that may not wait long stops with a clear message naming the lock file, having
        # sent and written nothing.
        defaults = StateStore.__init__.__kwdefaults__
        assert defaults is not None and "lock_timeout" in defaults
        with monkeypatch.context() as patch:
            patch.setitem(defaults, "lock_timeout", 0.3)
            for name, value in cli_env(cf.api_base).items():
                patch.setenv(name, value)
            with pytest.raises(SystemExit) as stopped:
                main(purge_argv(second_site, manifest))
        err = capsys.readouterr().err
        assert stopped.value.code == 1, err
        assert "another mkdocs-cfpurge run holds the lock" in err
        assert repr(str(lock_path)) in err and "let it finish, then run again" in err
        assert len(cf.requests) == seen and len(cf.purges) == 1
        assert manifest.read_bytes() == world.baseline
        assert pending_path.read_bytes() == pending_bytes

        # A run that may wait does: it reaches the lock and sends nothing while the first runs.
        command = [*CLI, *purge_argv(second_site, manifest)]
        second = start_cli(command, cf, tmp_path, procs, "second")
        wait_for(lambda: waits_at_lock(second, lock_path), "the second run at the lock")
        time.sleep(0.5)  # time enough for a run that ignored the lock to send its purge
        assert second.proc.poll() is None, second.finish().err
        assert len(cf.requests) == seen and len(cf.purges) == 1
        assert pending_path.read_bytes() == pending_bytes

        if case == "newer-build-first-killed":
            os.kill(first.proc.pid, signal.SIGKILL)  # the kernel frees its lock
            first_run = first.finish()
            assert first_run.code == -signal.SIGKILL
            second_run = second.finish()
            release.set()
        else:
            release.set()
            first_run, second_run = first.finish(), second.finish()
            assert first_run.code == 0, first_run.err
        received = posts(cf)

    assert second_run.code == 0, second_run.err
    sent = purged(cf)
    if case == "same-build":  # it waited, then found the first run's manifest: nothing to do
        assert "nothing to purge" in second_run.err
        assert len(received) == len(world.requests)
        owed = world.expected
    elif case == "newer-build":  # it waited, then sent its own changes only
        assert "request 1 of 1 (files) done" in second_run.err
        assert len(received) == len(world.requests) + 1
        assert set(received[-1]["body"]["files"]) == world.newer
        owed = world.expected | world.newer
    else:  # it sent what the killed run still owed, and its own changes
        owed = world.expected | world.newer
        assert set(sent[len(cf.purges[0].items) :]) == owed
    if case != "newer-build-first-killed":
        assert len(sent) == len(set(sent))  # the second run re-planned from the new manifest
    assert set(sent) == owed
    assert_healthy(manifest, second_site, set(sent), owed)


# --- issue 13: trickled and garbled answers, refused entries --------------------------------------


@dataclass(frozen=True)
class Scenario13:
    script: dict[int, list[Hook]]
    code: int
    says: str
    in_process: bool = False  # trickles: the in-process client's 0.5 s deadline, not the CLI's 30 s


REFUSED_PAGE = 5  # p005's URLs are refused by the zone

SCENARIOS_13: dict[str, Scenario13] = {
    "trickled-answers": Scenario13(
        {0: [lambda cf: cf.trickle_next(2, lines=30, seconds=0.1)]}, 0, "", in_process=True
    ),
    "trickles-outlast-the-retries": Scenario13(
        {4: [lambda cf: cf.trickle_next(1000, lines=30, seconds=0.1)]}, 1, "deadline", True
    ),
    "garbled-gzip-answers": Scenario13(
        {3: [lambda cf: cf.garble_next(2)]}, 0, "DecodingError; retrying in"
    ),
    "a-refused-entry": Scenario13(
        {0: [lambda cf: cf.refuse_entries(rf"/p{REFUSED_PAGE:03}/")]}, 1, "Cloudflare refused 2"
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS_13))
def test_issue_13_faults_then_one_healthy_rerun_loses_no_purge(
    name: str, world: World, manifest: Path, tmp_path: Path
) -> None:
    scenario = SCENARIOS_13[name]
    refused = set()
    with local_cf(scenario.script) as faulty:
        if scenario.in_process:
            run = deploy_in_process(world, manifest, faulty)
        else:
            run = run_cli(purge_argv(world.v2, manifest), faulty, tmp_path)
        confirmed = set(purged(faulty))
        posts(faulty)
    assert run.code == scenario.code, run.err
    assert scenario.says in run.err
    if name == "a-refused-entry":
        # Everything else purged in the same run, the manifest committed, the refused entries
        # kept apart from what is owed: the healthy rerun has nothing left to send.
        refused = page_urls(f"p{REFUSED_PAGE:03}")
        assert world.expected - confirmed == refused
        state = read_state(manifest)
        assert state.manifest == world.v2_json and state.pending is not None
        assert state.owed == set() and {r.entry for r in state.pending.refused} == refused
    else:
        state = assert_nothing_lost(world, manifest, confirmed)
    rerun, healthy = healthy_rerun(world, manifest, tmp_path)
    if run.code == 0 or refused:
        assert "nothing to purge" in rerun.err and posts(healthy) == []
    else:
        assert set(purged(healthy)) >= state.owed
    assert_healthy(manifest, world.v2, set(purged(faulty, healthy)) | refused, world.expected)
