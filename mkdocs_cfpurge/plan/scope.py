"""What a purge of one site may reach: its hosts, its path, its extra URLs, the caps.

A fresh plan stays inside the site by construction; a saved plan or pending.json is input (a
plan can come from a pull request's artifact), so every body from any source is checked against
the same scope before anything is sent: URLs and prefixes on the site's hosts and under its path
(or listed in `extra_urls`), a `hosts` purge only of a host the site fills whole, no tags (they
reach the whole zone), `purge_everything` only when allowed, and Cloudflare's caps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from mkdocs_cfpurge.cloudflare.limits import (
    MAX_FILES_PER_REQUEST,
    MAX_ITEMS_PER_FLEX_REQUEST,
    MAX_PREFIX_SEPARATORS,
)
from mkdocs_cfpurge.plan.bodies import Body, item_url, purge_type
from mkdocs_cfpurge.plan.urls import UrlMapper


class OutOfScope(ValueError):
    """A body reaches beyond the site; the message names the entry and the option that would
    let it through."""


@dataclass(frozen=True)
class Scope:
    hosts: frozenset[str]
    schemes: frozenset[str]
    path: str  # the site's path, ending in '/'
    extra_urls: frozenset[str]
    everything_allowed: bool

    @classmethod
    def of(cls, mapper: UrlMapper, extra_urls: Iterable[str], *, everything_allowed: bool) -> Scope:
        return cls(
            frozenset(mapper.hosts),
            frozenset(mapper.schemes),
            mapper.site.path,
            frozenset(extra_urls),
            everything_allowed,
        )

    def _site(self) -> str:
        hosts = ", ".join(sorted(self.hosts))
        return f"the site's hosts ({hosts}; options site_url, hosts) under {self.path}"

    def _inside_path(self, path: str) -> bool:
        # Compared decoded too: '%2e%2e' is '..' to whoever normalises the URL.
        segments = unquote(path).split("/")
        return path.startswith(self.path) and not any(s in (".", "..") for s in segments)

    def check_url(self, url: str) -> None:
        if url in self.extra_urls:
            return
        parts = urlsplit(url)
        if parts.scheme not in self.schemes:
            raise OutOfScope(
                f"URL {url!r}: scheme {parts.scheme or 'none'!r} is not one the site is purged "
                f"for ({', '.join(sorted(self.schemes))}; option schemes)"
            )
        if parts.netloc.lower() not in self.hosts or not self._inside_path(parts.path):
            raise OutOfScope(f"URL {url!r} is outside {self._site()}, and not in extra_urls")

    def check_prefix(self, prefix: str) -> None:
        host, slash, path = prefix.partition("/")
        if host.lower() not in self.hosts or not self._inside_path(slash + path):
            raise OutOfScope(f"prefix {prefix!r} is outside {self._site()}")
        if prefix.count("/") > MAX_PREFIX_SEPARATORS:
            raise OutOfScope(
                f"prefix {prefix!r} has more than Cloudflare's {MAX_PREFIX_SEPARATORS} separators"
            )

    def check_host(self, host: str) -> None:
        if host.lower() not in self.hosts or self.path != "/":
            raise OutOfScope(
                f"host {host!r}: a hosts purge takes down everything cached for it, which only "
                f"a site served at the root of one of its own hosts may do ({self._site()})"
            )

    def check(self, bodies: Sequence[Body]) -> None:
        """OutOfScope for the first entry of `bodies` beyond this scope."""
        for number, body in enumerate(bodies, 1):
            kind = purge_type(body)
            if kind == "purge_everything":
                if not self.everything_allowed:
                    raise OutOfScope(
                        f"request {number} purges everything cached for the whole zone: set "
                        "allow_purge_everything (or strategy: everything) to send that"
                    )
                continue
            if kind == "tags":
                raise OutOfScope(
                    f"request {number} purges cache tags, which reach the whole zone, not only "
                    "this site"
                )
            items = body[kind]
            cap = MAX_FILES_PER_REQUEST if kind == "files" else MAX_ITEMS_PER_FLEX_REQUEST
            if len(items) > cap:
                raise OutOfScope(
                    f"request {number} holds {len(items)} {kind}; Cloudflare takes {cap} at most"
                )
            for item in items:
                if kind == "files":
                    self.check_url(item_url(item))
                elif kind == "prefixes":
                    self.check_prefix(item)
                else:
                    self.check_host(item)
