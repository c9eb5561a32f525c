"""`strategy: auto`: per deploy, the cheapest mix of URLs, prefixes and purge_everything.

URL purges are exact (no unchanged page loses its cache) but cost rate-limit tokens per URL;
a prefix costs 1/100 of a request but takes down every unchanged URL below it. `auto` keeps
exact URLs while the purge fits `max_purge_seconds` under the plan's token buckets, and
otherwise turns folders into prefixes, best ratio of changed to unchanged URLs first, never
taking down more than `max_collateral` unchanged URLs with one prefix.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mkdocs_cfpurge.errors import CfPurgeError
from mkdocs_cfpurge.limits import (
    GLOBAL_REQUESTS,
    GLOBAL_WINDOW,
    MAX_ITEMS_PER_FLEX_REQUEST,
    MAX_PREFIX_SEPARATORS,
    PLAN_LIMITS,
    PlanLimits,
)
from mkdocs_cfpurge.urls import UrlMapper

# The Cloudflare API answers in about this long; the client sends one request at a time.
REQUEST_LATENCY = 0.1
API_RATE, API_BURST = GLOBAL_REQUESTS / GLOBAL_WINDOW, GLOBAL_REQUESTS


def estimate_seconds(
    urls: int, prefixes: int, limits: PlanLimits, max_files: int, everything: bool = False
) -> float:
    """How long a purge of `urls` URLs and `prefixes` prefixes takes under the plan's limits."""
    file_requests = math.ceil(urls / max_files)
    flex_requests = math.ceil(prefixes / MAX_ITEMS_PER_FLEX_REQUEST) + int(everything)
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


def _ancestors(path: str) -> Iterable[str]:
    folder = posixpath.dirname(path)
    while folder:
        yield folder
        folder = posixpath.dirname(folder)


def choose(
    changed: Sequence[str],
    all_files: Iterable[str],
    mapper: UrlMapper,
    *,
    loose_urls: int,
    budget: Budget,
    max_files: int,
) -> AutoChoice:
    """Pick prefix folders (or purge_everything) so the purge fits the time budget.

    `changed` are the changed file paths; `loose_urls` counts URLs no folder can cover (extra
    URLs, slashless folder variants).
    """
    limits, plan_name = budget.limits, budget.plan_name
    max_seconds, max_collateral = budget.max_seconds, budget.max_collateral
    per_file = len(mapper.hosts) * len(mapper.schemes) * (1 + len(mapper.cache_key_headers))
    changed_set = set(changed)
    counts: dict[str, list[int]] = {}  # folder -> [changed URLs, unchanged URLs]
    for path in set(all_files) | changed_set:
        weight = per_file * len(mapper.paths(path))
        slot = 0 if path in changed_set else 1
        for folder in _ancestors(path):
            counts.setdefault(folder, [0, 0])[slot] += weight
    remaining = sum(per_file * len(mapper.paths(p)) for p in changed_set) + loose_urls
    choice = AutoChoice()

    def fits(urls: int, folders: int) -> bool:
        prefixes = folders * len(mapper.hosts)
        return estimate_seconds(urls, prefixes, limits, max_files) <= max_seconds

    if fits(remaining, 0):
        return choice
    candidates = sorted(
        (f for f, (c, u) in counts.items() if c and u <= max_collateral and _depth_ok(mapper, f)),
        key=lambda f: (-counts[f][0] / (counts[f][1] + 1), -counts[f][0], f),
    )
    picked: dict[str, None] = {}
    for folder in candidates:
        if fits(remaining, len(picked)):
            break
        if any(a in picked for a in _ancestors(folder)):
            continue
        inner = [p for p in picked if p.startswith(folder + "/")]
        # URLs the new prefix covers beyond the prefixes it replaces.
        gained = counts[folder][0] - sum(counts[p][0] for p in inner)
        for p in inner:
            del picked[p]
        picked[folder] = None
        remaining -= gained
    needed = estimate_seconds(remaining, len(picked) * len(mapper.hosts), limits, max_files)
    if needed <= max_seconds:
        choice.folders = sorted(picked)
        choice.decisions = [
            {
                "prefix_folder": f + "/",
                "changed_urls": counts[f][0],
                "unchanged_urls": counts[f][1],
            }
            for f in choice.folders
        ]
        choice.notes.append(
            f"auto: {len(choice.folders)} folder prefix(es) and {remaining} URL(s), about "
            f"{needed:.0f}s on the {plan_name} plan (budget {max_seconds:.0f}s)"
        )
        return choice
    if budget.allow_everything:
        choice.everything = True
        choice.notes.append(
            f"auto: purge_everything: even with prefixes the purge would take about "
            f"{needed:.0f}s on the {plan_name} plan (budget {max_seconds:.0f}s)"
        )
        return choice
    raise CfPurgeError(
        f"option 'strategy': auto cannot fit this purge in max_purge_seconds "
        f"({max_seconds:.0f}s): {remaining} URL(s) and {len(picked)} prefix folder(s) would take "
        f"about {needed:.0f}s on the {plan_name} plan with max_collateral {max_collateral}. "
        "Raise max_purge_seconds or max_collateral, set cloudflare_plan to your real plan, or "
        "set allow_purge_everything: true"
    )


def _depth_ok(mapper: UrlMapper, folder: str) -> bool:
    return all(p.count("/") <= MAX_PREFIX_SEPARATORS for p in mapper.prefixes(folder))
