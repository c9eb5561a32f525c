"""Class 5 of issue 13: every file the project writes gets the mode a plain write gives it.

Atomic writes went through `mkstemp`, whose 0600 made the marker unreadable to a web server
running as another user (the origin wait then timed out on a 404). Now a new file gets 0666 less
the umask, and a rewritten file keeps its mode.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mkdocs_cfpurge.build.atomic import write_atomic
from mkdocs_cfpurge.build.marker import MARKER_NAME, served_digest
from mkdocs_cfpurge.deploy.origin import OriginWait
from mkdocs_cfpurge.localcf import LocalCloudflare
from tests.helpers import run_main, write_files

SITE_URL = "https://docs.example.com/"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077, 0o027])
def test_a_new_file_gets_0666_less_the_umask(tmp_path: Path, mask: int) -> None:
    with umask(mask):
        write_atomic(tmp_path / "new.json", b"{}")
        plain = tmp_path / "plain.json"
        plain.write_bytes(b"{}")  # what a plain write gives
    assert mode(tmp_path / "new.json") == 0o666 & ~mask == mode(plain)


def test_a_rewritten_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "kept.json"
    path.write_bytes(b"old")
    path.chmod(0o640)
    with umask(0o022):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o640


@pytest.mark.usefixtures("cf_env")
def test_every_file_a_deploy_writes_is_readable_by_others_under_umask_022(
    tmp_path: Path,
    cf: LocalCloudflare,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site, state = tmp_path / "site", tmp_path / "state"
    write_files(site, {"index.html": "v1", "a/index.html": "a"})
    common = ["--site-url", SITE_URL, "--manifest", str(state / "manifest.json")]
    with umask(0o022):
        assert run_main(["purge", str(site), *common], capsys)[0] == 0
        write_files(site, {"index.html": "v2"})
        assert run_main(["mark", str(site), "--site-url", SITE_URL], capsys)[0] == 0
        plan = ["--plan-file", str(state / "plan.json"), "--dry-run"]  # plan.json and plan.md
        assert run_main(["purge", str(site), *common, *plan], capsys)[0] == 0
        cf.fail_next(10, 403, code=10000)  # the purge fails: pending.json is written
        assert run_main(["purge", str(site), *common], capsys)[0] == 1
    written = [
        site / MARKER_NAME,
        state / "manifest.json",
        state / "pending.json",
        state / "plan.json",
        state / "plan.md",
    ]
    assert {path.name: oct(mode(path)) for path in written} == {
        path.name: oct(0o644) for path in written
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SYSTEM_PYTHON = Path("/usr/bin/python3")
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(SYSTEM_PYTHON)]


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv") or not SYSTEM_PYTHON.exists(),
    reason="serving as another user needs root, setpriv and a system python3",
)
def test_a_web_server_running_as_another_user_serves_the_marker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The issue's case: a marker written by `mkdocs-cfpurge mark`, served by a web server that
    runs as `nobody`; the origin wait sees this build's digest."""
    root = Path(tempfile.mkdtemp(prefix="cfpurge-served-"))
    try:
        root.chmod(0o755)  # the server's user must reach the site
        site = root / "site"
        write_files(site, {"index.html": "<h1>home</h1>"})
        with umask(0o022):
            code, out, _ = run_main(["mark", str(site), "--site-url", SITE_URL], capsys)
        assert code == 0
        port = _free_port()
        server = subprocess.Popen(
            [*AS_NOBODY, "-m", "http.server", "--bind", "127.0.0.1", str(port), "-d", str(site)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            deadline = time.monotonic() + 20
            while True:  # until the server listens
                with contextlib.suppress(httpx.HTTPError):
                    httpx.get(url + "index.html", trust_env=False)
                    break
                assert time.monotonic() < deadline, "the web server did not start"
                time.sleep(0.05)
            digest = served_digest((site / MARKER_NAME).read_bytes())
            assert digest is not None and digest.startswith(out.split("digest ")[1][:12])
            wait = OriginWait(url, timeout=10.0, interval=0.1)
            assert wait.until_build(digest)() >= 0  # served, as another user
            # The control: the same file at 0600 is refused to that user.
            (site / MARKER_NAME).chmod(0o600)
            marker = httpx.get(url + MARKER_NAME, trust_env=False)
            assert marker.status_code in (403, 404)
        finally:
            server.kill()
            server.wait(timeout=10)
    finally:
        shutil.rmtree(root)


def test_a_rewritten_file_keeps_its_mode_where_os_has_no_fchmod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows before Python 3.13 has no os.fchmod: the write must not need it.
    monkeypatch.delattr(os, "fchmod", raising=False)
    path = tmp_path / "kept.json"
    path.write_bytes(b"old")
    path.chmod(0o640)
    with umask(0o022):
        write_atomic(path, b"new\n")
        write_atomic(tmp_path / "new.json", b"{}\n")
    assert path.read_bytes() == b"new\n" and mode(path) == 0o640
    assert mode(tmp_path / "new.json") == 0o644


def test_the_temp_file_is_opened_binary_where_the_os_has_text_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows' C runtime opens files in text mode (newline → CRLF) unless O_BINARY is given.
    binary = 1 << 30  # a bit no POSIX open flag uses: stripped before the real call
    seen: list[int] = []
    real_open = os.open

    def recording_open(path: str, flags: int, mode: int = 0o777) -> int:
        seen.append(flags)
        return real_open(path, flags & ~binary, mode)

    monkeypatch.setattr(os, "O_BINARY", binary, raising=False)
    monkeypatch.setattr(os, "open", recording_open)
    write_atomic(tmp_path / "m.json", b"{}\n")
    assert seen and seen[0] & binary
    assert (tmp_path / "m.json").read_bytes() == b"{}\n"
