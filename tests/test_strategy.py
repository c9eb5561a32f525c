"""`strategy: auto`: exact URLs while they fit the budget, else prefixes, else (if allowed) all."""

from __future__ import annotations

import pytest

from mkdocs_cfpurge.cloudflare.limits import PLAN_LIMITS
from mkdocs_cfpurge.errors import CfPurgeError
from mkdocs_cfpurge.plan.auto import Budget, estimate_seconds
from mkdocs_cfpurge.plan.changes import diff
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.plan.planner import build_plan
from mkdocs_cfpurge.plan.urls import SiteUrl, UrlMapper
from tests.cfschema import load_purge_body_validator

SITE = SiteUrl.parse("https://docs.example.com/")
MAPPER = UrlMapper.create(SITE)
validate = load_purge_body_validator()


def site(sections: int, pages: int) -> dict[str, str]:
    files = {"index.html": "h", "assets/site.css": "c"}
    files.update({f"s{s}/p{p}/index.html": "v1" for s in range(sections) for p in range(pages)})
    return files


def plan_for(old: dict[str, str], new: dict[str, str], budget: Budget) -> PurgePlan:
    return build_plan(
        diff(old, new),
        MAPPER,
        strategy="auto",
        old_files=old.keys(),
        new_files=new.keys(),
        budget=budget,
    )


def covered(plan: PurgePlan, url: str) -> bool:
    bare = url.split("://", 1)[1]
    for body in plan.requests:
        if body.get("purge_everything") or url in body.get("files", ()):
            return True
        if any(bare.startswith(prefix) for prefix in body.get("prefixes", ())):
            return True
    return False


def check(plan: PurgePlan, old: dict[str, str], new: dict[str, str]) -> tuple[int, int]:
    """Every changed URL covered, every body valid; return (changed URLs, unchanged purged)."""
    for body in plan.requests:
        validate(body)
    changed = {c.path for c in diff(old, new)}
    missed = [u for p in changed for u in MAPPER.urls(p) if not covered(plan, u)]
    assert not missed
    collateral = sum(1 for p in new.keys() - changed for u in MAPPER.urls(p) if covered(plan, u))
    return sum(len(MAPPER.urls(p)) for p in changed), collateral


def test_a_small_change_goes_out_as_exact_urls() -> None:
    old = site(10, 50)
    new = {**old, "s3/p7/index.html": "v2"}
    plan = plan_for(old, new, Budget())
    assert all("files" in body for body in plan.requests)
    assert check(plan, old, new)[1] == 0
    assert plan.decisions == []


def test_over_budget_whole_changed_sections_become_prefixes_with_no_collateral() -> None:
    old = site(10, 500)
    new = {**old, **{f"s{s}/p{p}/index.html": "v2" for s in range(5) for p in range(500)}}
    budget = Budget("free", max_seconds=5)
    files_only = estimate_seconds(5000, 0, PLAN_LIMITS["free"], 30)
    assert files_only > budget.max_seconds  # exact URLs alone would not fit

    plan = plan_for(old, new, budget)

    prefixes = [p for body in plan.requests for p in body.get("prefixes", ())]
    assert prefixes and all(p.endswith("/") and "://" not in p for p in prefixes)
    assert check(plan, old, new)[1] == 0
    assert {d["prefix_folder"] for d in plan.decisions} <= {f"s{s}/" for s in range(5)}
    assert all(d["unchanged_urls"] == 0 and d["changed_urls"] == 1000 for d in plan.decisions)
    assert any("auto:" in note and "budget 5s" in note for note in plan.notes)


@pytest.mark.slow  # plans for sites of many thousand pages: seconds
def test_a_prefix_never_takes_down_more_than_max_collateral_unchanged_urls() -> None:
    old = site(10, 500)
    # Half of every section changes: a section prefix would take 500 unchanged URLs down.
    new = {**old, **{f"s{s}/p{p}/index.html": "v2" for s in range(10) for p in range(250)}}
    plan = plan_for(old, new, Budget("free", max_seconds=5, max_collateral=100))
    _, collateral = check(plan, old, new)
    assert all(d["unchanged_urls"] <= 100 for d in plan.decisions)
    assert collateral <= 100 * len(plan.decisions)
    assert not any(d["prefix_folder"] in {f"s{s}/" for s in range(10)} for d in plan.decisions)


def test_when_nothing_fits_auto_stops_with_the_numbers_or_purges_everything_if_allowed() -> None:
    old = {f"f{i}.html": "v1" for i in range(6000)}  # top-level files: no folder to prefix
    new = {path: "v2" for path in old}
    with pytest.raises(CfPurgeError) as refused:
        plan_for(old, new, Budget("free", max_seconds=2))
    message = str(refused.value)
    for needle in ("max_purge_seconds", "max_collateral", "allow_purge_everything", "6000 URL"):
        assert needle in message

    plan = plan_for(old, new, Budget("free", max_seconds=2, allow_everything=True))
    assert plan.requests == [{"purge_everything": True}]
    assert any("purge_everything" in note for note in plan.notes)


@pytest.mark.slow  # plans for sites of many thousand pages: seconds
def test_a_faster_plan_keeps_exact_urls_where_free_needs_prefixes() -> None:
    old = site(10, 500)
    # Half of every section: no folder changed whole, so only the budget calls for prefixes.
    new = {**old, **{f"s{s}/p{p}/index.html": "v2" for s in range(10) for p in range(250)}}
    # 5,000 URLs: about 22 s on Free (800 URLs/s), 19 s on Pro (1,500 URLs/s).
    free = plan_for(old, new, Budget("free", max_seconds=20))
    pro = plan_for(old, new, Budget("pro", max_seconds=20))
    assert any("prefixes" in body for body in free.requests)
    assert check(free, old, new)[1] == 0  # one-page folders: no collateral either
    assert all("files" in body for body in pro.requests)
    assert check(pro, old, new)[1] == 0


def test_whole_changed_folders_go_out_as_prefixes_even_within_budget() -> None:
    """A navigation change rewrites every page: a prefix per section is as exact as the URLs,
    in a handful of requests instead of hundreds."""
    old = site(4, 500)
    new = {path: "v2" for path in old}
    plan = plan_for(old, new, Budget("pro", max_seconds=600))
    assert sorted(d["prefix_folder"] for d in plan.decisions) == [f"s{s}/" for s in range(4)]
    assert check(plan, old, new)[1] == 0
    assert len(plan.requests) <= 2  # one prefixes body, one files body for the top level
    small = plan_for(old, {**old, "s1/p1/index.html": "v2"}, Budget("pro", max_seconds=600))
    assert small.decisions == [] and all("files" in body for body in small.requests)


def test_estimates_grow_with_the_work_and_shrink_with_the_plan() -> None:
    free, pro = PLAN_LIMITS["free"], PLAN_LIMITS["pro"]
    assert estimate_seconds(100, 0, free, 30) < estimate_seconds(20000, 0, free, 30)
    assert estimate_seconds(20000, 0, pro, 30) < estimate_seconds(20000, 0, free, 30)
    # Free allows 25 prefix requests at once, then 5 a minute.
    assert estimate_seconds(0, 2500, free, 30) < 10 < estimate_seconds(0, 3000, free, 30)


@pytest.mark.parametrize(
    "path",
    ["index.html", "a/index.html", "c++/index.html", "a b/é.html", "x/y(1).html", "q/[v].css"],
)
def test_the_fast_url_count_matches_the_mapper(path: str) -> None:
    from mkdocs_cfpurge.plan.auto import _path_count

    assert _path_count(path) == len(MAPPER.paths(path))
