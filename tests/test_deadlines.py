"""Class 3 of issue 13 (and the transient half of class 8): no request hangs, no purge runs
without a bound, a garbled answer is retried.

The servers here trickle their answers: one header line at a time, each well within a per-read
timeout, never done. Without a deadline on the whole request a client waits for as long as the
server goes on; with one it hangs up, which the servers record. Each test below would fail on
that record, not on a clock.
"""

from __future__ import annotations

import logging
import random
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.cloudflare.client import CloudflareClient, RetryPolicy
from mkdocs_cfpurge.deploy import git as deploy_git
from mkdocs_cfpurge.deploy.origin import OriginWait
from mkdocs_cfpurge.errors import PurgeFailed, PurgeIncomplete
from mkdocs_cfpurge.http import DeadlineClient
from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.plan.changes import Reason, Status
from mkdocs_cfpurge.plan.plan import PlannedChange, PurgePlan
from mkdocs_cfpurge.settings import Credentials
from mkdocs_cfpurge.verify import verify_manifest
from tests.helpers import TOKEN, ZONE_ID, MakeCf, run_main, settings_for, write_files
from tests.test_client import FakeTime

SITE_URL = "https://docs.example.com/"
LOGGER = "mkdocs.plugins.cfpurge"
QUICK = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01)


def client_for(cf: LocalCloudflare, **options: object) -> CloudflareClient:
    defaults: dict[str, object] = {
        "retry": QUICK,
        "timeout": 0.5,  # the whole-request deadline; each trickled line comes in 0.1 s
        "rng": random.Random(1),
        "transport": httpx.HTTPTransport(verify=False),
    }
    return CloudflareClient(
        Credentials(api_token=TOKEN),
        ZONE_ID,
        api_base=cf.api_base,
        **{**defaults, **options},  # type: ignore[arg-type]
    )


def statuses(cf: LocalCloudflare, method: str = "POST", count: int = 0) -> list[int]:
    """The statuses the server recorded, sorted, once it recorded `count` of them: a trickle is
    recorded when the server notices the client hung up (0), which may come after the retry."""
    wait_until(lambda: len([r for r in cf.requests if r["method"] == method]) >= count)
    return sorted(r["status"] for r in cf.requests if r["method"] == method)


# --- the API client -----------------------------------------------------------------------------


def test_a_trickled_answer_is_cut_at_the_deadline_and_retried(
    cf: LocalCloudflare, caplog: pytest.LogCaptureFixture
) -> None:
    cf.trickle_next(2, lines=40, seconds=0.1)  # 4 s each, 0.1 s between lines
    with caplog.at_level(logging.WARNING, LOGGER), client_for(cf) as client:
        assert client.purge_all([{"files": [SITE_URL]}]) == 1
    # The client hung up on both trickles (status 0: the server's write failed), then succeeded.
    assert statuses(cf, count=3) == [0, 0, 200]
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings.count("purge_cache (files): ReadTimeout; retrying in 0.0s") == 2


def test_a_request_trickled_past_every_retry_fails_naming_the_deadline(
    cf: LocalCloudflare,
) -> None:
    cf.trickle_next(4, lines=40, seconds=0.1)
    with client_for(cf) as client, pytest.raises(PurgeIncomplete) as caught:
        client.purge_all([{"files": [SITE_URL]}])
    assert "after 4 attempts: ReadTimeout" in str(caught.value)
    assert "no complete answer within the request's 0.5s deadline" in str(caught.value)
    assert statuses(cf, count=4) == [0, 0, 0, 0]


def test_the_zone_read_has_a_deadline_too(cf: LocalCloudflare) -> None:
    cf.trickle_next(1, lines=40, seconds=0.1, route="zone")
    with client_for(cf) as client:
        client.check_zone(["docs.example.com"])
    assert statuses(cf, "GET", count=2) == [0, 200]


@pytest.mark.parametrize("route", ["purge", "zone"])
def test_a_garbled_gzip_answer_is_retried(
    cf: LocalCloudflare, caplog: pytest.LogCaptureFixture, route: str
) -> None:
    cf.garble_next(2, route=route)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, LOGGER), client_for(cf) as client:
        if route == "zone":
            client.check_zone(["docs.example.com"])
        else:
            client.purge_all([{"files": [SITE_URL]}])
    assert "DecodingError; retrying" in caplog.text
    assert statuses(cf, "GET" if route == "zone" else "POST", count=3) == [200, 200, 200]
    assert len(cf.purges) == (1 if route == "purge" else 0)


def test_a_zone_answer_without_a_name_is_a_one_line_error_naming_the_endpoint(
    cf: LocalCloudflare,
) -> None:
    body = b'{"success": true, "errors": [], "messages": [], "result": {"id": "x"}}'
    cf.answer_next(1, 200, body, route="zone")
    with client_for(cf) as client, pytest.raises(PurgeFailed) as caught:
        client.check_zone(["docs.example.com"])
    message = str(caught.value)
    assert f"GET {cf.api_base}/zones/{ZONE_ID} answered success without a zone id" in message
    assert "\n" not in message and caught.value.exit_code == 1


# --- the whole purge: purge_timeout ---------------------------------------------------------------


def test_the_purge_stops_at_its_bound_and_the_log_states_it(
    make_cf: MakeCf, caplog: pytest.LogCaptureFixture
) -> None:
    """Free plan: 25 flex purges at once, then one per 12 s. With a 60 s bound, the purge sends
    what fits and hands back the rest instead of waiting."""
    fake = FakeTime()
    cf = make_cf(rate_limit=True, clock=fake.clock)
    bodies = [{"prefixes": [f"docs.example.com/p{i}/"]} for i in range(40)]
    client = client_for(cf, purge_timeout=60.0, sleep=fake.sleep, clock=fake.clock)
    with caplog.at_level(logging.INFO, LOGGER), client, pytest.raises(PurgeIncomplete) as caught:
        client.purge_all(bodies)
    assert len(cf.purges) + len(caught.value.unsent) == 40
    assert 25 <= len(cf.purges) < 40
    assert caught.value.unsent == bodies[len(cf.purges) :]
    assert "reached its bound of 60s (purge_timeout)" in str(caught.value)
    assert sum(fake.sleeps) <= 60.0
    assert (
        "cfpurge: 40 request(s) to send; each has 0.5s from connect to last byte, the purge at "
        "most 60s (purge_timeout)" in caplog.text
    )


def test_a_retry_after_beyond_the_bound_stops_the_purge_instead_of_sleeping(
    cf: LocalCloudflare,
) -> None:
    fake = FakeTime()
    cf.fail_next(1, 429, retry_after=250)
    client = client_for(cf, purge_timeout=100.0, sleep=fake.sleep, clock=fake.clock)
    with client, pytest.raises(PurgeIncomplete, match="purge_timeout"):
        client.purge_all([{"files": [SITE_URL]}])
    assert fake.sleeps == []


@pytest.mark.usefixtures("cf_env")
def test_cli_purge_timeout_keeps_the_rest_owed(
    cf: LocalCloudflare,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site, manifest = tmp_path / "site", tmp_path / "state" / "manifest.json"
    write_files(site, {"index.html": "v1"})
    common = ["--site-url", SITE_URL, "--manifest", str(manifest)]
    assert run_main(["purge", str(site), *common], capsys)[0] == 0
    write_files(site, {"index.html": "v2"})
    cf.fail_next(1, 429, retry_after=30)
    code, _, err = run_main(["purge", str(site), *common, "--purge-timeout", "5"], capsys)
    assert code == 1, err
    assert "the purge at most 5s (purge_timeout)" in err
    assert "reached its bound of 5s (purge_timeout)" in err
    assert "still owed are saved in" in err and manifest.with_name("pending.json").exists()
    assert cf.purges == []


# --- origin polls and verify ----------------------------------------------------------------------


class Trickler:
    """An HTTP server on 127.0.0.1 that answers every request with a status line, then one
    header line every `every` seconds until stopped; it records clients that hung up."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.hung_up = 0
        self.requests = 0
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            self.requests += 1
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self._stop.wait(self.every):
                    conn.sendall(b"X-Still-Here: yes\r\n")
            except OSError:
                self.hung_up += 1

    def __enter__(self) -> Trickler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.close()


@pytest.fixture
def trickler() -> Iterator[Trickler]:
    with Trickler() as server:
        yield server


def test_a_deadline_client_hangs_up_on_a_server_that_never_finishes(trickler: Trickler) -> None:
    with DeadlineClient(deadline=0.5) as client, pytest.raises(httpx.ReadTimeout) as caught:
        client.get(f"http://127.0.0.1:{trickler.port}/")
    assert "deadline" in str(caught.value)
    wait_until(lambda: trickler.hung_up == 1)


@pytest.mark.slow  # the origin's poll allows each request 5 s at least
def test_the_origin_wait_is_not_held_up_by_a_trickling_origin(trickler: Trickler) -> None:
    wait = OriginWait(f"http://127.0.0.1:{trickler.port}/", timeout=1.0, interval=0.1)
    with pytest.raises(PurgeFailed) as caught:
        wait.until_build("0" * 64)()
    assert "last answer: ReadTimeout" in str(caught.value)
    wait_until(lambda: trickler.hung_up >= 1)


def test_verify_gives_up_on_a_trickling_url(trickler: Trickler, tmp_path: Path) -> None:
    plan = PurgePlan(
        SITE_URL,
        None,
        [PlannedChange("index.html", Status.MODIFIED, Reason.HASH_DIFFERS, (SITE_URL,))],
        [{"files": [SITE_URL]}],
    )
    manifest = Manifest(SITE_URL, {"index.html": "a" * 64})
    result = verify_manifest(
        plan,
        manifest,
        settings_for(tmp_path),
        connect_to=f"http://127.0.0.1:{trickler.port}",
        timeout=0.5,
    )
    assert [(c.outcome, c.detail) for c in result.checks] == [("error", "timed out")]
    wait_until(lambda: trickler.hung_up == 1)


def wait_until(condition: object, timeout: float = 10.0) -> None:
    """Wait (at most `timeout` s) for the server to notice what the client did."""
    import time

    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server never saw the client hang up"
        time.sleep(0.01)


def test_a_git_remote_that_never_answers_fails_the_step_within_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gh-deploy's push check and purge-branch read the remote with git: a remote that accepts
    # the connection and says nothing must not hold the deploy for ever.
    monkeypatch.setattr(deploy_git, "LS_REMOTE_TIMEOUT", 1.0)
    repo = tmp_path / "repo"
    repo.mkdir()
    assert subprocess.run(["git", "init", "-q", str(repo)], check=False).returncode == 0
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        remote = f"git://127.0.0.1:{silent.getsockname()[1]}/site.git"
        with pytest.raises(PurgeFailed, match=r"git ls-remote .* did not finish within 1s"):
            deploy_git.fetch_branch(repo, remote, "gh-pages")
