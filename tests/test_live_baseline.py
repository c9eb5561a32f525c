"""Issue 11, piece by piece: the live marker as a baseline, the plan that says where its baseline
came from, the owed plan the marker carries, a purge with no baseline, and the origin polls.

The origin here is a scripted HTTP server on 127.0.0.1 that answers each request with the next
scripted response (and records what it was asked), so every answer a real origin can give is
one line: a 404, a 503, a marker, a stranger's file, a huge one, a stall.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.build import marker as marker_module
from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.build.marker import MARKER_NAME, Marker, read_marker
from mkdocs_cfpurge.deploy.live import read_live_marker
from mkdocs_cfpurge.deploy.origin import OriginWait
from mkdocs_cfpurge.errors import ExitCode, PurgeFailed, UsageError
from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.baseline import Baseline, BaselineSource
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.plugin import settings_from_config
from tests.helpers import SITE, TOKEN, load, make_site, run_main, settings_for, write_files

FILES = {"index.html": "<h1>Home</h1>", "guide/index.html": "<h1>Guide</h1>", "a.css": "x{}"}


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0  # seconds to wait before answering
    chunks: int = 1  # >1: sent chunked, in this many pieces, with no Content-Length


class ScriptedOrigin:
    """Answers GETs with `script` in order (the last one repeats); records each request."""

    def __init__(self, *script: Answer) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, dict[str, str]]] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                # The client may give up (a deadline, a size bound): that is what is tested.
                with contextlib.suppress(ConnectionError):
                    self._answer()

            def _answer(self) -> None:
                origin.requests.append((self.path, dict(self.headers.items())))
                answer = origin.script.pop(0) if len(origin.script) > 1 else origin.script[0]
                time.sleep(answer.stall)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.chunks > 1:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    size = -(-len(answer.body) // answer.chunks)
                    for start in range(0, len(answer.body), size):
                        piece = answer.body[start : start + size]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if "Content-Length" not in answer.headers:
                    self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/docs/"

    def __enter__(self) -> ScriptedOrigin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def marker_bytes(site_url: str = SITE, owed: tuple[str, ...] = ("guide/index.html",)) -> bytes:
    # Hashes a marker really holds (a served marker is validated hash by hash).
    manifest = Manifest(
        site_url, {path: hashlib.sha256(path.encode()).hexdigest() for path in FILES}
    )
    return Marker(manifest, manifest.digest(), owed).to_json()


def no_sleep(seconds: float) -> None:
    pass


# --- the live marker ------------------------------------------------------------------------


def test_a_served_marker_is_the_baseline_and_its_own_purge_is_resent() -> None:
    with ScriptedOrigin(Answer(body=marker_bytes())) as origin:
        found = read_live_marker(origin.url, SITE)
    assert found.source is BaselineSource.LIVE_MARKER
    assert found.manifest is not None and set(found.manifest.files) == set(FILES)
    assert found.manifest.resend == ("guide/index.html",)
    assert found.where == origin.url + MARKER_NAME
    assert found.digest == Marker.parse(marker_bytes()).digest
    [(path, headers)] = origin.requests
    # Past every cache: a query no cache has seen, and no-cache for those that revalidate.
    assert path.startswith(f"/docs/{MARKER_NAME}?cfpurge=")
    assert headers["Cache-Control"] == "no-cache"


def test_a_404_is_the_first_deploy_with_this_tool() -> None:
    with ScriptedOrigin(Answer(404, b"not here")) as origin:
        found = read_live_marker(origin.url, SITE)
    assert (found.source, found.first_deploy, found.unknown) == (BaselineSource.NONE, True, False)
    assert found.manifest is None
    assert len(origin.requests) == 1


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (Answer(503), "HTTP 503"),
        (Answer(403), "HTTP 403"),
        (Answer(body=b"<html>a page, not a marker</html>"), "not this tool's"),
        (Answer(body=b'{"version": 1, "site_url": 3}'), "not this tool's"),
        (Answer(body=marker_bytes("https://other.example.com/")), "made for site_url"),
        (Answer(body=b"x" * 2048), "larger than"),
        (Answer(body=b"x" * 2048, headers={"Content-Length": "99999999999"}), "larger than"),
        (Answer(body=b"x" * 2048, chunks=8), "larger than"),
    ],
    ids=["5xx", "403", "a-page", "bad-json", "other-site", "big", "big-announced", "big-chunked"],
)
def test_anything_else_is_no_baseline_and_never_a_first_deploy(
    monkeypatch: pytest.MonkeyPatch, answer: Answer, why: str
) -> None:
    monkeypatch.setattr(marker_module, "MAX_MARKER_BYTES", 1024)
    with ScriptedOrigin(answer) as origin:
        found = read_live_marker(origin.url, SITE, max_bytes=1024, sleep=no_sleep)
    assert found.unknown and not found.first_deploy and found.manifest is None
    assert why in found.detail
    # 5xx are retried (a bounded number of times); what a 4xx or a body says is final.
    assert len(origin.requests) == (3 if answer.status >= 500 else 1)


def test_a_5xx_then_the_marker_is_the_baseline() -> None:
    with ScriptedOrigin(Answer(502), Answer(body=marker_bytes())) as origin:
        found = read_live_marker(origin.url, SITE, sleep=no_sleep)
    assert found.source is BaselineSource.LIVE_MARKER
    assert len(origin.requests) == 2


def test_an_origin_that_is_down_or_stalls_is_no_baseline_within_the_deadline() -> None:
    with ScriptedOrigin(Answer()) as origin:
        down = origin.url
    found = read_live_marker(down, SITE, sleep=no_sleep)
    assert found.unknown and "ConnectError" in found.detail

    with ScriptedOrigin(Answer(body=marker_bytes(), stall=3.0)) as origin:
        started = time.monotonic()
        found = read_live_marker(origin.url, SITE, seconds=0.5, sleep=no_sleep)
        took = time.monotonic() - started
    assert found.unknown and "Timeout" in found.detail
    assert took < 2.5  # the deadline, not the stall (generous for a busy machine)


def test_loopback_is_never_reached_through_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with ScriptedOrigin(Answer(body=marker_bytes())) as origin:
        assert read_live_marker(origin.url, SITE).source is BaselineSource.LIVE_MARKER


# --- plans that say where their baseline came from -------------------------------------------


def built(tmp_path: Path, files: dict[str, str] = FILES) -> Path:
    write_files(tmp_path / "site", files)
    return tmp_path / "site"


def test_a_build_against_the_live_marker_plans_the_changes_and_carries_the_plan(
    tmp_path: Path,
) -> None:
    site = built(tmp_path, {**FILES, "guide/index.html": "<h1>Guide v2</h1>"})
    settings = settings_for(tmp_path / "state")
    previous = pipeline.scan(built(tmp_path / "v1"), settings)
    served = Marker(previous, previous.digest(), ("a.css",)).to_json()
    with ScriptedOrigin(Answer(body=served)) as origin:
        settings = settings_for(tmp_path / "state", origin_url=origin.url)
        prepared = pipeline.prepare(site, settings, live=True, env={})
    plan = prepared.plan
    assert plan.baseline is not None and plan.baseline.source is BaselineSource.LIVE_MARKER
    assert [(c.path, c.reason.value) for c in plan.changes] == [
        ("a.css", "resent"),
        ("guide/index.html", "hash-differs"),
    ]
    assert plan.notes[0].startswith("baseline: the marker the origin serves at http://127.0.0.1")
    written = read_marker(site)
    assert written is not None and written.purge is not None
    carried = PurgePlan.from_dict(written.purge)
    assert carried.requests == plan.requests and carried.zone_id is None  # published: no zone id
    assert carried.baseline == plan.baseline
    assert written.owed == ("guide/index.html",)  # its own purge, not the one it resent
    assert json.loads(plan.to_json())["baseline"]["source"] == "live-marker"


@pytest.mark.parametrize("dry_run", [False, True])
def test_the_first_deploy_is_worded_by_mode(tmp_path: Path, dry_run: bool) -> None:
    settings = settings_for(tmp_path / "state", dry_run=dry_run)
    new = pipeline.scan(built(tmp_path), settings)
    first = Baseline(BaselineSource.NONE, "u", "the origin answers 404", first_deploy=True)
    [note] = pipeline.make_plan(None, new, settings, baseline=first).notes
    if dry_run:
        assert "records" in note and "a dry run records nothing" in note
        assert "this deploy records the baseline" not in note
        assert "To get a baseline, deploy once" in note
        assert f"--out {settings.manifest_path}" in note
    else:
        assert note.startswith("the origin answers 404: this deploy records the baseline (3 files)")


@pytest.mark.parametrize("allow", [False, True])
def test_no_baseline_says_so_and_never_reads_as_a_first_deploy(tmp_path: Path, allow: bool) -> None:
    settings = settings_for(tmp_path / "state", allow_purge_everything=allow)
    new = pipeline.scan(built(tmp_path), settings)
    unknown = Baseline(BaselineSource.NONE, "u", "the origin could not be read (HTTP 503)")
    plan = pipeline.make_plan(None, new, settings, baseline=unknown)
    [note] = plan.notes
    assert note.startswith("no baseline: the origin could not be read (HTTP 503)")
    assert "records the baseline" not in note
    assert plan.requests == ([{"purge_everything": True}] if allow else [])


# --- the purge step with no baseline -------------------------------------------------------


def test_a_purge_with_no_baseline_fails_and_keeps_nothing_unless_everything_is_allowed(
    tmp_path: Path, cf: LocalCloudflare, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mkdocs_cfpurge.deploy.live.time.sleep", no_sleep)  # retry pauses
    state = tmp_path / "state"
    site = built(tmp_path)
    with ScriptedOrigin(Answer(503)) as origin:
        settings = settings_for(state, cf, origin_url=origin.url)
        prepared = pipeline.prepare(site, settings, live=True, env={})
        assert prepared.baseline is not None and prepared.baseline.unknown
        marker = read_marker(site)
        assert marker is not None and set(marker.owed) == set(FILES)  # the next deploy resends all
        with pytest.raises(PurgeFailed) as failed:
            pipeline.purge(settings, prepared, env={})
        # It asked the origin once more at purge time (still a 503), then gave up: exit 1.
        assert len(origin.requests) == 6
    assert failed.value.exit_code is ExitCode.PURGE_FAILED
    assert "no baseline" in str(failed.value) and "allow_purge_everything" in str(failed.value)
    assert "\n" not in str(failed.value)
    assert cf.requests == []
    assert not state.exists() or list(state.iterdir()) == [state / "manifest.json.lock"]

    everything = settings.model_copy(update={"allow_purge_everything": True})
    again = pipeline.PreparedBuild(everything, prepared.manifest, prepared.plan, prepared.baseline)
    result = pipeline.purge(everything, again, env={})
    assert result.requests_sent == 1
    assert [record.kind for record in cf.purges] == ["purge_everything"]
    assert (state / "manifest.json").is_file()


# --- the built folder's marker, read back by the purge step ---------------------------------


def test_a_marker_that_carries_no_plan_is_hashed_as_before(tmp_path: Path) -> None:
    """Markers published before the owed plan existed still work: as baselines (above, through
    `Marker.parse`) and as folders to purge (hashed now)."""
    site = built(tmp_path)
    settings = settings_for(tmp_path / "state")
    manifest = pipeline.scan(site, settings)
    (site / MARKER_NAME).write_bytes(Marker(manifest, manifest.digest()).to_json())
    _, source = pipeline.read_build(site, settings)
    assert isinstance(source, Manifest) and source.files == manifest.files


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("site_url", "was made for site_url"),
        ("plan", "carries an invalid plan"),
        ("files", "lists 1 file(s) the folder does not hold"),
        ("size", "is larger than"),
        ("json", "is not a valid build marker"),
    ],
)
def test_a_bad_marker_in_the_folder_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str, message: str
) -> None:
    site = built(tmp_path)
    settings = settings_for(tmp_path / "state")
    pipeline.prepare(site, settings, env={})
    path = site / MARKER_NAME
    data = json.loads(path.read_bytes())
    if damage == "site_url":
        data["site_url"] = "https://elsewhere.example.com/"
    elif damage == "plan":
        data["purge"]["requests"] = [{"files": [], "hosts": ["x"]}]
    elif damage == "files":
        (site / "a.css").unlink()
    elif damage == "size":
        monkeypatch.setattr(marker_module, "MAX_MARKER_BYTES", 100)
    path.write_bytes(b"{" if damage == "json" else json.dumps(data).encode())
    with pytest.raises(UsageError) as refused:
        pipeline.read_build(site, settings)
    assert message in str(refused.value) and MARKER_NAME in str(refused.value)
    assert refused.value.exit_code is ExitCode.USAGE


def test_files_written_after_the_marker_are_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, log.name)
    site = built(tmp_path)
    settings = settings_for(tmp_path / "state")
    pipeline.prepare(site, settings, env={})
    write_files(site, {"pagefind/index.json": "{}"})  # a post-processor after the build
    _, source = pipeline.read_build(site, settings)
    assert isinstance(source, pipeline.PreparedBuild) and source.from_marker
    assert "1 file(s) of" in caplog.text and "pagefind/index.json" in caplog.text


def test_the_cli_sets_the_step_outputs(
    tmp_path: Path, cf: LocalCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    site = built(tmp_path)
    state = tmp_path / "state"
    settings = settings_for(state)
    previous = pipeline.scan(built(tmp_path / "v1", {**FILES, "a.css": "y{}"}), settings)
    previous.save(state / "manifest.json")
    outputs = tmp_path / "github-output"
    plan_file = tmp_path / "out" / "plan.json"
    env = {"CLOUDFLARE_API_TOKEN": TOKEN, "GITHUB_OUTPUT": str(outputs)}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        code, _, err = run_main(
            ["purge", str(site), "--site-url", SITE, "--manifest", str(state / "manifest.json"),
             "--zone-id", cf.zone_id, "--api-base", cf.api_base, "--plan-file", str(plan_file)],
            capsys,
        )  # fmt: skip
    assert code == 0, err
    assert outputs.read_text() == f"requests=1\nplan={plan_file}\n"
    assert json.loads(plan_file.read_bytes())["baseline"]["source"] == "local-manifest"


# --- the origin wait: brisk first, then backing off ------------------------------------------


def test_polls_start_brisk_back_off_to_the_interval_and_stay_bounded() -> None:
    clock = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock[0] += seconds

    with ScriptedOrigin(Answer(404)) as origin:
        wait = OriginWait(origin.url, timeout=600, interval=2, sleep=sleep, clock=lambda: clock[0])
        with pytest.raises(PurgeFailed, match="did not serve this build"):
            wait.until_build("0" * 64)()
        polls = len(origin.requests)
    assert pauses[:3] == [0.25, 0.375, 0.5625]
    growing = pauses[:-1]  # the last one is cut short by the deadline
    assert growing == sorted(growing) and max(growing) == 2
    assert polls <= 600 / 2 + 8  # a bounded number of requests over origin_timeout


def test_the_wait_reports_the_time_waited(caplog: pytest.LogCaptureFixture) -> None:
    digest = Marker.parse(marker_bytes()).digest
    with (
        ScriptedOrigin(Answer(404), Answer(404), Answer(body=marker_bytes())) as origin,
        caplog.at_level(logging.INFO, log.name),
    ):
        wait = OriginWait(origin.url, timeout=30, interval=2, sleep=no_sleep)
        waited = wait.until_build(digest)()
    assert waited >= 0
    assert "the origin serves this build (after" in caplog.text and "3 poll(s)" in caplog.text


# --- options --------------------------------------------------------------------------------


def test_the_plugin_takes_api_base_from_its_variable(tmp_path: Path) -> None:
    config = load(make_site(tmp_path))
    options = config.plugins["cfpurge"].config
    local = "http://127.0.0.1:8123/client/v4"
    settings = settings_from_config(options, config, {"CLOUDFLARE_API_BASE": local})
    assert settings.api_base == local
    assert settings_from_config(options, config, {}).api_base.startswith("https://api.cloudflare")


def test_the_default_poll_cap_meets_the_freshness_bound() -> None:
    from mkdocs_cfpurge.settings import Options

    assert Options().origin_interval <= 2.5 and Options().live_baseline is True
