"""Deploys that push a branch (mkdocs gh-deploy): the baseline it holds, and the purge after it.

Nothing here imports mkdocs: any tool that pushes a built site to a branch can use it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.build.marker import MARKER_NAME
from mkdocs_cfpurge.deploy import git
from mkdocs_cfpurge.deploy.origin import OriginWait
from mkdocs_cfpurge.errors import PurgeFailed
from mkdocs_cfpurge.log import log

# Files the deploy tool adds to the branch that are no part of the build.
DEPLOY_EXTRAS = frozenset({".nojekyll", MARKER_NAME})


def deployed_baseline(
    repo: Path, remote: str, branch: str, site_dir: Path, new: Manifest, *, fetch: bool = True
) -> Manifest | None:
    """The manifest of what `remote/branch` publishes now; None on the very first deploy.

    A deploy made with this plugin carries its manifest in the marker file. An older one is
    compared by git blob ids: files whose blob matches this build's are unchanged, others are
    given a hash that can only differ. Without `fetch`, the remote-tracking ref is read as it is.
    The files the deployed build's own purge was about count as changed again.
    """
    if fetch:
        commit = git.fetch_branch(repo, remote, branch)
    else:
        commit = git.rev(repo, f"refs/remotes/{remote}/{branch}")
    if commit is None:
        return None
    marker = git.published_marker(repo, commit, new.site_url)
    if marker is not None:
        log.info(
            "cfpurge: baseline: the manifest published in %s/%s (%d file(s) of its own purge "
            "resent, since this runner cannot know that it succeeded)",
            remote,
            branch,
            len(marker.owed),
        )
        return replace(marker.manifest, resend=marker.owed)
    log.info("cfpurge: baseline: the files of %s/%s (git blob ids)", remote, branch)
    files = {}
    for path, entry in git.tree_entries(repo, commit).items():
        if path not in new.files and (path in DEPLOY_EXTRAS or (site_dir / path).is_file()):
            # Added by the deploy tool, or built but left out of the manifest (`exclude`): no
            # page of this build was deleted there.
            continue
        local = site_dir / path
        same = path in new.files and local.is_file()
        same = same and git.blob_id(local.read_bytes()) == entry.blob
        files[path] = new.files[path] if same else f"git-blob:{entry.blob}"
    return Manifest(site_url=new.site_url, files=files)


def purge_after_push(
    build: pipeline.PreparedBuild,
    *,
    repo: Path,
    remote: str,
    branch: str,
    client_factory: pipeline.ClientFactory | None = None,
) -> pipeline.PurgeResult:
    """Verify the push holds this build, then run the deploy use case (which waits for the
    origin to serve it when `wait_for_origin` is on)."""
    settings, new = build.settings, build.manifest
    commit = git.verify_push(repo, remote, branch)
    pushed = git.published_marker(repo, commit, new.site_url)
    if pushed is None or pushed.digest != new.digest():
        raise PurgeFailed(
            f"{remote}/{branch} at {commit[:12]} does not hold this build (its {MARKER_NAME} "
            "differs): nothing purged"
        )
    log.info("cfpurge: push verified: %s/%s is %s", remote, branch, commit[:12])
    ready = None
    if settings.wait_for_origin:
        ready = OriginWait.of(settings).until_build(new.digest())
    return pipeline.purge(settings, build, origin_ready=ready, client_factory=client_factory)
