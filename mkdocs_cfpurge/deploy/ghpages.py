"""Deploys that push a branch (mkdocs gh-deploy): the baseline it holds, and the purge after it.

Nothing here imports mkdocs: any tool that pushes a built site to a branch can use it.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.deploy import git
from mkdocs_cfpurge.deploy.origin import MARKER_NAME, wait_for_origin
from mkdocs_cfpurge.errors import EXIT_PURGE_FAILED, CfPurgeError
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.pipeline import ClientFactory, PurgeResult, deploy, save_pending_plan
from mkdocs_cfpurge.settings import Settings

# Files the deploy tool adds to the branch that are no part of the build.
DEPLOY_EXTRAS = frozenset({".nojekyll", MARKER_NAME})


@dataclass(frozen=True)
class OriginWait:
    enabled: bool
    url: str
    timeout: float = 600.0
    interval: float = 10.0


def _blob_id(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


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
    published = git.published_marker(repo, commit, MARKER_NAME, new.site_url)
    if published is not None:
        manifest, owed = published
        log.info(
            "cfpurge: baseline: the manifest published in %s/%s (%d file(s) of its own purge "
            "resent, since this runner cannot know that it succeeded)",
            remote,
            branch,
            len(owed),
        )
        return owe(manifest, owed)
    log.info("cfpurge: baseline: the files of %s/%s (git blob ids)", remote, branch)
    files = {}
    for path, blob in git.blob_hashes(repo, commit).items():
        if path not in new.files and (path in DEPLOY_EXTRAS or (site_dir / path).is_file()):
            # Added by the deploy tool, or built but left out of the manifest (`exclude`): no
            # page of this build was deleted there.
            continue
        local = site_dir / path
        same = path in new.files and local.is_file() and _blob_id(local) == blob
        files[path] = new.files[path] if same else f"git-blob:{blob}"
    return Manifest(site_url=new.site_url, files=files)


def owe(manifest: Manifest, paths: list[str]) -> Manifest:
    """The baseline, with `paths` to be purged again whatever their hash."""
    return replace(manifest, resend=tuple(paths))


def purge_after_push(
    settings: Settings,
    new: Manifest,
    *,
    repo: Path,
    remote: str,
    branch: str,
    origin: OriginWait,
    baseline: Manifest | None,
    client_factory: ClientFactory | None = None,
) -> PurgeResult:
    """Verify the push, wait for the origin to serve it, then purge and commit."""
    commit = git.verify_push(repo, remote, branch)
    pushed = git.published_marker(repo, commit, MARKER_NAME, new.site_url)
    if pushed is None or pushed[0].digest() != new.digest():
        raise CfPurgeError(
            f"{remote}/{branch} at {commit[:12]} does not hold this build (its {MARKER_NAME} "
            "differs): nothing purged",
            exit_code=EXIT_PURGE_FAILED,
        )
    log.info("cfpurge: push verified: %s/%s is %s", remote, branch, commit[:12])
    if origin.enabled:
        try:
            wait_for_origin(
                origin.url, new.digest(), timeout=origin.timeout, interval=origin.interval
            )
        except CfPurgeError:
            path = save_pending_plan(settings, new, baseline)
            log.error(
                "cfpurge: the purge is kept as pending in %s; once the origin serves this build, "
                "send it with: mkdocs-cfpurge purge --manifest %s --site-url %s",
                path,
                shlex.quote(str(settings.manifest_path)),
                shlex.quote(str(settings.site)),
            )
            raise
    return deploy(settings, new, baseline=baseline, client_factory=client_factory)
