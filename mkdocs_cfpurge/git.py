"""What git knows about a deploy: did the push land, and what did the last deploy publish?"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mkdocs_cfpurge.errors import EXIT_PURGE_FAILED, CfPurgeError
from mkdocs_cfpurge.manifest import Manifest


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


def verify_push(repo: Path, remote: str, branch: str) -> str:
    """The pushed commit, once local branch, remote-tracking ref and the remote itself agree.

    ghp-import resets the local branch to the remote-tracking ref without fetching, so all three
    must be compared: any difference means the push did not land as this build.
    """
    local = rev(repo, f"refs/heads/{branch}")
    tracking = rev(repo, f"refs/remotes/{remote}/{branch}")
    listed = _git(repo, "ls-remote", remote, f"refs/heads/{branch}").stdout.split()
    remote_sha = listed[0] if listed else None
    if local is None or not (local == tracking == remote_sha):
        raise CfPurgeError(
            f"the push of {branch!r} to {remote!r} is not verified (local {local}, "
            f"{remote}/{branch} {tracking}, remote {remote_sha}): nothing purged",
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
    listed = _git(repo, "ls-remote", remote, f"refs/heads/{branch}").stdout.split()
    if not listed:
        return None
    _git(repo, "fetch", "--quiet", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
    return rev(repo, f"refs/remotes/{remote}/{branch}")


def published_manifest(repo: Path, commit: str, marker: str, site_url: str) -> Manifest | None:
    """The manifest a deploy published in its marker file, if it has one for this site."""
    raw = read_file(repo, commit, marker)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        files = data["manifest"]
        if data.get("site_url") != site_url or not isinstance(files, dict):
            return None
        return Manifest(site_url=site_url, files={str(k): str(v) for k, v in files.items()})
    except (ValueError, KeyError, TypeError):
        return None


def blob_hashes(repo: Path, commit: str) -> dict[str, str]:
    """Path → git blob id of every file in a commit's tree."""
    out = _git(repo, "ls-tree", "-r", "-z", "--full-tree", commit).stdout
    hashes = {}
    for entry in out.split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        _mode, kind, sha = meta.split()
        if kind == "blob":
            hashes[path] = sha
    return hashes
