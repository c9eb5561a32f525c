"""Issue 11: exact purges on deploy flows that keep no state (actions/deploy-pages, rsync,
Zensical, hand-made folders): the live site is the baseline, the marker carries the owed purge.

Each deploy builds in a fresh copy of the sources (no `.cache`, no `.git`) with a real
`mkdocs build` (or `zensical build`), is uploaded to a local static host that publishes it a
second later, and is purged with the CLI as a user types it, from the same folder or from a
separate one holding only the built site. What had to be purged is judged from the two trees the
origin served (tests/deploys.py), never from the plan. Timing: purge requests are compared with
the origin's own publication times (both `time.monotonic()` in this process); the 5 s bound is
the issue's, measured with default settings, with the 2 s poll cap leaving room for this shared
2-core machine.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mkdocs_cfpurge.localcf.origin import FolderPublisher
from tests.deploys import (
    ADDED,
    CF_PURGE,
    EDIT,
    FOLDER,
    MARKER,
    PAGES,
    REMOVED,
    SITE,
    ZENSICAL,
    World,
    read_tree,
    write_mkdocs_project,
    write_zensical_project,
)
from tests.helpers import MakeCf, subprocess_env, write_files

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

DELAY = 1.0  # seconds from an upload to its publication
# What the origin served before this tool was used: a site without a marker.
BEFORE = {f"{FOLDER}/index.html": "<h1>The handbook, before this tool</h1>\n"}


@pytest.fixture
def world(tmp_path: Path, make_cf: MakeCf) -> Iterator[World]:
    upload = tmp_path / "upload"
    write_files(upload, BEFORE)
    with FolderPublisher(upload, tmp_path / "exports", delay=DELAY) as origin:
        yield World(tmp_path, make_cf(origin=origin.url), origin, tmp_path / "sources")


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout
    return result.stdout


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# A build step: the sources of a fresh copy → its built `site/` (with its marker).
Build = Callable[[World, Path], None]


def deploy_with_plugin(world: World) -> Path:
    """A fresh copy of the sources built (the plugin writes the marker) and published."""
    work = world.fresh_copy(f"run-{len(world.runs) + 1}")
    ok(world.mkdocs_build(work))
    world.origin.wait_published(world.deploy(work / "site"))
    return work


def deployed_then_edited(world: World) -> Path:
    """The first deploy of the plugin's project published, then a page edited: the fresh copy
    the next run starts from, not built yet."""
    write_mkdocs_project(world.sources, PAGES, plugin={"origin_url": world.origin_url})
    deploy_with_plugin(world)
    world.edit(EDIT)
    return world.fresh_copy(f"run-{len(world.runs) + 1}")


def build_with_plugin(world: World, work: Path) -> None:
    ok(world.mkdocs_build(work))
    assert (work / "site" / MARKER).is_file()


def build_then_mark(world: World, work: Path) -> None:
    ok(world.mkdocs_build(work))
    assert not (work / "site" / MARKER).exists()  # no plugin: MkDocs alone wrote the site
    mark = ["mark", "site", "--site-url", SITE, "--origin-url", world.origin_url]
    ok(world.run([*CF_PURGE, *mark], work))


def zensical_then_mark(world: World, work: Path) -> None:
    ok(world.run([str(ZENSICAL), "build"], work))
    mark = ["mark", "site", "--site-url", SITE, "--origin-url", world.origin_url]
    ok(world.run([*CF_PURGE, *mark], work))


def three_deploys(world: World, build: Build) -> list[str]:
    """Deploy 1 (the first with this tool), 2 (an edit, purged in the build's folder) and 3 (a
    page added and one removed, purged from a folder holding only a copy of `site/`). Returns
    the purge steps' outputs."""
    outputs = []
    # 1. The origin serves a site without a marker: nothing to compare with, nothing purged.
    work = world.fresh_copy("run-1")
    build(world, work)
    version = world.deploy(work / "site")
    first = ok(world.purge(work))
    outputs.append(first)
    assert world.origin.published == version
    assert world.cf.requests == [] and world.cf.purges == []
    assert "first deploy" in first
    marker = json.loads((work / "site" / MARKER).read_bytes())
    assert marker["purge"]["baseline"]["source"] == "none"
    assert marker["purge"]["baseline"]["first_deploy"] is True

    # 2. An edit, purged where it was built.
    world.edit(EDIT)
    work = world.fresh_copy("run-2")
    build(world, work)
    before, start = world.served(), len(world.cf.purges)
    world.warm(work / "site")
    version = world.deploy(work / "site")
    outputs.append(ok(world.purge(work)))
    check = world.check_purge(before, version, start)
    assert check.expected, "the edit changed nothing served"
    assert not check.collateral

    # 3. A page added, one removed; purged by a later job that has only the built folder.
    world.edit(ADDED, remove=REMOVED)
    work = world.fresh_copy("run-3")
    build(world, work)
    elsewhere = world.tmp / "purge-job-3"
    shutil.copytree(work / "site", elsewhere / "site")
    world.runs.append(elsewhere)
    before, start = world.served(), len(world.cf.purges)
    world.warm(work / "site")
    version = world.deploy(work / "site")
    outputs.append(ok(world.purge(elsewhere)))
    check = world.check_purge(before, version, start)
    assert SITE + "faq/" in check.expected and SITE + "guide/upgrade/" in check.expected
    assert world.leaks(*outputs) == []
    return outputs


def test_plugin_build_then_purge_is_exact_on_every_deploy(world: World) -> None:
    """The actions/deploy-pages and rsync recipes: `plugins: [search, cfpurge: {origin_url}]`,
    `mkdocs build`, upload, then `mkdocs-cfpurge purge site ... --wait-for-origin`."""
    write_mkdocs_project(world.sources, PAGES, plugin={"origin_url": None})
    config = world.sources / "mkdocs.yml"
    # origin_url is the origin's own address (on GitHub Pages: https://USER.github.io/REPO/).
    config.write_text(config.read_text().replace("null", world.origin_url))
    outputs = three_deploys(world, build_with_plugin)
    assert "baseline: the marker the origin serves at" in outputs[1]
    assert "the origin serves this build (after" in outputs[1]


def test_mkdocs_without_the_plugin_then_mark_is_exact_on_every_deploy(world: World) -> None:
    """Any generator's folder: `mkdocs build` with the plugin removed, then `mkdocs-cfpurge mark`
    before the upload."""
    write_mkdocs_project(world.sources, PAGES, plugin=None)
    three_deploys(world, build_then_mark)


@pytest.mark.skipif(not ZENSICAL.exists(), reason="zensical is not installed")
def test_zensical_build_then_mark_is_exact_on_every_deploy(world: World) -> None:
    """Zensical's own deploy flow (build, upload, deploy) with `mark` before the upload."""
    write_zensical_project(world.sources, PAGES)
    three_deploys(world, zensical_then_mark)


def test_a_dry_run_in_a_fresh_copy_plans_against_the_live_site(world: World) -> None:
    """`CFPURGE_DRY_RUN=1 mkdocs build` with no state anywhere but the live site: the plan covers
    the edit, nothing is sent, and nothing claims a baseline was recorded."""
    write_mkdocs_project(world.sources, PAGES, plugin={"origin_url": world.origin_url})
    # Before anything is deployed with this tool: no baseline anywhere, and it says how to get one.
    work = world.fresh_copy("dry-run-0")
    out = ok(world.mkdocs_build(work, CFPURGE_DRY_RUN="1"))
    assert "records the baseline" not in out
    assert "a dry run records nothing" in out and "To get a baseline, deploy once" in out

    deployed = read_tree(deploy_with_plugin(world) / "site")

    world.edit(EDIT)
    work = world.fresh_copy("dry-run-1")
    out = ok(world.mkdocs_build(work, CFPURGE_DRY_RUN="1"))
    plan = json.loads((work / ".cache/plugin/cfpurge/plan.json").read_bytes())
    built = read_tree(work / "site")
    changed = {p for p in built if built[p] != deployed.get(p)}
    assert changed == {"guide/install/index.html", "search/search_index.json"}
    assert {c["path"] for c in plan["changes"]} == changed
    assert plan["baseline"]["source"] == "live-marker"
    assert plan["baseline"]["where"] == world.origin_url + MARKER
    assert "records the baseline" not in out and "baseline recorded" not in out
    assert "dry run" in out
    assert world.cf.requests == []
    assert not (work / ".cache/plugin/cfpurge/manifest.json").exists()


def test_an_origin_down_at_build_time_loses_nothing(world: World) -> None:
    """The build cannot read the live marker (connection refused): no baseline, said so, never a
    "first deploy". The purge step asks the origin again before the deploy is published, finds
    the previous build there and purges exactly."""
    work = deployed_then_edited(world)
    config = work / "mkdocs.yml"
    closed = f"http://127.0.0.1:{closed_port()}/handbook/"
    config.write_text(config.read_text().replace(world.origin_url, closed))
    out = ok(world.mkdocs_build(work))
    assert "no baseline" in out and "first deploy with this tool" not in out
    marker = json.loads((work / "site" / MARKER).read_bytes())
    assert marker["purge"]["baseline"]["source"] == "none"
    assert marker["purge"]["baseline"]["first_deploy"] is False
    assert set(marker["owed"]) == set(marker["manifest"])  # the next deploy would resend all

    before, start = world.served(), len(world.cf.purges)
    world.warm(work / "site")
    world.origin.paused = True  # published only once the purge step has looked at the origin
    version = world.deploy(work / "site")
    args = ["purge", "site", "--site-url", SITE, "--origin-url", world.origin_url]
    with subprocess.Popen(
        [*CF_PURGE, *args, "--wait-for-origin"],
        cwd=work,
        env=subprocess_env(**world.credentials()),
        stderr=subprocess.PIPE,
        text=True,
    ) as purge:
        assert purge.stderr is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = purge.stderr.readline()
            lines.append(line)
            if not line or "at purge time" in line:
                break
        world.origin.paused = False
        lines.append(purge.stderr.read())
        assert purge.wait(timeout=60) == 0, "".join(lines)
    out = "".join(lines)
    assert "baseline: the marker the origin serves at" in out
    check = world.check_purge(before, version, start)
    assert check.expected == {
        SITE + "guide/install/",
        SITE + "guide/install/index.html",
        SITE + "search/search_index.json",
    }
    assert not check.collateral


def test_a_slow_publication_is_purged_within_seconds_of_it(world: World) -> None:
    """A host that takes 7 s to publish: the polls have backed off to their 2 s cap by then, and
    the last purge request still comes within 5 s of the publication (default settings)."""
    work = deployed_then_edited(world)
    ok(world.mkdocs_build(work))
    before, start = world.served(), len(world.cf.purges)
    world.origin.delay = 7.0
    version = world.deploy(work / "site")
    out = ok(world.purge(work))
    check = world.check_purge(before, version, start)  # asserts latency <= 5 s
    assert check.requests == 1 and check.latency <= 5.0
    waited = float(out.split("the origin serves this build (after ")[1].split("s,")[0])
    assert waited >= 6.0  # it did wait for the publication
