"""Local origins on 127.0.0.1 that serve a folder, and publish a deploy some time after it.

Why it exists: a purge is right only once the origin serves the new build, and static hosts
such as GitHub Pages publish a push some time after it lands. Tests, the demo and deploy flows
without a real host need such an origin on this machine. Serving reuses the edge's
`FolderOrigin`, so origin and edge agree on what a static host does: `X/` is `X/index.html`,
`X` (a folder) is a 301 to `X/`, anything missing is a 404 with the site's `404.html` as the
body, the query string is ignored. Every answer carries `Cache-Control: max-age=600`, as
GitHub Pages sends.

- `OriginServer` serves the folder it points at. `switch()` is one assignment, so a request
  sees the old build or the new one, never a mix.
- `BranchOrigin` follows a branch of a bare git repository: `delay` seconds after each push it
  exports the pushed commit into a fresh folder and switches to it.
- `FolderPublisher` serves a copy of a folder, and a new copy `delay` seconds after each
  `publish()`: a deploy without git.

Both publishers record `publications`, `(time.monotonic(), version)` of each switch, taken once
the new build is served, so a caller can prove that a purge came after it.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from mkdocs_cfpurge.localcf.base import QuietHandler, QuietServer
from mkdocs_cfpurge.localcf.edge import FolderOrigin, OriginResponse

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

__all__ = [
    "BranchOrigin",
    "DelayedOrigin",
    "FolderPublisher",
    "OriginServer",
    "Timing",
    "branch_head",
    "export_tree",
]

HOST = "127.0.0.1"
CACHE_CONTROL = ("Cache-Control", "max-age=600")  # what GitHub Pages sends
# Before anything is published there is no site, and so no 404.html either.
_NO_SITE = OriginResponse(404, (("Content-Type", "text/html; charset=utf-8"),), b"404 Not Found\n")


class _Server(QuietServer):
    origin: OriginServer


class _Handler(QuietHandler):
    server: _Server
    server_version = "localorigin"

    def do_GET(self) -> None:
        response = self.server.origin.fetch(self.path)
        self.reply(response.status, (*response.headers, CACHE_CONTROL), response.body)

    do_HEAD = do_GET


class OriginServer:
    """Serve `root` (None: no site yet) over HTTP on 127.0.0.1; a context manager."""

    def __init__(self, root: Path | None = None) -> None:
        self._origin: FolderOrigin | None = None
        self.switch(root)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the origin is not started (use it as a context manager)")
        return f"http://{HOST}:{self._server.server_address[1]}/"

    def switch(self, root: Path | None) -> None:
        """Serve `root` from the next request on."""
        self._origin = None if root is None else FolderOrigin(root)

    def fetch(self, target: str) -> OriginResponse:
        """The answer for a raw request target (path and query, percent-encoded)."""
        origin = self._origin  # read once: one request, one build
        path, _, query = target.partition("?")
        return _NO_SITE if origin is None else origin.fetch(path, query)

    def start(self) -> Self:
        server = _Server((HOST, 0), _Handler)
        server.origin = self
        self._server = server
        # A short poll keeps stop() quick; tests start and stop many servers.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Timing(TypedDict, total=False):
    """When a `DelayedOrigin` publishes (see there); each one is an attribute of it too."""

    delay: float  # seconds from a version's appearance to its publication (default 0)
    paused: bool  # publish nothing while True (default False)
    poll: float  # seconds between two looks for a new version (default 0.05)


class DelayedOrigin(OriginServer, ABC):
    """An origin that serves the newest version `delay` seconds after it appeared.

    A subclass says which version is the newest and lays a version out as a folder. What is
    newest when the origin starts is served at once. A version that appears while another one
    waits replaces it, and the delay starts again (Pages builds the newest push). While `paused`
    is True, new versions are noticed but not served; once it is False again, the newest is
    served as soon as its delay is over.
    """

    def __init__(self, exports: Path, **timing: Unpack[Timing]) -> None:
        super().__init__(None)
        self.exports = exports
        self.delay = timing.get("delay", 0.0)
        self.paused = timing.get("paused", False)
        self.poll = timing.get("poll", 0.05)
        self.publications: list[tuple[float, str]] = []  # (time.monotonic(), version)
        self.published: str | None = None
        self._waiting: tuple[float, str] | None = None  # (seen at, version)
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    @abstractmethod
    def newest(self) -> str | None:
        """The version to serve next, or None while there is none."""

    @abstractmethod
    def export(self, version: str) -> Path:
        """A folder that holds the files of `version`, to be served from now on."""

    def published_at(self, version: str) -> float:
        """When `version` was first served (KeyError if it never was)."""
        for at, published in self.publications:
            if published == version:
                return at
        raise KeyError(version)

    def wait_published(self, version: str, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self.published_at(version)
            except KeyError:
                time.sleep(self.poll)
        raise TimeoutError(f"{version[:12]} was not published within {timeout}s")

    def _publish(self, version: str) -> None:
        self.switch(self.export(version))
        self.published = version
        self.publications.append((time.monotonic(), version))

    def _step(self) -> None:
        newest = self.newest()
        if newest is not None and newest != self.published:
            if self._waiting is None or self._waiting[1] != newest:
                self._waiting = (time.monotonic(), newest)
        elif newest == self.published:
            self._waiting = None
        if self._waiting is not None and not self.paused:
            seen, version = self._waiting
            if time.monotonic() - seen >= self.delay:
                self._publish(version)
                self._waiting = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self._step()

    def start(self) -> Self:
        current = self.newest()
        if current is not None:
            self._publish(current)
        super().start()
        self._poller = threading.Thread(target=self._run, daemon=True)
        self._poller.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
            self._poller = None
        super().stop()


def branch_head(bare: Path, branch: str = "gh-pages") -> str | None:
    """The commit `branch` of the repository `bare` points at, or None if there is no branch."""
    result = subprocess.run(
        ["git", "--git-dir", str(bare), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or None


def export_tree(bare: Path, commit: str, dest: Path) -> Path:
    """Write the files of `commit` into the new folder `dest` (with `git archive`)."""
    archive = subprocess.run(
        ["git", "--git-dir", str(bare), "archive", "--format=tar", commit],
        capture_output=True,
        check=True,
    ).stdout
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


class BranchOrigin(DelayedOrigin):
    """GitHub Pages in miniature: serves `branch` of `bare`, `delay` seconds after each push.

    Versions are commits; each published one is exported into a fresh folder under `exports`.
    """

    def __init__(
        self, bare: Path, exports: Path, *, branch: str = "gh-pages", **timing: Unpack[Timing]
    ) -> None:
        super().__init__(exports, **timing)
        self.bare = bare
        self.branch = branch

    def newest(self) -> str | None:
        return branch_head(self.bare, self.branch)

    def export(self, version: str) -> Path:
        return export_tree(self.bare, version, self.exports / f"{len(self.publications)}-{version}")


class FolderPublisher(DelayedOrigin):
    """Serves a copy of `source`, and a fresh copy `delay` seconds after each `publish()`.

    The copy is taken when `publish()` is called (the upload); what `source` holds when the
    origin starts is served at once. Copies go to `exports`, symlinks kept as links.
    """

    def __init__(self, source: Path, exports: Path, **timing: Unpack[Timing]) -> None:
        super().__init__(exports, **timing)
        self.source = source
        self._uploads: list[str] = []
        self._lock = threading.Lock()

    def publish(self) -> str:
        """Copy `source` now, to be served `delay` seconds from now; return its version."""
        with self._lock:
            version = f"upload-{len(self._uploads) + 1}"
            shutil.copytree(self.source, self.exports / version, symlinks=True)
            self._uploads.append(version)
        return version

    def newest(self) -> str | None:
        with self._lock:
            return self._uploads[-1] if self._uploads else None

    def export(self, version: str) -> Path:
        return self.exports / version

    def start(self) -> Self:
        if not self._uploads:
            self.publish()
        return super().start()
