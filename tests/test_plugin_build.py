"""Real MkDocs builds with the plugin: the plan file, dry runs, serve, config errors."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from mkdocs.exceptions import Abort

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.plugin import CfPurgePlugin
from tests.cfschema import load_purge_body_validator
from tests.helpers import (
    EPOCH,
    MANIFEST_FILE,
    PLAN_FILE,
    ZONE_ID,
    NetworkTrap,
    forbid_network,
    load,
    make_site,
    plan_urls,
    plugin_of,
    read_plan,
    run_build,
    tree_bytes,
)

validate_body = load_purge_body_validator()
TOKEN = "test-token-not-a-secret"
PURGING = {"zone_id": ZONE_ID, "purge_on": ["build"]}  # a site whose every build purges


def record_baseline(config_file: Path, env: dict[str, str]) -> bytes:
    """Build, then record what was built as the last deploy; return the manifest's bytes."""
    config = run_build(config_file, env)
    settings = plugin_of(config).settings
    assert settings is not None
    manifest_path = config_file.parent / MANIFEST_FILE
    assert settings.manifest_path == manifest_path
    pipeline.scan(Path(config.site_dir), settings).save(manifest_path)
    return manifest_path.read_bytes()


def build_fails(
    config_file: Path, env: dict[str, str], caplog: pytest.LogCaptureFixture, **overrides: Any
) -> str:
    """Build, expecting MkDocs to abort; return the errors it logged (a PluginError's message)."""
    caplog.clear()
    with caplog.at_level(logging.ERROR), pytest.raises(Abort):
        run_build(config_file, env, **overrides)
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def assert_inert(root: Path, trap: NetworkTrap) -> None:
    """The plugin of the project in `root` wrote no state and sent nothing."""
    assert not (root / ".cache").exists()
    assert trap.calls == []


def edit(config_file: Path, page: str, text: str) -> None:
    (config_file.parent / "docs" / page).write_text(text, encoding="utf-8")


@pytest.fixture
def trap(monkeypatch: pytest.MonkeyPatch) -> NetworkTrap:
    """Every request any client tries is recorded and refused (see helpers.forbid_network)."""
    return forbid_network(monkeypatch)


@pytest.fixture(autouse=True)
def _outside_any_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a manifest the plugin reads the deployed branch of the git repository in the
    # working directory (as gh-deploy does): keep this project's own repository out of it.
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


@pytest.fixture
def reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    # The mkdocs theme's homepage and the sitemap embed the build time; SOURCE_DATE_EPOCH pins it.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


@pytest.mark.usefixtures("reproducible")
@pytest.mark.parametrize("dry_run_by", ["env", "option"])
@pytest.mark.parametrize(
    ("site_url", "use_directory_urls", "page_urls"),
    [
        ("https://example.com/", True, ["about/", "about/index.html"]),
        ("https://example.com/docs/", True, ["about/", "about/index.html"]),
        ("https://example.com/docs/", False, ["about.html"]),
    ],
)
def test_edit_one_page_plans_exactly_its_urls_and_sends_nothing(
    tmp_path: Path,
    trap: NetworkTrap,
    dry_run_by: str,
    site_url: str,
    use_directory_urls: bool,
    page_urls: list[str],
) -> None:
    # Everything a real purge needs is there (purge_on: build, zone, token): only the dry run
    # stands between this build and Cloudflare.
    options: dict[str, Any] = dict(PURGING)
    env = {"CLOUDFLARE_API_TOKEN": TOKEN}
    if dry_run_by == "env":
        env["CFPURGE_DRY_RUN"] = "1"
    else:
        options["dry_run"] = True
    config_file = make_site(
        tmp_path, site_url=site_url, options=options, use_directory_urls=use_directory_urls
    )
    state = tmp_path / MANIFEST_FILE.parent

    baseline = record_baseline(config_file, env)
    first_plan = read_plan(tmp_path)
    assert first_plan["requests"] == [] and first_plan["changes"] == []
    assert any("no manifest of an earlier deploy" in note for note in first_plan["notes"])

    edit(config_file, "about.md", "# About\n\nWho we are, now with more words.\n")
    state_before = tree_bytes(state)
    run_build(config_file, env)

    plan = read_plan(tmp_path)
    built = "about/index.html" if use_directory_urls else "about.html"
    assert [(c["path"], c["status"]) for c in plan["changes"]] == [
        (built, "modified"),
        ("search/search_index.json", "modified"),
    ]
    expected = [site_url + path for path in [*page_urls, "search/search_index.json"]]
    assert plan["requests"] == [{"files": expected}]
    assert (plan["site_url"], plan["zone_id"]) == (site_url, ZONE_ID)
    for body in plan["requests"]:
        validate_body(body)

    # A dry run sends nothing and changes no state: the manifest is the baseline, byte for byte.
    assert trap.calls == []
    assert (tmp_path / MANIFEST_FILE).read_bytes() == baseline
    reports = {
        "plan.json": (tmp_path / PLAN_FILE).read_bytes(),
        "plan.md": (tmp_path / PLAN_FILE).with_suffix(".md").read_bytes(),
    }
    assert tree_bytes(state) == {**state_before, **reports}  # only the plan and its report
    assert not (state / "pending.json").exists()


@pytest.mark.usefixtures("reproducible")
def test_the_network_trap_catches_a_real_purge(tmp_path: Path, trap: NetworkTrap) -> None:
    """Control for the dry-run test: the same build without the dry run does reach the network."""
    config_file = make_site(tmp_path, options=PURGING)
    env = {"CLOUDFLARE_API_TOKEN": TOKEN}
    record_baseline(config_file, {**env, "CFPURGE_DRY_RUN": "1"})
    edit(config_file, "about.md", "# About\n\nChanged.\n")
    with pytest.raises(AssertionError, match="network use in a test"):
        run_build(config_file, env)
    assert trap.calls
    assert all(call.split()[1].startswith("https://api.cloudflare.com/") for call in trap.calls)


@pytest.mark.parametrize("epoch_two", ["1700086400", "1800000000"])
@pytest.mark.parametrize("theme", ["mkdocs", "readthedocs"])
def test_build_time_noise_is_exactly_homepage_and_sitemap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, theme: str, epoch_two: str
) -> None:
    """Without SOURCE_DATE_EPOCH, two builds of the same sources differ in these files only."""
    forbid_network(monkeypatch)
    env = {"CFPURGE_DRY_RUN": "1"}
    config_file = make_site(tmp_path, theme=theme)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    record_baseline(config_file, env)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch_two)  # a later build, no source change
    run_build(config_file, env)
    plan = read_plan(tmp_path)
    assert [c["path"] for c in plan["changes"]] == ["index.html", "sitemap.xml", "sitemap.xml.gz"]
    assert plan_urls(plan) == {
        "https://example.com/",
        "https://example.com/index.html",
        "https://example.com/sitemap.xml",
        "https://example.com/sitemap.xml.gz",
    }


@pytest.mark.usefixtures("reproducible")
def test_unchanged_rebuild_plans_nothing(tmp_path: Path, trap: NetworkTrap) -> None:
    env = {"CFPURGE_DRY_RUN": "1"}
    config_file = make_site(tmp_path, options={"zone_id": ZONE_ID})
    record_baseline(config_file, env)
    run_build(config_file, env)
    plan = read_plan(tmp_path)
    assert plan["changes"] == [] and plan["requests"] == []
    assert trap.calls == []


@pytest.mark.usefixtures("reproducible")
def test_serve_leaves_everything_alone(tmp_path: Path, trap: NetworkTrap) -> None:
    config_file = make_site(tmp_path, options=PURGING)
    env = {"CLOUDFLARE_API_TOKEN": TOKEN}
    config = run_build(config_file, env, command="serve")
    assert (Path(config.site_dir) / "index.html").is_file()  # the build itself ran
    assert plugin_of(config).settings is None
    assert_inert(tmp_path, trap)


@pytest.mark.usefixtures("reproducible")
def test_serve_clean_is_recognised_by_its_temp_site_dir(tmp_path: Path, trap: NetworkTrap) -> None:
    # `mkdocs serve --clean` reports command 'build' but builds into a fresh mkdocs_* temp dir.
    config_file = make_site(tmp_path, options=PURGING)
    site_dir = tempfile.mkdtemp(prefix="mkdocs_")
    try:
        config = run_build(config_file, {"CLOUDFLARE_API_TOKEN": TOKEN}, site_dir=site_dir)
        assert (Path(site_dir) / "index.html").is_file()
    finally:
        shutil.rmtree(site_dir)
    assert plugin_of(config).settings is None
    assert_inert(tmp_path, trap)


def test_disabled_plugin_is_inert(tmp_path: Path, trap: NetworkTrap) -> None:
    config_file = make_site(tmp_path, options={"enabled": False, "purge_on": ["build"]})
    run_build(config_file, {})
    assert_inert(tmp_path, trap)


@pytest.mark.usefixtures("reproducible")
def test_strict_failure_after_post_build_purges_nothing(tmp_path: Path, trap: NetworkTrap) -> None:
    """on_post_build runs, then --strict aborts the build: no purge may follow."""
    config_file = make_site(tmp_path, options=PURGING)
    env = {"CLOUDFLARE_API_TOKEN": TOKEN}
    baseline = record_baseline(config_file, {**env, "CFPURGE_DRY_RUN": "1"})
    edit(config_file, "about.md", "# About\n\nSee [the missing page](missing.md).\n")
    with pytest.raises(Abort, match="strict"):
        run_build(config_file, env, strict=True)
    plan = read_plan(tmp_path)  # on_post_build did run and plan
    assert plan["requests"]
    assert trap.calls == []
    assert (tmp_path / MANIFEST_FILE).read_bytes() == baseline


# --- configuration errors -----------------------------------------------------------------------

BAD_OPTIONS = [
    ("zone_id", "xyz", "not a zone id"),
    ("max_files_per_request", 0, "from 1 to 500"),
    ("max_files_per_request", 501, "from 1 to 500"),
    ("strategy", "bogus", "bogus"),
    ("hosts", ["https://x.com"], "not a bare host name"),
    ("api_base", "http://example.com/", "must use https://"),
    ("cache_key_headers", [{}], "non-empty map"),
    ("cache_key_headers", [{"bad header": "x"}], "not a header name"),
    ("schemes", ["ftp"], "ftp"),
    ("max_purge_seconds", 0, "above 0"),
    ("max_collateral", -1, "0 or more"),
    ("origin_url", "github.io/repo/", "must start with https://"),
    # A timeout of 0 would never let the origin answer: refused like every other "seconds".
    ("origin_timeout", 0, "above 0"),
    ("origin_timeout", -1, "above 0"),
    ("origin_interval", 0, "above 0"),
]


@pytest.mark.parametrize(("option", "value", "problem"), BAD_OPTIONS)
def test_bad_option_is_named_by_plugin_load_config(option: str, value: Any, problem: str) -> None:
    errors, _ = CfPurgePlugin().load_config({option: value})
    assert [key for key, _ in errors] == [option]
    assert problem in str(errors[0][1])


@pytest.mark.parametrize(("option", "value", "problem"), BAD_OPTIONS)
def test_bad_option_is_named_by_mkdocs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, option: str, value: Any, problem: str
) -> None:
    config_file = make_site(tmp_path, options={option: value})
    with caplog.at_level(logging.ERROR), pytest.raises(Abort, match="configuration error"):
        load(config_file)
    assert f"Plugin 'cfpurge' option '{option}'" in caplog.text
    assert problem in caplog.text


def test_good_options_load(tmp_path: Path) -> None:
    options = {
        "zone_id": ZONE_ID.upper(),
        "max_files_per_request": 500,
        "strategy": "prefixes",
        "hosts": ["www.example.com"],
        "api_base": "http://127.0.0.1:8787/client/v4",
        "cache_key_headers": [{"CF-Device-Type": "mobile"}],
        "schemes": ["https", "http"],
    }
    config = load(make_site(tmp_path, options=options))
    assert plugin_of(config).config["max_files_per_request"] == 500


def test_missing_site_url_tells_to_set_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config_file = make_site(tmp_path, site_url=None)
    errors = build_fails(config_file, {"CFPURGE_DRY_RUN": "1"}, caplog)
    assert "cfpurge: option 'site_url': is not set; set site_url in mkdocs.yml" in errors
    assert not (tmp_path / ".cache").exists()


def test_credentials_required_only_for_a_real_purge(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config_file = make_site(tmp_path, options={"purge_on": ["build"]})
    assert "option 'zone_id': is not set" in build_fails(config_file, {}, caplog)
    errors = build_fails(config_file, {"CLOUDFLARE_ZONE_ID": ZONE_ID}, caplog)
    assert "option 'api_token': is not set" in errors
    assert not (tmp_path / ".cache").exists()
    run_build(config_file, {"CFPURGE_DRY_RUN": "true"})  # a dry run needs neither
    assert (tmp_path / PLAN_FILE).is_file()


@pytest.mark.usefixtures("reproducible")
def test_corrupt_manifest_fails_the_build_and_is_kept(
    tmp_path: Path, trap: NetworkTrap, caplog: pytest.LogCaptureFixture
) -> None:
    config_file = make_site(tmp_path, options=PURGING)
    manifest = tmp_path / MANIFEST_FILE
    manifest.parent.mkdir(parents=True)
    corrupt = b'{"version": 1, "algorithm": "sha256", "files": {"index.html": "ab'
    manifest.write_bytes(corrupt)
    for env in ({"CFPURGE_DRY_RUN": "1"}, {"CLOUDFLARE_API_TOKEN": TOKEN}):
        errors = build_fails(config_file, env, caplog)
        assert f"cfpurge: manifest {str(manifest)!r} is corrupt" in errors
        assert manifest.read_bytes() == corrupt
    assert trap.calls == []


@pytest.mark.usefixtures("reproducible")
def test_manifest_of_another_site_url_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    forbid_network(monkeypatch)
    env = {"CFPURGE_DRY_RUN": "1"}
    config_file = make_site(tmp_path)
    baseline = record_baseline(config_file, env)
    config_file.write_text(
        config_file.read_text().replace("https://example.com/", "https://other.example.com/")
    )
    errors = build_fails(config_file, env, caplog)
    assert f"manifest {str(tmp_path / MANIFEST_FILE)!r} was made for site_url" in errors
    assert (tmp_path / MANIFEST_FILE).read_bytes() == baseline


@pytest.mark.usefixtures("reproducible")
def test_github_step_summary_gets_the_markdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_network(monkeypatch)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    env = {"CFPURGE_DRY_RUN": "1", "GITHUB_STEP_SUMMARY": str(summary)}
    config_file = make_site(tmp_path / "project")
    record_baseline(config_file, env)
    edit(config_file, "guide/index.md", "# Guide\n\nThe second version.\n")
    run_build(config_file, env)
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n### Cloudflare purge plan (dry run)\n")
    # Two builds, two sections: the baseline's and the edit's.
    assert text.count("### Cloudflare purge plan (dry run)") == 2
    last = text.rsplit("### Cloudflare purge plan", 1)[1]
    assert "| `guide/index.html` | modified |" in last
    assert "https://example.com/guide/" in last
