"""A local, Cloudflare-compatible purge API and edge cache, for tests and the README demo.

No machine here reaches Cloudflare. `LocalCloudflare` answers the purge API the way
shared/reference/cloudflare.md describes it (envelope, auth, limits, error codes) and, given an
origin, runs an edge cache those purges act on, so a test can prove freshness by fetching.
Both servers bind to 127.0.0.1 only.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import httpx

from mkdocs_cfpurge.cloudflare.limits import DEFAULT_FILES_PER_REQUEST
from mkdocs_cfpurge.localcf.api import ApiServer, RateLimiter, ZoneSettings, plan_limits
from mkdocs_cfpurge.localcf.base import PurgeRecord
from mkdocs_cfpurge.localcf.edge import CacheTags, EdgeResponse, EdgeServer, make_origin
from mkdocs_cfpurge.localcf.faults import Fault, FaultQueue, Route
from mkdocs_cfpurge.localcf.rules import EdgeRules

__all__ = ["EdgeResponse", "LocalCloudflare", "PurgeRecord", "run_local_server"]

HOST = "127.0.0.1"
DEFAULT_ZONE_ID = "0123456789abcdef0123456789abcdef"
DEFAULT_ZONE_NAME = "example.com"
DEFAULT_API_TOKEN = "secret-token"  # a placeholder: the local API is the only one it opens


class LocalCloudflare:
    """The local API (and edge, when `origin` is given), started on enter and stopped on exit.

    With no credentials at all (`api_token`, `api_email` and `api_key` None) every request is
    let in. `max_files_per_request=None` follows the plan (30, or 500 on enterprise).
    `cache_tags(path)` adds Cache-Tag values to edge responses for a raw request path.
    `clock` drives the rate-limit buckets, so a test can hold time still.
    `on_purge` runs for each accepted purge, in the request's thread, before the answer.
    `cache_rules` is the zone's `http_request_cache_settings` entrypoint ruleset, as the API
    returns it (its `result`): the API serves it and the edge applies it (eligibility, cache
    keys, purges a rule cannot match); `cache_rules_readable=False` answers its read with 403.
    """

    def __init__(
        self,
        *,
        zone_id: str = DEFAULT_ZONE_ID,
        zone_name: str = DEFAULT_ZONE_NAME,
        api_token: str | None = DEFAULT_API_TOKEN,
        api_email: str | None = None,
        api_key: str | None = None,
        plan: str = "free",
        max_files_per_request: int | None = DEFAULT_FILES_PER_REQUEST,
        origin: Path | str | None = None,
        rate_limit: bool = True,
        zone_readable: bool = True,
        port: int = 0,
        edge_port: int = 0,
        cache_tags: CacheTags | None = None,
        clock: Callable[[], float] | None = None,
        on_purge: Callable[[PurgeRecord], None] | None = None,
        cache_rules: Mapping[str, Any] | None = None,
        cache_rules_readable: bool = True,
    ) -> None:
        if (api_email is None) != (api_key is None):
            raise ValueError("api_email and api_key go together")
        limits = plan_limits(plan)
        if max_files_per_request is not None and max_files_per_request < 1:
            raise ValueError("max_files_per_request must be at least 1")
        self._files_cap_follows_plan = max_files_per_request is None
        self._settings = ZoneSettings(
            zone_id=zone_id,
            zone_name=zone_name,
            api_token=api_token,
            api_email=api_email,
            api_key=api_key,
            plan=plan,
            max_files_per_request=max_files_per_request or limits.files_per_request,
            zone_readable=zone_readable,
            cache_rules=dict(cache_rules) if cache_rules is not None else None,
            cache_rules_readable=cache_rules_readable,
        )
        # Read now: an expression the edge cannot apply fails here, not on the first request.
        self._rules = EdgeRules(cache_rules) if cache_rules is not None else None
        self._limiter = RateLimiter(plan, enabled=rate_limit, clock=clock or time.monotonic)
        self._faults = FaultQueue()
        # Built now, not in start(): a bad origin should fail at construction, like a bad plan.
        self._origin = make_origin(origin) if origin is not None else None
        self._cache_tags = cache_tags
        self._on_purge = on_purge
        self._ports = (port, edge_port)
        self._stopping = threading.Event()
        self._api: ApiServer | None = None
        self._edge: EdgeServer | None = None
        self._threads: list[threading.Thread] = []
        self._visitor: httpx.Client | None = None

    # --- lifecycle ---

    def start(self) -> LocalCloudflare:
        if self._api is not None:
            raise RuntimeError("LocalCloudflare can be started once")
        self._api = ApiServer(
            (HOST, self._ports[0]),
            settings=self._settings,
            limiter=self._limiter,
            faults=self._faults,
            stopping=self._stopping,
            on_accept=self._accepted,
        )
        servers: list[ApiServer | EdgeServer] = [self._api]
        if self._origin is not None:
            try:
                self._edge = EdgeServer(
                    (HOST, self._ports[1]),
                    zone_name=self._settings.zone_name,
                    origin=self._origin,
                    cache_tags=self._cache_tags,
                    rules=self._rules,
                )
            except BaseException:
                self._api.server_close()
                raise
            servers.append(self._edge)
            # One client for all edge_fetch calls: building one per call costs more than a fetch.
            self._visitor = httpx.Client(trust_env=False)
        for server in servers:
            # A short poll keeps stop() quick; tests start and stop many servers.
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop both servers; the journals (`purges`, `requests`, `edge_log`) stay readable."""
        self._stopping.set()
        for server in (self._api, self._edge):
            if server is not None and self._threads:
                server.shutdown()
                server.server_close()
        for thread in self._threads:
            thread.join()
        self._threads = []
        if self._visitor is not None:
            self._visitor.close()

    def __enter__(self) -> LocalCloudflare:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _accepted(self, record: PurgeRecord) -> None:
        if self._edge is not None:
            self._edge.cache.apply(record)
        if self._on_purge is not None:
            self._on_purge(record)

    # --- addresses and journals ---

    @property
    def zone_id(self) -> str:
        return self._settings.zone_id

    @property
    def zone_name(self) -> str:
        return self._settings.zone_name

    @property
    def plan(self) -> str:
        return self._settings.plan

    @property
    def api_base(self) -> str:
        return f"http://{HOST}:{self._running_api().server_address[1]}/client/v4"

    @property
    def edge_url(self) -> str | None:
        self._running_api()
        return None if self._edge is None else f"http://{HOST}:{self._edge.server_address[1]}"

    @property
    def purges(self) -> list[PurgeRecord]:
        return [] if self._api is None else self._api.purges

    @property
    def requests(self) -> list[dict[str, Any]]:
        return [] if self._api is None else self._api.requests

    @property
    def edge_log(self) -> list[dict[str, object]]:
        return [] if self._edge is None else self._edge.log

    def _running_api(self) -> ApiServer:
        if self._api is None:
            raise RuntimeError("LocalCloudflare is not started (use it as a context manager)")
        return self._api

    # --- scripting ---

    def fail_next(
        self,
        n: int,
        status: int = 500,
        *,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The next `n` purge POSTs answer `status` (429 defaults to code 971).

        Faults come before auth, validation and limits, and queue in the order scripted.
        """
        self._faults.add(Fault("fail", n, status=status, code=code, retry_after=retry_after))

    def drop_next(self, n: int) -> None:
        """The next `n` purge POSTs are read, then the connection closes without an answer."""
        self._faults.add(Fault("drop", n))

    def delay_next(self, n: int, seconds: float) -> None:
        """The next `n` purge POSTs wait `seconds`, then are handled as usual.

        A client that timed out meanwhile still gets its purge applied, as on Cloudflare.
        """
        self._faults.add(Fault("delay", n, seconds=seconds))

    def trickle_next(self, n: int, *, lines: int, seconds: float, route: Route = "purge") -> None:
        """The next `n` requests of `route` get their usual answer (a purge is applied), its
        header lines `seconds` apart: `lines` extra lines, one at a time. Each waited-out line
        resets a per-read timeout; only a deadline on the whole request ends it. A request whose
        client hung up is recorded with status 0."""
        self._faults.add(Fault("trickle", n, seconds=seconds, lines=lines, route=route))

    def garble_next(self, n: int, route: Route = "purge") -> None:
        """The next `n` requests of `route` get a 200 whose body claims gzip and is not; nothing
        is applied."""
        self._faults.add(Fault("garble", n, route=route))

    def echo_headers_next(self, n: int, status: int = 400, *, before: str = "") -> None:
        """The next `n` purge POSTs get a non-JSON error page quoting every request header,
        credentials included (as a misconfigured proxy does), after the text `before`."""
        self._faults.add(Fault("echo", n, status=status, body=before.encode()))

    def answer_next(self, n: int, status: int, body: bytes, route: Route = "purge") -> None:
        """The next `n` requests of `route` are answered `status` with `body` as it is."""
        self._faults.add(Fault("answer", n, status=status, body=body, route=route))

    def refuse_entries(self, pattern: str | None, why: str = "refused by this zone") -> None:
        """From now on, refuse (400) every purge body holding an entry (URL, prefix, host or
        tag) that the regular expression `pattern` matches, as Cloudflare refuses an entry it
        finds invalid, with `why` in the message; None: refuse none."""
        self._settings.refuse = None if pattern is None else re.compile(pattern)
        self._settings.refusal = why

    def set_plan(self, plan: str) -> None:
        limits = plan_limits(plan)
        self._limiter.set_plan(plan)
        self._settings.plan = plan
        if self._files_cap_follows_plan:
            self._settings.max_files_per_request = limits.files_per_request

    # --- the edge, as a visitor sees it ---

    def edge_fetch(self, url: str, headers: Mapping[str, str] | None = None) -> EdgeResponse:
        """GET a public URL through the edge: its host and scheme travel in headers."""
        edge_url = self.edge_url
        if edge_url is None or self._visitor is None:
            raise RuntimeError("no edge: give LocalCloudflare an origin")
        public = httpx.URL(url)
        target = httpx.URL(edge_url).copy_with(raw_path=public.raw_path)
        sent = {"Host": public.netloc.decode("ascii"), "X-Forwarded-Proto": public.scheme}
        response = self._visitor.get(target, headers={**sent, **(headers or {})})
        return EdgeResponse(
            status=response.status_code,
            headers={name.lower(): value for name, value in response.headers.items()},
            body=response.content,
            cache_status=response.headers.get("CF-Cache-Status", ""),
        )


def describe(record: PurgeRecord) -> str:
    if record.kind == "purge_everything":
        return f"{record.method}: everything"
    return f"{record.method}: {len(record.items)} {record.kind}"


def run_local_server(
    echo: Callable[[str], None], *, token_shown: str | None = None, **options: Any
) -> None:
    """Serve until Ctrl-C or SIGTERM, echoing the addresses and the token it accepts, then one
    line per purge.

    `options` are LocalCloudflare's (zone_id, zone_name, api_token, plan, origin, ports...).
    `token_shown` is printed instead of the token (one read from the environment may be real).
    """
    stop = threading.Event()
    cf = LocalCloudflare(**options, on_purge=lambda record: echo(describe(record)))

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # signal.signal only works in the main thread; elsewhere Ctrl-C is the caller's business.
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if in_main else None
    try:
        with cf:
            zone = f"zone {cf.zone_name}, id {cf.zone_id}, plan {cf.plan}"
            token = options.get("api_token")
            accepted = token_shown or (repr(token) if token else "any (no credentials set)")
            echo(f"Cloudflare API: {cf.api_base} ({zone}); API token accepted: {accepted}")
            echo(f"Edge: {cf.edge_url}" if cf.edge_url else "Edge: off (no origin given)")
            # A timed wait: an untimed one would hold off KeyboardInterrupt on some platforms.
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
