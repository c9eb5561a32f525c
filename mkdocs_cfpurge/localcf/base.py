"""What the API and the edge share: the record of a purge and a quiet threaded HTTP server."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, TypeAlias

PurgeMethod = Literal["purge_cache", "invalidate_cache"]
PurgeKind = Literal["files", "tags", "hosts", "prefixes", "purge_everything"]
# A `files` entry given as an object keeps its headers: they select one cache-key variant.
PurgeItem: TypeAlias = str | tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class PurgeRecord:
    """One purge the API accepted, as the client sent it.

    `items` holds the URL strings, tags, hosts or prefixes; a `files` entry sent as
    `{"url", "headers"}` becomes `(url, frozenset(headers.items()))`; empty for purge_everything.
    `time` is `time.monotonic()` at acceptance and `id` the result id the API answered with.
    """

    method: PurgeMethod
    kind: PurgeKind
    items: tuple[PurgeItem, ...]
    time: float
    id: str


class QuietServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that never writes to stderr for a client that hung up.

    Clients under test time out and disconnect on purpose; tracebacks for that would drown the
    output of the tests and of the CLI demo. Any other handler exception still prints.
    """

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class QuietHandler(BaseHTTPRequestHandler):
    """No access log: `LocalCloudflare.requests` and `edge_log` are the record."""

    server_version = "cloudflare"  # the Server header Cloudflare answers with
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        """Answer with `headers`, Content-Length and `body` (left out for a HEAD request)."""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
