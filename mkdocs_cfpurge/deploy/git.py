"""What git knows about a deploy: did the push land, and what did the last deploy publish?"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mkdocs_cfpurge.build.marker import MARKER_NAME, Marker
from mkdocs_cfpurge.errors import PurgeFailed, UsageError

GIT_MISSING = "git is not installed (or not on PATH)"
# The commands that talk to the remote have a deadline, like every HTTP request: a remote that
# stops answering fails the step instead of holding the deploy for ever. A fetch may carry a
# whole deployed branch, hence the longer one.
LS_REMOTE_TIMEOUT = 120.0
FETCH_TIMEOUT = 600.0


def _git(
    repo: Path, *args: str, check: bool = True, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    # No prompt for credentials: nobody is there to answer one in CI, and the wait would be
    # endless.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=env,
        )
    except FileNotFoundError:
        raise UsageError(GIT_MISSING) from None
    except subprocess.TimeoutExpired:
        raise PurgeFailed(f"git {' '.join(args)} did not finish within {timeout:g}s") from None
    if check and result.returncode != 0:
        # git explains over several lines; an error here is one line.
        said = "; ".join(line.strip() for line in result.stderr.splitlines() if line.strip())
        raise PurgeFailed(f"git {' '.join(args)} failed: {said or result.returncode}")
    return result


def rev(repo: Path, ref: str) -> str | None:
    result = _git(repo, "rev-parse", "--verify", "--quiet", ref + "^{commit}", check=False)
    return result.stdout.strip() or None


def remote_head(repo: Path, remote: str, branch: str) -> str | None:
    """The commit `branch` points at on the remote itself (`git ls-remote`); None if absent."""
    ref = f"refs/heads/{branch}"
    for line in _git(repo, "ls-remote", remote, ref, timeout=LS_REMOTE_TIMEOUT).stdout.splitlines():
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
        raise PurgeFailed(
            f"the push of {branch!r} to {remote!r} is not verified (local {local}, "
            f"remote {remote_sha}): nothing purged",
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
    refspec = f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}"
    _git(repo, "fetch", "--quiet", remote, refspec, timeout=FETCH_TIMEOUT)
    return rev(repo, f"refs/remotes/{remote}/{branch}")


def published_marker(repo: Path, commit: str, site_url: str) -> Marker | None:
    """The marker a deploy published with its tree; None if the commit has none for this site."""
    raw = read_file(repo, commit, MARKER_NAME)
    if raw is None:
        return None
    try:
        marker = Marker.parse(raw)
    except ValueError:
        return None
    return marker if marker.site_url == site_url else None


def blob_id(data: bytes) -> str:
    """The id git gives a blob of these bytes (what `ls-tree` lists for a file)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class BlobReader:
    """Reads blobs through one `git cat-file --batch` process. Use as a context manager."""

    def __init__(self, repo: Path) -> None:
        try:
            self._proc = subprocess.Popen(
                ["git", "cat-file", "--batch"],
                cwd=repo,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise UsageError(GIT_MISSING) from None

    def read(self, blob: str) -> bytes:
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(blob.encode("ascii") + b"\n")
        proc.stdin.flush()
        header = proc.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            answer = b" ".join(header).decode(errors="replace")
            raise PurgeFailed(f"git cat-file cannot read blob {blob}: {answer}")
        data = proc.stdout.read(int(header[2]))
        proc.stdout.read(1)  # the newline after each object
        return data

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc.stdin is not None:
            proc.stdin.close()
        if proc.stdout is not None:
            proc.stdout.close()
        proc.wait()


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
