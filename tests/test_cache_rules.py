"""The zone's Cache Rules (issue 12): read before the first purge, applied to the bodies, and
proven through the local edge, which applies the same rules with a reader of its own."""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from mkdocs.commands.build import build
from mkdocs.config import load_config

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.cloudflare.client import CloudflareClient, RetryPolicy
from mkdocs_cfpurge.errors import UsageError
from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.localcf.rules import EdgeRules, UnsupportedRule
from mkdocs_cfpurge.plan.cacherules import (
    CacheRuleset,
    SiteFiles,
    TooBroad,
    ZoneCacheRules,
    cover,
)
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.plan.ruleexpr import Expression
from mkdocs_cfpurge.plan.urls import SiteUrl, UrlMapper
from mkdocs_cfpurge.settings import Credentials, Settings
from mkdocs_cfpurge.state import Pending, StateStore
from tests.helpers import (
    EPOCH,
    TOKEN,
    ZONE_ID,
    MakeCf,
    make_site,
    read_plan,
    run_build,
    run_main,
    settings_for,
    write_files,
)

SITE_URL = "https://example.com/"  # the local zone's apex: the edge serves the site at "/"
PAGES_V1 = {
    "index.md": "# Home\n\nWelcome.\n",
    "guide/index.md": "# Guide\n\nThe first version of the guide.\n",
    "guide/deep/index.md": "# Deep\n\nBelow the guide.\n",
    "about.md": "# About\n\nWho we are.\n",
    "assets/site.css": "body { color: black; }\n",
}
PAGES_V2 = {
    **PAGES_V1,
    "guide/index.md": "# Guide\n\nThe second version of the guide.\n",
    "about.md": "# About\n\nWho we are, and what we do now.\n",
}
GET_ONLY_EXPRESSION = '(http.request.method eq "GET" and http.host eq "example.com")'


def rule(
    rule_id: str,
    expression: str,
    *,
    cache: bool = True,
    custom_key: dict[str, Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "cache": cache,
        "edge_ttl": {"mode": "override_origin", "default": 86400},
    }
    if custom_key is not None:
        params["cache_key"] = {"custom_key": custom_key}
    return {
        "id": rule_id,
        "description": description,
        "expression": expression,
        "action": "set_cache_settings",
        "action_parameters": params,
        "enabled": True,
        "version": "1",
    }


def ruleset(*rules: dict[str, Any]) -> dict[str, Any]:
    """The entrypoint ruleset as `GET .../http_request_cache_settings/entrypoint` returns it."""
    return {
        "id": "2f2feab2026849078ba485f918791bdc",
        "name": "default",
        "kind": "zone",
        "phase": "http_request_cache_settings",
        "rules": list(rules),
    }


GET_ONLY = rule("3f1b3a9c", GET_ONLY_EXPRESSION, description="Cache everything (GET only)")
CACHE_ALL = rule("c0ffee01", "true", description="Cache everything")


@pytest.fixture(autouse=True)
def _reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


def build_site(root: Path, pages: dict[str, str]) -> Path:
    """A real `mkdocs build` of `pages` (no plugin) into root/site, rebuilt in place."""
    docs = root / "docs"
    write_files(docs, pages)
    config_file = root / "mkdocs.yml"
    raw = {"site_name": "Test", "site_url": SITE_URL, "plugins": ["search"]}
    config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = load_config(config_file=str(config_file))
    build(config)
    return Path(config.site_dir)


def fast(settings: Settings) -> CloudflareClient:
    return pipeline.default_client(
        settings, retry=RetryPolicy(attempts=2, base_delay=0.01), transport=httpx.HTTPTransport()
    )


def deployed(tmp_path: Path, make_cf: MakeCf, rules: dict[str, Any], **options: Any) -> Any:
    """PAGES_V1 deployed behind the local edge under `rules` (every URL in the edge's cache, as
    visitors left it), then PAGES_V2 built: (cf, settings, the new manifest, site_dir)."""
    site_dir = build_site(tmp_path, PAGES_V1)
    cf = make_cf(origin=site_dir, cache_rules=rules, **options)
    settings = settings_for(tmp_path / "state", cf, site_url=SITE_URL, strategy="auto")
    old = pipeline.scan(site_dir, settings)
    old.save(settings.manifest_path)
    for url in every_url(settings, old.files):
        cf.edge_fetch(url)
    site_dir = build_site(tmp_path, PAGES_V2)
    return cf, settings, pipeline.scan(site_dir, settings), site_dir


def every_url(settings: Settings, files: Any) -> list[str]:
    mapper = settings.mapper()
    return sorted(url for path in files for url in mapper.urls(path))


def posted(cf: LocalCloudflare) -> list[dict[str, Any]]:
    return [r["body"] for r in cf.requests if r["method"] == "POST"]


def file_entries(bodies: list[dict[str, Any]]) -> list[Any]:
    return [item for body in bodies for item in body.get("files", [])]


# --- reading expressions ----------------------------------------------------------------------

URL = "https://docs.example.com/guide/"


@pytest.mark.parametrize(
    ("expression", "on_get", "on_purge"),
    [
        ("true", True, True),
        (GET_ONLY_EXPRESSION.replace("example.com", "docs.example.com"), True, False),
        ('http.request.method == "GET" && http.host == "docs.example.com"', True, False),
        ('http.request.method in {"GET" "HEAD"}', True, False),
        ('(http.request.method eq "GET" or http.request.method eq "PURGE")', True, True),
        ('not http.request.method eq "POST"', True, True),
        ('http.request.method ne "PURGE"', True, False),
        ('http.host eq "other.example.com"', False, False),
        ('http.host in {"a.example.com" "docs.example.com"}', True, True),
        ('starts_with(http.request.uri.path, "/guide/")', True, True),
        ('starts_with(http.request.uri.path, "/blog/")', False, False),
        ('http.request.uri.path matches "^/gu.de/$"', True, True),
        ('http.host wildcard "*.EXAMPLE.com"', True, True),
        ('http.host strict wildcard "*.EXAMPLE.com"', False, False),
        ('lower(http.request.full_uri) contains "/guide"', True, True),
        ('http.request.uri.path.extension eq "html"', False, False),
        ("ssl", True, True),
        # What this reader cannot know counts as "may match": None.
        ('http.cookie contains "session" and http.host eq "docs.example.com"', None, None),
        ('http.request.headers["x-a"][0] eq "1"', None, None),
        (
            'any(http.request.headers.names[*] == "x") or http.host eq "docs.example.com"',
            True,
            True,
        ),
        ('cf.bot_management.score gt 30 and http.request.method eq "GET"', None, False),
        ("http.request.method in $allowed", None, None),
        ('ip.src in {192.0.2.0/24} and http.host eq "other.com"', False, False),
        ('(http.host eq "docs.example.com"', None, None),  # unreadable: unbalanced
    ],
)
def test_expressions_are_read_conservatively(
    expression: str, on_get: bool | None, on_purge: bool | None
) -> None:
    read = Expression.read(expression)
    assert (read.matches(URL, "GET"), read.matches(URL, "PURGE")) == (on_get, on_purge)


@pytest.mark.parametrize(
    ("expression", "noop"),
    [
        (GET_ONLY_EXPRESSION, True),
        ('(http.request.method eq "GET" or http.request.method eq "PURGE")', False),
        ('http.host eq "example.com"', False),  # no method clause: GET and PURGE alike
        ('http.request.method in $allowed and http.host eq "example.com"', True),  # unknown
        ('http.host eq "other.com" and http.request.method eq "GET"', False),  # not this host
    ],
)
def test_a_rule_that_may_not_match_the_purge_makes_files_purges_no_ops(
    expression: str, noop: bool
) -> None:
    rules = ZoneCacheRules(CacheRuleset.model_validate(ruleset(rule("r", expression))))
    assert bool(rules.effects("https://example.com/guide/").noop) is noop


def test_rules_that_are_off_or_of_another_action_are_ignored() -> None:
    off = {**GET_ONLY, "enabled": False}
    other = {**GET_ONLY, "id": "x", "action": "set_config"}
    rules = ZoneCacheRules(CacheRuleset.model_validate(ruleset(off, other)))
    assert rules.rules == []
    assert rules.effects("https://example.com/").noop == ()


# --- covering the bodies ----------------------------------------------------------------------

MAPPER = UrlMapper.create(SiteUrl.parse(SITE_URL))


def zone(*rules: dict[str, Any]) -> ZoneCacheRules:
    return ZoneCacheRules(CacheRuleset.model_validate(ruleset(*rules)))


def test_cover_turns_get_only_urls_into_prefixes_at_their_own_paths() -> None:
    bodies = [{"files": [f"{SITE_URL}guide/", f"{SITE_URL}guide/index.html", f"{SITE_URL}a.css"]}]
    done = cover(bodies, zone(GET_ONLY), max_files=30)
    assert done.requests == [{"prefixes": ["example.com/a.css", "example.com/guide/"]}]
    [rule_decision] = [d for d in done.decisions if "cache_rule" in d]
    assert rule_decision["cache_rule"] == "3f1b3a9c" and rule_decision["effect"] == "get-only"
    assert any('or http.request.method eq "PURGE"' in note for note in done.notes)


def test_cover_adds_a_device_type_entry_per_device_and_keeps_other_entries() -> None:
    devices = rule("d", "true", custom_key={"user": {"device_type": True}})
    url = f"{SITE_URL}guide/"
    done = cover([{"files": [url]}], zone(devices), max_files=30)
    assert done.requests == [
        {"files": [url]},
        {
            "files": [
                {"url": url, "headers": {"CF-Device-Type": device}}
                for device in ("mobile", "tablet", "desktop")
            ]
        },
    ]


@pytest.mark.parametrize(
    "custom_key",
    [
        {"user": {"geo": True}},
        {"user": {"lang": True}},
        {"header": {"include": ["x-version"]}},
        {"cookie": {"check_presence": ["beta"]}},
    ],
)
def test_cover_purges_keys_no_entry_can_list_by_prefix(custom_key: dict[str, Any]) -> None:
    done = cover(
        [{"files": [f"{SITE_URL}about/"]}],
        zone(rule("k", "true", custom_key=custom_key)),
        max_files=30,
    )
    assert done.requests == [{"prefixes": ["example.com/about/"]}]


def test_a_prefix_that_would_take_down_too_much_stops_or_purges_everything() -> None:
    site = SiteFiles(MAPPER, ["index.html", "a/index.html", "b/index.html"], ["index.html"])
    bodies = [{"files": [SITE_URL, f"{SITE_URL}index.html"]}]
    with pytest.raises(TooBroad) as stopped:
        cover(bodies, zone(GET_ONLY), max_files=30, site=site, max_collateral=3)
    message = stopped.value.message
    assert "example.com/" in message and "4 unchanged URL(s)" in message
    assert "cache rule 3f1b3a9c ('Cache everything (GET only)')" in message
    assert 'or http.request.method eq "PURGE"' in message and "nothing was sent" in message
    done = cover(
        bodies, zone(GET_ONLY), max_files=30, site=site, max_collateral=3, allow_everything=True
    )
    assert done.requests == [{"purge_everything": True}]
    assert cover(bodies, zone(GET_ONLY), max_files=30, site=site, max_collateral=4).requests == [
        {"prefixes": ["example.com/"]}
    ]


# --- through the local edge -------------------------------------------------------------------


def test_get_only_rule_a_plain_files_purge_leaves_pages_stale_the_plan_does_not(
    tmp_path: Path, make_cf: MakeCf
) -> None:
    cf, settings, new, site_dir = deployed(tmp_path, make_cf, ruleset(GET_ONLY))
    old_about = cf.edge_fetch(SITE_URL + "about/").body

    # Control: what a tool unaware of the rule sends. Cloudflare answers 200; nothing changes.
    with fast(settings) as client:
        assert client.purge({"files": [SITE_URL + "about/", SITE_URL + "about/index.html"]})
    stale = cf.edge_fetch(SITE_URL + "about/")
    assert (stale.cache_status, stale.body) == ("HIT", old_about)
    before = len(cf.requests)

    result = pipeline.purge(settings, new, client_factory=fast)

    sent = [r["body"] for r in cf.requests[before:] if r["method"] == "POST"]
    assert file_entries(sent) == []  # every URL of the site is one the rule caches
    changed = {c.path for c in result.plan.changes}
    assert changed == {"about/index.html", "guide/index.html", "search/search_index.json"}
    for path in changed:
        for url in settings.mapper().urls(path):
            fresh = cf.edge_fetch(url)
            assert (fresh.cache_status, fresh.body) == ("MISS", (site_dir / path).read_bytes())
    # Only what the prefixes must cover went too: guide/deep/, below the changed guide/.
    assert cf.edge_fetch(SITE_URL + "guide/deep/").cache_status == "MISS"
    assert cf.edge_fetch(SITE_URL).cache_status == "HIT"
    assert cf.edge_fetch(SITE_URL + "assets/site.css").cache_status == "HIT"
    notes = " ".join(result.plan.notes)
    assert "cache rule 3f1b3a9c ('Cache everything (GET only)') matches GET requests only" in notes
    assert 'Fix: add `or http.request.method eq "PURGE"` to its expression' in notes
    assert settings.manifest_path.read_bytes() == new.to_json()


def test_get_only_rule_when_covering_costs_too_much_nothing_is_sent_and_the_rule_is_named(
    tmp_path: Path,
    make_cf: MakeCf,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cf, settings, _new, site_dir = deployed(tmp_path, make_cf, ruleset(GET_ONLY))
    before = settings.manifest_path.read_bytes()
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    argv = [
        "purge",
        str(site_dir),
        "--site-url",
        SITE_URL,
        "--manifest",
        str(settings.manifest_path),
        "--zone-id",
        ZONE_ID,
        "--api-base",
        cf.api_base,
        "--max-collateral",
        "1",  # guide/ would take guide/deep/ (2 URLs) with it
    ]
    code, _out, err = run_main(argv, capsys)
    assert code == 2, err
    [line] = err.strip().splitlines()[-1:]
    assert line.startswith("mkdocs-cfpurge: error: the zone's cache rules make a files purge miss")
    assert "cache rule 3f1b3a9c ('Cache everything (GET only)') matches GET requests only" in line
    assert 'add `or http.request.method eq "PURGE"`' in line and "nothing was sent" in line
    assert posted(cf) == []
    assert settings.manifest_path.read_bytes() == before
    assert not settings.manifest_path.with_name("pending.json").exists()


def test_device_type_key_every_changed_url_is_purged_for_each_device(
    tmp_path: Path, make_cf: MakeCf
) -> None:
    devices = rule("d1", 'http.host eq "example.com"', custom_key={"user": {"device_type": True}})
    cf, settings, new, site_dir = deployed(tmp_path, make_cf, ruleset(devices))
    url = SITE_URL + "guide/"
    old = {}
    for device in ("mobile", "tablet", "desktop"):
        cf.edge_fetch(url, {"CF-Device-Type": device})
        old[device] = cf.edge_fetch(url, {"CF-Device-Type": device})
        assert old[device].cache_status == "HIT"
    # Control: a plain URL purge reaches none of the device copies.
    with fast(settings) as client:
        client.purge({"files": [url]})
    assert {cf.edge_fetch(url, {"CF-Device-Type": d}).cache_status for d in old} == {"HIT"}

    result = pipeline.purge(settings, new, client_factory=fast)

    entries = file_entries(posted(cf)[1:])
    changed_urls = {u for c in result.plan.changes for u in c.urls}
    for changed in changed_urls:
        for device in ("mobile", "tablet", "desktop"):
            assert {"url": changed, "headers": {"CF-Device-Type": device}} in entries, changed
    for device in old:
        fresh = cf.edge_fetch(url, {"CF-Device-Type": device})
        assert fresh.cache_status == "MISS", device
        assert fresh.body == (site_dir / "guide/index.html").read_bytes()


def test_a_country_key_is_purged_by_prefix(tmp_path: Path, make_cf: MakeCf) -> None:
    geo = rule("g1", "true", custom_key={"user": {"geo": True}})
    cf, settings, new, _site_dir = deployed(tmp_path, make_cf, ruleset(geo))
    url = SITE_URL + "about/"
    for country in ("DE", "JP"):
        cf.edge_fetch(url, {"CF-IPCountry": country})
    pipeline.purge(settings, new, client_factory=fast)
    assert file_entries(posted(cf)) == []
    for country in ("DE", "JP"):
        assert cf.edge_fetch(url, {"CF-IPCountry": country}).cache_status == "MISS"


def test_rules_unreadable_the_purge_goes_on_and_says_once_the_check_was_skipped(
    tmp_path: Path,
    make_cf: MakeCf,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cf, settings, new, site_dir = deployed(
        tmp_path, make_cf, ruleset(CACHE_ALL), cache_rules_readable=False
    )
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    argv = ["purge", str(site_dir), "--site-url", SITE_URL, "--zone-id", ZONE_ID]
    argv += ["--manifest", str(settings.manifest_path), "--api-base", cf.api_base]
    code, _out, err = run_main(argv, capsys)
    assert code == 0, err
    skipped = [line for line in err.splitlines() if "cache rules" in line and "skipped" in line]
    assert skipped == [
        f"cfpurge: the token may not read zone {ZONE_ID}'s cache rules (add Zone → Cache Rules "
        "Read to check them); cache-rule check skipped"
    ]
    statuses = [(r["method"], r["status"]) for r in cf.requests if "/rulesets/" in r["path"]]
    assert statuses[-1:] == [("GET", 403)]
    for path in ("about/index.html", "guide/index.html", "search/search_index.json"):
        for url in settings.mapper().urls(path):
            assert cf.edge_fetch(url).cache_status == "MISS", url
    assert pipeline.preview(settings, new).changes == []  # committed: nothing left owed


def test_a_key_without_query_strings_needs_no_variant_prefix(
    tmp_path: Path, make_cf: MakeCf
) -> None:
    no_query = rule("q1", "true", custom_key={"query_string": {"exclude": {"all": True}}})
    cf, settings, new, site_dir = deployed(tmp_path, make_cf, ruleset(no_query))
    settings = settings.model_copy(update={"query_strings": "on"})
    variant = SITE_URL + "about/?h=who"
    cf.edge_fetch(variant)
    assert cf.edge_fetch(variant).cache_status == "HIT"

    result = pipeline.purge(settings, new, client_factory=fast)

    assert all("prefixes" not in body for body in posted(cf))
    assert any(
        "cache rule q1 leaves query strings out of the cache key" in note
        for note in result.plan.notes
    )
    fresh = cf.edge_fetch(variant)  # one cached copy for every query: the files purge reached it
    assert fresh.body == (site_dir / "about/index.html").read_bytes()


def test_a_saved_plan_is_sent_under_the_rules_too(
    tmp_path: Path,
    make_cf: MakeCf,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cf, settings, new, _site_dir = deployed(tmp_path, make_cf, ruleset(GET_ONLY))
    plan_file = tmp_path / "plan.json"
    saved = pipeline.preview(settings, new)
    plan_file.write_bytes(saved.to_json())
    assert file_entries(saved.requests)  # reviewed as URLs
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_ZONE_ID", ZONE_ID)  # a plan's zone is checked, never taken
    argv = ["purge", "--plan", str(plan_file), "--api-base", cf.api_base]
    argv += ["--site-url", str(settings.site)]  # a saved plan is checked against it (issue 13)
    argv += ["--manifest", str(tmp_path / "other" / "manifest.json")]
    code, _out, err = run_main(argv, capsys)
    assert code == 0, err
    assert file_entries(posted(cf)) == []
    assert cf.edge_fetch(SITE_URL + "about/").cache_status == "MISS"


@pytest.mark.parametrize("made_elsewhere", ["saved", "pending"])
def test_a_plan_made_elsewhere_is_held_to_max_collateral_under_the_rules(
    tmp_path: Path,
    make_cf: MakeCf,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    made_elsewhere: str,
) -> None:
    # Its changes were not computed here: those its URLs name count as changed, the rest of the
    # site's manifest as what a covering prefix would take down with them.
    cf, settings, new, _site_dir = deployed(tmp_path, make_cf, ruleset(GET_ONLY))
    saved = pipeline.preview(settings, new)
    assert any(url.endswith("/guide/") for url in file_entries(saved.requests))
    argv = ["purge", "--site-url", str(settings.site), "--manifest", str(settings.manifest_path)]
    if made_elsewhere == "saved":
        plan_file = tmp_path / "plan.json"
        plan_file.write_bytes(saved.to_json())
        argv += ["--plan", str(plan_file)]
    else:
        StateStore(settings.manifest_path, str(settings.site)).save_pending(
            Pending(saved.requests, None)
        )
    pending = settings.manifest_path.with_name("pending.json")
    pending_before = pending.read_bytes() if made_elsewhere == "pending" else None
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_ZONE_ID", ZONE_ID)
    argv += ["--api-base", cf.api_base, "--max-collateral", "1"]  # guide/ takes guide/deep/

    code, _out, err = run_main(argv, capsys)

    assert code == 2, err
    assert "max_collateral 1" in err and "nothing was sent" in err
    assert posted(cf) == []
    if pending_before is not None:
        assert pending.read_bytes() == pending_before
    code, _out, err = run_main([*argv[:-2], "--max-collateral", "10"], capsys)  # the control
    assert code == 0, err
    assert any("prefixes" in body for body in posted(cf))


def test_a_saved_plan_with_no_manifest_at_hand_says_max_collateral_was_not_applied(
    tmp_path: Path, make_cf: MakeCf
) -> None:
    cf, settings, new, _site_dir = deployed(tmp_path, make_cf, ruleset(GET_ONLY))
    saved = pipeline.preview(settings, new)
    elsewhere = settings.model_copy(
        update={"manifest_path": tmp_path / "other" / "manifest.json", "max_collateral": 1}
    )
    result = pipeline.purge(elsewhere, saved, client_factory=fast)
    assert result.requests_sent and any("prefixes" in body for body in posted(cf))
    assert any("max_collateral was not applied" in note for note in result.plan.notes)


def test_a_saved_plan_with_no_manifest_at_hand_never_takes_the_whole_site_unasked(
    tmp_path: Path, make_cf: MakeCf
) -> None:
    # The home page changed: under a GET-only rule its covering prefix is the site's root, and
    # with no manifest here nothing says how much that takes down.
    cf, settings, _new, _site_dir = deployed(tmp_path, make_cf, ruleset(GET_ONLY))
    saved = PurgePlan(SITE_URL, None, [], [{"files": [SITE_URL, SITE_URL + "index.html"]}])
    elsewhere = settings.model_copy(update={"manifest_path": tmp_path / "other" / "manifest.json"})
    with pytest.raises(UsageError, match="the whole site, with no manifest of the site here"):
        pipeline.purge(elsewhere, saved, client_factory=fast)
    assert posted(cf) == []

    allowed = elsewhere.model_copy(update={"allow_purge_everything": True})
    result = pipeline.purge(allowed, saved, client_factory=fast)
    assert result.requests_sent
    root = SITE_URL.removeprefix("https://")
    assert [b for b in posted(cf) if "prefixes" in b] == [{"prefixes": [root]}]


def test_a_dry_run_sends_nothing_and_says_the_rules_were_not_read(
    tmp_path: Path, make_cf: MakeCf
) -> None:
    cf, settings, new, _site_dir = deployed(tmp_path, make_cf, ruleset(GET_ONLY))
    settings = settings.model_copy(update={"dry_run": True})
    result = pipeline.purge(settings, new, client_factory=fast)
    assert result.dry_run and cf.requests == []
    assert any("the zone's cache rules were not read" in note for note in result.plan.notes)


# --- the local server -------------------------------------------------------------------------


def test_the_local_api_serves_the_ruleset_404_without_and_403_without_permission(
    make_cf: MakeCf,
) -> None:
    path = f"/zones/{ZONE_ID}/rulesets/phases/http_request_cache_settings/entrypoint"
    answers = []
    for options in (
        {"cache_rules": ruleset(GET_ONLY)},
        {},
        {"cache_rules": ruleset(), "cache_rules_readable": False},
    ):
        cf = make_cf(**options)
        with httpx.Client(base_url=cf.api_base, trust_env=False) as client:
            answer = client.get(path.lstrip("/"), headers={"Authorization": f"Bearer {TOKEN}"})
        answers.append((answer.status_code, answer.json()))
    assert answers[0] == (
        200,
        {"success": True, "errors": [], "messages": [], "result": ruleset(GET_ONLY)},
    )
    assert answers[1][0] == 404 and answers[2][0] == 403
    assert answers[2][1]["errors"][0]["code"] == 10000
    credentials = Credentials(api_token=TOKEN)
    cf = make_cf(cache_rules=ruleset(GET_ONLY))
    with CloudflareClient(credentials, ZONE_ID, api_base=cf.api_base) as client:
        read = client.get_cache_rules()
    assert read is not None and [r.id for r in read.rules] == ["3f1b3a9c"]


def test_the_local_edge_refuses_an_expression_it_cannot_apply() -> None:
    with pytest.raises(UnsupportedRule, match="cache rule odd"):
        EdgeRules(ruleset(rule("odd", 'http.cookie contains "a"')))


@pytest.mark.timeout(30)
def test_local_server_cli_takes_a_cache_rules_file(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.json"
    answer = {"success": True, "errors": [], "messages": [], "result": ruleset(GET_ONLY)}
    rules_file.write_text(json.dumps(answer), encoding="utf-8")
    site = tmp_path / "site"
    write_files(site, {"index.html": "<p>home</p>", "a.css": "body{}"})
    command = [sys.executable, "-m", "mkdocs_cfpurge", "local-server", "--token", TOKEN]
    command += ["--cache-rules", str(rules_file), "--origin", str(site)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        api_line, _edge_line = process.stdout.readline(), process.stdout.readline()
        api = re.search(r"http://127\.0\.0\.1:\d+/client/v4", api_line)
        assert api is not None, api_line
        try:
            path = f"zones/{ZONE_ID}/rulesets/phases/http_request_cache_settings/entrypoint"
            with httpx.Client(base_url=api.group(0) + "/", trust_env=False) as client:
                got = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert got.json()["result"] == ruleset(GET_ONLY)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=5)


def test_local_server_cli_refuses_a_bad_rules_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_file = tmp_path / "rules.json"
    rules_file.write_text('{"rules": "no"}', encoding="utf-8")
    code, _out, err = run_main(["local-server", "--cache-rules", str(rules_file)], capsys)
    assert code == 2
    assert err.strip() == (
        f"mkdocs-cfpurge: error: --cache-rules {str(rules_file)!r}: not a ruleset (a JSON object "
        "with a list of rule objects)"
    )


def test_the_skip_line_is_logged_by_the_purge_itself(
    tmp_path: Path, make_cf: MakeCf, caplog: pytest.LogCaptureFixture
) -> None:
    """The same as the CLI's single line, seen from the pipeline (the plugin logs it so)."""
    caplog.set_level(logging.INFO, "mkdocs.plugins.cfpurge")
    _cf, settings, new, _site_dir = deployed(
        tmp_path, make_cf, ruleset(CACHE_ALL), cache_rules_readable=False
    )
    result = pipeline.purge(settings, new, client_factory=fast)
    assert result.requests_sent >= 1
    skipped = [r for r in caplog.records if "cache-rule check skipped" in r.getMessage()]
    assert len(skipped) == 1 and skipped[0].levelno == logging.WARNING
    assert any("were not checked" in note for note in result.plan.notes)


def test_usage_error_is_what_the_pipeline_raises_when_it_stops(
    tmp_path: Path, make_cf: MakeCf
) -> None:
    cf, settings, new, _site_dir = deployed(tmp_path, make_cf, ruleset(GET_ONLY))
    settings = settings.model_copy(update={"max_collateral": 0})
    with pytest.raises(UsageError) as stopped:
        pipeline.purge(settings, new, client_factory=fast)
    assert stopped.value.exit_code == 2
    assert posted(cf) == []


def test_the_plugin_writes_the_plan_it_sent_when_the_rules_changed_it(
    tmp_path: Path, make_cf: MakeCf
) -> None:
    """The build's plan (made before the rules were read) had URLs; the purge sent prefixes, and
    plan.json says what was sent, with the rule named."""
    cf = make_cf(cache_rules=ruleset(GET_ONLY))
    options = {"zone_id": ZONE_ID, "purge_on": ["build"], "api_base": cf.api_base}
    config_file = make_site(tmp_path, site_url=SITE_URL, options=options, pages=PAGES_V1)
    run_build(config_file, {"CLOUDFLARE_API_TOKEN": TOKEN})  # the baseline
    write_files(tmp_path / "docs", {"about.md": PAGES_V2["about.md"]})
    run_build(config_file, {"CLOUDFLARE_API_TOKEN": TOKEN})

    plan = read_plan(tmp_path)
    assert file_entries(posted(cf)) == []
    assert plan["requests"] == [body for body in posted(cf)]
    assert {"example.com/about/", "example.com/search/search_index.json"} <= {
        p for body in plan["requests"] for p in body.get("prefixes", [])
    }
    assert any("cache rule 3f1b3a9c" in note for note in plan["notes"])


def test_a_whole_changed_folder_goes_as_one_prefix_never_above_the_site() -> None:
    """Under a GET-only rule, a navigation change (every file of a folder changed) is one
    prefix per folder, not one per file; a folder with an unchanged file is not taken whole,
    nor is the site's root: the host may serve more than the site."""
    mapper = UrlMapper.create(SiteUrl.parse("https://example.com/handbook/"))
    files = [f"s{s}/p{p}/index.html" for s in range(3) for p in range(50)]
    files += ["s0/img/a.png", "s3/new/index.html", "s3/keep/index.html"]
    changed = [f for f in files if f != "s3/keep/index.html"]
    site = SiteFiles(mapper, files, changed)
    urls = [url for path in changed for url in mapper.urls(path)]
    done = cover([{"files": urls}], zone(GET_ONLY), max_files=30, site=site, max_collateral=0)
    prefixes = sorted(p for body in done.requests for p in body.get("prefixes", []))
    assert prefixes == [
        f"example.com/handbook/{folder}/" for folder in ("s0", "s1", "s2", "s3/new")
    ]
    assert file_entries(done.requests) == []
