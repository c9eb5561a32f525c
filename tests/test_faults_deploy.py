"""The fault matrix, extended to the deploy flows (issue 13): `mkdocs gh-deploy` killed during
the origin wait or unable to read its remote, and `mkdocs-cfpurge purge-branch` killed during its
origin wait, unable to fetch, or failing mid-purge.

Everything is real: gh-deploy and purge-branch run as subprocesses, push to and fetch from a
bare repository, a local pages origin publishes the branch, and the local Cloudflare (API and
edge) sits in front of it. After each fault nothing is lost: one healthy rerun purges every URL
the deploy changed, and the edge then serves the new build.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.localcf.edge import OriginResponse
from mkdocs_cfpurge.localcf.origin import BranchOrigin, branch_head
from tests.helpers import TOKEN, ZONE_ID, git, subprocess_env, write_files
from tests.test_gh_deploy import (
    GUIDE_CHANGES,
    GUIDE_V2,
    MARKER,
    Project,
    assert_edge_serves,
    make_project,
    plugin_options,
    purged_urls,
    site_tree,
    urls_of,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]  # real deploys: seconds each

SITE = "https://docs.example.com/"
CF_PURGE = [sys.executable, "-m", "mkdocs_cfpurge"]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Polls:
    """Records the paths the pages origin is asked for (the origin wait's polls among them)."""

    def __init__(self, origin: BranchOrigin) -> None:
        self.paths: list[str] = []
        fetch = origin.fetch

        def recording(target: str) -> OriginResponse:
            self.paths.append(target.partition("?")[0])
            return fetch(target)

        origin.fetch = recording  # type: ignore[method-assign]

    def count(self, path: str) -> int:
        return self.paths.count(path)


@pytest.fixture
def cf_options(pages: BranchOrigin) -> dict[str, Any]:
    return {"origin": pages.url}


@pytest.fixture
def project(tmp_path: Path, bare: Path, pages: BranchOrigin, cf: LocalCloudflare) -> Project:
    return make_project(
        tmp_path / "docs-repo", bare, plugin_options(cf, pages.url, origin_timeout=30)
    )


def start_deploy(project: Project) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "gh-deploy", "--force"],
        cwd=project.root,
        env=subprocess_env(CLOUDFLARE_API_TOKEN=TOKEN),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def deployed_v1_then_edited(project: Project, cf: LocalCloudflare) -> dict[str, bytes]:
    first = project.deploy()
    assert first.returncode == 0, first.stdout
    assert cf.purges == []
    v1 = site_tree(project.site_dir)
    for path in v1:  # the edge caches v1
        for url in urls_of(path):
            cf.edge_fetch(url)
    project.edit("guide/index.md", GUIDE_V2)
    return v1


def assert_guide_purged_and_fresh(project: Project, cf: LocalCloudflare) -> None:
    owed = {url for path in GUIDE_CHANGES for url in urls_of(path)}
    assert owed <= purged_urls(cf)
    assert_edge_serves(cf, site_tree(project.site_dir))
    assert not project.pending.exists()


# --- gh-deploy ------------------------------------------------------------------------------------


def test_gh_deploy_killed_during_the_origin_wait_loses_no_purge(
    project: Project, pages: BranchOrigin, cf: LocalCloudflare
) -> None:
    deployed_v1_then_edited(project, cf)
    before = project.state_bytes()
    polls = Polls(pages)
    pages.paused = True  # the push lands; the origin does not publish it yet
    head = branch_head(project.bare)
    proc = start_deploy(project)
    try:
        wait_for(lambda: polls.count(f"/{MARKER}") >= 2, "the origin wait's polls")
        assert branch_head(project.bare) != head  # pushed
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert cf.purges == []
    assert project.state_bytes() == before  # the old manifest, nothing half-written

    pages.paused = False
    rerun = project.deploy()
    assert rerun.returncode == 0, rerun.stdout
    assert_guide_purged_and_fresh(project, cf)


@pytest.mark.parametrize("runner", ["with-state", "fresh-runner"])
def test_gh_deploy_that_cannot_read_its_remote_loses_no_purge(
    project: Project, cf: LocalCloudflare, tmp_path: Path, runner: str
) -> None:
    """The remote's fetch URL fails (pushes still go through): the deploy exits 1 with a
    one-line message naming the remote, purges and commits nothing, and a rerun with the
    remote readable again purges what changed."""
    deployed_v1_then_edited(project, cf)
    if runner == "fresh-runner":
        project.manifest.unlink()  # no state: the deployed branch is the baseline
    before = project.state_bytes()
    head = branch_head(project.bare)
    git(project.root, "remote", "set-url", "--push", "origin", str(project.bare))
    git(project.root, "remote", "set-url", "origin", str(tmp_path / "unreachable.git"))

    result = project.deploy()

    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout
    error = next(
        line for line in result.stdout.splitlines() if "cfpurge:" in line and "git" in line
    )
    assert "unreachable.git" in error
    assert cf.purges == [] and project.state_bytes() == before
    if runner == "fresh-runner":
        # It stopped before the push: a first deploy's marker would owe nothing.
        assert branch_head(project.bare) == head and "nothing was pushed" in result.stdout

    git(project.root, "remote", "set-url", "origin", str(project.bare))
    rerun = project.deploy()
    assert rerun.returncode == 0, rerun.stdout
    assert_guide_purged_and_fresh(project, cf)


# --- purge-branch ---------------------------------------------------------------------------------


class Branch:
    """A gh-pages branch written by any tool (here: plain git), pushed to `bare`."""

    def __init__(self, tmp_path: Path, bare: Path, cf: LocalCloudflare) -> None:
        self.work = tmp_path / "writer"
        self.repo = tmp_path / "purger"
        self.bare = bare
        git(tmp_path, "init", "-q", "-b", "gh-pages", str(self.work))
        git(self.work, "remote", "add", "origin", str(bare))
        git(tmp_path, "init", "-q", "-b", "main", str(self.repo))
        git(self.repo, "remote", "add", "origin", str(bare))
        self.env = subprocess_env(
            CLOUDFLARE_API_TOKEN=TOKEN, CLOUDFLARE_ZONE_ID=ZONE_ID, CLOUDFLARE_API_BASE=cf.api_base
        )

    def push(self, files: dict[str, str]) -> None:
        write_files(self.work, files)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-qm", "deploy")
        git(self.work, "push", "-q", "-f", "origin", "gh-pages")

    def command(self, *args: str) -> list[str]:
        return [*CF_PURGE, "purge-branch", "--repo", str(self.repo), "--site-url", SITE, *args]

    def purge(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=self.repo,  # the state lives in the folder the command runs in
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    @property
    def manifest(self) -> Path:
        return self.repo / ".cache/plugin/cfpurge/branch/manifest.json"


V1 = {f"p{i}/index.html": f"<p>{i} v1</p>" for i in range(12)} | {"index.html": "<p>home</p>"}
V2 = {**V1, **{f"p{i}/index.html": f"<p>{i} v2</p>" for i in range(6)}}
V2_URLS = {url for i in range(6) for url in urls_of(f"p{i}/index.html")}


@pytest.fixture
def branch(tmp_path: Path, bare: Path, cf: LocalCloudflare) -> Branch:
    made = Branch(tmp_path, bare, cf)
    made.push(V1)
    first = made.purge()  # records the baseline
    assert first.returncode == 0, first.stderr
    return made


def edge_serves(cf: LocalCloudflare, files: dict[str, str]) -> None:
    assert_edge_serves(cf, {path: text.encode() for path, text in files.items()})


def test_purge_branch_killed_during_the_origin_wait_loses_no_purge(
    pages: BranchOrigin, branch: Branch, cf: LocalCloudflare
) -> None:
    before = branch.manifest.read_bytes()
    polls = Polls(pages)
    wait_for(lambda: pages.published == branch_head(branch.bare), "V1 published")
    pages.paused = True  # V2 is pushed, and not published
    branch.push(V2)
    wait = ["--wait-for-origin", "--origin-url", pages.url, "--origin-interval", "0.1"]
    proc = subprocess.Popen(
        branch.command(*wait),
        cwd=branch.repo,
        env=branch.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: polls.count("/p0/index.html") >= 2, "the origin wait's polls")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert cf.purges == [] and branch.manifest.read_bytes() == before

    pages.paused = False
    rerun = branch.purge(*wait)
    assert rerun.returncode == 0, rerun.stderr
    assert purged_urls(cf) >= V2_URLS
    edge_serves(cf, V2)


def test_purge_branch_that_cannot_fetch_loses_no_purge(
    pages: BranchOrigin, branch: Branch, cf: LocalCloudflare, tmp_path: Path
) -> None:
    branch.push(V2)
    # No origin wait in this purge: it runs once the deploy is served, as after a deploy step.
    wait_for(lambda: pages.published == branch_head(branch.bare), "V2 published")
    before = branch.manifest.read_bytes()
    git(branch.repo, "remote", "set-url", "origin", str(tmp_path / "unreachable.git"))
    failed = branch.purge()
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.count("\n") == 1 and "unreachable.git" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert cf.purges == [] and branch.manifest.read_bytes() == before

    git(branch.repo, "remote", "set-url", "origin", str(branch.bare))
    rerun = branch.purge()
    assert rerun.returncode == 0, rerun.stderr
    assert purged_urls(cf) == V2_URLS
    edge_serves(cf, V2)


def test_purge_branch_failing_mid_purge_keeps_what_is_owed(
    pages: BranchOrigin, branch: Branch, cf: LocalCloudflare
) -> None:
    branch.push(V2)
    wait_for(lambda: pages.published == branch_head(branch.bare), "V2 published")
    before = branch.manifest.read_bytes()
    cf.fail_next(6, 500, retry_after=0.01)  # every attempt at the first request (6)
    failed = branch.purge()
    assert failed.returncode == 1, failed.stderr
    assert "still owed are saved in" in failed.stderr and "Traceback" not in failed.stderr
    assert cf.purges == [] and branch.manifest.read_bytes() == before
    assert branch.manifest.with_name("pending.json").exists()

    rerun = branch.purge()
    assert rerun.returncode == 0, rerun.stderr
    assert purged_urls(cf) == V2_URLS
    assert not branch.manifest.with_name("pending.json").exists()
    edge_serves(cf, V2)
