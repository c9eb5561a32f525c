"""Stateless deploys on this machine: a static host that publishes late, the local Cloudflare in
front of it, fresh working copies, and what a deploy must purge, judged from the served trees.

`World` is the stage of the stateless flow tests (test_stateless_deploys.py, test_action.py):

- `origin`: a `FolderPublisher` on 127.0.0.1 serving `upload/` (the site under `handbook/`,
  as site_url `https://docs.example.com/handbook/` wants), each upload published `delay` seconds
  after `deploy()`: a static host's publication lag (GitHub Pages, Netlify, an rsync target);
- `cf`: the local Cloudflare API and its edge, which caches the origin forever;
- `sources`: the project's sources, edited between deploys; each deploy builds in a fresh copy
  (no `.cache`, no `.git`): the live site is the only state there is.

`check_purge` decides what a deploy had to purge from the two trees the origin served (every
URL of every file whose bytes changed, and the slashless URL of every folder that came or went),
independently of any plan, and checks the purge against it: nothing missed, collateral under 10%
of the site's URLs, every purge request after the publication and the last within 5 s of it, and
the edge serving the new tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.localcf.origin import FolderPublisher
from tests.helpers import BIN, TOKEN, ZONE_ID, subprocess_env, write_files

SITE = "https://docs.example.com/handbook/"
HOST_PATH = "docs.example.com/handbook/"
FOLDER = "handbook"  # where the origin serves the site: site_url's path
MARKER = "cfpurge-build.json"
LATENCY = 5.0  # from the publication to the last purge request, default settings (issue 11)
COLLATERAL = 0.10  # unchanged URLs purged, as a share of the site's URLs
CF_PURGE = [sys.executable, "-m", "mkdocs_cfpurge"]

PAGES = {
    "index.md": "# Handbook\n\nWelcome to the handbook.\n",
    "guide/index.md": "# Guide\n\nHow to use it.\n",
    "guide/install.md": "# Install\n\nRun the installer.\n",
    "guide/configure.md": "# Configure\n\nEdit the settings file.\n",
    "reference/index.md": "# Reference\n\nEvery command.\n",
    "reference/cli.md": "# CLI\n\nThe command line.\n",
    "reference/options.md": "# Options\n\nEvery option.\n",
    "about.md": "# About\n\nWho we are.\n",
    "faq.md": "# FAQ\n\nQuestions, answered.\n",
}
# Deploy 2 edits a page's text; deploy 3 adds a page and removes another (every page's
# navigation changes with them).
EDIT = {"guide/install.md": "# Install\n\nRun the installer, then restart.\n"}
ADDED = {"guide/upgrade.md": "# Upgrade\n\nFrom one version to the next.\n"}
REMOVED = "faq.md"


def site_urls(path: str) -> list[str]:
    """The URLs a static host serves a file at under SITE: `dir/index.html` also as `dir/`."""
    if path == "index.html":
        return [SITE, SITE + path]
    if path.endswith("/index.html"):
        return [SITE + path.removesuffix("index.html"), SITE + path]
    return [SITE + path]


def folders(tree: Mapping[str, bytes]) -> set[str]:
    found: set[str] = set()
    for path in tree:
        parts = path.split("/")[:-1]
        found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return found


def read_tree(root: Path) -> dict[str, bytes]:
    """A site's files (the marker left out: it is no page, and never purged)."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != MARKER
    }


def must_purge(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> set[str]:
    """Every URL whose answer differs between the two served trees."""
    changed = {path for path in old.keys() | new.keys() if old.get(path) != new.get(path)}
    urls = {url for path in changed for url in site_urls(path)}
    # `/X` answers 404 before folder X exists and a redirect once it does.
    return urls | {SITE + folder for folder in folders(old) ^ folders(new)}


@dataclass
class PurgeCheck:
    """What a deploy's purge did, measured against the served trees."""

    expected: set[str]
    purged: set[str]  # URLs sent as `files`
    prefixes: set[str]
    collateral: set[str]
    site_urls: int
    latency: float  # seconds from the publication to the last purge request
    requests: int


@dataclass
class World:
    tmp: Path
    cf: LocalCloudflare
    origin: FolderPublisher
    sources: Path
    runs: list[Path] = field(default_factory=list)

    @property
    def origin_url(self) -> str:
        return f"{self.origin.url}{FOLDER}/"

    @property
    def upload(self) -> Path:
        return self.origin.source / FOLDER

    def served(self) -> dict[str, bytes]:
        """The tree the origin serves now."""
        assert self.origin.published is not None
        return read_tree(self.origin.export(self.origin.published) / FOLDER)

    def edit(self, files: Mapping[str, str], *, remove: str | None = None) -> None:
        write_files(self.sources / "docs", files)
        if remove is not None:
            (self.sources / "docs" / remove).unlink()

    def fresh_copy(self, name: str) -> Path:
        """The sources as a CI runner checks them out: no `.cache`, no `.git`."""
        work = self.tmp / name
        shutil.copytree(self.sources, work)
        assert not (work / ".cache").exists() and not (work / ".git").exists()
        self.runs.append(work)
        return work

    def run(
        self, args: list[str], cwd: Path, **env: str | None
    ) -> subprocess.CompletedProcess[str]:
        """A command as a deploy job runs it (no credentials unless given); stdout+stderr."""
        result = subprocess.run(
            args,
            cwd=cwd,
            env=subprocess_env(**env),
            capture_output=True,
            text=True,
            check=False,
            timeout=90,
        )
        result.stdout += result.stderr  # MkDocs and the CLI log on stderr: one text to search
        return result

    def mkdocs_build(self, work: Path, **env: str | None) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, "-m", "mkdocs", "build"], work, **env)

    def credentials(self) -> dict[str, str]:
        return {
            "CLOUDFLARE_API_TOKEN": TOKEN,
            "CLOUDFLARE_ZONE_ID": ZONE_ID,
            "CLOUDFLARE_API_BASE": self.cf.api_base,
        }

    def cfpurge(self, *args: str, cwd: Path, **env: str | None) -> subprocess.CompletedProcess[str]:
        """`mkdocs-cfpurge ARGS` with the zone's credentials in the environment."""
        return self.run([*CF_PURGE, *args], cwd, **{**self.credentials(), **env})

    def purge(self, cwd: Path, site: str = "site") -> subprocess.CompletedProcess[str]:
        """The purge step as the README gives it, with default origin settings."""
        return self.cfpurge(
            "purge", site, "--site-url", SITE, "--origin-url", self.origin_url,
            "--wait-for-origin", cwd=cwd,
        )  # fmt: skip

    def deploy(self, site_dir: Path) -> str:
        """Upload the built folder; the origin serves it `delay` seconds later."""
        shutil.rmtree(self.upload)
        shutil.copytree(site_dir, self.upload)
        return self.origin.publish()

    def warm(self, new_site: Path) -> None:
        """Visitors fetch every URL of the served site and of the coming one (new pages get a
        cached 404): the edge holds them all, and keeps them until a purge."""
        old, new = self.served(), read_tree(new_site)
        urls = {url for path in old.keys() | new.keys() for url in site_urls(path)}
        urls |= {SITE + folder for folder in folders(old) | folders(new)}
        for url in sorted(urls):
            self.cf.edge_fetch(url)
        assert {self.cf.edge_fetch(url).cache_status for url in urls} == {"HIT"}

    def check_purge(self, old: Mapping[str, bytes], version: str, first_request: int) -> PurgeCheck:
        """The purge since `cf.purges[first_request]`, against the served trees (see above)."""
        new = self.served()
        assert self.origin.published == version
        expected = must_purge(old, new)
        records = self.cf.purges[first_request:]
        purged: set[str] = set()
        prefixes: set[str] = set()
        for record in records:
            assert record.kind in ("files", "prefixes"), record
            for item in record.items:
                (purged if record.kind == "files" else prefixes).add(
                    item if isinstance(item, str) else item[0]
                )
        universe = {url for path in old.keys() | new.keys() for url in site_urls(path)}
        universe |= {SITE + folder for folder in folders(old) | folders(new)}
        by_prefix = {url for url in universe if any(covers(p, url) for p in prefixes)}
        covered = purged | by_prefix
        missed = expected - covered
        assert not missed, f"not purged: {sorted(missed)}"
        published = self.origin.published_at(version)
        early = [record.time - published for record in records if record.time <= published]
        assert not early, f"purged {early} s before the origin served the build"
        all_urls = {url for path in new for url in site_urls(path)}
        check = PurgeCheck(
            expected=expected,
            purged=purged,
            prefixes=prefixes,
            collateral=covered - expected,
            site_urls=len(all_urls),
            latency=max(record.time for record in records) - published if records else 0.0,
            requests=len(records),
        )
        assert len(check.collateral) < COLLATERAL * check.site_urls, check.collateral
        assert check.latency <= LATENCY, f"last purge {check.latency:.2f}s after publication"
        self.assert_edge_serves(old, new)
        return check

    def assert_edge_serves(self, old: Mapping[str, bytes], new: Mapping[str, bytes]) -> None:
        """Every URL of the new tree gives its new bytes through the edge; removed ones 404."""
        stale = []
        for path in old.keys() | new.keys():
            for url in site_urls(path):
                response = self.cf.edge_fetch(url)
                want = (200, new[path]) if path in new else (404, None)
                if response.status != want[0] or (want[1] is not None and response.body != want[1]):
                    stale.append(f"{url} ({response.status}, {response.cache_status})")
        assert not stale, f"the edge serves stale content: {sorted(stale)}"

    def leaks(self, *texts: str) -> list[str]:
        """Where the token shows: in the given outputs, or in any file a deploy left."""
        found = [f"output {i}" for i, text in enumerate(texts) if TOKEN in text]
        for run in self.runs:
            for path in run.rglob("*"):
                if path.is_file() and TOKEN.encode() in path.read_bytes():
                    found.append(str(path))
        return found


def covers(prefix: str, url: str) -> bool:
    """Whether a `prefixes` entry (host/path/, no scheme) covers a URL."""
    return url.split("://", 1)[1].startswith(prefix)


def write_mkdocs_project(
    root: Path, pages: Mapping[str, str], *, plugin: Mapping[str, Any] | None
) -> Path:
    """An MkDocs project: `plugins: [search, cfpurge: {...}]`, or `[search]` for None."""
    write_files(root / "docs", pages)
    plugins: list[Any] = ["search"]
    if plugin is not None:
        plugins.append({"cfpurge": dict(plugin)})
    config = {"site_name": "Handbook", "site_url": SITE, "theme": "mkdocs", "plugins": plugins}
    config_file = root / "mkdocs.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return config_file


def write_zensical_project(root: Path, pages: Mapping[str, str]) -> Path:
    write_files(root / "docs", pages)
    config = root / "zensical.toml"
    config.write_text(f'[project]\nsite_name = "Handbook"\nsite_url = "{SITE}"\n', encoding="utf-8")
    return config


ZENSICAL = BIN / "zensical"
