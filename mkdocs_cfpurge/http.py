"""Every HTTP request the package makes has a deadline, from connect to last byte.

httpx's timeouts bound each network operation, not a request: a server that sends one header
line every few seconds keeps a request alive for ever. `DeadlineClient` gives each request (its
redirects and body included) a deadline, enforced under httpx at every connect, read and write of
the connection by an httpcore network backend: each waits at most what the request has left, and
once that is spent the request fails with httpx's ConnectTimeout, ReadTimeout or WriteTimeout,
which every caller retries (or counts) like any transient error (`TRANSIENT`).

Imported only where requests are made (httpx costs a CLI start nothing until then).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

# Failures that a later attempt can mend: the transport's (timeouts, resets, refused
# connections), and an answer whose body cannot be decoded (a garbled gzip stream).
TRANSIENT: tuple[type[Exception], ...] = (httpx.TransportError, httpx.DecodingError)

# (monotonic time the request must end by, its whole deadline in seconds), while one is sent.
_DEADLINE: ContextVar[tuple[float, float] | None] = ContextVar("cfpurge_deadline", default=None)


def _time_left(timeout: float | None, error: type[httpcore.TimeoutException]) -> float | None:
    """The timeout of one network operation: at most what the request has left."""
    bound = _DEADLINE.get()
    if bound is None:
        return timeout
    end, total = bound
    left = end - time.monotonic()
    if left <= 0:
        raise error(f"no complete answer within the request's {total:g}s deadline")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the deadline of the request using it."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._stream.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))
        except httpcore.TimeoutException:
            _time_left(None, httpcore.ReadTimeout)  # says so, when it was the deadline
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._stream.write(buffer, _time_left(timeout, httpcore.WriteTimeout))
        except httpcore.TimeoutException:
            _time_left(None, httpcore.WriteTimeout)
            raise

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """Opens connections as `backend` does, each a DeadlineStream."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, left, local_address, socket_options)
        return DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._backend.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _add_deadlines(transport: object) -> None:
    """Open the connections of an httpx transport through a DeadlineBackend.

    httpx offers no way to pass its connection pool a network backend, so the pool's is wrapped
    in place; a transport without one (MockTransport, a test's own) opens no connection.
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, DeadlineBackend):
        pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]


class DeadlineClient(httpx.Client):
    """An httpx.Client whose every request ends within `deadline` seconds, connect to last byte.

    `timeout` (httpx's, per network operation) defaults to the deadline, 10 s at most to connect.
    A response sent with `stream=True` is bounded until its headers only.
    """

    def __init__(self, *, deadline: float, **options: Any) -> None:
        options.setdefault("timeout", httpx.Timeout(deadline, connect=min(deadline, 10.0)))
        super().__init__(**options)
        self.deadline = deadline
        for transport in (self._transport, *self._mounts.values()):
            _add_deadlines(transport)

    def send(self, request: httpx.Request, **options: Any) -> httpx.Response:
        token = _DEADLINE.set((time.monotonic() + self.deadline, self.deadline))
        try:
            return super().send(request, **options)
        finally:
            _DEADLINE.reset(token)
