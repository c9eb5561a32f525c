"""Test origins on 127.0.0.1 that publish a deploy some time after it happened, like GitHub Pages.

`StaticOrigin` serves whichever folder it currently points at; switching folders is one
assignment, so a request sees the old build or the new one, never a mix. `PagesOrigin` feeds it
from the `gh-pages` branch of a bare repository: it polls the branch, and `delay` seconds after
a push exports that commit's tree into a fresh folder and switches to it. `publications` records
`(time.monotonic(), commit)` of each switch, taken once the new build is served, so a test can
prove that a purge came after it.

Serving follows static hosts: `X/` is `X/index.html`, anything missing is a 404 (with the site's
`404.html` as the body when it has one). The query string is ignored, as GitHub Pages does.
"""

from __future__ import annotations

import io
import mimetypes
import subprocess
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

HOST = "127.0.0.1"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    origin: StaticOrigin


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, *, with_body: bool) -> None:
        status, content_type, body = self.server.origin.lookup(self.path)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=600")  # what GitHub Pages sends
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StaticOrigin:
    """Serve `root` (None: an empty site) over HTTP on 127.0.0.1; a context manager."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root
        self.requests: list[tuple[float, str]] = []  # (time.monotonic(), raw request path)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the origin is not started (use it as a context manager)")
        return f"http://{HOST}:{self._server.server_address[1]}/"

    def switch(self, root: Path | None) -> None:
        """Serve `root` from the next request on."""
        self.root = root

    def lookup(self, target: str) -> tuple[int, str, bytes]:
        with self._lock:
            self.requests.append((time.monotonic(), target))
        root = self.root  # read once: one request, one build
        path = unquote(urlsplit(target).path)
        parts = [part for part in path.split("/") if part]
        if root is not None and not any(part in (".", "..") for part in parts):
            file = (
                root.joinpath(*parts, "index.html") if path.endswith("/") else root.joinpath(*parts)
            )
            if file.is_file():
                kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                return 200, kind, file.read_bytes()
        page = root / "404.html" if root is not None else None
        if page is not None and page.is_file():
            return 404, "text/html", page.read_bytes()
        return 404, "text/html", b"404 Not Found\n"

    def start(self) -> StaticOrigin:
        server = _Server((HOST, 0), _Handler)
        server.origin = self
        self._server = server
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

    def __enter__(self) -> StaticOrigin:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _head(bare: Path, branch: str) -> str | None:
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


class PagesOrigin(StaticOrigin):
    """GitHub Pages in miniature: serves `branch` of `bare`, `delay` seconds after each push.

    What the branch holds when the origin starts is served at once. A push seen while another
    one waits replaces it (Pages builds the newest). With `publish` False, pushes are noticed but
    never served until it is set back to True (then they are, once their delay is over).
    """

    def __init__(
        self,
        bare: Path,
        exports: Path,
        *,
        branch: str = "gh-pages",
        delay: float = 0.0,
        publish: bool = True,
        poll: float = 0.05,
    ) -> None:
        super().__init__(None)
        self.bare = bare
        self.exports = exports
        self.branch = branch
        self.delay = delay
        self.publish = publish
        self.poll = poll
        self.publications: list[tuple[float, str]] = []  # (time.monotonic(), commit)
        self.published: str | None = None
        self._waiting: tuple[float, str] | None = None  # (seen at, commit)
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def published_at(self, commit: str) -> float:
        """When `commit` was first served (KeyError if it never was)."""
        for at, published in self.publications:
            if published == commit:
                return at
        raise KeyError(commit)

    def wait_published(self, commit: str, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self.published_at(commit)
            except KeyError:
                time.sleep(self.poll)
        raise TimeoutError(f"{commit[:12]} was not published within {timeout}s")

    def _publish(self, commit: str) -> None:
        folder = export_tree(self.bare, commit, self.exports / f"{len(self.publications)}-{commit}")
        self.switch(folder)
        self.published = commit
        self.publications.append((time.monotonic(), commit))

    def _step(self) -> None:
        head = _head(self.bare, self.branch)
        if head is not None and head != self.published:
            if self._waiting is None or self._waiting[1] != head:
                self._waiting = (time.monotonic(), head)
        elif head == self.published:
            self._waiting = None
        if self._waiting is not None and self.publish:
            seen, commit = self._waiting
            if time.monotonic() - seen >= self.delay:
                self._publish(commit)
                self._waiting = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self._step()

    def start(self) -> PagesOrigin:
        current = _head(self.bare, self.branch)
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

    def __enter__(self) -> PagesOrigin:
        return self.start()
