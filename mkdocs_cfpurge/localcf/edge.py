"""The edge half of the local Cloudflare: a caching reverse proxy that purges act on.

A request names the public URL through its `Host` and `X-Forwarded-Proto` headers. Entries
never expire on their own: an infinite edge TTL is the worst case a purge has to beat.
"""

from __future__ import annotations

import mimetypes
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import unquote, urlsplit

from mkdocs_cfpurge.localcf.base import PurgeRecord, QuietHandler, QuietServer
from mkdocs_cfpurge.localcf.rules import EdgeRules, url_parts

# Request headers a custom cache key may include; `files` purges name them to pick a variant.
VARY_HEADERS = frozenset({"cf-device-type", "cf-ipcountry", "accept-language"})
# Statuses Cloudflare caches by default; anything else (origin 5xx above all) passes through.
CACHEABLE = frozenset({200, 206, 301, 302, 303, 404, 410})
# Hop-by-hop or recomputed; Cache-Tag is stripped before a response reaches visitors.
_DROPPED_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "date",
        "server",
        "cache-tag",
    }
)
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

Headers = tuple[tuple[str, str], ...]
CacheTags = Callable[[str], list[str]]


@dataclass(frozen=True)
class EdgeResponse:
    """What a visitor got from the edge. Header names are lower-case; `cache_status` is the
    `CF-Cache-Status` value, empty when the edge answered without consulting its cache."""

    status: int
    headers: dict[str, str]
    body: bytes
    cache_status: str


@dataclass(frozen=True)
class CacheKey:
    scheme: str
    host: str
    path: str
    query: str
    variant: frozenset[tuple[str, str]] = frozenset()
    # With cache rules: the rules that shaped how the entry is cached. A purge request (method
    # PURGE) that those rules do not match gets another key, and so finds nothing.
    rules: frozenset[str] = frozenset()


def variant(headers: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    return frozenset(
        (name.lower(), value) for name, value in headers if name.lower() in VARY_HEADERS
    )


def key_for_url(url: str, headers: Iterable[tuple[str, str]] = ()) -> CacheKey:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return CacheKey(parts.scheme.lower(), host, parts.path or "/", parts.query, variant(headers))


@dataclass(frozen=True)
class OriginResponse:
    status: int
    headers: Headers
    body: bytes


@dataclass(frozen=True)
class Cached:
    response: OriginResponse  # headers already stripped of _DROPPED_HEADERS
    tags: frozenset[str]  # lower-case: tag purges are case-insensitive


# The key a `files` purge entry (a URL and the headers sent with it) looks up; None: nothing.
FileKey = Callable[[str, Iterable[tuple[str, str]]], "CacheKey | None"]


def _matcher(record: PurgeRecord, file_key: FileKey) -> Callable[[CacheKey, Cached], bool]:
    if record.kind == "purge_everything":
        return lambda key, cached: True
    if record.kind == "files":
        keys = {
            file_key(item, ()) if isinstance(item, str) else file_key(*item)
            for item in record.items
        }
        return lambda key, cached: key in keys
    if record.kind == "prefixes":
        # Only the host part of a prefix is case-insensitive; paths compare as sent.
        prefixes = []
        for item in record.items:
            host, slash, path = str(item).partition("/")
            prefixes.append((host.lower(), slash + path))
        return lambda key, cached: any(
            key.host == host and key.path.startswith(path) for host, path in prefixes
        )
    names = {str(item).lower() for item in record.items}
    if record.kind == "hosts":
        return lambda key, cached: key.host in names
    return lambda key, cached: not names.isdisjoint(cached.tags)


class EdgeCache:
    """Cached responses by key; invalidated entries stay but must be revalidated."""

    def __init__(self, file_key: FileKey = key_for_url) -> None:
        self.file_key = file_key
        self._entries: dict[CacheKey, Cached] = {}
        self._stale: set[CacheKey] = set()
        self._lock = threading.Lock()

    def lookup(self, key: CacheKey) -> tuple[Cached | None, bool]:
        with self._lock:
            return self._entries.get(key), key in self._stale

    def store(self, key: CacheKey, cached: Cached) -> None:
        with self._lock:
            self._entries[key] = cached
            self._stale.discard(key)

    def apply(self, record: PurgeRecord) -> int:
        """Delete (purge_cache) or mark stale (invalidate_cache) what the record matches."""
        matches = _matcher(record, self.file_key)
        with self._lock:
            hit = [key for key, cached in self._entries.items() if matches(key, cached)]
            if record.method == "invalidate_cache":
                self._stale.update(hit)
            else:
                for key in hit:
                    del self._entries[key]
                self._stale.difference_update(hit)
        return len(hit)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


# --- origins ------------------------------------------------------------------------------


class Origin(Protocol):
    def fetch(self, path: str, query: str) -> OriginResponse | None:
        """The origin's answer for a raw (percent-encoded) path, or None if unreachable."""


def _html(status: int, text: str, *extra: tuple[str, str]) -> OriginResponse:
    return OriginResponse(
        status, (("Content-Type", "text/html; charset=utf-8"), *extra), text.encode()
    )


class FolderOrigin:
    """A built site folder served the way static hosts such as GitHub Pages serve it."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise ValueError(f"origin folder {root} does not exist")
        self.root = root.resolve()

    def fetch(self, path: str, query: str) -> OriginResponse:
        try:
            decoded = unquote(path, errors="strict")
        except UnicodeDecodeError:
            return _html(400, "400 Bad Request\n")
        parts = [part for part in decoded.split("/") if part]
        if any(part in (".", "..") or "\\" in part or "\0" in part for part in parts):
            return self._not_found()
        target = self.root.joinpath(*parts)
        if decoded.endswith("/"):
            target = target / "index.html"
        elif target.is_dir():
            location = path + "/" + (f"?{query}" if query else "")
            return _html(301, "301 Moved Permanently\n", ("Location", location))
        try:
            body = target.read_bytes()
        except OSError:
            return self._not_found()
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return OriginResponse(200, (("Content-Type", content_type),), body)

    def _not_found(self) -> OriginResponse:
        # MkDocs writes a 404.html and static hosts serve it with the 404.
        try:
            page = (self.root / "404.html").read_bytes()
        except OSError:
            return _html(404, "404 Not Found\n")
        return OriginResponse(404, (("Content-Type", "text/html"),), page)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The edge caches a redirect as it is; following it would cache the target's bytes."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


class UrlOrigin:
    """An HTTP origin on this machine (a `python -m http.server`, `mkdocs serve`, ...)."""

    def __init__(self, base: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(base)
        if parts.scheme != "http" or parts.hostname not in _LOCAL_HOSTS:
            raise ValueError(f"origin {base!r} must be an http:// URL on 127.0.0.1 or localhost")
        self.base = base.rstrip("/")
        self.timeout = timeout
        # ProxyHandler({}): proxy variables in the environment must not send origin traffic away.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects)

    def fetch(self, path: str, query: str) -> OriginResponse | None:
        url = self.base + path + (f"?{query}" if query else "")
        try:
            with self._opener.open(url, timeout=self.timeout) as response:
                return OriginResponse(response.status, _items(response.headers), response.read())
        except urllib.error.HTTPError as error:  # 3xx (not followed), 4xx and 5xx
            with error:
                return OriginResponse(error.code, _items(error.headers), error.read())
        except OSError:
            return None


def _items(headers: Message) -> Headers:
    return tuple((name, str(value)) for name, value in headers.items())


def make_origin(origin: Path | str) -> Origin:
    if isinstance(origin, str) and origin.startswith(("http://", "https://")):
        return UrlOrigin(origin)
    return FolderOrigin(Path(origin))


# --- the edge server ----------------------------------------------------------------------


class EdgeServer(QuietServer):
    def __init__(
        self,
        address: tuple[str, int],
        *,
        zone_name: str,
        origin: Origin,
        cache_tags: CacheTags | None,
        rules: EdgeRules | None = None,
    ) -> None:
        self.zone_name = zone_name.lower()
        self.origin = origin
        self.cache_tags = cache_tags
        self.rules = rules
        self.cache = EdgeCache(self._purge_key if rules is not None else key_for_url)
        self._lock = threading.Lock()
        self._log: list[dict[str, object]] = []
        super().__init__(address, EdgeHandler)

    @property
    def log(self) -> list[dict[str, object]]:
        with self._lock:
            return list(self._log)

    def serves(self, host: str) -> bool:
        return host == self.zone_name or host.endswith("." + self.zone_name)

    def serve(
        self, scheme: str, host: str, target: str, headers: Iterable[tuple[str, str]]
    ) -> EdgeResponse:
        response = self._serve(scheme, host, target, headers)
        entry = {
            "url": f"{scheme}://{host}{target}",
            "status": response.status,
            "cache_status": response.cache_status,
            "time": time.monotonic(),
        }
        with self._lock:
            self._log.append(entry)
        return response

    def _serve(
        self, scheme: str, host: str, target: str, headers: Iterable[tuple[str, str]]
    ) -> EdgeResponse:
        if not self.serves(host):
            # What Cloudflare shows for a hostname with no DNS record in the zone.
            return _error(530, "error code: 1001")
        path, _, query = target.partition("?")
        key = self._key(scheme, host, path, query, headers, "GET")
        if key is None:  # not eligible for cache under the zone's rules
            fetched = self.origin.fetch(path, query)
            if fetched is None:
                return _error(521, "error code: 521")
            return _answer(self._to_cached(fetched, path).response, "DYNAMIC")
        cached, stale = self.cache.lookup(key)
        if cached is not None and not stale:
            return _answer(cached.response, "HIT")
        fetched = self.origin.fetch(path, query)
        if fetched is None:
            return _error(521, "error code: 521")  # origin down; nothing is cached
        fresh = self._to_cached(fetched, path)
        if fetched.status not in CACHEABLE:
            return _answer(fresh.response, "DYNAMIC")
        self.cache.store(key, fresh)
        return _answer(fresh.response, "EXPIRED" if cached is not None else "MISS")

    def _key(
        self,
        scheme: str,
        host: str,
        path: str,
        query: str,
        headers: Iterable[tuple[str, str]],
        method: str,
    ) -> CacheKey | None:
        """The cache key of a request; None when the zone's rules leave it uncached. Without
        rules, every response is cached, keyed by URL and the custom-key headers sent."""
        if self.rules is None:
            return CacheKey(scheme, host, path, query, variant(headers))
        keying = self.rules.keying(scheme, host, path, query, headers, method)
        if not keying.eligible:
            return None
        return CacheKey(scheme, host, path, keying.query, keying.variant, keying.rules)

    def _purge_key(self, url: str, headers: Iterable[tuple[str, str]]) -> CacheKey | None:
        # Cloudflare looks a `files` entry up as a request with its internal PURGE method.
        return self._key(*url_parts(url), headers, "PURGE")

    def _to_cached(self, fetched: OriginResponse, path: str) -> Cached:
        tags = [
            tag
            for name, value in fetched.headers
            if name.lower() == "cache-tag"
            for tag in value.split(",")
        ]
        if self.cache_tags is not None:
            tags.extend(self.cache_tags(path))
        kept = tuple((n, v) for n, v in fetched.headers if n.lower() not in _DROPPED_HEADERS)
        response = OriginResponse(fetched.status, kept, fetched.body)
        return Cached(response, frozenset(t.strip().lower() for t in tags if t.strip()))


def _answer(response: OriginResponse, cache_status: str) -> EdgeResponse:
    headers = {name.lower(): value for name, value in response.headers}
    headers["cf-cache-status"] = cache_status
    return EdgeResponse(response.status, headers, response.body, cache_status)


def _error(status: int, text: str) -> EdgeResponse:
    return EdgeResponse(status, {"content-type": "text/plain"}, text.encode(), "")


class EdgeHandler(QuietHandler):
    server: EdgeServer

    def do_GET(self) -> None:
        scheme = (self.headers.get("X-Forwarded-Proto") or "https").strip().lower()
        host = (self.headers.get("Host") or "").strip().lower().partition(":")[0]
        response = self.server.serve(scheme, host, self.path, self.headers.items())
        self.reply(response.status, response.headers.items(), response.body)

    do_HEAD = do_GET
