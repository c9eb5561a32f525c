"""`verify`: fetch what a purge covered through the local edge and prove the bytes are new."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.errors import CfPurgeError
from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.settings import Settings, check_connect_to
from mkdocs_cfpurge.verify import verify_manifest
from tests.helpers import SITE, run_main, settings_for, write_files

pytestmark = pytest.mark.timeout(60)


def page(title: str, built: str) -> str:
    # The mkdocs theme's footer: the build time changes on every build (the noise preset).
    return (
        f"<html><h1>{title}</h1>\n<!--\n  MkDocs version : 1.6.1\n"
        f"  Build Date UTC : {built}\n-->\n</html>\n"
    )


BUILD1 = {
    "index.html": page("Home", "2024-01-01 10:00:00"),
    "guide/index.html": page("Guide v1", "2024-01-01 10:00:00"),
    "about/index.html": page("About", "2024-01-01 10:00:00"),
    "assets/site.css": "body { color: black; }\n",
    "old/index.html": page("Old", "2024-01-01 10:00:00"),
    "404.html": page("Not found", "2024-01-01 10:00:00"),
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    write_files(tmp_path / "site", BUILD1)
    return tmp_path / "site"


@pytest.fixture
def cf_options(site: Path) -> dict[str, Any]:
    return {"origin": site}  # the edge serves the site folder


def outcome_urls(out: str, outcome: str) -> set[str]:
    """The URLs `verify` listed with this outcome (lines: outcome, status, cache status, URL)."""
    return {
        line.split()[3].rstrip(":") for line in out.splitlines() if line.split()[:1] == [outcome]
    }


class Deployed(NamedTuple):
    site: Path
    cf: LocalCloudflare
    settings: Settings
    plan_file: Path


@pytest.fixture
def deployed(site: Path, cf: LocalCloudflare, tmp_path: Path) -> Deployed:
    """Build 1 recorded and every page cached at the edge; then build 2 lands at the origin.

    Build 2 changes the guide (and every page's build date), adds new/, deletes old/. The plan
    of its purge is saved to plan.json, but not sent yet.
    """
    settings = settings_for(tmp_path / "state", cf, ignore_changes=["mkdocs-build-date"])
    pipeline.purge(settings, pipeline.scan(site, settings))  # the baseline: nothing purged
    mapper = settings.mapper()
    visited = [url for path in BUILD1 for url in mapper.urls(path)]
    # Visitors also asked for the new pages before they existed: their 404s are cached too.
    visited += [SITE + "new/", SITE + "new/index.html", SITE + "new", SITE + "old"]
    for url in visited:
        cf.edge_fetch(url)
    assert cf.edge_fetch(SITE + "guide/").cache_status == "HIT"

    rebuilt = {path: text.replace("2024-01-01", "2024-02-02") for path, text in BUILD1.items()}
    rebuilt["guide/index.html"] = page("Guide v2", "2024-02-02 10:00:00")
    rebuilt["new/index.html"] = page("New", "2024-02-02 10:00:00")
    del rebuilt["old/index.html"]
    (site / "old" / "index.html").unlink()
    (site / "old").rmdir()
    write_files(site, rebuilt)

    plan = pipeline.preview(settings, pipeline.scan(site, settings))
    plan_file = tmp_path / "plan.json"
    plan_file.write_bytes(plan.to_json())
    return Deployed(site, cf, settings, plan_file)


def verify_argv(plan_file: Path, site: Path, cf: LocalCloudflare, *extra: str) -> list[str]:
    assert cf.edge_url is not None
    return [
        "verify",
        "--plan",
        str(plan_file),
        str(site),
        "--connect-to",
        cf.edge_url,
        "--ignore-changes",
        "mkdocs-build-date",
        *extra,
    ]


def test_skipped_purge_leaves_stale_pages_and_exit_1(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    site, cf, _, plan_file = deployed
    plan = PurgePlan.load(plan_file)
    planned = {url for change in plan.changes for url in change.urls}
    # Noise alone (the build date of every other page) is not a change: only these files.
    assert {change.path for change in plan.changes} >= {
        "guide/index.html",
        "new/index.html",
        "old/index.html",
    }
    assert "about/index.html" not in {change.path for change in plan.changes}

    code, out, err = run_main(verify_argv(plan_file, site, cf), capsys)

    assert code == 1, (out, err)
    # Every URL the purge should have covered still answers what the edge cached before:
    # the old guide, a 404 for the new page, the deleted page itself.
    assert outcome_urls(out, "stale") == planned
    assert {SITE + "guide/", SITE + "new/", SITE + "old/"} <= planned
    guide_line = next(line for line in out.splitlines() if f" {SITE}guide/:" in line)
    assert guide_line.split()[:3] == ["stale", "200", "HIT"]
    new_line = next(line for line in out.splitlines() if f" {SITE}new/:" in line)
    assert new_line.split()[:3] == ["stale", "404", "HIT"]
    assert out.splitlines()[-1] == f"verify: 0 URL(s) fresh, {len(planned)} stale, 0 deleted → 404"
    assert "stale URL(s)" in err


def test_after_the_purge_every_page_is_fresh_and_exit_0(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    site, cf, settings, plan_file = deployed
    result = pipeline.purge(settings, pipeline.scan(site, settings))
    assert result.requests_sent >= 1
    plan = PurgePlan.load(plan_file)
    gone = {url for c in plan.changes if c.status.value == "deleted" for url in c.urls}
    fresh = {url for c in plan.changes for url in c.urls} - gone

    code, out, err = run_main(verify_argv(plan_file, site, cf, "--verbose"), capsys)

    assert code == 0, (out, err)
    assert outcome_urls(out, "fresh") == fresh
    assert outcome_urls(out, "deleted") == gone and gone
    assert out.splitlines()[-1] == (
        f"verify: {len(fresh)} URL(s) fresh, 0 stale, {len(gone)} deleted → 404"
    )
    # The first fetch after a purge goes to the origin; verify records what the edge said.
    guide_line = next(line for line in out.splitlines() if f" {SITE}guide/" in line)
    assert guide_line.split()[:3] == ["fresh", "200", "MISS"]

    # The library call the use case makes (verify_after_purge): the same checks, now answered
    # from the cache.
    built = pipeline.scan(site, settings)
    again = verify_manifest(plan, built, settings, connect_to=cf.edge_url, concurrency=2, timeout=5)
    assert again.ok and not again.stale
    assert {check.url for check in again.of("fresh")} == fresh
    assert {check.cache_status for check in again.of("fresh")} == {"HIT"}
    assert again.summary() == out.splitlines()[-1]


def test_noise_is_ignored_only_when_hashed_the_same_way(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    site, cf, settings, plan_file = deployed
    pipeline.purge(settings, pipeline.scan(site, settings))
    argv = verify_argv(plan_file, site, cf)
    without_filter = argv[: argv.index("--ignore-changes")]

    # Without the filter, SITE_DIR's hashes and the plan's changes still agree (the guide really
    # changed), and the pages are the built bytes: fresh either way.
    code, out, _ = run_main(without_filter, capsys)
    assert code == 0, out

    # A manifest made with the filter (the committed one) needs the bodies filtered too.
    by_manifest = ["verify", "--plan", str(plan_file), "--manifest", str(settings.manifest_path)]
    by_manifest += ["--connect-to", str(cf.edge_url)]
    code, out, _ = run_main([*by_manifest, "--ignore-changes", "mkdocs-build-date"], capsys)
    assert code == 0, out
    code, out, _ = run_main(by_manifest, capsys)
    assert code == 1
    stale = outcome_urls(out, "stale")
    assert SITE + "guide/" in stale  # the raw body's hash is not the filtered one
    assert SITE + "assets/site.css" not in stale  # nothing to filter in a stylesheet


def test_public_urls_are_fetched_directly_without_connect_to(
    tmp_path: Path, site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A zone named after the loopback address: the public URL itself is on 127.0.0.1.
    with LocalCloudflare(zone_name="127.0.0.1", origin=site, rate_limit=False) as edge:
        site_url = f"{edge.edge_url}/"
        settings = Settings.create(
            site_url=site_url, manifest_path=tmp_path / "m.json", strategy="files", env={}
        )
        old = pipeline.scan(site, settings)
        (site / "guide" / "index.html").write_text("<h1>Guide v2</h1>")
        (site / "assets" / "site.css").unlink()
        (site / "assets").rmdir()
        plan = pipeline.make_plan(old, pipeline.scan(site, settings), settings)
        plan_file = tmp_path / "plan.json"
        plan_file.write_bytes(plan.to_json())

        code, out, _ = run_main(["verify", "--plan", str(plan_file), str(site)], capsys)

    assert code == 0, out
    assert re.fullmatch(
        r"verify: 2 URL\(s\) fresh, 0 stale, [1-9]\d* deleted → 404", out.splitlines()[-1]
    )
    # The requests went to the public URLs themselves, with no other Host header.
    assert {str(entry["url"]) for entry in edge.edge_log} >= {"https://127.0.0.1/guide/"}


def test_a_server_that_never_answers_times_out_and_fails(
    tmp_path: Path, site: Path, cf: LocalCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(tmp_path / "state", cf, ignore_changes=["mkdocs-build-date"])
    old = pipeline.scan(site, settings)
    (site / "index.html").write_text("<h1>Home v2</h1>")
    plan = pipeline.make_plan(old, pipeline.scan(site, settings), settings)
    plan_file = tmp_path / "plan.json"
    plan_file.write_bytes(plan.to_json())
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"http://127.0.0.1:{silent.getsockname()[1]}"
        argv = ["verify", "--plan", str(plan_file), str(site), "--connect-to", address]
        code, out, _ = run_main([*argv, "--timeout", "0.3", "--concurrency", "2"], capsys)

    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("error")]
    assert len(errors) == len(plan.changes[0].urls) and all("timed out" in e for e in errors)
    assert "not checked (errors)" in out.splitlines()[-1]


@pytest.mark.parametrize(
    "argv_extra",
    [
        ["--connect-to", "http://127.0.0.1:1/some/path"],
        ["--connect-to", "ftp://127.0.0.1:1"],
        ["--concurrency", "0"],
        ["--timeout", "0"],
    ],
)
def test_bad_options_are_usage_errors(
    tmp_path: Path, site: Path, argv_extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_bytes(PurgePlan(SITE, None, [], []).to_json())
    code, _, err = run_main(["verify", "--plan", str(plan_file), str(site), *argv_extra], capsys)
    assert code == 2, err


def test_site_dir_or_manifest_not_both(
    tmp_path: Path, site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_bytes(PurgePlan(SITE, None, [], []).to_json())
    for extra in ([], [str(site), "--manifest", str(tmp_path / "m.json")]):
        code, _, err = run_main(["verify", "--plan", str(plan_file), *extra], capsys)
        assert code == 2 and "SITE_DIR or --manifest" in err


def test_connect_to_names_a_server_only() -> None:
    assert check_connect_to("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    with pytest.raises(CfPurgeError):
        check_connect_to("127.0.0.1:8080")


@pytest.mark.parametrize("where", ["another host", "another site_url"])
def test_a_plan_is_input_verify_fetches_only_the_sites_urls(
    deployed: Deployed, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    # A plan from a pull request's artifact could name any address for verify to fetch.
    data = json.loads(deployed.plan_file.read_bytes())
    extra: list[str] = []
    if where == "another host":
        data["changes"][0]["urls"].append("http://169.254.169.254/latest/meta-data/")
    else:
        extra = ["--site-url", "https://docs.example.org/"]
    deployed.plan_file.write_text(json.dumps(data), encoding="utf-8")
    before = len(deployed.cf.edge_log)
    argv = verify_argv(deployed.plan_file, deployed.site, deployed.cf, *extra)
    code, _, err = run_main(argv, capsys)
    assert code == 2, err
    assert f"plan file {str(deployed.plan_file)!r}" in err
    assert len(deployed.cf.edge_log) == before  # nothing fetched
