"""Changes → purge plan: statuses and reasons, strategies, caps, determinism, the saved form."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mkdocs_cfpurge.cloudflare.limits import MAX_ITEMS_PER_FLEX_REQUEST, MAX_PREFIX_SEPARATORS
from mkdocs_cfpurge.errors import CfPurgeError
from mkdocs_cfpurge.plan.auto import Budget
from mkdocs_cfpurge.plan.bodies import check_body, merge_requests, purge_type
from mkdocs_cfpurge.plan.changes import Change, Reason, Status, diff
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.plan.planner import build_plan
from mkdocs_cfpurge.plan.report import markdown_summary, text_summary
from mkdocs_cfpurge.plan.urls import SiteUrl, UrlMapper
from tests.cfschema import load_purge_body_validator

validate_body = load_purge_body_validator()

SITE = "https://example.com/docs/"
H = "0" * 64


def mapper(site: str = SITE, **kwargs: Any) -> UrlMapper:
    return UrlMapper.create(SiteUrl.parse(site), **kwargs)


def modified(*paths: str) -> list[Change]:
    return [Change(path, Status.MODIFIED, Reason.HASH_DIFFERS) for path in paths]


# --- diff ---------------------------------------------------------------------------------------


def test_diff_statuses_and_reasons() -> None:
    old = {"same.html": "a" * 64, "gone.html": "b" * 64, "edit.html": "c" * 64}
    new = {"same.html": "a" * 64, "edit.html": "d" * 64, "new/index.html": "e" * 64}
    assert diff(old, new) == [
        Change("edit.html", Status.MODIFIED, Reason.HASH_DIFFERS, "cccccccccccc → dddddddddddd"),
        Change("gone.html", Status.DELETED, Reason.GONE),
        Change("new/index.html", Status.ADDED, Reason.NEW),
    ]
    assert diff(new, new) == []
    assert diff({}, {}) == []
    assert [c.status for c in diff({}, new)] == [Status.ADDED] * 3
    assert [c.status for c in diff(old, {})] == [Status.DELETED] * 3


def test_diff_is_sorted_whatever_the_input_order() -> None:
    old = {f"p{i}.html": str(i) for i in range(20)}
    new = {f"p{i}.html": str(i * (i % 3)) for i in range(5, 30)}
    shuffled_old = dict(random.Random(1).sample(sorted(old.items()), len(old)))
    shuffled_new = dict(random.Random(2).sample(sorted(new.items()), len(new)))
    changes = diff(old, new)
    assert changes == diff(shuffled_old, shuffled_new)
    assert [c.path for c in changes] == sorted(c.path for c in changes)


# --- strategies ---------------------------------------------------------------------------------


def test_files_strategy_lists_every_url() -> None:
    changes = [
        Change("index.html", Status.MODIFIED, Reason.HASH_DIFFERS),
        Change("guide/index.html", Status.ADDED, Reason.NEW),
        Change("old.html", Status.DELETED, Reason.GONE),
    ]
    plan = build_plan(changes, mapper(), zone_id="z" * 32)
    assert plan.requests == [
        {
            "files": [
                "https://example.com/docs/",
                "https://example.com/docs/index.html",
                "https://example.com/docs/guide/",
                "https://example.com/docs/guide/index.html",
                "https://example.com/docs/old.html",
            ]
        }
    ]
    assert [c.urls for c in plan.changes] == [
        ("https://example.com/docs/", "https://example.com/docs/index.html"),
        ("https://example.com/docs/guide/", "https://example.com/docs/guide/index.html"),
        ("https://example.com/docs/old.html",),
    ]
    assert (plan.site_url, plan.zone_id, plan.strategy) == (SITE, "z" * 32, "files")
    assert (
        plan.count(Status.MODIFIED) == plan.count(Status.ADDED) == plan.count(Status.DELETED) == 1
    )
    assert sum(len(body[purge_type(body)]) for body in plan.requests) == 5


def test_no_changes_no_requests() -> None:
    for strategy in ("files", "prefixes", "everything"):
        plan = build_plan([], mapper(), strategy=strategy, extra_urls=["https://example.com/feed"])
        assert plan.is_empty and plan.requests == []


def test_extra_urls_are_added_once() -> None:
    plan = build_plan(
        modified("a.html"),
        mapper(),
        extra_urls=["https://example.com/feed.xml", "https://example.com/docs/a.html"],
    )
    assert plan.requests == [
        {"files": ["https://example.com/docs/a.html", "https://example.com/feed.xml"]}
    ]


@pytest.mark.parametrize("max_files", [1, 2, 3, 30])
def test_files_are_batched_within_the_cap(max_files: int) -> None:
    paths = [f"p{i}.html" for i in range(7)]
    plan = build_plan(modified(*paths), mapper(), max_files_per_request=max_files)
    sizes = [len(body["files"]) for body in plan.requests]
    assert all(size <= max_files for size in sizes)
    assert sizes == [min(max_files, 7 - start) for start in range(0, 7, max_files)]
    sent = [url for body in plan.requests for url in body["files"]]
    assert sent == [f"https://example.com/docs/{path}" for path in paths]


def test_everything_strategy() -> None:
    plan = build_plan(modified("a.html", "b/c.html"), mapper(), strategy="everything")
    assert plan.requests == [{"purge_everything": True}]
    assert len(plan.changes) == 2  # still reported, file by file


def test_unknown_strategy_names_the_option() -> None:
    with pytest.raises(CfPurgeError, match=r"'strategy'.*'bogus'"):
        build_plan(modified("a.html"), mapper(), strategy="bogus")


def test_prefixes_collapse_folders_and_keep_top_level_files() -> None:
    changes = modified(
        "index.html",
        "sitemap.xml",
        "guide/a/index.html",
        "guide/a/img.png",
        "guide/b.html",
        "api/x/y/z.html",
        "api-v2/index.html",
    )
    plan = build_plan(
        changes,
        mapper(extra_hosts=("www.example.com",)),
        strategy="prefixes",
        max_files_per_request=3,
    )
    assert plan.requests == [
        {
            "prefixes": [
                "example.com/docs/api-v2/",
                "www.example.com/docs/api-v2/",
                "example.com/docs/api/x/y/",
                "www.example.com/docs/api/x/y/",
                "example.com/docs/guide/",
                "www.example.com/docs/guide/",
            ]
        },
        {
            "files": [
                "https://example.com/docs/",
                "https://example.com/docs/index.html",
                "https://www.example.com/docs/",
            ]
        },
        {
            "files": [
                "https://www.example.com/docs/index.html",
                "https://example.com/docs/sitemap.xml",
                "https://www.example.com/docs/sitemap.xml",
            ]
        },
    ]
    for prefix in plan.requests[0]["prefixes"]:
        assert "://" not in prefix and prefix.endswith("/")


def test_prefixes_use_both_encodings_of_a_folder() -> None:
    plan = build_plan(modified("c++/index.html"), mapper(), strategy="prefixes")
    assert plan.requests == [{"prefixes": ["example.com/docs/c%2B%2B/", "example.com/docs/c++/"]}]


def test_prefixes_are_batched_by_100() -> None:
    paths = [f"f{i:03}/index.html" for i in range(250)]
    plan = build_plan(modified(*paths), mapper(), strategy="prefixes")
    assert [len(body["prefixes"]) for body in plan.requests] == [100, 100, 50]


def test_folders_too_deep_for_a_prefix_are_purged_by_url() -> None:
    deep = "/".join(["d"] * 40) + "/page.html"
    shallow = "s/page.html"
    plan = build_plan(modified(deep, shallow), mapper(), strategy="prefixes")
    assert plan.requests == [
        {"prefixes": ["example.com/docs/s/"]},
        {"files": ["https://example.com/docs/" + deep]},
    ]
    assert any(str(MAX_PREFIX_SEPARATORS) in note for note in plan.notes)


def test_cache_key_headers_get_bodies_of_their_own() -> None:
    headers = ({"CF-Device-Type": "mobile"}, {"CF-Device-Type": "tablet"})
    plan = build_plan(
        modified("a.html", "b.html"),
        mapper(cache_key_headers=headers),
        max_files_per_request=3,
    )
    a, b = "https://example.com/docs/a.html", "https://example.com/docs/b.html"
    assert plan.requests == [
        {"files": [a, b]},
        {
            "files": [
                {"url": a, "headers": {"CF-Device-Type": "mobile"}},
                {"url": b, "headers": {"CF-Device-Type": "mobile"}},
                {"url": a, "headers": {"CF-Device-Type": "tablet"}},
            ]
        },
        {"files": [{"url": b, "headers": {"CF-Device-Type": "tablet"}}]},
    ]
    for body in plan.requests:
        validate_body(body)
        kinds = {type(item) for item in body["files"]}
        assert len(kinds) == 1  # never strings and objects in one body


def test_same_inputs_same_bytes() -> None:
    old = {f"s{i % 4}/p{i}.html": H for i in range(40)}
    new = {path: ("1" * 64 if i % 3 else H) for i, path in enumerate(old)}
    new["added/index.html"] = H
    first = build_plan(diff(old, new), mapper(), zone_id="a" * 32).to_json()
    reordered = dict(reversed(list(new.items())))
    second = build_plan(
        diff(dict(reversed(list(old.items()))), reordered), mapper(), zone_id="a" * 32
    )
    assert second.to_json() == first


# --- merge --------------------------------------------------------------------------------------


def test_merge_dedupes_and_rebatches() -> None:
    headers = {"url": "https://e.com/a", "headers": {"CF-Device-Type": "mobile"}}
    merged = merge_requests(
        [{"files": ["https://e.com/a", "https://e.com/b"]}, {"prefixes": ["e.com/x/"]}],
        [
            {"files": ["https://e.com/b", "https://e.com/c"]},
            {"files": [headers, dict(headers)]},
            {"prefixes": ["e.com/x/", "e.com/y/"]},
            {"tags": ["t1"]},
            {"hosts": ["e.com"]},
        ],
        max_files=2,
    )
    assert merged == [
        {"prefixes": ["e.com/x/", "e.com/y/"]},
        {"hosts": ["e.com"]},
        {"tags": ["t1"]},
        {"files": ["https://e.com/a", "https://e.com/b"]},
        {"files": ["https://e.com/c"]},
        {"files": [headers]},
    ]
    for body in merged:
        validate_body(body)


def test_merge_with_purge_everything_is_purge_everything() -> None:
    assert merge_requests(
        [{"files": ["https://e.com/a"]}], [{"purge_everything": True}], max_files=30
    ) == [{"purge_everything": True}]
    assert merge_requests([], [], max_files=30) == []


def test_merge_respects_the_flex_cap() -> None:
    first = [{"prefixes": [f"e.com/{i}/" for i in range(80)]}]
    second = [{"prefixes": [f"e.com/{i}/" for i in range(40, 160)]}]
    merged = merge_requests(first, second, max_files=30)
    assert [len(body["prefixes"]) for body in merged] == [100, 60]
    assert [p for body in merged for p in body["prefixes"]] == [f"e.com/{i}/" for i in range(160)]


# --- the saved plan -----------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    plan = build_plan(
        [
            Change("café/index.html", Status.ADDED, Reason.NEW),
            Change("x.html", Status.DELETED, Reason.GONE),
        ],
        mapper(cache_key_headers=({"Accept-Language": "fr"},)),
        strategy="prefixes",
        zone_id="f" * 32,
    )
    plan.notes.append("a note")
    raw = plan.to_json()
    assert raw.endswith(b"\n") and "café".encode() in raw
    again = PurgePlan.from_dict(json.loads(raw))
    assert again == plan
    assert again.to_json() == raw
    path = tmp_path / "plan.json"
    path.write_bytes(raw)
    assert PurgePlan.load(path) == plan


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "does not exist"),
        (b"{", "not valid JSON"),
        (b"\xff", "not valid JSON"),
        (b"[]", "invalid"),
        (b'{"version": 99, "site_url": "x", "changes": [], "requests": []}', "invalid"),
        (b'{"version": 1, "site_url": "x", "changes": []}', "invalid"),
        (b'{"version": 1, "site_url": "x", "changes": [], "requests": {}}', "must be a list"),
        (
            b'{"version": 1, "site_url": "x", "changes": [],'
            b' "requests": [{"files": ["https://e.com/a"], "prefixes": ["e.com/"]}]}',
            "mixes purge types",
        ),
        (
            b'{"version": 1, "site_url": "x", "changes": [],'
            b' "requests": [{"files": ["https://e.com/a"]}, {"hosts": ["e.com"], "tags": ["t"]}]}',
            "request 2 mixes purge types",
        ),
        (
            b'{"version": 1, "site_url": "x", "changes": [], "requests": [{}]}',
            "names no purge type",
        ),
        (
            b'{"version": 1, "site_url": "x", "changes": [], "requests": [{"urls": ["a"]}]}',
            "unknown keys",
        ),
        (
            b'{"version": 1, "site_url": "x", "changes": [], "requests": [{"files": []}]}',
            "non-empty list",
        ),
        (
            b'{"version": 1, "site_url": "x", "changes": [], "requests": [{"files": "a"}]}',
            "non-empty list",
        ),
        (
            b'{"version": 1, "site_url": "x", "changes": [],'
            b' "requests": [{"purge_everything": false}]}',
            "must be true",
        ),
        (
            b'{"version": 1, "site_url": "x", "changes": [],'
            b' "requests": [{"files": ["https://e.com/a", {"url": "https://e.com/b"}]}]}',
            "only non-empty strings",
        ),
        (
            b'{"version": 1, "site_url": "x", "changes": [], "requests": [{"files": [1]}]}',
            "only non-empty strings",
        ),
        (
            b'{"version": 1, "site_url": "x", "changes": [], "requests": [{"files": [{"u": 1}]}]}',
            "is not a {url, headers} entry",
        ),
        (
            b'{"version": 1, "site_url": "x", "changes": [], "requests": [{"prefixes": [""]}]}',
            "only non-empty strings",
        ),
        (
            b'{"version": 1, "site_url": "x", "zone_id": 5, "changes": [], "requests": []}',
            "zone_id",
        ),
        (
            b'{"version": 1, "site_url": "x", "requests": [],'
            b' "changes": [{"path": "a", "status": "renamed", "urls": []}]}',
            "invalid",
        ),
    ],
)
def test_load_refuses_bad_plan_files(tmp_path: Path, content: bytes | None, problem: str) -> None:
    path = tmp_path / "plan.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CfPurgeError) as caught:
        PurgePlan.load(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


# --- report -------------------------------------------------------------------------------------


def test_summaries_name_what_is_purged() -> None:
    plan = build_plan(modified("a|b.html", "guide/index.html"), mapper())
    text = text_summary(plan, dry_run=True)
    assert text.startswith("cfpurge (dry run): 2 changed file(s) (0 added, 2 modified, 0 deleted)")
    assert "https://example.com/docs/guide/" in text
    markdown = markdown_summary(plan, dry_run=False)
    assert markdown.startswith("### Cloudflare purge plan\n")
    rows = [line for line in markdown.splitlines() if line.startswith("| `")]
    assert len(rows) == 2
    # A '|' in a file name is escaped, so each row keeps its four cells.
    for row in rows:
        assert len(row.replace("\\|", "").split("|")) == 6
    assert plan.to_json().decode().rstrip() in markdown


def test_summaries_of_an_empty_plan() -> None:
    plan = build_plan([], mapper())
    assert "nothing to purge" in text_summary(plan, dry_run=False)
    assert "nothing to purge" in markdown_summary(plan, dry_run=True)


# --- property: random trees, random changes -----------------------------------------------------

SEGMENTS = ["a", "b", "guide", "café", "c++", "x y", "日本", "100%", "q?"]
FILE_NAMES = ["index.html", "page.html", "style.css", "img.png", "c#.html", "sitemap.xml"]

folders = st.lists(st.sampled_from(SEGMENTS), max_size=3)
deep_folders = st.integers(28, 34).map(lambda depth: ["d"] * depth)
site_paths = st.tuples(
    st.one_of(folders, folders, folders, deep_folders), st.sampled_from(FILE_NAMES)
).map(lambda parts: "/".join([*parts[0], parts[1]]))
trees = st.dictionaries(site_paths, st.sampled_from(["1" * 64, "2" * 64, "3" * 64]), max_size=25)
# An edit writes a file with new content (an add or a modify) or deletes it (None).
edits = st.dictionaries(site_paths, st.sampled_from(["4" * 64, None]), min_size=1, max_size=12)


def apply_edits(old: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    new = dict(old)
    for path, digest in changes.items():
        if digest is None:
            new.pop(path, None)
        else:
            new[path] = digest
    return new


header_maps = st.lists(
    st.fixed_dictionaries({"CF-Device-Type": st.sampled_from(["mobile", "tablet", "desktop"])}),
    max_size=2,
    unique_by=lambda headers: headers["CF-Device-Type"],
)


def _strip_scheme(url: str) -> str:
    return url.split("://", 1)[1]


def _check_plan(plan: PurgePlan, url_mapper: UrlMapper, max_files: int) -> None:
    """Every URL of every change in the plan is purged, each body within its cap and valid."""
    files: set[str] = set()
    entries: set[str] = set()
    prefixes: list[str] = []
    everything = False
    for body in plan.requests:
        validate_body(body)  # Cloudflare's published request schema
        check_body(body, "body")  # and what a saved plan is read back with
        kind = purge_type(body)
        if kind == "files":
            assert len(body["files"]) <= max_files
            for item in body["files"]:
                if isinstance(item, str):
                    assert item not in files, f"{item} sent twice"
                    files.add(item)
                else:
                    key = json.dumps(item, sort_keys=True)
                    assert key not in entries, f"{item} sent twice"
                    entries.add(key)
        elif kind == "prefixes":
            assert len(body["prefixes"]) <= MAX_ITEMS_PER_FLEX_REQUEST
            for prefix in body["prefixes"]:
                assert "://" not in prefix and prefix.endswith("/")
                assert "?" not in prefix and "#" not in prefix
                assert prefix.count("/") <= MAX_PREFIX_SEPARATORS
                assert prefix not in prefixes
                prefixes.append(prefix)
        else:
            assert body == {"purge_everything": True}
            everything = True
    # The site's top folder is never a prefix (that would be the whole site): its files go by URL.
    assert not set(url_mapper.prefixes("")) & set(prefixes)
    for change in plan.changes:
        assert change.urls
        for url in change.urls:
            if everything or any(_strip_scheme(url).startswith(p) for p in prefixes):
                continue
            assert url in files, f"{url} of {change.path} not purged"
            for headers in url_mapper.cache_key_headers:
                entry = {"url": url, "headers": dict(headers)}
                assert json.dumps(entry, sort_keys=True) in entries


budgets = st.builds(
    Budget,
    plan_name=st.sampled_from(["free", "pro", "enterprise"]),
    max_seconds=st.sampled_from([0.0, 0.01, 60.0]),
    max_collateral=st.sampled_from([0, 3, 100]),
    allow_everything=st.booleans(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    old=trees,
    edit=edits,
    strategy=st.sampled_from(["auto", "files", "prefixes", "everything"]),
    budget=budgets,
    max_files=st.integers(1, 40),
    site_url=st.sampled_from(["https://example.com/", SITE]),
    hosts=st.lists(st.sampled_from(["www.example.com", "example.org"]), max_size=2, unique=True),
    schemes=st.sampled_from([(), ("https",), ("https", "http")]),
    headers=header_maps,
)
def test_every_changed_url_is_covered_within_the_caps(
    old: dict[str, str],
    edit: dict[str, str | None],
    strategy: str,
    budget: Budget,
    max_files: int,
    site_url: str,
    hosts: list[str],
    schemes: tuple[str, ...],
    headers: list[dict[str, str]],
) -> None:
    new = apply_edits(old, edit)
    changes = diff(old, new)
    assume(changes)
    url_mapper = UrlMapper.create(
        SiteUrl.parse(site_url), tuple(hosts), schemes or None, tuple(headers)
    )

    def make(old: dict[str, str], new: dict[str, str]) -> PurgePlan:
        return build_plan(
            diff(old, new),
            url_mapper,
            strategy=strategy,
            max_files_per_request=max_files,
            old_files=old.keys(),
            new_files=new.keys(),
            budget=budget,
        )

    try:
        plan = make(old, new)
    except CfPurgeError as exc:
        # `auto` may refuse a budget it cannot keep, naming what to raise, unless it may fall
        # back to purge_everything.
        assert strategy == "auto" and not budget.allow_everything
        assert "max_purge_seconds" in str(exc)
        return
    # Every changed file is in the plan with all its URLs (folder entries `X/` may follow).
    listed = {c.path: c.urls for c in plan.changes}
    for change in changes:
        assert listed[change.path] == tuple(url_mapper.urls(change.path))
    assert all(path.endswith("/") for path in listed.keys() - {c.path for c in changes})
    assert plan.requests, "changes but nothing to send"
    _check_plan(plan, url_mapper, max_files)

    # Deterministic: the same inputs (in any dict order) give the same bytes.
    again = make(dict(reversed(list(old.items()))), dict(reversed(list(new.items()))))
    assert again.to_json() == plan.to_json()
    assert PurgePlan.from_dict(json.loads(plan.to_json())).to_json() == plan.to_json()

    # Merging the plan with itself (a pending plan resent) changes nothing it covers.
    merged = merge_requests(plan.requests, plan.requests, max_files=max_files)
    _check_plan(
        PurgePlan(plan.site_url, None, plan.changes, merged, strategy), url_mapper, max_files
    )
