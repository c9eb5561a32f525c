"""What git knows about a deploy: did the push land, and what did the last deploy publish?"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.errors import EXIT_PURGE_FAILED, CfPurgeError


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise CfPurgeError("git is not installed (or not on PATH)") from None
    if check and result.returncode != 0:
        raise CfPurgeError(
            f"git {' '.join(args)} failed: {result.stderr.strip() or result.returncode}",
            exit_code=EXIT_PURGE_FAILED,
        )
    return result


def rev(repo: Path, ref: str) -> str | None:
    result = _git(repo, "rev-parse", "--verify", "--quiet", ref + "^{commit}", check=False)
    return result.stdout.strip() or None


def remote_head(repo: Path, remote: str, branch: str) -> str | None:
    """The commit `branch` points at on the remote itself (`git ls-remote`); None if absent."""
    ref = f"refs/heads/{branch}"
    for line in _git(repo, "ls-remote", remote, ref).stdout.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref:  # ls-remote matches patterns by their tail: keep the exact ref only
            return sha
    return None


def verify_push(repo: Path, remote: str, branch: str) -> str:
    """The pushed commit, once the remote's branch is the local one.

    Only the remote itself proves the push landed: ghp-import resets the local branch to the
    remote-tracking ref without fetching, and a push moves that ref only when the remote's fetch
    refspec covers the branch (a `--single-branch` clone's does not).
    """
    local = rev(repo, f"refs/heads/{branch}")
    remote_sha = remote_head(repo, remote, branch)
    if local is None or local != remote_sha:
        raise CfPurgeError(
            f"the push of {branch!r} to {remote!r} is not verified (local {local}, "
            f"remote {remote_sha}): nothing purged",
            exit_code=EXIT_PURGE_FAILED,
        )
    return local


def read_file(repo: Path, commit: str, path: str) -> bytes | None:
    result = subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=repo, capture_output=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


def fetch_branch(repo: Path, remote: str, branch: str) -> str | None:
    """Fetch the deployed branch; None when the remote has none yet (the first deploy)."""
    if remote_head(repo, remote, branch) is None:
        return None
    _git(repo, "fetch", "--quiet", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
    return rev(repo, f"refs/remotes/{remote}/{branch}")


def published_marker(
    repo: Path, commit: str, marker: str, site_url: str
) -> tuple[Manifest, list[str]] | None:
    """The manifest a deploy published in its marker file, and the files its purge was about
    (see origin.write_marker); None if the commit has no marker for this site."""
    raw = read_file(repo, commit, marker)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        files = data["manifest"]
        if data.get("site_url") != site_url or not isinstance(files, dict):
            return None
        manifest = Manifest(site_url=site_url, files={str(k): str(v) for k, v in files.items()})
        return manifest, [str(path) for path in data.get("owed", [])]
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class TreeFile:
    mode: str  # 100644, 100755, or 120000 for a symlink
    blob: str


def tree_entries(repo: Path, commit: str) -> dict[str, TreeFile]:
    """Path → mode and blob id of every blob (files and symlinks) in a commit's tree."""
    out = _git(repo, "ls-tree", "-r", "-z", "--full-tree", commit).stdout
    entries = {}
    for entry in out.split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        mode, kind, sha = meta.split()
        if kind == "blob":  # a submodule ("commit") serves nothing
            entries[path] = TreeFile(mode, sha)
    return entries


def blob_hashes(repo: Path, commit: str) -> dict[str, str]:
    """Path → git blob id of every file in a commit's tree."""
    return {path: entry.blob for path, entry in tree_entries(repo, commit).items()}
