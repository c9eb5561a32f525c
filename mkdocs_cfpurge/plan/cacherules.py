"""The zone's Cache Rules, turned into decisions about the purge bodies.

A purge answered 200 can leave a page stale when a Cache Rule shapes how that page is cached
(shared/reference/cloudflare.md, "Cache Rules that change what a purge does"):

- a rule that makes the page eligible for cache (or sets its cache key) but whose expression
  cannot match Cloudflare's internal purge request (`http.request.method eq "GET"`): a `files`
  purge of the page evicts nothing. Its URLs are purged by prefix instead, or, when a prefix
  would take down too much, nothing is sent and the error names the rule and its fix;
- a custom cache key by device type: every URL also goes out once per `CF-Device-Type`;
- a custom key by country, language, header or cookie: values no `files` entry can list, so the
  URL is purged by prefix;
- a key that leaves query strings out: a page's query variants share its cached copy, so they
  need nothing extra.

Expressions are read by `ruleexpr` conservatively: what it cannot evaluate counts as "may
match", and a method clause it cannot evaluate counts as "may not match the purge". Every
decision, with its reason, goes into the plan.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from mkdocs_cfpurge.cloudflare.limits import MAX_PREFIX_SEPARATORS
from mkdocs_cfpurge.plan.bodies import Body, item_url, merge_requests
from mkdocs_cfpurge.plan.ruleexpr import Expression
from mkdocs_cfpurge.plan.urls import UrlMapper

PHASE = "http_request_cache_settings"
DEVICE_TYPES = ("mobile", "tablet", "desktop")
DEVICE_HEADER = "CF-Device-Type"
SHOWN = 5  # URLs a decision lists as examples
METHOD_FIX = 'add `or http.request.method eq "PURGE"` to its expression, or drop the method clause'


# --- the API's ruleset ---------------------------------------------------------------------


class CacheRule(BaseModel):
    """One rule of the zone's `http_request_cache_settings` entrypoint ruleset."""

    model_config = ConfigDict(extra="ignore")

    id: str = ""
    description: str = ""
    expression: str = "true"
    action: str = ""
    action_parameters: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True

    def named(self) -> str:
        """How messages name the rule: its id and description."""
        text = f"cache rule {self.id or '(no id)'}"
        return text + (f" ({self.description!r})" if self.description else "")


class CacheRuleset(BaseModel):
    """`GET /zones/{zone_id}/rulesets/phases/http_request_cache_settings/entrypoint`'s result."""

    model_config = ConfigDict(extra="ignore")

    id: str = ""
    name: str = ""
    phase: str = PHASE
    rules: list[CacheRule] = Field(default_factory=list)


def _enabled(part: Any) -> bool:
    """A custom-key part that puts request values in the key (`{"include": [...]}`, `true`)."""
    if isinstance(part, dict):
        return any(bool(value) for key, value in part.items() if key != "exclude_origin")
    return bool(part)


@dataclass(frozen=True)
class ReadRule:
    """A `set_cache_settings` rule and what it does to the cache key."""

    rule: CacheRule
    expression: Expression
    shapes_cache: bool  # makes responses eligible for cache, or sets their cache key
    device_type: bool
    unlistable: tuple[str, ...]  # key parts no files entry can name: geo, lang, header, cookie
    query: str | None  # "ignored", "listed" (some parameters), "all", or None: not set

    @classmethod
    def of(cls, rule: CacheRule) -> ReadRule:
        params = rule.action_parameters
        key = params.get("cache_key") or {}
        custom = key.get("custom_key") or {} if isinstance(key, dict) else {}
        user = custom.get("user") or {}
        unlistable = [part for part in ("geo", "lang") if user.get(part)]
        unlistable += [part for part in ("header", "cookie") if _enabled(custom.get(part))]
        return cls(
            rule,
            Expression.read(rule.expression),
            shapes_cache=params.get("cache") is True or bool(custom),
            device_type=bool(user.get("device_type")),
            unlistable=tuple(unlistable),
            query=_query_key(custom.get("query_string")),
        )


def _query_key(part: Any) -> str | None:
    if not isinstance(part, dict):
        return None
    exclude, include = part.get("exclude") or {}, part.get("include") or {}
    if exclude.get("all") is True:
        return "ignored"
    if include.get("list"):
        return "listed"
    return "all"


@dataclass(frozen=True)
class UrlEffects:
    """What the zone's rules mean for a `files` purge of one URL."""

    noop: tuple[CacheRule, ...] = ()  # may cache it, may not match the purge: evicts nothing
    device_type: tuple[CacheRule, ...] = ()
    unlistable: tuple[tuple[CacheRule, str], ...] = ()
    query_ignored_by: CacheRule | None = None  # surely keys it without the query string

    @property
    def needs_prefix(self) -> bool:
        return bool(self.noop or self.unlistable)


class ZoneCacheRules:
    """The zone's enabled `set_cache_settings` rules, each expression parsed once."""

    def __init__(self, ruleset: CacheRuleset) -> None:
        self.ruleset = ruleset
        self.rules = [
            ReadRule.of(rule)
            for rule in ruleset.rules
            if rule.enabled and rule.action == "set_cache_settings"
        ]

    def effects(self, url: str) -> UrlEffects:
        """The rules that may match a GET of `url`, in order (later rules override earlier)."""
        noop: list[CacheRule] = []
        device: list[CacheRule] = []
        unlistable: list[tuple[CacheRule, str]] = []
        query_ignored_by: CacheRule | None = None
        for read in self.rules:
            on_get = read.expression.matches(url, "GET")
            if on_get is False:
                continue
            # Without a method clause, GET and PURGE evaluate alike: nothing to check.
            if (
                read.shapes_cache
                and read.expression.mentions_method
                and read.expression.matches(url, "PURGE") is not True
            ):
                noop.append(read.rule)
            if read.device_type:
                device.append(read.rule)
            unlistable += [(read.rule, part) for part in read.unlistable]
            if read.query == "ignored" and on_get is True:
                query_ignored_by = read.rule
            elif read.query is not None:
                query_ignored_by = None  # a later rule that may match keys on the query again
        return UrlEffects(tuple(noop), tuple(device), tuple(unlistable), query_ignored_by)

    def query_ignored_by(self, urls: Sequence[str]) -> CacheRule | None:
        """The rule that leaves the query string out of every one of these URLs' cache keys:
        their query variants share one cached copy and need nothing extra."""
        found = [self.effects(url).query_ignored_by for url in urls]
        if not found or None in found:
            return None
        return found[0]

    def query_parameter_rule(self) -> CacheRule | None:
        """A rule whose cache key lists query parameters: the site is reached with them."""
        return next((read.rule for read in self.rules if read.query == "listed"), None)


@dataclass(frozen=True)
class CacheRulesCheck:
    """What the preflight learnt: the rules, or why there are none to go by."""

    rules: ZoneCacheRules | None  # None: not read (a dry run, a token without the permission)
    note: str  # one line for the plan: read, none, skipped, not read


# --- bodies under the rules ----------------------------------------------------------------


@dataclass(frozen=True)
class SiteFiles:
    """The site's files (both builds) and the changed ones: what a prefix takes down."""

    mapper: UrlMapper
    files: Collection[str]
    changed: Collection[str]

    @classmethod
    def named_by(
        cls, mapper: UrlMapper, files: Collection[str], requests: Sequence[Body]
    ) -> SiteFiles:
        """The site's `files`, the changed ones being those the bodies' URLs name: what a
        saved, pending or carried plan's prefixes take down, its changes not computed here."""
        named = {
            urlsplit(item_url(entry)).path for body in requests for entry in body.get("files", ())
        }
        changed = [name for name in files if not named.isdisjoint(mapper.paths(name))]
        return cls(mapper, files, changed)

    @cached_property
    def _unchanged_paths(self) -> list[str]:
        """Every URL path of every unchanged file, sorted (once per scheme and variant)."""
        changed = set(self.changed)
        per_path = len(self.mapper.schemes) * (1 + len(self.mapper.cache_key_headers))
        return sorted(
            url_path
            for name in self.files
            if name not in changed
            for url_path in self.mapper.paths(name)
            for _ in range(per_path)
        )

    def collateral(self, prefix: str) -> int:
        """Unchanged URLs of the site a prefix (`host/path`) purges too: every scheme and
        every cache-key variant of the paths below it."""
        host, _, path = prefix.partition("/")
        if host not in self.mapper.hosts:
            return 0
        paths, below = self._unchanged_paths, "/" + path
        return bisect.bisect_left(paths, below + "\U0010ffff") - bisect.bisect_left(paths, below)

    def widest_exact(self, prefix: str) -> str:
        """The outermost folder prefix of the site above `prefix` below which every file
        changed (so it purges nothing unchanged), else `prefix`: a whole changed folder goes
        as one prefix, not one per file."""
        host, _, path = prefix.partition("/")
        base = self.mapper.site.path  # never above the site: the host may serve more
        at = path.find("/", len(base) - 1)
        while at != -1 and at + 1 < len(path):
            candidate = f"{host}/{path[: at + 1]}"
            if self.collateral(candidate) == 0:
                return candidate
            at = path.find("/", at + 1)
        return prefix


def prefix_of(url: str) -> str:
    """The prefix at a URL's own path: host + path, no scheme, no query; cut back to the
    deepest folder Cloudflare takes (at most 31 separators)."""
    parts = urlsplit(url)
    prefix = f"{parts.netloc.lower()}{parts.path or '/'}"
    if prefix.count("/") > MAX_PREFIX_SEPARATORS:
        prefix = "/".join(prefix.split("/")[:MAX_PREFIX_SEPARATORS]) + "/"
    return prefix


def _covering(prefixes: Collection[str], target: str) -> str | None:
    """The outermost prefix of the set that covers `target` (a prefix itself): a folder prefix
    ending at one of its '/', or `target` itself."""
    at = target.find("/")
    while at != -1:
        if target[: at + 1] in prefixes:
            return target[: at + 1]
        at = target.find("/", at + 1)
    return target if target in prefixes else None


@dataclass
class Covering:
    """The bodies to send under the zone's rules, and why they differ from the plan's."""

    requests: list[Body]
    decisions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class TooBroad(Exception):
    """Covering the URLs a rule makes unpurgeable by file would take down too much."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _with_device(entry: str | dict[str, Any]) -> list[dict[str, Any]]:
    url = item_url(entry)
    headers = dict(entry.get("headers", {})) if isinstance(entry, dict) else {}
    if any(name.lower() == DEVICE_HEADER.lower() for name in headers):
        return []  # already one device type's entry (`cache_key_headers`)
    return [{"url": url, "headers": {**headers, DEVICE_HEADER: d}} for d in DEVICE_TYPES]


def cover(
    requests: Sequence[Body],
    rules: ZoneCacheRules,
    *,
    max_files: int,
    site: SiteFiles | None = None,
    max_collateral: int | None = None,
    allow_everything: bool = False,
) -> Covering:
    """Rewrite `files` bodies the rules would make miss: prefixes for what no URL entry can
    reach, device-type entries for device keys. Other bodies go out as they are.

    A prefix that would purge more than `max_collateral` unchanged URLs of `site` is refused:
    `purge_everything` when allowed, else `TooBroad` (nothing may be sent).
    """
    entries = [item for body in requests if "files" in body for item in body["files"]]
    others = [body for body in requests if "files" not in body]
    effects = {item_url(entry): rules.effects(item_url(entry)) for entry in entries}
    covering = Covering([])
    by_rule: dict[str, tuple[CacheRule, str, list[str]]] = {}

    def record(rule: CacheRule, effect: str, url: str) -> None:
        by_rule.setdefault(f"{rule.id}\0{effect}", (rule, effect, []))[2].append(url)

    prefixes: dict[str, list[str]] = {}
    for url, found in effects.items():
        for rule in found.noop:
            record(rule, "get-only", url)
        for rule, part in found.unlistable:
            record(rule, f"key-{part}", url)
        if found.needs_prefix:
            prefix = prefix_of(url)
            prefixes.setdefault(site.widest_exact(prefix) if site else prefix, []).append(url)
        else:
            for rule in found.device_type:
                record(rule, "device-type", url)
    kept_prefixes = _outermost(prefixes)
    outer = set(kept_prefixes)
    replaces: dict[str, list[str]] = {prefix: [] for prefix in kept_prefixes}
    for prefix, urls in prefixes.items():
        replaces[_covering(outer, prefix) or prefix] += urls
    kept: list[str | dict[str, Any]] = []
    for entry in entries:
        url = item_url(entry)
        if _covering(outer, prefix_of(url)) is not None:
            continue
        kept.append(entry)
        if effects[url].device_type:
            kept += _with_device(entry)
    for prefix in kept_prefixes:
        unchanged = site.collateral(prefix) if site is not None else None
        replaced = sorted(set(replaces[prefix]))
        decision: dict[str, Any] = {
            "prefix": prefix,
            "replaces_urls": len(replaced),
            "examples": replaced[:SHOWN],
            "why": "the zone's cache rules: no files entry reaches these cache keys",
        }
        if unchanged is not None:
            decision["unchanged_urls"] = unchanged
        covering.decisions.append(decision)
        if max_collateral is not None and unchanged is not None and unchanged > max_collateral:
            if not allow_everything:
                raise TooBroad(_too_broad(by_rule, prefix, unchanged, max_collateral))
            covering.requests = [{"purge_everything": True}]
            covering.notes.append(
                f"cache rules: covering {prefix} would purge {unchanged} unchanged URL(s) (more "
                f"than max_collateral {max_collateral}): purge_everything instead"
            )
    for rule, effect, urls in by_rule.values():
        covering.decisions.append(
            {
                "cache_rule": rule.id,
                "description": rule.description,
                "effect": effect,
                "urls": len(urls),
                "reason": _REASONS[effect],
            }
        )
        covering.notes.append(_note(rule, effect, len(urls)))
    if not covering.requests:
        bodies = [*others, *([{"files": kept}] if kept else [])]
        bodies += [{"prefixes": [prefix]} for prefix in kept_prefixes]
        covering.requests = merge_requests(bodies, max_files=max_files)
    return covering


def _outermost(prefixes: Iterable[str]) -> list[str]:
    """Each prefix once, without those another (folder) prefix of the set already covers."""
    kept: list[str] = []
    seen: set[str] = set()
    for prefix in sorted(set(prefixes), key=lambda p: (p.count("/"), p)):  # outer ones first
        if _covering(seen, prefix) is None:
            kept.append(prefix)
            seen.add(prefix)
    return sorted(kept)


_REASONS = {
    "get-only": "its expression may match GET requests but not Cloudflare's purge requests "
    "(another method): a files purge answers 200 and evicts nothing",
    "device-type": "its cache key holds the device type: each URL is purged once per "
    "CF-Device-Type (mobile, tablet, desktop)",
    "key-geo": "its cache key holds the visitor's country: no files entry lists them all",
    "key-lang": "its cache key holds the visitor's language: no files entry lists them all",
    "key-header": "its cache key holds request headers: no files entry lists their values",
    "key-cookie": "its cache key holds cookies: no files entry lists their values",
}


def _note(rule: CacheRule, effect: str, count: int) -> str:
    if effect == "get-only":
        return (
            f"{rule.named()} matches GET requests only ({rule.expression}): Cloudflare's purge "
            f"requests use another method, so a files purge of the {count} URL(s) it caches "
            f"would answer 200 and evict nothing; they are purged by prefix. Fix: {METHOD_FIX}"
        )
    if effect == "device-type":
        return (
            f"{rule.named()} keys the cache by device type: {count} URL(s) also purged for "
            f"CF-Device-Type {', '.join(DEVICE_TYPES)}"
        )
    return f"{rule.named()}: {_REASONS[effect]}; {count} URL(s) purged by prefix"


def _too_broad(
    by_rule: dict[str, tuple[CacheRule, str, list[str]]],
    prefix: str,
    unchanged: int,
    max_collateral: int,
) -> str:
    causes = []
    for rule, effect, _ in by_rule.values():
        if effect == "get-only":
            causes.append(f"{rule.named()} matches GET requests only; fix: {METHOD_FIX}")
        elif effect != "device-type":
            causes.append(f"{rule.named()}: {_REASONS[effect]}")
    return (
        f"the zone's cache rules make a files purge miss, and covering it by prefix {prefix} "
        f"would purge {unchanged} unchanged URL(s) (max_collateral {max_collateral}): nothing "
        f"was sent. {'; '.join(causes)}. Or raise max_collateral, or set "
        "allow_purge_everything: true"
    )
