"""What a deploy's freshness depends on besides the changed files, decided for the use case.

- Query-string variants: whether changed pages' `?query` copies are purged (`query_strings`,
  what the site links with, the zone's cache key), and why;
- the zone's Cache Rules: read before the first purge (or why not), applied to the bodies;
- the hashing options: the same for every command, recorded in the manifest, and a note when a
  baseline was hashed with others;
- the mass-change hint: the preset whose noise the pages carry.

`pipeline.py` calls these; nothing here sends a purge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.build.noise import Hashing
from mkdocs_cfpurge.errors import CfPurgeError, UsageError
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.cacherules import (
    CacheRulesCheck,
    CacheRuleset,
    SiteFiles,
    TooBroad,
    ZoneCacheRules,
    cover,
)
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.settings import Settings

if TYPE_CHECKING:  # httpx loads only when a purge really runs
    from mkdocs_cfpurge.cloudflare.client import CloudflareClient


def hashing_of(settings: Settings) -> Hashing:
    """The hashing options every command that hashes takes from its settings."""
    return Hashing(tuple(settings.exclude), tuple(settings.ignore_changes))


@dataclass
class QueryVariants:
    """Whether changed pages' query-string variants are purged (`query_strings`), and why."""

    settings: Settings
    why: str | None  # None: they are not
    rules: ZoneCacheRules | None = None
    ignored_by: dict[str, str] = field(default_factory=dict)  # page -> rule leaving queries out

    @classmethod
    def decide(cls, settings: Settings, rules: ZoneCacheRules | None) -> QueryVariants:
        why = None
        listed = rules.query_parameter_rule() if rules is not None else None
        if settings.query_strings == "on":
            why = "query_strings: on"
        elif settings.query_strings == "auto" and settings.query_links:
            features = ", ".join(settings.query_links)
            why = f"the site links its pages with query strings ({features})"
        elif settings.query_strings == "auto" and listed is not None:
            why = f"{listed.named()} keys the cache on query parameters"
        return cls(settings, why, rules)

    @property
    def needed(self) -> Callable[[str], bool] | None:
        if self.why is None:
            return None
        mapper = self.settings.mapper()

        def needed(page: str) -> bool:
            rule = self.rules.query_ignored_by(mapper.urls(page)) if self.rules else None
            if rule is not None:
                self.ignored_by[page] = rule.named()
            return rule is None

        return needed

    def record(self, plan: PurgePlan) -> None:
        """Say in the plan why the pages' variants were purged, or why some needed nothing."""
        if self.why is None:
            return
        if self.ignored_by or any("query_variants_of" in d for d in plan.decisions):
            plan.decisions.insert(0, {"query_variants": "purged", "why": self.why})
        for rule in sorted(set(self.ignored_by.values())):
            pages = sorted(p for p, r in self.ignored_by.items() if r == rule)
            plan.notes.append(
                f"{rule} leaves query strings out of the cache key: the query variants of "
                f"{len(pages)} changed page(s) share their cached copy, nothing extra is purged"
            )


def apply_cache_rules(
    plan: PurgePlan,
    settings: Settings,
    rules: CacheRulesCheck,
    site: SiteFiles | Manifest | None = None,
) -> None:
    """Rewrite the plan's bodies for the zone's cache rules (see plan/cacherules.py) and say
    why; a covering too broad to send stops here, before anything is sent.

    `site` is what a covering prefix would take down: the site's files and the changed ones, or,
    for a plan made elsewhere (saved, pending, carried), a manifest of the site, the changed
    files being those the plan names. Without either, `max_collateral` cannot be applied.
    """
    plan.notes.append(rules.note)
    if rules.rules is None or not plan.requests:
        return
    if isinstance(site, Manifest):
        site = SiteFiles.named_by(settings.mapper(), site.files.keys(), plan.requests)
    try:
        covering = cover(
            plan.requests,
            rules.rules,
            max_files=settings.max_files_per_request,
            site=site,
            max_collateral=settings.max_collateral,
            allow_everything=settings.allow_purge_everything,
        )
    except TooBroad as exc:
        raise UsageError(exc.message) from None
    prefixes = [d["prefix"] for d in covering.decisions if "prefix" in d]
    if site is None and prefixes:
        _uncounted(prefixes, settings)
        covering.notes.append(
            "cache rules: no manifest of the site here, so what the covering prefixes take "
            "down besides the changed pages is not known and max_collateral was not applied"
        )
    plan.requests = covering.requests
    plan.decisions += covering.decisions
    plan.notes += covering.notes


def _uncounted(prefixes: Sequence[str], settings: Settings) -> None:
    """With nothing to count a covering against, a prefix at the site's root (the site's home
    page changed) would take the whole site unasked: it needs allow_purge_everything."""
    mapper = settings.mapper()
    roots = {f"{host}{mapper.site.path}" for host in mapper.hosts}
    whole = [prefix for prefix in prefixes if prefix in roots]
    if whole and not settings.allow_purge_everything:
        raise UsageError(
            f"the zone's cache rules make a files purge miss, and covering it takes the prefix "
            f"{whole[0]}: the whole site, with no manifest of the site here to count it against "
            "max_collateral; nothing was sent. Give the site's manifest (--manifest), or set "
            "allow_purge_everything: true"
        )


def read_cache_rules(client: CloudflareClient) -> CacheRulesCheck:
    """The preflight beside the zone check: the zone's cache rules, or why they are not known.

    A token without Cache Rules Read is told once, and the purge goes on as if there were none.
    """
    try:
        ruleset = client.get_cache_rules()
    except CfPurgeError as exc:
        if exc.status != 403:
            raise
        log.warning(
            "cfpurge: the token may not read zone %s's cache rules (add Zone → Cache Rules Read "
            "to check them); cache-rule check skipped",
            client.zone_id,
        )
        return CacheRulesCheck(
            None,
            "the zone's cache rules were not checked: the token may not read them (add Zone → "
            "Cache Rules Read)",
        )
    rules = ZoneCacheRules(ruleset or CacheRuleset())
    if ruleset is None or not rules.rules:
        return CacheRulesCheck(rules, "the zone's cache rules: none set cache settings")
    return CacheRulesCheck(
        rules, f"the zone's cache rules: {len(rules.rules)} enabled rule(s) set cache settings"
    )


def unread_cache_rules(settings: Settings) -> CacheRulesCheck | None:
    """What a plan made without sending anything says about the zone's cache rules.

    A dry run (and `plan`) sends no request at all, not even this read-only one: the rules
    are read by the purge, right before it sends.
    """
    if not settings.check_cache_rules:
        return None
    return CacheRulesCheck(
        None,
        "the zone's cache rules were not read (a dry run sends no request): the purge reads "
        "them right before sending, and may then cover some URLs by prefix or per device type",
    )


def mass_change_hint(
    old: Manifest | None, new: Manifest, enabled: Sequence[str] = ()
) -> str | None:
    """When most pages changed, say why that usually happens: the presets whose noise the pages
    carry (and that are not on yet), else the navigation or noise no preset knows."""
    if old is None:
        return None
    # Pages in both builds only: a new version or section adds pages without changing others.
    pages = [p for p in new.files if p.endswith(".html") and p in old.files]
    changed = [p for p in pages if old.files.get(p) != new.files[p]]
    if len(pages) < 10 or len(changed) * 2 <= len(pages):
        return None
    seen = [name for name in new.noise_seen if name not in enabled]
    if seen:
        names = ", ".join(seen)
        cause = (
            f"noise the pages carry: add the preset(s) {names} to `ignore_changes` (every "
            "command that hashes takes the same option)"
        )
    else:
        cause = (
            "noise such as a build date or commit id that `ignore_changes` can absorb with a "
            "regular expression (no preset matches these pages"
            + (f"; on: {', '.join(enabled)}" if enabled else "")
            + ")"
        )
    return (
        f"{len(changed)} of {len(pages)} pages changed: usually a navigation change (a page "
        f"title, a page added or removed) which rewrites every page, or {cause}"
    )


def hashing_note(old: Manifest | None, new: Manifest) -> str | None:
    """Say so when the baseline was hashed with other options than this build: its hashes and
    this build's do not compare like with like."""
    if old is None or old.hashing is None or new.hashing is None:
        return None
    if old.hashing.get("fingerprint") == new.hashing.get("fingerprint"):
        return None
    differ = [
        f"{key} {old.hashing.get(key, [])} → {new.hashing.get(key, [])}"
        for key in ("exclude", "ignore_changes")
        if old.hashing.get(key) != new.hashing.get(key)
    ] or ["the same names, but a preset's patterns changed (an upgrade)"]
    return (
        f"the baseline was hashed with other hashing options ({'; '.join(differ)}): each file "
        "whose hash they touch counts as changed once and is purged now, a file newly excluded "
        "is left out on both sides (neither deleted nor purged, as exclude promises) and one no "
        "longer excluded counts as added; from this deploy on, both sides are hashed alike"
    )
