"""Query-string variants (issue 12): a Material for MkDocs site with `search.highlight` links its
search results as `page/?h=term`, each a copy of its own in Cloudflare's cache. Real Material
builds, the plugin, and visitors' fetches through the local edge prove what stays stale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.plan.changes import diff
from mkdocs_cfpurge.plan.planner import build_plan
from mkdocs_cfpurge.plan.urls import SiteUrl, UrlMapper
from mkdocs_cfpurge.plan.variants import own_path
from tests.cfschema import load_purge_body_validator
from tests.helpers import (
    EPOCH,
    TOKEN,
    ZONE_ID,
    MakeCf,
    make_site,
    read_plan,
    run_build,
    run_main,
    write_files,
)

validate_body = load_purge_body_validator()
# At the host's root: the local edge serves the site folder at "/".
SITE_URL = "https://docs.example.com/"
ENV = {"CLOUDFLARE_API_TOKEN": TOKEN}

PAGES = {
    "index.md": "# Home\n\nWelcome to the handbook.\n",
    "guide/index.md": "# Guide\n\nHow we work.\n",
    "guide/deep/index.md": "# Deep\n\nA page below the guide.\n",
    "about.md": "# About\n\nWho we are.\n",
    "blog/first.md": "# First post\n\nHello.\n",
    "blog/second.md": "# Second post\n\nHello again.\n",
    "team.md": "# Team\n\nThe people.\n",
}
# Body text only: the navigation, and so every other page, stays as it was.
EDITS = {
    "guide/index.md": "# Guide\n\nHow we work, revised.\n",
    "about.md": "# About\n\nWho we are, and what we do.\n",
    "blog/first.md": "# First post\n\nHello, edited.\n",
}
CHANGED_PAGES = ["guide/index.html", "about/index.html", "blog/first/index.html"]
UNCHANGED_PAGES = [
    "index.html",
    "guide/deep/index.html",
    "blog/second/index.html",
    "team/index.html",
]


@pytest.fixture(autouse=True)
def _reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


def material_site(root: Path, cf: LocalCloudflare | None, features: list[str]) -> Path:
    """The Material project of PAGES, purging on `mkdocs build` through `cf` (if given)."""
    plugin: dict[str, Any] = {"zone_id": ZONE_ID, "purge_on": ["build"]}
    if cf is not None:
        plugin["api_base"] = cf.api_base
    return make_site(
        root,
        site_url=SITE_URL,
        options=plugin,
        pages=PAGES,
        extra={"theme": {"name": "material", "features": features}},
    )


def variants(page: str) -> list[str]:
    """What a search result link of `page` looks like, both ways the page is served."""
    folder = page.removesuffix("index.html")
    return [f"{SITE_URL}{folder}?h=anything", f"{SITE_URL}{folder}index.html?h=anything"]


def site_with_edge(tmp_path: Path, make_cf: MakeCf, features: list[str]) -> tuple[Path, Any]:
    """A Material site deployed once (the baseline) behind the local edge, its pages and their
    `?h=` variants in the edge's cache."""
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    cf = make_cf(origin=site_dir)
    config_file = material_site(tmp_path, cf, features)
    run_build(config_file, ENV)  # the first deploy: records the baseline, purges nothing
    assert cf.purges == []
    for page in [*CHANGED_PAGES, *UNCHANGED_PAGES]:
        for url in variants(page):
            assert cf.edge_fetch(url).cache_status == "MISS"
            assert cf.edge_fetch(url).cache_status == "HIT"
    return config_file, cf


def test_search_highlight_variants_of_changed_pages_are_fresh_and_only_pages_below_go_too(
    tmp_path: Path, make_cf: MakeCf
) -> None:
    config_file, cf = site_with_edge(tmp_path, make_cf, ["search.highlight"])
    site_dir = tmp_path / "site"
    write_files(tmp_path / "docs", EDITS)
    run_build(config_file, ENV)

    plan = read_plan(tmp_path)
    changed = {c["path"] for c in plan["changes"]}
    assert changed == {*CHANGED_PAGES, "search/search_index.json"}
    prefixes = [p for body in plan["requests"] for p in body.get("prefixes", [])]
    assert sorted(prefixes) == sorted(
        f"docs.example.com/{own_path(page)[0]}/" for page in CHANGED_PAGES
    )
    for body in plan["requests"]:
        validate_body(body)
    # Every variant of every changed page now serves the new build.
    for page in CHANGED_PAGES:
        for url in variants(page):
            fresh = cf.edge_fetch(url)
            assert fresh.cache_status == "MISS", url
            assert fresh.body == (site_dir / page).read_bytes(), url
    # Unchanged: only the page below a changed folder page went too, and the plan counted it.
    assert [cf.edge_fetch(url).cache_status for url in variants("guide/deep/index.html")] == [
        "MISS",
        "MISS",
    ]
    for page in ["index.html", "blog/second/index.html", "team/index.html"]:
        assert {cf.edge_fetch(url).cache_status for url in variants(page)} == {"HIT"}, page
    decisions = {d.get("prefix_folder"): d for d in plan["decisions"] if "query_variants_of" in d}
    assert decisions["guide/"]["unchanged_urls"] == 2  # guide/deep/ and guide/deep/index.html
    assert decisions["about/"]["unchanged_urls"] == decisions["blog/first/"]["unchanged_urls"] == 0
    assert plan["decisions"][0]["why"] == (
        "the site links its pages with query strings (search.highlight)"
    )


def test_without_the_feature_exact_files_purges_and_the_variants_stay_stale(
    tmp_path: Path, make_cf: MakeCf
) -> None:
    """The same site and edit without `search.highlight`: exact `files` bodies, nothing else;
    and the `?h=` copies a visitor cached stay stale (which is why the feature needs more)."""
    config_file, cf = site_with_edge(tmp_path, make_cf, [])
    before = {url: cf.edge_fetch(url).body for page in CHANGED_PAGES for url in variants(page)}
    write_files(tmp_path / "docs", EDITS)
    run_build(config_file, ENV)

    plan = read_plan(tmp_path)
    assert [list(body) for body in plan["requests"]] == [["files"]]
    assert all("query_variants_of" not in d for d in plan["decisions"])
    urls = set(plan["requests"][0]["files"])
    for page in CHANGED_PAGES:
        folder = SITE_URL + page.removesuffix("index.html")
        assert {folder, folder + "index.html"} <= urls
        plain = cf.edge_fetch(folder)
        assert plain.cache_status == "MISS"  # the exact URLs are fresh
        for url in variants(page):
            stale = cf.edge_fetch(url)
            assert (stale.cache_status, stale.body) == ("HIT", before[url]), url
            assert stale.body != plain.body


def test_the_home_page_variants_cost_the_whole_site_and_the_plan_says_so(tmp_path: Path) -> None:
    config_file = material_site(tmp_path, None, ["search.highlight"])
    run_build(config_file, ENV)  # the baseline: nothing to purge, nothing sent
    write_files(tmp_path / "docs", {"index.md": "# Home\n\nWelcome, again.\n"})
    run_build(config_file, {**ENV, "CFPURGE_DRY_RUN": "1"})

    plan = read_plan(tmp_path)
    assert plan["requests"] == [{"prefixes": ["docs.example.com/"]}]
    assert any(
        "the home page changed" in note and "the whole site is purged" in note
        for note in plan["notes"]
    )
    [home] = [d for d in plan["decisions"] if d.get("query_variants_of") == "index.html"]
    assert home["prefix_folder"] == "" and home["unchanged_urls"] > 20


@pytest.mark.parametrize(("mode", "purged"), [("on", True), ("off", False), ("auto", False)])
def test_the_cli_takes_query_strings_from_its_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str, purged: bool
) -> None:
    """A folder from anywhere (no MkDocs config to read the theme from): the flag decides."""
    old, new = tmp_path / "old", tmp_path / "new"
    write_files(old, {"index.html": "home", "guide/index.html": "v1", "a.css": "x"})
    write_files(new, {"index.html": "home", "guide/index.html": "v2", "a.css": "x"})
    manifest = tmp_path / "manifest.json"
    site = ["--site-url", SITE_URL, "--manifest", str(manifest)]
    assert (
        run_main(["manifest", str(old), "--site-url", SITE_URL, "--out", str(manifest)], capsys)[0]
        == 0
    )
    code, out, _ = run_main(
        ["plan", str(new), *site, "--query-strings", mode, "--format", "json"], capsys
    )
    assert code == 0
    requests = json.loads(out)["requests"]
    has_prefix = {"prefixes": ["docs.example.com/guide/"]} in requests
    assert has_prefix is purged
    if not purged:
        assert requests == [{"files": [SITE_URL + "guide/", SITE_URL + "guide/index.html"]}]


# Below a path, with a second host: what the prefixes look like there.
MAPPER = UrlMapper.create(SiteUrl.parse("https://docs.example.com/handbook/"), ("www.example.com",))


def covers(requests: list[dict[str, Any]], url: str) -> bool:
    bare = url.split("://", 1)[1].split("?", 1)[0]
    return any(
        body.get("purge_everything")
        or any(bare.startswith(p) for p in body.get("prefixes", []))
        or ("?" not in url and url in body.get("files", []))
        for body in requests
    )


@pytest.mark.parametrize("strategy", ["auto", "files", "prefixes"])
def test_every_strategy_covers_every_variant_of_every_changed_page(strategy: str) -> None:
    old = {f"s{s}/p{p}/index.html": "1" for s in range(4) for p in range(30)}
    old.update({"index.html": "1", "about.html": "1", "assets/x.css": "1"})
    new = dict(old)
    edited = ["s0/p1/index.html", "s2/p7/index.html", "about.html", "assets/x.css"]
    new.update(dict.fromkeys(edited, "2"))
    plan = build_plan(
        diff(old, new),
        MAPPER,
        strategy=strategy,
        old_files=old.keys(),
        new_files=new.keys(),
        query_variants=lambda page: True,
    )
    for body in plan.requests:
        validate_body(body)
    for page in edited:
        for url in MAPPER.urls(page):
            assert covers(plan.requests, url), url
            if page.endswith(".html"):
                assert covers(plan.requests, url + "?h=x"), url
    # A page served as itself (about.html) gets a prefix at the file, nothing more.
    prefixes = [p for body in plan.requests for p in body.get("prefixes", [])]
    assert "docs.example.com/handbook/about.html" in prefixes
    assert "www.example.com/handbook/about.html" in prefixes
    unchanged = [p for p in old if p not in edited]
    taken = [p for p in unchanged if any(covers(plan.requests, u) for u in MAPPER.urls(p))]
    if strategy != "prefixes":  # `prefixes` takes whole folders by choice
        assert taken == []


def test_auto_folds_many_page_prefixes_into_their_folder_when_a_whole_folder_changed() -> None:
    """A navigation change rewrites every page: one prefix per section, not one per page."""
    old = {f"s{s}/p{p}/index.html": "1" for s in range(3) for p in range(300)}
    new = dict.fromkeys(old, "2")
    plan = build_plan(
        diff(old, new),
        MAPPER,
        strategy="auto",
        old_files=old.keys(),
        new_files=new.keys(),
        query_variants=lambda page: True,
    )
    prefixes = sorted(p for body in plan.requests for p in body.get("prefixes", []))
    assert prefixes == sorted(f"{h}/handbook/s{s}/" for h in MAPPER.hosts for s in range(3))
    assert not any("files" in body for body in plan.requests)


def test_the_cli_purge_of_a_plugin_build_sends_what_the_build_planned_with_a_manifest_at_hand(
    tmp_path: Path,
    make_cf: MakeCf,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The build knew the theme's `?h=` links and mkdocs.yml's hosts; the CLI that purges its
    folder knows neither. A manifest kept beside both must not make the CLI re-plan without
    them: what the build owes is sent, with what changed since that manifest."""
    cf = make_cf()
    manifest = tmp_path / "state" / "manifest.json"
    options = {"zone_id": ZONE_ID, "manifest": str(manifest), "hosts": ["www.example.com"]}
    extra = {"theme": {"name": "material", "features": ["search.highlight"]}}
    config_file = make_site(tmp_path, site_url=SITE_URL, options=options, pages=PAGES, extra=extra)
    site_dir = tmp_path / "site"
    run_build(config_file, ENV)
    out = ["--out", str(manifest)]
    assert run_main(["manifest", str(site_dir), "--site-url", SITE_URL, *out], capsys)[0] == 0
    write_files(tmp_path / "docs", EDITS)
    run_build(config_file, ENV)  # plans against the kept manifest, writes the plan in its marker
    carried = read_plan(tmp_path)["requests"]
    assert any("prefixes" in body for body in carried)

    argv = ["purge", str(site_dir), "--site-url", SITE_URL, "--manifest", str(manifest)]
    argv += ["--zone-id", ZONE_ID, "--api-base", cf.api_base, "--host", "www.example.com"]
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    code, _out, err = run_main(argv, capsys)

    assert code == 0, err
    sent = [item for record in cf.purges for item in record.items]
    for body in carried:
        for item in next(iter(body.values())):
            assert item in sent, item
    assert "docs.example.com/guide/" in sent and "www.example.com/guide/" in sent
