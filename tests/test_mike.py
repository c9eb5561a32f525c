"""Issue 5 (mike): purge what `mike deploy --push` changed anywhere in the deployed branch.

Everything runs for real: the `mike` console script builds a small MkDocs site (with the cfpurge
plugin in it) and pushes gh-pages to a bare repository; `mkdocs-cfpurge purge-branch` runs as a
subprocess against the local Cloudflare on 127.0.0.1. The expected URLs come from an oracle
independent of the code under test: both commits exported with `git archive` and read through the
file system (symlinks followed, as a static host does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from mkdocs_cfpurge.build.noise import make_normalizer
from mkdocs_cfpurge.deploy.mike import mike_build_version
from mkdocs_cfpurge.deploy.tree import tree_manifest
from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.localcf.origin import BranchOrigin, export_tree
from tests.cfschema import load_purge_body_validator
from tests.helpers import (
    BIN,
    TOKEN,
    ZONE_ID,
    MakeCf,
    git,
    make_pushed_site,
    subprocess_env,
    write_files,
)

SITE = "https://docs.example.com/proj/"
ROOT_SITE = "https://docs.example.com/"
MIKE = [str(BIN / "mike")]
CF_PURGE = [sys.executable, "-m", "mkdocs_cfpurge"]
BRANCH_MANIFEST = Path(".cache/plugin/cfpurge/branch/manifest.json")
PLUGIN_MANIFEST = Path(".cache/plugin/cfpurge/manifest.json")

PAGES = {
    "index.md": "# Home\n\nWelcome.\n",
    "guide/index.md": "# Guide\n\nThe first version of the guide.\n",
    "about.md": "# About\n\nWho we are.\n",
}
GUIDE_V2 = "# Guide\n\nThe second version of the guide, with more words.\n"

validate_body = load_purge_body_validator()
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]  # real mike deploys: seconds each


# --- helpers ------------------------------------------------------------------------------


@dataclass
class Repo:
    """A docs repository whose `origin` is a bare repository; mike deploys from it."""

    root: Path
    bare: Path
    env: dict[str, str]
    site: str = SITE

    def run(self, command: list[str], expect: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            command, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=90
        )
        assert result.returncode == expect, (
            f"{' '.join(command)}: exit {result.returncode}:\n{result.stdout}{result.stderr}"
        )
        return result

    def mike(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run([*MIKE, *args])

    def purge(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        return self.run([*CF_PURGE, "purge-branch", "--site-url", self.site, *args], expect)

    def edit(self, page: str, text: str) -> None:
        write_files(self.root / "docs", {page: text})
        git(self.root, "commit", "-qam", f"edit {page}")

    def head(self) -> str:
        return git(self.bare, "rev-parse", "refs/heads/gh-pages")

    @property
    def manifest(self) -> Path:
        return self.root / BRANCH_MANIFEST


def make_repo(
    tmp_path: Path, cf: LocalCloudflare, bare: Path, site: str = SITE, **options: Any
) -> Repo:
    root = tmp_path / "docs-repo"
    make_pushed_site(root, bare, site_url=site, pages=PAGES, options=options or None)
    # The job's environment holds the credentials, as in CI: mike's build sees them too.
    env = subprocess_env(
        CLOUDFLARE_API_TOKEN=TOKEN, CLOUDFLARE_ZONE_ID=ZONE_ID, CLOUDFLARE_API_BASE=cf.api_base
    )
    return Repo(root, bare, env, site)


@pytest.fixture
def repo(tmp_path: Path, cf: LocalCloudflare, bare: Path) -> Repo:
    return make_repo(tmp_path, cf, bare)


def served_files(bare: Path, commit: str, dest: Path) -> dict[str, bytes]:
    """What a static host serves from `commit`: its tree on disk, symlinks followed."""
    root = export_tree(bare, commit, dest)
    files: dict[str, bytes] = {}
    for dirpath, _dirs, names in os.walk(root, followlinks=True):
        for name in names:
            full = Path(dirpath, name)
            if full.is_file():
                files[full.relative_to(root).as_posix()] = full.read_bytes()
    return files


def folders(paths: Iterable[str]) -> set[str]:
    """Every folder that holds one of `paths`, at any depth."""
    return {str(folder) for path in paths for folder in PurePosixPath(path).parents} - {"."}


def urls_of(path: str, site: str = SITE) -> set[str]:
    if path == "index.html":
        return {site, site + path}
    if path.endswith("/index.html"):
        return {site + path[: -len("index.html")], site + path}
    return {site + path}


def expected_urls(old: Mapping[str, bytes], new: Mapping[str, bytes], site: str = SITE) -> set[str]:
    """Every URL whose answer changed: changed files, and folders that (dis)appeared."""
    changed = {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)}
    urls = {url for path in changed for url in urls_of(path, site)}
    return urls | {site + folder for folder in folders(set(old)) ^ folders(set(new))}


def purged(cf: LocalCloudflare) -> tuple[set[str], set[str]]:
    """(URLs, prefixes) in every accepted purge; every body checked against Cloudflare's schema."""
    posts = [r for r in cf.requests if r["method"] == "POST"]
    for request in posts:
        validate_body(request["body"])
    urls: set[str] = set()
    prefixes: set[str] = set()
    for record in cf.purges:
        assert record.method == "purge_cache"
        assert record.kind in ("files", "prefixes"), record
        items = {item if isinstance(item, str) else item[0] for item in record.items}
        (urls if record.kind == "files" else prefixes).update(items)
    return urls, prefixes


def covered(url: str, urls: set[str], prefixes: set[str]) -> bool:
    bare = url.split("://", 1)[1]
    return url in urls or any(bare.startswith(prefix) for prefix in prefixes)


def touches(folder_url: str, urls: set[str], prefixes: set[str]) -> list[str]:
    """Purged URLs or prefixes at or below `folder_url` (or prefixes above it)."""
    bare = folder_url.split("://", 1)[1]
    hits = [u for u in urls if u.startswith(folder_url) or u == folder_url.rstrip("/")]
    return hits + [p for p in prefixes if p.startswith(bare) or bare.startswith(p)]


# --- what mike does (the facts the design rests on) ------------------------------------------


def test_mike_builds_with_mkdocs_build_in_a_subprocess_marked_by_the_version_variable(
    repo: Repo, cf: LocalCloudflare
) -> None:
    """The plugin sees `startup(command='mike')` in mike's own process, then a plain
    `mkdocs build --clean` with MIKE_DOCS_VERSION set, site_url ending in the version and the
    usual site_dir. That build sends nothing, though credentials are in the environment."""
    write_files(
        repo.root,
        {
            "hooks.py": (
                "import json, os\n"
                "def on_startup(command, dirty):\n"
                "    seen = {'command': command, 'version': os.environ.get('MIKE_DOCS_VERSION')}\n"
                "    with open('startups.jsonl', 'a') as f:\n"
                "        f.write(json.dumps(seen) + '\\n')\n"
                "def on_post_build(config):\n"
                "    with open('builds.jsonl', 'a') as f:\n"
                "        f.write(json.dumps([config.site_url, config.site_dir]) + '\\n')\n"
            )
        },
    )
    config_file = repo.root / "mkdocs.yml"
    config = yaml.safe_load(config_file.read_text())
    config["hooks"] = ["hooks.py"]
    config_file.write_text(yaml.safe_dump(config))
    repo.mike("deploy", "--push", "1.0", "latest")

    startups = [
        json.loads(line) for line in (repo.root / "startups.jsonl").read_text().splitlines()
    ]
    assert startups == [
        {"command": "mike", "version": None},
        {"command": "build", "version": "1.0"},
    ]
    builds = [json.loads(line) for line in (repo.root / "builds.jsonl").read_text().splitlines()]
    assert builds == [[SITE + "1.0", str(repo.root / "site")]]
    assert cf.requests == []
    assert mike_build_version({"MIKE_DOCS_VERSION": "1.0"}) == "1.0"
    assert mike_build_version({}) is None

    layout = git(repo.bare, "ls-tree", "gh-pages").splitlines()
    modes = {line.split("\t")[1]: line.split()[0] for line in layout}
    assert modes == {
        ".nojekyll": "100644",
        "1.0": "040000",
        "latest": "120000",  # the default alias type: a symlink to the version folder
        "versions.json": "100644",
    }
    assert git(repo.bare, "cat-file", "-p", "gh-pages:latest") == "1.0"
    versions = json.loads(git(repo.bare, "cat-file", "-p", "gh-pages:versions.json"))
    assert versions == [{"version": "1.0", "title": "1.0", "aliases": ["latest"]}]


# --- the main job ----------------------------------------------------------------------------


@pytest.mark.parametrize("alias_type", ["symlink", "copy", "redirect"])
def test_new_version_taking_over_an_alias_purges_version_alias_and_versions_json(
    tmp_path: Path, cf: LocalCloudflare, bare: Path, alias_type: str
) -> None:
    repo = make_repo(tmp_path, cf, bare)
    repo.mike("deploy", "--push", "--alias-type", alias_type, "1.0", "latest")
    first = repo.purge()
    assert "records the baseline" in first.stderr
    assert cf.requests == []
    assert repo.manifest.is_file()
    v1 = repo.head()

    repo.edit("guide/index.md", GUIDE_V2)
    repo.mike("deploy", "--push", "--update-aliases", "--alias-type", alias_type, "1.1", "latest")
    assert cf.requests == [], "mike's build must send nothing"
    v2 = repo.head()
    repo.purge("--strategy", "files")

    urls, prefixes = purged(cf)
    assert not prefixes
    for page in ("1.1/guide/", "1.1/guide/index.html", "latest/guide/", "latest/guide/index.html"):
        assert SITE + page in urls, page
    assert SITE + "versions.json" in urls
    assert touches(SITE + "1.0/", urls, prefixes) == []
    if alias_type != "redirect":  # the alias serves 1.1's assets, the same bytes as 1.0's
        assert SITE + "latest/css/base.css" not in urls
    old = served_files(repo.bare, v1, tmp_path / "v1")
    new = served_files(repo.bare, v2, tmp_path / "v2")
    assert urls == expected_urls(old, new)

    saved = json.loads(repo.manifest.read_bytes())
    assert saved["site_url"] == SITE
    assert set(saved["files"]) == set(new)
    assert not (repo.manifest.parent / "pending.json").exists()


def test_set_default_and_delete_purge_the_root_index_and_the_removed_version(
    tmp_path: Path, repo: Repo, cf: LocalCloudflare
) -> None:
    repo.mike("deploy", "--push", "1.0")
    repo.edit("guide/index.md", GUIDE_V2)
    repo.mike("deploy", "--push", "1.1", "latest")
    repo.purge()
    assert cf.requests == []

    repo.mike("set-default", "--push", "latest")
    repo.purge()
    urls, prefixes = purged(cf)
    assert urls == {SITE, SITE + "index.html"} and not prefixes

    before = len(cf.purges)
    repo.purge()  # nothing new on the branch: nothing sent
    assert len(cf.purges) == before

    v_before = repo.head()
    repo.mike("delete", "--push", "1.0")
    repo.purge("--strategy", "files")
    urls, prefixes = purged(cf)
    urls -= {SITE, SITE + "index.html"}
    assert SITE + "1.0/guide/" in urls
    assert SITE + "1.0" in urls  # the folder is gone: its slashless redirect too
    assert SITE + "versions.json" in urls
    assert touches(SITE + "1.1/", urls, prefixes) == []
    assert touches(SITE + "latest/", urls, prefixes) == []
    old = served_files(repo.bare, v_before, tmp_path / "a")
    new = served_files(repo.bare, repo.head(), tmp_path / "b")
    assert urls == expected_urls(old, new)


def test_since_gives_a_fresh_runner_its_baseline_and_dry_run_sends_nothing(
    repo: Repo, cf: LocalCloudflare
) -> None:
    repo.mike("deploy", "--push", "1.0", "latest")
    before = repo.head()
    repo.edit("guide/index.md", GUIDE_V2)
    repo.mike("deploy", "--push", "--update-aliases", "1.1", "latest")

    dry = repo.purge("--since", before, "--dry-run", "--strategy", "files")
    plan = json.loads(dry.stdout)
    planned = {u for body in plan["requests"] for u in body["files"]}
    assert {SITE + "latest/guide/", SITE + "1.1/guide/", SITE + "versions.json"} <= planned
    assert cf.requests == []
    assert not repo.manifest.exists()

    repo.purge("--since", before, "--strategy", "files")
    urls, _ = purged(cf)
    assert urls == planned
    assert json.loads(repo.manifest.read_bytes())["files"]


def test_purge_waits_for_the_origin_and_the_edge_serves_the_new_alias(
    tmp_path: Path, bare: Path, make_cf: MakeCf
) -> None:
    with BranchOrigin(bare, tmp_path / "published") as pages:
        cf = make_cf(origin=pages.url)
        repo = make_repo(tmp_path, cf, bare, site=ROOT_SITE)
        wait = ["--wait-for-origin", "--origin-url", pages.url, "--origin-interval", "0.1"]
        repo.mike("deploy", "--push", "1.0", "latest")
        pages.wait_published(repo.head())
        repo.purge(*wait)
        visited = ["latest/guide/", "1.0/guide/", "versions.json", "latest/css/base.css"]
        for page in visited:
            assert cf.edge_fetch(ROOT_SITE + page).status == 200
        assert b"first version" in cf.edge_fetch(ROOT_SITE + "latest/guide/").body

        # The origin publishes nothing yet: the purge waits, gives up, keeps what it owes.
        pages.paused = True
        repo.edit("guide/index.md", GUIDE_V2)
        repo.mike("deploy", "--push", "--update-aliases", "1.1", "latest")
        head = repo.head()
        manifest_before = repo.manifest.read_bytes()
        failed = repo.purge(*wait, "--origin-timeout", "1", expect=1)
        assert "did not serve" in failed.stderr
        assert cf.purges == []
        assert repo.manifest.read_bytes() == manifest_before
        assert (repo.manifest.parent / "pending.json").is_file()

        pages.delay = 0.5
        pages.paused = False
        repo.purge(*wait, "--origin-timeout", "20")
        published = pages.published_at(head)
        assert cf.purges and all(record.time >= published for record in cf.purges)
        assert not (repo.manifest.parent / "pending.json").exists()

        latest = cf.edge_fetch(ROOT_SITE + "latest/guide/")
        assert b"second version" in latest.body
        assert b'"1.1"' in cf.edge_fetch(ROOT_SITE + "versions.json").body
        # Untouched: the old version, and the alias's assets that did not change.
        old = cf.edge_fetch(ROOT_SITE + "1.0/guide/")
        assert old.cache_status == "HIT" and b"first version" in old.body
        assert cf.edge_fetch(ROOT_SITE + "latest/css/base.css").cache_status == "HIT"


# --- the cfpurge plugin inside mike's build --------------------------------------------------


def test_the_plugin_is_inert_inside_mikes_build(
    tmp_path: Path, cf: LocalCloudflare, bare: Path
) -> None:
    """Even with `purge_on: [build]` and a manifest left by a plain deploy, mike's builds
    purge nothing, write no state and no marker, and never fail on the versioned site_url."""
    repo = make_repo(tmp_path, cf, bare, purge_on=["build"])
    plugin_manifest = repo.root / PLUGIN_MANIFEST
    earlier = {"version": 1, "algorithm": "sha256", "site_url": SITE, "files": {}}
    write_files(repo.root, {str(PLUGIN_MANIFEST): json.dumps(earlier)})
    recorded = plugin_manifest.read_bytes()
    repo.mike("deploy", "--push", "1.0", "latest")
    repo.mike("deploy", "--push", "--update-aliases", "1.1", "latest")
    assert cf.requests == []
    assert plugin_manifest.read_bytes() == recorded
    tree = git(repo.bare, "ls-tree", "-r", "--name-only", "gh-pages").splitlines()
    assert not [path for path in tree if path.endswith("cfpurge-build.json")]


# --- the tree manifest -----------------------------------------------------------------------


def commit_tree(root: Path, files: Mapping[str, str], links: Mapping[str, str]) -> str:
    """Replace the work tree's content with `files` and `links` (path → target); commit."""
    git(root, "rm", "-rq", "--ignore-unmatch", ".")
    write_files(root, files)
    for link, target in links.items():
        path = root / link
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "tree", "--allow-empty")
    return git(root, "rev-parse", "HEAD")


def test_tree_manifest_follows_symlinks_inside_the_tree_only(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    git(root, "init", "-q", "-b", "gh-pages")
    commit = commit_tree(
        root,
        {"1.0/index.html": "one", "1.0/a/b.css": "css", "versions.json": "[]", "x/keep.txt": "k"},
        {
            "latest": "1.0",  # an alias folder
            "stable": "latest",  # a link to a link
            "top.html": "1.0/index.html",  # a link to a file
            "x/up": "../1.0/a",  # relative, from a subfolder
            "dangling": "2.0",
            "outside": "../../etc",
            "absolute": "/etc",
            "loop": ".",
            "x/self": "..",
        },
    )
    manifest = tree_manifest(root, commit, SITE, exclude=["x/keep.txt"])
    blob = {p: git(root, "rev-parse", f"{commit}:{p}") for p in ("1.0/index.html", "1.0/a/b.css")}
    assert manifest.site_url == SITE
    assert manifest.files == {
        "1.0/index.html": blob["1.0/index.html"],
        "1.0/a/b.css": blob["1.0/a/b.css"],
        "latest/index.html": blob["1.0/index.html"],
        "latest/a/b.css": blob["1.0/a/b.css"],
        "stable/index.html": blob["1.0/index.html"],
        "stable/a/b.css": blob["1.0/a/b.css"],
        "top.html": blob["1.0/index.html"],
        "x/up/b.css": blob["1.0/a/b.css"],
        "versions.json": git(root, "rev-parse", f"{commit}:versions.json"),
    }


def test_tree_manifest_ignores_noise_with_ignore_changes(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    git(root, "init", "-q", "-b", "gh-pages")
    stamp = "<!--\n  MkDocs version : 1.6.1\n  Build Date UTC : {}\n-->"
    one = commit_tree(root, {"1.0/index.html": "page" + stamp.format("2024-01-01")}, {})
    two = commit_tree(root, {"1.0/index.html": "page" + stamp.format("2024-01-02")}, {})
    three = commit_tree(root, {"1.0/index.html": "edit" + stamp.format("2024-01-02")}, {})
    plain = [tree_manifest(root, c, SITE).files for c in (one, two)]
    assert plain[0] != plain[1]
    normalize = make_normalizer(["mkdocs-build-date"])
    quiet = [tree_manifest(root, c, SITE, normalize=normalize).files for c in (one, two, three)]
    assert quiet[0] == quiet[1] != quiet[2]


def test_a_cname_at_the_branch_root_adds_its_host(repo: Repo, cf: LocalCloudflare) -> None:
    repo.mike("deploy", "--push", "1.0", "latest")
    repo.purge()
    # A custom domain is set for the whole branch by a CNAME at its root (mike puts docs/CNAME
    # in each version folder, so users commit the root one themselves).
    work = repo.root.parent / "pages-work"
    git(repo.root.parent, "clone", "-q", "-b", "gh-pages", str(repo.bare), str(work))
    write_files(work, {"CNAME": "www.example.com\n"})
    git(work, "add", "CNAME")
    git(work, "commit", "-qm", "cname")
    git(work, "push", "-q", "origin", "gh-pages")
    repo.purge("--strategy", "files")
    urls, _ = purged(cf)
    assert urls == {SITE + "CNAME", "https://www.example.com/proj/CNAME"}


def test_errors_exit_2_and_send_nothing(repo: Repo, cf: LocalCloudflare) -> None:
    missing = repo.purge(expect=2)
    assert "has no branch 'gh-pages'" in missing.stderr
    repo.mike("deploy", "--push", "1.0")
    bad = repo.purge("--since", "no-such-ref", expect=2)
    assert "'no-such-ref' is not a commit" in bad.stderr
    assert cf.requests == []
    assert not repo.manifest.exists()
