"""Issue 4: purge after `mkdocs gh-deploy` has pushed, and only once the origin serves the build.

Everything runs for real on this machine: `mkdocs gh-deploy` in a subprocess pushes to a bare
repository; localcf's `BranchOrigin` publishes that repository's gh-pages branch some time after
each push, like GitHub Pages; the local Cloudflare (API and edge cache) sits in front of it. The
edge keeps what it cached forever, and a visitor keeps reading it during deploys: a purge sent
before the origin serves the new build would re-cache the old pages, and the final fetches would
show it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.localcf.origin import BranchOrigin, OriginServer, branch_head
from tests.helpers import (
    MANIFEST_FILE,
    PLAN_FILE,
    SITE,
    TOKEN,
    ZONE_ID,
    MakeCf,
    git,
    make_pushed_site,
    plan_urls,
    subprocess_env,
    write_files,
)

MARKER = "cfpurge-build.json"
PENDING_FILE = MANIFEST_FILE.with_name("pending.json")
CF_PURGE = [sys.executable, "-m", "mkdocs_cfpurge"]

PAGES = {
    "index.md": "# Home\n\nWelcome.\n",
    "guide/index.md": "# Guide\n\nThe first version of the guide.\n",
    "about.md": "# About\n\nWho we are.\n",
}
GUIDE_V2 = "# Guide\n\nThe second version of the guide, with more words.\n"
# What editing the guide's text changes in the build (SOURCE_DATE_EPOCH keeps the rest as is).
GUIDE_CHANGES = {"guide/index.html", "search/search_index.json"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]  # real deploys: seconds each


# --- helpers ------------------------------------------------------------------------------


def site_tree(site_dir: Path) -> dict[str, bytes]:
    """The build's files (the marker left out: it is no page)."""
    return {
        path.relative_to(site_dir).as_posix(): path.read_bytes()
        for path in sorted(site_dir.rglob("*"))
        if path.is_file() and path.name != MARKER
    }


def urls_of(path: str) -> list[str]:
    """The URLs a static host serves a file at: `dir/index.html` also as `dir/`."""
    if path == "index.html":
        return [SITE, SITE + path]
    if path.endswith("/index.html"):
        return [SITE + path[: -len("index.html")], SITE + path]
    return [SITE + path]


def changed_files(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> set[str]:
    return {path for path in old.keys() | new.keys() if old.get(path) != new.get(path)}


def purged_urls(cf: LocalCloudflare) -> set[str]:
    urls: set[str] = set()
    for record in cf.purges:
        assert record.method == "purge_cache"
        assert record.kind == "files", record
        urls.update(item if isinstance(item, str) else item[0] for item in record.items)
    return urls


def assert_edge_serves(cf: LocalCloudflare, tree: Mapping[str, bytes]) -> None:
    """Every URL of every file, fetched through the edge, gives the file's current bytes."""
    stale = []
    for path, body in tree.items():
        for url in urls_of(path):
            response = cf.edge_fetch(url)
            if response.status != 200 or response.body != body:
                stale.append(f"{url} ({response.status}, {response.cache_status})")
    assert not stale, f"the edge serves stale content: {stale}"


def assert_guide_edit_purged(cf: LocalCloudflare, v1: Mapping[str, bytes], site_dir: Path) -> None:
    """The new build in `site_dir` differs from `v1` as editing the guide makes it differ; those
    URLs, and only those, were purged; the edge serves the new build."""
    v2 = site_tree(site_dir)
    assert changed_files(v1, v2) == GUIDE_CHANGES
    assert purged_urls(cf) == {url for path in GUIDE_CHANGES for url in urls_of(path)}
    assert_edge_serves(cf, v2)


def warm_edge(cf: LocalCloudflare, urls: list[str]) -> None:
    """Fetch every URL twice: the second answer must come from the edge's cache."""
    for url in urls:
        cf.edge_fetch(url)
    assert {cf.edge_fetch(url).cache_status for url in urls} == {"HIT"}


class Visitor:
    """Reads `urls` through the edge over and over while a deploy runs (a busy site does)."""

    def __init__(self, cf: LocalCloudflare, urls: list[str]) -> None:
        self.cf, self.urls = cf, urls
        self.fetches = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for url in self.urls:
                self.cf.edge_fetch(url)
                self.fetches += 1
            self._stop.wait(0.02)

    def __enter__(self) -> Visitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Project:
    """A docs repository whose `origin` is the bare repository the pages origin publishes."""

    root: Path
    bare: Path

    @property
    def site_dir(self) -> Path:
        return self.root / "site"

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_FILE

    @property
    def pending(self) -> Path:
        return self.root / PENDING_FILE

    def edit(self, rel: str, text: str) -> None:
        write_files(self.root / "docs", {rel: text})
        git(self.root, "commit", "-qam", f"edit {rel}")

    def deploy(self, **env: str) -> subprocess.CompletedProcess[str]:
        """`mkdocs gh-deploy --force`, as a user or CI runs it."""
        result = subprocess.run(
            [sys.executable, "-m", "mkdocs", "gh-deploy", "--force"],
            cwd=self.root,
            env=subprocess_env(CLOUDFLARE_API_TOKEN=TOKEN, **env),
            capture_output=True,
            text=True,
            check=False,
            timeout=45,
        )
        result.stdout += result.stderr  # MkDocs logs on stderr; one text to search and show
        return result

    def configure(self, **options: Any) -> None:
        """Change the plugin's options in mkdocs.yml (and commit, as a user would)."""
        config_file = self.root / "mkdocs.yml"
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        plugins = config["plugins"]
        index = next(i for i, p in enumerate(plugins) if isinstance(p, dict) and "cfpurge" in p)
        plugins[index]["cfpurge"].update(options)
        config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        git(self.root, "commit", "-qam", "configure cfpurge")

    def state_bytes(self) -> dict[str, bytes | None]:
        return {
            name: path.read_bytes() if path.exists() else None
            for name, path in (("manifest", self.manifest), ("pending", self.pending))
        }


def plugin_options(cf: LocalCloudflare, origin_url: str, **more: Any) -> dict[str, Any]:
    return {
        "api_base": cf.api_base,
        "zone_id": ZONE_ID,
        "origin_url": origin_url,
        "origin_interval": 0.1,
        "origin_timeout": 5,
        **more,
    }


def make_project(root: Path, bare: Path, options: Mapping[str, Any]) -> Project:
    make_pushed_site(root, bare, site_url=SITE, options=options, pages=PAGES)
    return Project(root, bare)


def clone(bare: Path, root: Path, *, single_branch: bool = False) -> Project:
    # A single-branch clone's fetch refspec leaves out gh-pages: pushing it moves no
    # remote-tracking ref, so only the remote can tell that the push landed.
    only = ["--single-branch"] if single_branch else []
    git(bare.parent, "clone", "-q", *only, "-b", "main", str(bare), str(root))
    return Project(root, bare)


@pytest.fixture
def cf_options(pages: BranchOrigin) -> dict[str, Any]:
    return {"origin": pages.url}  # the edge in front of the pages origin


@pytest.fixture
def project(tmp_path: Path, bare: Path, pages: BranchOrigin, cf: LocalCloudflare) -> Project:
    return make_project(tmp_path / "docs-repo", bare, plugin_options(cf, pages.url))


def deployed_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout


# --- 1. the purge waits for the origin ------------------------------------------------------


def test_purge_waits_until_the_origin_serves_the_pushed_build(
    project: Project, pages: BranchOrigin, cf: LocalCloudflare
) -> None:
    first = project.deploy()
    deployed_ok(first)
    assert "first deploy, nothing to purge" in first.stdout
    assert "records the baseline" in first.stdout
    assert cf.purges == []
    assert project.manifest.is_file()
    assert not project.pending.exists()
    v1_commit = branch_head(project.bare)
    assert v1_commit is not None and pages.published == v1_commit
    v1 = site_tree(project.site_dir)
    urls = [url for path in v1 for url in urls_of(path)]
    warm_edge(cf, urls)

    project.edit("guide/index.md", GUIDE_V2)
    pages.delay = 1.5
    with Visitor(cf, urls) as visitor:
        second = project.deploy()
    deployed_ok(second)
    assert visitor.fetches > 0

    v2_commit = branch_head(project.bare)
    assert v2_commit not in (None, v1_commit)
    assert v2_commit is not None
    published = pages.published_at(v2_commit)
    assert cf.purges, second.stdout
    early = [record.time - published for record in cf.purges if record.time <= published]
    assert not early, f"purged {early} s before the origin served the build"
    assert "waiting for the origin to serve this build" in second.stdout
    assert "the origin serves this build" in second.stdout

    assert_guide_edit_purged(cf, v1, project.site_dir)
    assert not project.pending.exists()
    assert (
        json.loads(project.manifest.read_bytes())["files"]
        == json.loads((project.site_dir / MARKER).read_bytes())["manifest"]
    )


# --- 2. a rejected push purges nothing ------------------------------------------------------


def reject_pushes(bare: Path) -> None:
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'rejected by the test hook' >&2\nexit 1\n")
    hook.chmod(0o755)


@pytest.mark.parametrize("earlier_deploy", [False, True], ids=["first-deploy", "later-deploy"])
def test_a_rejected_push_purges_nothing_and_keeps_the_state(
    project: Project, cf: LocalCloudflare, earlier_deploy: bool
) -> None:
    if earlier_deploy:
        deployed_ok(project.deploy())
        project.edit("guide/index.md", GUIDE_V2)
    before = project.state_bytes()
    head = branch_head(project.bare)
    requests = len(cf.requests)
    reject_pushes(project.bare)

    result = project.deploy()

    assert result.returncode != 0, result.stdout
    assert "rejected by the test hook" in result.stdout
    assert branch_head(project.bare) == head
    assert len(cf.requests) == requests == 0
    assert cf.purges == []
    assert project.state_bytes() == before
    assert before["pending"] is None
    assert (before["manifest"] is None) != earlier_deploy


# --- 3. a fresh clone takes the deployed branch as its baseline -----------------------------


@pytest.mark.parametrize("single_branch", [False, True], ids=["clone", "single-branch-clone"])
def test_a_fresh_clone_purges_what_changed_since_the_deployed_branch(
    project: Project, cf: LocalCloudflare, tmp_path: Path, single_branch: bool
) -> None:
    first = project.deploy()
    deployed_ok(first)
    assert "first deploy, nothing to purge" in first.stdout
    assert cf.purges == []
    v1 = site_tree(project.site_dir)
    urls = [url for path in v1 for url in urls_of(path)]
    warm_edge(cf, urls)

    runner = clone(project.bare, tmp_path / "ci-runner", single_branch=single_branch)
    assert not (runner.root / ".cache").exists()
    runner.edit("guide/index.md", GUIDE_V2)
    with Visitor(cf, urls):
        second = runner.deploy()
    deployed_ok(second)

    assert "baseline: the manifest published in origin/gh-pages" in second.stdout
    assert_guide_edit_purged(cf, v1, runner.site_dir)
    assert runner.manifest.is_file()
    assert not runner.pending.exists()


def test_a_branch_deployed_without_the_plugin_is_compared_by_git_blob_ids(
    tmp_path: Path, bare: Path, pages: BranchOrigin, cf: LocalCloudflare
) -> None:
    # `exclude`d output is no part of the manifest: present on the branch, it is not "deleted".
    options = plugin_options(cf, pages.url, exclude=["sitemap.xml.gz"])
    before = make_project(tmp_path / "before", bare, options)
    before.configure(enabled=False)  # the site was deployed before the plugin was added
    deployed_ok(before.deploy())
    head = branch_head(bare)
    assert head is not None
    assert "cfpurge" not in git(bare, "ls-tree", "--name-only", head)
    v1 = site_tree(before.site_dir)
    before.configure(enabled=True)
    git(before.root, "push", "-q", "origin", "main")

    runner = clone(bare, tmp_path / "ci-runner")
    runner.edit("guide/index.md", GUIDE_V2)
    result = runner.deploy()
    deployed_ok(result)

    assert "baseline: the files of origin/gh-pages (git blob ids)" in result.stdout
    assert_guide_edit_purged(cf, v1, runner.site_dir)


# --- 4. the origin never publishes: the purge stays owed ----------------------------------


def test_origin_timeout_keeps_the_purge_pending_until_the_cli_sends_it(
    project: Project, pages: BranchOrigin, cf: LocalCloudflare
) -> None:
    deployed_ok(project.deploy())
    v1 = site_tree(project.site_dir)
    warm_edge(cf, [url for path in v1 for url in urls_of(path)])
    manifest_v1 = project.manifest.read_bytes()

    pages.paused = True
    project.configure(origin_timeout=2)
    project.edit("guide/index.md", GUIDE_V2)
    started = time.monotonic()
    result = project.deploy()
    assert result.returncode != 0, result.stdout
    assert time.monotonic() - started >= 2  # origin_timeout
    assert "did not serve this build" in result.stdout
    hint = f"mkdocs-cfpurge purge --manifest {project.manifest} --site-url {SITE}"
    assert hint in result.stdout
    assert cf.requests == []
    assert project.manifest.read_bytes() == manifest_v1

    owed = {url for path in GUIDE_CHANGES for url in urls_of(path)}
    pending = json.loads(project.pending.read_bytes())
    assert plan_urls(pending) == owed
    v2_manifest = json.loads((project.site_dir / MARKER).read_bytes())["manifest"]
    assert pending["next_manifest"]["files"] == v2_manifest
    v2 = site_tree(project.site_dir)
    assert changed_files(v1, v2) == GUIDE_CHANGES

    pages.paused = False
    commit = branch_head(project.bare)
    assert commit is not None
    published = pages.wait_published(commit)
    purge = subprocess.run(
        [*CF_PURGE, "purge", "--manifest", str(project.manifest), "--site-url", SITE],
        cwd=project.root,
        env=subprocess_env(
            CLOUDFLARE_API_TOKEN=TOKEN, CLOUDFLARE_API_BASE=cf.api_base, CLOUDFLARE_ZONE_ID=ZONE_ID
        ),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert purge.returncode == 0, purge.stderr
    assert purged_urls(cf) == owed
    assert all(record.time > published for record in cf.purges)
    assert not project.pending.exists()
    assert json.loads(project.manifest.read_bytes())["files"] == v2_manifest
    assert_edge_serves(cf, v2)


# --- 5. the CLI waits for a deploy made by something else ---------------------------------

SITE_V1 = {
    "index.html": "<h1>Home</h1>\n",
    "guide/index.html": "<h1>Guide</h1><p>first</p>\n",
    "assets/site.css": "body { color: black; }\n",
    "404.html": "<h1>Not found</h1>\n",
}
SITE_V2 = {
    **SITE_V1,
    "guide/index.html": "<h1>Guide</h1><p>second</p>\n",
    "new/index.html": "<h1>A new page</h1>\n",
}


def copy_later(source: Path, dest: Path, delay: float, done: list[float]) -> threading.Thread:
    """Copy the build into the served folder after `delay`, the marker last (as a deploy step
    that uploads files one by one); `done` gets the time the marker's copy began: from then on
    the origin may serve this build, and not before."""

    def run() -> None:
        time.sleep(delay)
        files = sorted(p for p in source.rglob("*") if p.is_file())
        for path in sorted(files, key=lambda p: p.name == MARKER):
            target = dest / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.name == MARKER:
                done.append(time.monotonic())
            shutil.copyfile(path, target)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_cli_purge_waits_for_the_origin_to_serve_the_marked_build(
    tmp_path: Path, make_cf: MakeCf
) -> None:
    v1_dir, v2_dir, served = tmp_path / "v1", tmp_path / "v2", tmp_path / "served"
    write_files(v1_dir, SITE_V1)
    write_files(v2_dir, SITE_V2)
    manifest = tmp_path / "state" / "manifest.json"
    env = subprocess_env(CLOUDFLARE_API_TOKEN=TOKEN, CLOUDFLARE_ZONE_ID=ZONE_ID)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CF_PURGE, *args], env=env, capture_output=True, text=True, check=False, timeout=30
        )

    baseline = cli("manifest", str(v1_dir), "--site-url", SITE, "--out", str(manifest))
    assert baseline.returncode == 0, baseline.stderr
    for build in (v1_dir, v2_dir):
        marked = cli("mark", str(build), "--site-url", SITE, "--manifest", str(manifest))
        assert marked.returncode == 0, marked.stderr
    assert (v1_dir / MARKER).read_bytes() != (v2_dir / MARKER).read_bytes()
    shutil.copytree(v1_dir, served)  # what the origin serves now: v1, with its own marker

    with OriginServer(served) as origin:
        cf = make_cf(origin=origin.url)
        env["CLOUDFLARE_API_BASE"] = cf.api_base
        urls = [url for path in SITE_V2 for url in urls_of(path)]  # the new page: a cached 404
        for url in urls:
            cf.edge_fetch(url)
        copied: list[float] = []
        with Visitor(cf, urls):
            started = time.monotonic()  # before the copier starts its delay
            copier = copy_later(v2_dir, served, 1.5, copied)
            result = cli(
                "purge", str(v2_dir), "--site-url", SITE, "--manifest", str(manifest),
                "--wait-for-origin", "--origin-url", origin.url,
                "--origin-interval", "0.1", "--origin-timeout", "10",
            )  # fmt: skip
            copier.join()
        assert result.returncode == 0, result.stderr
        assert copied and copied[0] - started >= 1.5
        assert cf.purges, result.stderr
        assert all(record.time > copied[0] for record in cf.purges)
        assert "the origin serves this build" in result.stderr
        changed = changed_files(
            {k: v.encode() for k, v in SITE_V1.items()}, {k: v.encode() for k, v in SITE_V2.items()}
        )
        assert changed == {"guide/index.html", "new/index.html"}
        # A new folder also has its slashless URL purged: it answered 404 and now redirects.
        expected = {url for path in changed for url in urls_of(path)} | {SITE + "new"}
        assert purged_urls(cf) == expected
        assert_edge_serves(cf, site_tree(v2_dir))
    assert not (manifest.parent / "pending.json").exists()
    committed = json.loads(manifest.read_bytes())["files"]
    assert committed == json.loads((v2_dir / MARKER).read_bytes())["manifest"]


# --- 6. a dry run deploys but sends nothing -----------------------------------------------


def test_dry_run_gh_deploy_pushes_but_sends_nothing(project: Project, cf: LocalCloudflare) -> None:
    deployed_ok(project.deploy())
    before = project.state_bytes()
    v1_commit = branch_head(project.bare)
    project.edit("guide/index.md", GUIDE_V2)

    result = project.deploy(CFPURGE_DRY_RUN="1")

    deployed_ok(result)
    assert "dry run" in result.stdout
    v2_commit = branch_head(project.bare)
    assert v2_commit not in (None, v1_commit)
    pushed = git(project.bare, "show", f"{v2_commit}:{MARKER}")
    assert pushed.encode() == (project.site_dir / MARKER).read_bytes()
    assert cf.requests == []
    assert project.state_bytes() == before
    plan = json.loads((project.root / PLAN_FILE).read_bytes())
    assert plan_urls(plan) == {url for path in GUIDE_CHANGES for url in urls_of(path)}


# --- 6. fresh runners never lose a purge, and never snowball one -------------------------


def test_fresh_runners_resend_the_last_deploys_purge_once(
    project: Project, pages: BranchOrigin, cf: LocalCloudflare, tmp_path: Path
) -> None:
    """A runner whose purge failed takes its pending state with it. The next fresh runner, whose
    baseline is the deployed marker, cannot know whether that purge happened: it sends it again
    (and only that one deploy's, not every earlier deploy's)."""
    deployed_ok(project.deploy())

    failing = clone(project.bare, tmp_path / "runner-1")
    failing.configure(origin_timeout=1)
    failing.edit("guide/index.md", GUIDE_V2)
    pages.paused = True
    assert failing.deploy().returncode != 0
    assert cf.purges == []
    failing.configure(origin_timeout=5)
    git(failing.root, "push", "-q", "origin", "main")
    shutil.rmtree(failing.root)  # the runner ends: its pending.json is gone
    pages.paused = False

    def deploy_from_fresh_runner(name: str, page: str, text: str) -> set[str]:
        runner = clone(project.bare, tmp_path / name)
        runner.edit(page, text)
        before = len(cf.purges)
        deployed_ok(runner.deploy())
        git(runner.root, "push", "-q", "origin", "main")
        return {
            item if isinstance(item, str) else item[0]
            for record in cf.purges[before:]
            for item in record.items
        }

    about = {"about/index.html", "search/search_index.json"}
    home = {"index.html", "search/search_index.json"}
    second = deploy_from_fresh_runner("runner-2", "about.md", "# About\n\nNew team.\n")
    assert second == {url for path in GUIDE_CHANGES | about for url in urls_of(path)}
    third = deploy_from_fresh_runner("runner-3", "index.md", "# Home\n\nWelcome back.\n")
    assert third == {url for path in about | home for url in urls_of(path)}
