"""`strategy: auto`: per deploy, the cheapest mix of URLs, prefixes and purge_everything.

URL purges are exact (no unchanged page loses its cache) but cost rate-limit tokens per URL;
a prefix costs 1/100 of a request but takes down every unchanged URL below it. `auto` keeps
exact URLs while the purge fits `max_purge_seconds` under the plan's token buckets, and
otherwise turns folders into prefixes, best ratio of changed to unchanged URLs first, never
taking down more than `max_collateral` unchanged URLs with one prefix.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mkdocs_cfpurge.cloudflare.limits import (
    GLOBAL_REQUESTS,
    GLOBAL_WINDOW,
    MAX_ITEMS_PER_FLEX_REQUEST,
    MAX_PREFIX_SEPARATORS,
    PLAN_LIMITS,
    PlanLimits,
)
from mkdocs_cfpurge.errors import ConfigError
from mkdocs_cfpurge.plan.urls import UrlMapper, ancestors

# The Cloudflare API answers in about this long; the client sends one request at a time.
REQUEST_LATENCY = 0.1
API_RATE, API_BURST = GLOBAL_REQUESTS / GLOBAL_WINDOW, GLOBAL_REQUESTS


def estimate_seconds(
    urls: int,
    prefixes: int,
    limits: PlanLimits,
    max_files: int,
    everything: bool = False,
    *,
    whole_requests: bool = True,
) -> float:
    """How long a purge of `urls` URLs and `prefixes` prefixes takes under the plan's limits.

    `whole_requests=False` counts requests fractionally: the marginal cost of one more URL or
    prefix, for comparing two choices without the steps of rounding up.
    """
    round_up = math.ceil if whole_requests else float
    file_requests = round_up(urls / max_files)
    flex_requests = round_up(prefixes / MAX_ITEMS_PER_FLEX_REQUEST) + int(everything)
    waits = (
        max(0.0, (urls - limits.url_burst) / limits.url_rate),
        max(0.0, (flex_requests - limits.flex_burst) / limits.flex_rate),
        max(0.0, (file_requests + flex_requests - API_BURST) / API_RATE),
    )
    return max(waits) + (file_requests + flex_requests) * REQUEST_LATENCY


@dataclass(frozen=True)
class Budget:
    """What `auto` may spend: seconds under a plan's limits, collateral per prefix."""

    plan_name: str = "free"
    max_seconds: float = 60.0
    max_collateral: int = 100
    allow_everything: bool = False

    @property
    def limits(self) -> PlanLimits:
        return PLAN_LIMITS[self.plan_name]


@dataclass
class AutoChoice:
    folders: list[str] = field(default_factory=list)
    everything: bool = False
    decisions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# Characters MkDocs' link encoding escapes and a browser's raw request does not: a path with
# one of them is cached under two URL paths (see urls.path_encodings).
_ENCODED_TWO_WAYS = frozenset("!$&'()*+,;=:@[]^|")


def _path_count(path: str) -> int:
    """len(mapper.paths(path)), without percent-encoding anything."""
    variants = 2 if path == "index.html" or path.endswith("/index.html") else 1
    return variants if _ENCODED_TWO_WAYS.isdisjoint(path) else 2 * variants


def url_count(mapper: UrlMapper, path: str) -> int:
    """len(mapper.urls(path)) plus its cache-key variants, without percent-encoding anything."""
    per_file = len(mapper.hosts) * len(mapper.schemes) * (1 + len(mapper.cache_key_headers))
    return per_file * _path_count(path)


# Below this many changed URLs, exact URLs are cheap enough that no folder is worth a look.
PREFIX_WORTHWHILE_URLS = 300


class _Picks:
    """Prefix folders picked so far, and what is still left to purge by URL."""

    def __init__(self, counts: dict[str, list[int]], remaining: int) -> None:
        self.counts = counts
        self.remaining = remaining
        self.picked: set[str] = set()
        self.ordered: list[str] = []  # sorted: a folder's picked subfolders are one slice of it

    def covered(self, folder: str) -> bool:
        return folder in self.picked or any(a in self.picked for a in ancestors(folder))

    def _inner(self, folder: str) -> tuple[int, int]:
        low = bisect.bisect_left(self.ordered, folder + "/")
        high = bisect.bisect_left(self.ordered, folder + "0")  # '0' sorts right after '/'
        return low, high

    def trial(self, folder: str) -> tuple[int, int]:
        """(URLs left, folders picked) if `folder` joined, replacing its picked subfolders."""
        low, high = self._inner(folder)
        inner = self.ordered[low:high]
        gained = self.counts[folder][0] - sum(self.counts[p][0] for p in inner)
        return self.remaining - gained, len(self.ordered) - len(inner) + 1

    def add(self, folder: str, remaining: int) -> None:
        low, high = self._inner(folder)
        self.picked.difference_update(self.ordered[low:high])
        del self.ordered[low:high]
        bisect.insort(self.ordered, folder)
        self.picked.add(folder)
        self.remaining = remaining


def choose(
    changed: Sequence[str],
    all_files: Iterable[str],
    mapper: UrlMapper,
    *,
    loose_urls: int,
    budget: Budget,
    max_files: int,
    required: Sequence[str] = (),
    fixed_prefixes: int = 0,
) -> AutoChoice:
    """Pick prefix folders (or purge_everything) for a purge that is exact where it can be and
    fits the time budget.

    Folders whose every file changed become prefixes first when they replace at least a full
    request of URLs: as exact as URLs, in far fewer requests. Then, only if the purge still does
    not fit, folders with some unchanged URLs (at most `max_collateral`), best ratio first. A
    folder is only taken when it shortens the purge. `changed` are the changed file paths;
    `loose_urls` counts URLs no folder can cover (extra URLs, slashless folder variants).
    `required` folders are prefixes the purge needs whatever it costs (query variants): they
    are taken first, and a parent folder may replace several of them. `fixed_prefixes` counts
    prefixes sent besides the folders (per host already).
    """
    limits, plan_name = budget.limits, budget.plan_name
    max_seconds, max_collateral = budget.max_seconds, budget.max_collateral
    per_file = len(mapper.hosts) * len(mapper.schemes) * (1 + len(mapper.cache_key_headers))
    changed_set = set(changed)
    remaining = sum(per_file * _path_count(p) for p in changed_set) + loose_urls
    choice = AutoChoice()

    def seconds(urls: int, folders: int, whole_requests: bool = True) -> float:
        prefixes = folders * len(mapper.hosts) + fixed_prefixes
        return estimate_seconds(urls, prefixes, limits, max_files, whole_requests=whole_requests)

    if not required and remaining < PREFIX_WORTHWHILE_URLS and seconds(remaining, 0) <= max_seconds:
        return choice  # the common case: no need to look at the unchanged files at all
    counts: dict[str, list[int]] = {}  # folder -> [changed URLs, unchanged URLs]
    for path in (*changed_set, *(p for p in all_files if p not in changed_set)):
        weight = per_file * _path_count(path)
        slot = 0 if path in changed_set else 1
        for folder in ancestors(path):
            entry = counts.get(folder)
            if entry is None:
                entry = counts[folder] = [0, 0]
            entry[slot] += weight
    picks = _Picks(counts, remaining)
    for folder in required:
        counts.setdefault(folder, [0, 0])
        if not picks.covered(folder):
            picks.add(folder, picks.trial(folder)[0])

    def consider(folders: Iterable[str], stop_when_fits: bool) -> None:
        now = seconds(picks.remaining, len(picks.ordered), whole_requests=False)
        for folder in folders:
            if stop_when_fits and seconds(picks.remaining, len(picks.ordered)) <= max_seconds:
                return
            if picks.covered(folder):
                continue
            left, n_folders = picks.trial(folder)
            then = seconds(left, n_folders, whole_requests=False)
            if then < now:
                picks.add(folder, left)
                now = then

    # Shallowest first: a whole changed folder then covers its subfolders at once.
    whole = sorted(
        (f for f, (c, u) in counts.items() if u == 0 and c >= max_files and _depth_ok(mapper, f)),
        key=lambda f: (f.count("/"), f),
    )
    consider(whole, stop_when_fits=False)
    partial = sorted(
        (f for f, (c, u) in counts.items() if c and u <= max_collateral and _depth_ok(mapper, f)),
        key=lambda f: (-counts[f][0] / (counts[f][1] + 1), -counts[f][0], f),
    )
    consider(partial, stop_when_fits=True)

    needed = seconds(picks.remaining, len(picks.ordered))
    if needed <= max_seconds:
        choice.folders = list(picks.ordered)
        choice.decisions = [
            {
                "prefix_folder": f + "/",
                "changed_urls": counts[f][0],
                "unchanged_urls": counts[f][1],
            }
            for f in choice.folders
            if f not in required  # recorded with the reason they were needed
        ]
        if choice.decisions:
            choice.notes.append(
                f"auto: {len(choice.folders)} folder prefix(es) and {picks.remaining} URL(s), "
                f"about {needed:.0f}s on the {plan_name} plan (budget {max_seconds:.0f}s)"
            )
        return choice
    if budget.allow_everything:
        choice.everything = True
        choice.notes.append(
            f"auto: purge_everything: even with prefixes the purge would take about "
            f"{needed:.0f}s on the {plan_name} plan (budget {max_seconds:.0f}s)"
        )
        return choice
    raise ConfigError(
        "strategy",
        f"auto cannot fit this purge in max_purge_seconds "
        f"({max_seconds:.0f}s): {picks.remaining} URL(s) and {len(picks.ordered)} prefix "
        f"folder(s) would take about {needed:.0f}s on the {plan_name} plan with max_collateral "
        f"{max_collateral}. Raise max_purge_seconds or max_collateral, set cloudflare_plan to "
        "your real plan, or set allow_purge_everything: true",
    )


def _depth_ok(mapper: UrlMapper, folder: str) -> bool:
    # A prefix is host + site path + folder + "/": percent-encoding adds no separator.
    return mapper.site.path.count("/") + folder.count("/") + 1 <= MAX_PREFIX_SEPARATORS
