"""The API half of the local Cloudflare: routes, auth, purge-body rules and rate limits.

It answers as shared/reference/cloudflare.md describes. Where Cloudflare's exact answer is not
known, the choice made here is named in a comment so no client gets tuned to an accident.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from mkdocs_cfpurge.cloudflare.limits import (
    GLOBAL_REQUESTS,
    GLOBAL_WINDOW,
    MAX_ITEMS_PER_FLEX_REQUEST,
    MAX_PREFIX_SEPARATORS,
    PLAN_LIMITS,
    PLANS,
    PlanLimits,
    TokenBucket,
)
from mkdocs_cfpurge.localcf.base import (
    PurgeItem,
    PurgeKind,
    PurgeMethod,
    PurgeRecord,
    QuietHandler,
    QuietServer,
)
from mkdocs_cfpurge.localcf.faults import Fault, FaultQueue

API_PREFIX = "/client/v4"
PURGE_KINDS: tuple[PurgeKind, ...] = ("files", "tags", "hosts", "prefixes", "purge_everything")
MAX_TAG_LENGTH = 1024  # each purge tag, as Cloudflare documents it
# Over-cap batches have no fixed code at Cloudflare; this one means nothing in the reference
# table on purpose, so clients have to match on status and message as they must in production.
CODE_TOO_MANY_ITEMS = 1017
CODE_INJECTED_FAILURE = 10001

ONE_OF = 'Request must contain one of "purge_everything", "files", "tags", "hosts" or "prefixes"'
THROTTLED = "Please wait and consider throttling your request speed"
PLAN_NAMES = {
    "free": "Free Website",
    "pro": "Pro Website",
    "business": "Business Website",
    "enterprise": "Enterprise Website",
}
SECRET_HEADERS = frozenset({"authorization", "x-auth-key", "x-auth-user-service-key"})

_ZONE_ID = re.compile(r"[0-9a-fA-F]{32}")
_ZONE_PATH = re.compile(r"/zones/([^/]+)(?:/(purge_cache|invalidate_cache))?")
_CACHE_RULES_PATH = re.compile(
    r"/zones/([^/]+)/rulesets/phases/http_request_cache_settings/entrypoint"
)
_PURGE_PATH = re.compile(API_PREFIX + r"/zones/[^/]+/(?:purge|invalidate)_cache")
_BEARER = re.compile(r"Bearer +(\S+)")
_HOSTNAME = re.compile(r"[^\s/:?#]+")
_CACHE_KEY_HOST = re.compile(r"[a-z0-9._-]+|\[[0-9a-f:.]+\]|[0-9a-f:.]+")
_ZONE_READ = re.compile(API_PREFIX + r"/zones/[^/]+")


def plan_limits(plan: str) -> PlanLimits:
    try:
        return PLAN_LIMITS[plan]
    except KeyError:
        raise ValueError(f"unknown plan {plan!r}: expected one of {', '.join(PLANS)}") from None


class ApiError(Exception):
    """A failure answer: HTTP status plus one error in Cloudflare's envelope."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        chain: tuple[tuple[int, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.chain = chain

    def reply(self) -> Reply:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.chain:
            error["error_chain"] = [{"code": c, "message": m} for c, m in self.chain]
        return Reply(self.status, envelope(None, errors=[error]), self.headers)


@dataclass(frozen=True)
class Reply:
    status: int
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def envelope(
    result: Any,
    *,
    errors: list[dict[str, Any]] | None = None,
    messages: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "success": not errors,
        "errors": errors or [],
        "messages": messages or [],
        "result": result,
    }


def retry_after(seconds: float) -> dict[str, str]:
    # Whole seconds, never 0: a client told "0" would retry at once into the same empty bucket.
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


# --- purge bodies -------------------------------------------------------------------------


def parse_purge_body(
    raw: bytes,
    max_files: int,
    refuse: re.Pattern[str] | None = None,
    refusal: str = "refused by this zone",
) -> tuple[PurgeKind, tuple[PurgeItem, ...]]:
    """The purge type and its items, or ApiError with the answer Cloudflare gives.

    `refuse` matches the entries (URLs, prefixes, hosts, tags) this server treats as invalid,
    as Cloudflare refuses some entries: the whole body is refused, naming the first one and
    giving `refusal` as the reason.
    """
    try:
        body = json.loads(raw)
    except ValueError:  # also covers bytes that are not UTF-8
        raise ApiError(400, 1012, ONE_OF) from None
    if not isinstance(body, dict):
        raise ApiError(400, 1012, ONE_OF)
    present = [kind for kind in PURGE_KINDS if kind in body]
    if len(present) != 1:
        raise ApiError(400, 1012, ONE_OF)
    kind = present[0]
    value = body[kind]
    if kind == "purge_everything":
        if value is not True:
            raise ApiError(400, 1012, ONE_OF)
        return kind, ()
    if not isinstance(value, list):
        raise ApiError(400, 1014, f'"{kind}" must be an array')
    if not value:
        raise ApiError(400, 1012, ONE_OF)
    cap = max_files if kind == "files" else MAX_ITEMS_PER_FLEX_REQUEST
    if len(value) > cap:
        raise ApiError(400, CODE_TOO_MANY_ITEMS, f"More than {cap} {kind} in purge request")
    parse_item = _ITEM_PARSERS[kind]
    items = tuple(parse_item(entry) for entry in value)
    for item in items if refuse is not None else ():
        text = item if isinstance(item, str) else item[0]
        if refuse is not None and refuse.search(text):
            # Cloudflare's code for an entry it finds invalid is not documented: 1012 (its code
            # for a malformed body) here, and clients must not depend on it.
            raise _invalid(kind, text, refusal)
    return kind, items


def _invalid(kind: str, entry: object, why: str) -> ApiError:
    return ApiError(400, 1012, f"Invalid {kind} entry {json.dumps(entry)}: {why}")


def _url(entry: object, url: object) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid("files", entry, "needs an absolute http(s) URL")
    if not _CACHE_KEY_HOST.fullmatch(parts.hostname):
        # A cache key holds an ASCII host name (an IDN one in its IDNA form).
        raise _invalid("files", entry, "needs a valid host name")
    return cast(str, url)


def _file(entry: object) -> PurgeItem:
    if isinstance(entry, str):
        return _url(entry, entry)
    if not isinstance(entry, dict):
        raise _invalid("files", entry, "must be a URL string or a {url, headers} object")
    headers = entry.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _invalid("files", entry, "headers must map names to strings")
    return _url(entry, entry.get("url")), frozenset(headers.items())


def _tag(entry: object) -> PurgeItem:
    if not isinstance(entry, str) or not 0 < len(entry) <= MAX_TAG_LENGTH:
        raise _invalid("tags", entry, f"must be a string of 1 to {MAX_TAG_LENGTH} characters")
    return entry


def _host(entry: object) -> PurgeItem:
    if not isinstance(entry, str) or not _HOSTNAME.fullmatch(entry):
        raise _invalid("hosts", entry, "must be a bare hostname")
    return entry


def _prefix(entry: object) -> PurgeItem:
    if not isinstance(entry, str) or not entry or entry.startswith("/"):
        raise _invalid("prefixes", entry, "must be a hostname followed by a path")
    if "://" in entry:
        raise _invalid("prefixes", entry, "must not include a scheme")
    if "?" in entry or "#" in entry:
        raise _invalid("prefixes", entry, "must not include a query string or fragment")
    if entry.count("/") > MAX_PREFIX_SEPARATORS:
        raise _invalid("prefixes", entry, f"more than {MAX_PREFIX_SEPARATORS} path separators")
    return entry


_ITEM_PARSERS: dict[str, Callable[[object], PurgeItem]] = {
    "files": _file,
    "tags": _tag,
    "hosts": _host,
    "prefixes": _prefix,
}


# --- state the handler works on -----------------------------------------------------------


@dataclass
class ZoneSettings:
    zone_id: str
    zone_name: str
    api_token: str | None
    api_email: str | None
    api_key: str | None
    plan: str
    max_files_per_request: int
    zone_readable: bool
    # The `http_request_cache_settings` entrypoint ruleset (None: the zone has none), and
    # whether the token may read it (Cache Rules Read).
    cache_rules: dict[str, Any] | None = None
    cache_rules_readable: bool = True
    refuse: re.Pattern[str] | None = None  # entries the purge API refuses (parse_purge_body)
    refusal: str = "refused by this zone"  # the reason it gives

    @property
    def open(self) -> bool:
        """No credentials configured: every request is let in (a demo without secrets)."""
        return self.api_token is None and self.api_key is None


class RateLimiter:
    """The buckets of one account: URLs, flex purges, and the global API limit."""

    def __init__(self, plan: str, *, enabled: bool, clock: Callable[[], float]) -> None:
        self.enabled = enabled
        self._clock = clock
        self._global = TokenBucket(GLOBAL_REQUESTS / GLOBAL_WINDOW, GLOBAL_REQUESTS, clock=clock)
        self.set_plan(plan)

    def set_plan(self, plan: str) -> None:
        limits = plan_limits(plan)
        # Fresh, full buckets: a test switching plans wants the new plan's burst, not leftovers.
        self._url = TokenBucket(limits.url_rate, limits.url_burst, clock=self._clock)
        self._flex = TokenBucket(limits.flex_rate, limits.flex_burst, clock=self._clock)

    def admit_call(self) -> float:
        """Seconds to wait, or 0 after counting one API call against the global limit.

        Cloudflare counts every authenticated call here, refused purges included, so this
        bucket is taken before the body is checked; the purge buckets below are not.
        """
        return self._global.try_take(1) if self.enabled else 0.0

    def admit_purge(self, kind: PurgeKind, items: int) -> float:
        """Seconds to wait, or 0 after taking the tokens of a valid purge."""
        if not self.enabled:
            return 0.0
        if kind == "files":
            return self._url.try_take(items)
        return self._flex.try_take(1)


class ApiServer(QuietServer):
    """The API server and the journal of what it received and accepted."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        settings: ZoneSettings,
        limiter: RateLimiter,
        faults: FaultQueue,
        stopping: threading.Event,
        on_accept: Callable[[PurgeRecord], None],
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.faults = faults
        self.stopping = stopping
        self.on_accept = on_accept
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._purges: list[PurgeRecord] = []
        super().__init__(address, ApiHandler)

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    @property
    def purges(self) -> list[PurgeRecord]:
        with self._lock:
            return list(self._purges)

    def record_request(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(entry)

    def accept(self, record: PurgeRecord) -> None:
        with self._lock:
            self._purges.append(record)
        # Before the 200 goes out, so a client that fetches right after its purge sees the effect.
        self.on_accept(record)


# --- HTTP -----------------------------------------------------------------------------------


class ApiHandler(QuietHandler):
    server: ApiServer

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        raw = self._read_body()
        path = urlsplit(self.path).path
        fault = None
        if self._is_purge(path):
            fault = self.server.faults.take("purge")
        elif self.command == "GET" and _ZONE_READ.fullmatch(path):
            fault = self.server.faults.take("zone")
        if fault is not None and fault.kind == "drop":
            self._record(raw, 0)
            self.close_connection = True
            return
        if fault is not None and fault.kind == "delay":
            # An Event, not time.sleep: stop() must not wait out a long scripted delay.
            self.server.stopping.wait(fault.seconds)
            fault = None
        if fault is not None and fault.kind in ("garble", "echo", "answer"):
            self._misanswer(fault, raw)
            return
        try:
            if fault is not None and fault.kind == "fail":
                raise _fault_error(fault)
            reply = self._route(path, raw)
        except ApiError as error:
            reply = error.reply()
        if fault is not None and fault.kind == "trickle":
            self._trickle(reply, raw, fault)
            return
        self._record(raw, reply.status)
        self._send(reply)

    def _misanswer(self, fault: Fault, raw: bytes) -> None:
        """Answer as no Cloudflare should, and apply nothing."""
        status, body = fault.status, fault.body
        headers = [("Content-Type", "application/json")]
        if fault.kind == "garble":
            status, body = 200, b"\x1f\x8b this is no gzip stream " * 4
            headers.append(("Content-Encoding", "gzip"))
        elif fault.kind == "echo":
            # A proxy's error page that quotes the request, credentials and all.
            quoted = "".join(f"{name}: {value}\n" for name, value in self.headers.items())
            body = b"<html><body><pre>" + fault.body + quoted.encode() + b"</pre></body></html>"
            headers = [("Content-Type", "text/html")]
        self._record(raw, status)
        self.reply(status, headers, body)

    def _trickle(self, reply: Reply, raw: bytes, fault: Fault) -> None:
        """Send `reply` with `fault.lines` header lines `fault.seconds` apart first; recorded
        with status 0 when the client hung up before the last byte."""
        try:
            self.wfile.write(f"HTTP/1.1 {reply.status} Slow\r\n".encode())
            self.wfile.flush()
            for line in range(fault.lines):
                if self.server.stopping.wait(fault.seconds):
                    break
                self.wfile.write(f"X-Trickle-{line}: .\r\n".encode())
                self.wfile.flush()
            data = json.dumps(reply.payload).encode()
            self.wfile.write(
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data) + data
            )
            self.wfile.flush()
        except OSError:
            self._record(raw, 0)
            self.close_connection = True
            return
        self._record(raw, reply.status)

    def _is_purge(self, path: str) -> bool:
        return self.command == "POST" and _PURGE_PATH.fullmatch(path) is not None

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _record(self, raw: bytes, status: int) -> None:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {
            name: "***" if name.lower() in SECRET_HEADERS else value
            for name, value in self.headers.items()
        }
        self.server.record_request(
            {
                "method": self.command,
                "path": self.path,
                "status": status,
                "body": body,
                "time": time.monotonic(),
                "headers": headers,
            }
        )

    def _send(self, reply: Reply) -> None:
        data = json.dumps(reply.payload).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    # --- routes ---

    def _route(self, path: str, raw: bytes) -> Reply:
        no_route = ApiError(404, 7003, "No route for the URI")
        if not path.startswith(API_PREFIX + "/"):
            raise no_route
        route = path[len(API_PREFIX) :]
        if self.command == "GET" and route == "/user/tokens/verify":
            return self._verify_token()
        if self.command == "GET" and route == "/zones":
            self._admit()
            return self._list_zones()
        rules_match = _CACHE_RULES_PATH.fullmatch(route)
        if rules_match is not None and self.command == "GET":
            return self._cache_rules(rules_match.group(1))
        match = _ZONE_PATH.fullmatch(route)
        if match is None:
            raise no_route
        zone_id, action = match.groups()
        if self.command != ("GET" if action is None else "POST"):
            raise no_route
        wrong_zone = f"Could not route to {route}, perhaps your object identifier is invalid?"
        if not _ZONE_ID.fullmatch(zone_id):
            raise ApiError(400, 7003, wrong_zone)
        self._admit()
        if zone_id != self.server.settings.zone_id:
            raise ApiError(404, 7003, wrong_zone)
        if action is None:
            if not self.server.settings.zone_readable:
                raise ApiError(403, 9109, "Unauthorized to access requested resource")
            return Reply(200, envelope(self._zone()))
        return self._purge(cast(PurgeMethod, action), raw)

    def _cache_rules(self, zone_id: str) -> Reply:
        settings = self.server.settings
        wrong_zone = "Could not route to the zone, perhaps your object identifier is invalid?"
        if not _ZONE_ID.fullmatch(zone_id):
            raise ApiError(400, 7003, wrong_zone)
        self._admit()
        if zone_id != settings.zone_id:
            raise ApiError(404, 7003, wrong_zone)
        if not settings.cache_rules_readable:
            # What a token without the Cache Rules Read permission gets.
            raise ApiError(403, 10000, "Authentication error")
        if settings.cache_rules is None:
            # A zone that never had a cache rule has no entrypoint ruleset in the phase (the code
            # is this server's choice: clients go by the 404).
            raise ApiError(
                404,
                10003,
                "could not find entrypoint ruleset in the http_request_cache_settings phase",
            )
        return Reply(200, envelope(settings.cache_rules))

    def _bearer_token(self) -> str | None:
        header = self.headers.get("Authorization")
        if header is None:
            return None
        match = _BEARER.fullmatch(header.strip())
        if match is None:
            raise ApiError(
                400,
                6003,
                "Invalid request headers",
                chain=((6111, "Invalid format for Authorization header"),),
            )
        return match.group(1)

    def _admit(self) -> None:
        """Let in a caller with valid credentials and room under the global API limit."""
        settings = self.server.settings
        token = self._bearer_token()
        if settings.open:
            ok = True
        elif token is not None:
            ok = token == settings.api_token
        else:
            email = (self.headers.get("X-Auth-Email") or "").strip().lower()
            key = (self.headers.get("X-Auth-Key") or "").strip()
            ok = (
                settings.api_key is not None
                and settings.api_email is not None
                and key == settings.api_key
                and email == settings.api_email.lower()
            )
        if not ok:
            raise ApiError(403, 10000, "Authentication error")
        self._count_call()

    def _count_call(self) -> None:
        wait = self.server.limiter.admit_call()
        if wait > 0:
            raise ApiError(429, 971, THROTTLED, headers=retry_after(wait))

    def _verify_token(self) -> Reply:
        # Cloudflare answers this route with its own code (1000, HTTP 401), not 10000.
        settings = self.server.settings
        token = self._bearer_token()
        if not settings.open and (token is None or token != settings.api_token):
            raise ApiError(401, 1000, "Invalid API Token")
        self._count_call()
        token_id = hashlib.sha256((token or "").encode()).hexdigest()[:32]
        message = {"code": 10000, "message": "This API Token is valid and active", "type": None}
        return Reply(200, envelope({"id": token_id, "status": "active"}, messages=[message]))

    def _zone(self) -> dict[str, Any]:
        settings = self.server.settings
        return {
            "id": settings.zone_id,
            "name": settings.zone_name,
            "status": "active",
            "paused": False,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "plan": {"legacy_id": settings.plan, "name": PLAN_NAMES[settings.plan]},
        }

    def _list_zones(self) -> Reply:
        settings = self.server.settings
        query = parse_qs(urlsplit(self.path).query)
        # A token without Zone Read sees an empty list rather than an error.
        zones = [self._zone()] if settings.zone_readable else []
        if "name" in query:
            zones = [z for z in zones if name_matches(query["name"][0], z["name"])]
        page, per_page = page_params(query)
        return Reply(200, paginated(zones, page, per_page))

    def _purge(self, method: PurgeMethod, raw: bytes) -> Reply:
        settings = self.server.settings
        kind, items = parse_purge_body(
            raw, settings.max_files_per_request, settings.refuse, settings.refusal
        )
        wait = self.server.limiter.admit_purge(kind, len(items))
        if wait > 0:
            raise ApiError(429, 971, THROTTLED, headers=retry_after(wait))
        record = PurgeRecord(method, kind, items, time.monotonic(), uuid.uuid4().hex)
        self.server.accept(record)
        return Reply(200, envelope({"id": record.id}))


def _fault_error(fault: Fault) -> ApiError:
    code = fault.code
    if code is None:
        code = 971 if fault.status == 429 else CODE_INJECTED_FAILURE
    message = THROTTLED if code == 971 else f"Injected failure (HTTP {fault.status})"
    headers = {}
    if fault.retry_after is not None:
        seconds = fault.retry_after
        headers["Retry-After"] = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
    return ApiError(fault.status, code, message, headers=headers)


# --- listing ----------------------------------------------------------------------------------

PER_PAGE_DEFAULT, PER_PAGE_MIN, PER_PAGE_MAX = 20, 5, 50  # GET /zones, as the schema documents
# Cloudflare's code for a page parameter out of range is not known: this one is a choice.
CODE_BAD_PAGE = 1001
_NAME_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "equal": lambda wanted, name: name == wanted,
    "not_equal": lambda wanted, name: name != wanted,
    "starts_with": lambda wanted, name: name.startswith(wanted),
    "ends_with": lambda wanted, name: name.endswith(wanted),
    "contains": lambda wanted, name: wanted in name,
}


def name_matches(query: str, name: str) -> bool:
    """`GET /zones?name=`: a name, or `OPERATOR:value` (equal, not_equal, starts_with,
    ends_with, contains; a `_case_sensitive` suffix keeps the case, the others ignore it)."""
    operator, colon, wanted = query.partition(":")
    if not colon or operator.removesuffix("_case_sensitive") not in _NAME_OPERATORS:
        operator, wanted = "equal", query
    if operator.endswith("_case_sensitive"):
        return _NAME_OPERATORS[operator.removesuffix("_case_sensitive")](wanted, name)
    return _NAME_OPERATORS[operator](wanted.lower(), name.lower())


def page_params(query: dict[str, list[str]]) -> tuple[int, int]:
    """`page` (from 1) and `per_page` (5 to 50, default 20), or ApiError 400."""

    def number(name: str, default: int, low: int, high: int) -> int:
        raw = query.get(name, [str(default)])[0]
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise ApiError(400, CODE_BAD_PAGE, f"{name} must be a number from {low} to {high}")
        return value

    page = number("page", 1, 1, 2**31 - 1)
    return page, number("per_page", PER_PAGE_DEFAULT, PER_PAGE_MIN, PER_PAGE_MAX)


def paginated(items: list[Any], page: int, per_page: int) -> dict[str, Any]:
    """One page of `items` in the envelope, with `result_info` as Cloudflare's v4 lists give it.

    A page past the last is empty: clients (the official SDK among them) stop at an empty page.
    """
    chunk = items[(page - 1) * per_page : page * per_page]
    payload = envelope(chunk)
    payload["result_info"] = {
        "page": page,
        "per_page": per_page,
        "count": len(chunk),
        "total_count": len(items),
        "total_pages": math.ceil(len(items) / per_page),
    }
    return payload
