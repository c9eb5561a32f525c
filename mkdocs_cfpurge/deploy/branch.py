"""Purge what a deployed branch's tree changed, whichever tool wrote it (mike above all).

`mike deploy --push VERSION ALIAS...` builds one version with `mkdocs build`, then commits it to
the branch under `VERSION/`, rewrites each alias (`ALIAS -> VERSION` symlink by default, or a copy,
or redirect pages), `versions.json` and `.nojekyll`; `mike set-default` writes a root
`index.html` redirect; `mike delete` removes folders and rewrites `versions.json`. None of this
is visible from one build's folder, so the branch itself is compared: the tree of the last purged
commit against the tree of the branch head (tree.py). The deploy use case then maps every added,
changed or removed path to its URLs under site_url: the URL the branch's root is served at.

Nothing here imports mkdocs.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.build.noise import make_normalizer
from mkdocs_cfpurge.deploy import git
from mkdocs_cfpurge.deploy.origin import OriginWait
from mkdocs_cfpurge.deploy.tree import served_hashes, tree_blobs, tree_manifest
from mkdocs_cfpurge.errors import UsageError
from mkdocs_cfpurge.freshness import hashing_of
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.changes import Status
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.settings import Settings

BRANCH_MANIFEST = ".cache/plugin/cfpurge/branch/manifest.json"


@dataclass(frozen=True)
class OriginProbe:
    """One file whose served bytes tell whether the origin publishes the branch head.

    `blob` None: the file was removed, so the origin must answer 404 for it.
    """

    path: str
    blob: str | None


def choose_probe(plan: PurgePlan, head: Mapping[str, str]) -> OriginProbe | None:
    """A file the push changed: versions.json when it did (small, and rewritten by most mike
    commands), else the first added or modified file, else a removed one."""
    files = [c for c in plan.changes if not c.is_folder]
    present = [c.path for c in files if c.status is not Status.DELETED and c.path in head]
    versions = sorted((p for p in present if posixpath.basename(p) == "versions.json"), key=len)
    if versions:
        return OriginProbe(versions[0], head[versions[0]])
    if present:
        return OriginProbe(present[0], head[present[0]])
    removed = [c.path for c in files if c.status is Status.DELETED]
    return OriginProbe(removed[0], None) if removed else None


@dataclass
class BranchPurge:
    commit: str
    result: pipeline.PurgeResult


def purge_branch(
    settings: Settings,
    *,
    repo: Path,
    remote: str = "origin",
    branch: str = "gh-pages",
    since: str | None = None,
    client_factory: pipeline.ClientFactory | None = None,
) -> BranchPurge:
    """Fetch `remote/branch`, then purge what its tree changed since the last purge.

    The baseline is the manifest at `settings.manifest_path` (the tree the last purge left
    behind); without one, the tree of `since` (e.g. the branch head before `mike deploy`), and
    without that the first run records the head as the baseline and purges nothing. With
    `wait_for_origin`, nothing is sent before the origin serves a file the push changed as the
    head has it.
    """
    commit = git.fetch_branch(repo, remote, branch)
    if commit is None:
        raise UsageError(
            f"{remote!r} has no branch {branch!r}: nothing is deployed yet (run `mike deploy "
            "--push` first, or check --remote and --branch)"
        )
    log.info("cfpurge: %s/%s is %s", remote, branch, commit[:12])
    settings = settings.with_cname(git.read_file(repo, commit, "CNAME"), "the branch's CNAME")
    normalize = make_normalizer(settings.ignore_changes)
    site_url = str(settings.site)

    hashing = hashing_of(settings).to_dict()
    head = tree_blobs(repo, commit, settings.exclude)
    new = Manifest(site_url=site_url, files=served_hashes(repo, head, normalize), hashing=hashing)
    baseline = None
    if since is not None:
        base_commit = git.rev(repo, since)
        if base_commit is None:
            raise UsageError(f"--since {since!r} is not a commit in {str(repo)!r}")
        baseline = tree_manifest(
            repo, base_commit, site_url, exclude=settings.exclude, normalize=normalize
        )
        baseline.hashing = hashing  # hashed here, with this run's options
    ready = None
    if settings.wait_for_origin:
        probe = choose_probe(pipeline.preview(settings, new, baseline), head)
        if probe is not None:
            ready = OriginWait.of(settings).until_file(probe.path, probe.blob)
    result = pipeline.purge(
        settings, new, baseline=baseline, origin_ready=ready, client_factory=client_factory
    )
    return BranchPurge(commit, result)
