"""Purge what a deployed branch's tree changed, whichever tool wrote it (mike above all).

`mike deploy --push VERSION ALIAS...` builds one version with `mkdocs build`, then commits it to
the branch under `VERSION/`, rewrites each alias (`ALIAS -> VERSION` symlink by default, or a copy,
or redirect pages), `versions.json` and `.nojekyll`; `mike set-default` writes a root
`index.html` redirect; `mike delete` removes folders and rewrites `versions.json`. None of this
is visible from one build's folder, so the branch itself is compared: the tree of the last purged
commit against the tree of the branch head, by git blob id. Symlinks are followed inside the tree
(GitHub Pages serves `latest/guide/` from `1.1/guide/`), so an alias that moved counts as changed
exactly where its target's files differ. The normal pipeline then maps every added, changed or
removed path to its URLs under site_url: the URL the branch's root is served at.

Nothing here imports mkdocs.
"""

from __future__ import annotations

import hashlib
import posixpath
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.build.manifest import Manifest, Normalizer, compile_excludes
from mkdocs_cfpurge.build.noise import make_normalizer
from mkdocs_cfpurge.deploy import git
from mkdocs_cfpurge.deploy.origin import poll_origin
from mkdocs_cfpurge.errors import EXIT_PURGE_FAILED, EXIT_USAGE, CfPurgeError
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.changes import Status
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.plan.urls import encode_path
from mkdocs_cfpurge.settings import Settings

if TYPE_CHECKING:
    import httpx

# mike runs `mkdocs build` with this variable set to the version being built.
MIKE_VERSION_VAR = "MIKE_DOCS_VERSION"
SYMLINK_MODE = "120000"
# Symlinks to symlinks are followed this deep; deeper chains (or loops) are left out.
MAX_LINK_DEPTH = 8


def mike_build_version(env: Mapping[str, str]) -> str | None:
    """The version mike is building, when this process is the `mkdocs build` mike started.

    mike builds in a subprocess: MkDocs reports command `build`, site_url already ends in the
    version and site_dir is the usual one. Nothing of that build may purge: mike has not committed
    nor pushed it yet, and it knows nothing of aliases, versions.json or the root index.
    """
    version = env.get(MIKE_VERSION_VAR, "").strip()
    return version or None


# --- a commit's tree as the site it serves ---------------------------------------------------


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
            raise CfPurgeError("git is not installed (or not on PATH)") from None

    def read(self, blob: str) -> bytes:
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(blob.encode("ascii") + b"\n")
        proc.stdin.flush()
        header = proc.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            answer = b" ".join(header).decode(errors="replace")
            raise CfPurgeError(
                f"git cat-file cannot read blob {blob}: {answer}", exit_code=EXIT_PURGE_FAILED
            )
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


def _link_target(link: str, target: bytes) -> str | None:
    """The tree path a symlink points at, or None when no static host would follow it."""
    try:
        text = target.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or text.startswith("/") or "\0" in text:
        return None
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link), text))
    if resolved in (".", "..") or resolved.startswith("../"):
        return None  # the tree's root (a loop) or outside the tree
    if link == resolved or link.startswith(resolved + "/"):
        return None  # a folder that contains the link itself: endless
    return resolved


def expand_links(files: Mapping[str, str], links: Mapping[str, str]) -> dict[str, str]:
    """Serve every symlink (path → resolved target) as the file or folder it points at.

    `files` maps regular files to blob ids. A link to a file gets that file's blob; a link to a
    folder gets every file below it, under the link's own path. Links to links resolve over
    several rounds; dangling links, and chains deeper than MAX_LINK_DEPTH, serve nothing.
    """
    served = dict(files)
    for _ in range(MAX_LINK_DEPTH):
        added = False
        ordered = sorted(served)
        for link, target in links.items():
            if link in served:
                continue
            if target in served:
                served[link] = served[target]
                added = True
                continue
            prefix = target + "/"
            for path in ordered:
                if path.startswith(prefix):
                    alias = link + "/" + path[len(prefix) :]
                    if alias not in served:
                        served[alias] = served[path]
                        added = True
        if not added:
            break
    return served


def tree_blobs(repo: Path, commit: str, exclude: Iterable[str] = ()) -> dict[str, str]:
    """Path → git blob id of every file the commit's tree serves, symlinks followed."""
    entries = git.tree_entries(repo, commit)
    files = {path: e.blob for path, e in entries.items() if e.mode != SYMLINK_MODE}
    links: dict[str, str] = {}
    symlinks = {path: e.blob for path, e in entries.items() if e.mode == SYMLINK_MODE}
    if symlinks:
        with BlobReader(repo) as reader:
            for path, blob in symlinks.items():
                target = _link_target(path, reader.read(blob))
                if target is None:
                    log.warning("cfpurge: symlink %r in %s serves nothing; left out", path, commit)
                else:
                    links[path] = target
    served = expand_links(files, links)
    patterns = tuple(exclude)
    if patterns:
        spec = compile_excludes(patterns)
        served = {path: blob for path, blob in served.items() if not spec.match_file(path)}
    return dict(sorted(served.items()))


def _normalized(
    repo: Path, blobs: Mapping[str, str], normalize: Normalizer | None
) -> dict[str, str]:
    """Blob ids, except files the normalizer strips noise from: sha256 of the stripped bytes."""
    if normalize is None:
        return dict(blobs)
    hashes = dict(blobs)
    wanted = [path for path in blobs if normalize.applies(path)]
    if not wanted:
        return hashes
    done: dict[tuple[str, str], str] = {}  # the same blob under the same suffix: hashed once
    with BlobReader(repo) as reader:
        for path in wanted:
            key = (blobs[path], posixpath.splitext(path.lower())[1])
            if key not in done:
                done[key] = hashlib.sha256(normalize(path, reader.read(blobs[path]))).hexdigest()
            hashes[path] = done[key]
    return hashes


def tree_manifest(
    repo: Path,
    commit: str,
    site_url: str,
    *,
    exclude: Iterable[str] = (),
    normalize: Normalizer | None = None,
) -> Manifest:
    """The manifest of what a commit of the deployed branch serves under `site_url`.

    Hashes are git blob ids (40 hex digits); with `normalize`, the files it applies to are hashed
    as the sha256 of their stripped bytes (64 hex digits) instead. Either way, two manifests made
    with the same options compare equal exactly where the served bytes do.
    """
    blobs = tree_blobs(repo, commit, exclude)
    return Manifest(site_url=site_url, files=_normalized(repo, blobs, normalize))


def with_branch_hosts(settings: Settings, repo: Path, commit: str) -> Settings:
    """Add the custom domain that a `CNAME` file at the branch's root announces (GitHub Pages)."""
    raw = git.read_file(repo, commit, "CNAME")
    if raw is None:
        return settings
    try:
        words = raw.decode("utf-8").split()
    except UnicodeDecodeError:
        return settings
    hosts = [h.lower() for h in words[:1] if h.lower() not in settings.mapper().hosts]
    if not hosts:
        return settings
    log.info("cfpurge: the branch's CNAME names %s: its URLs are purged too", hosts[0])
    return replace(settings, hosts=(*settings.hosts, *hosts))


# --- waiting for the origin to serve the branch head --------------------------------------------


@dataclass(frozen=True)
class OriginProbe:
    """One file whose served bytes tell whether the origin publishes the branch head.

    `blob` None: the file was removed, so the origin must answer 404 for it.
    """

    path: str
    blob: str | None


def blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def choose_probe(plan: PurgePlan, head: Mapping[str, str]) -> OriginProbe | None:
    """A file the push changed: versions.json when it did (small, and rewritten by most mike
    commands), else the first added or modified file, else a removed one."""
    files = [c for c in plan.changes if not c.path.endswith("/")]
    present = [c.path for c in files if c.status is not Status.DELETED and c.path in head]
    versions = sorted((p for p in present if posixpath.basename(p) == "versions.json"), key=len)
    if versions:
        return OriginProbe(versions[0], head[versions[0]])
    if present:
        return OriginProbe(present[0], head[present[0]])
    removed = [c.path for c in files if c.status is Status.DELETED]
    return OriginProbe(removed[0], None) if removed else None


def wait_for_branch(
    origin_url: str,
    probe: OriginProbe,
    *,
    timeout: float = 600.0,
    interval: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """Poll the origin until it serves the probe's file as the branch head has it."""

    def check(response: httpx.Response) -> tuple[bool, str]:
        last = f"HTTP {response.status_code}"
        if probe.blob is None:
            return response.status_code == 404, last
        if not response.is_success:
            return False, last
        served = blob_id(response.content)
        return served == probe.blob, f"{last}, blob {served[:12]}"

    expected = "a 404" if probe.blob is None else f"blob {probe.blob[:12]}"
    return poll_origin(
        origin_url.rstrip("/") + "/" + encode_path(probe.path),
        check,
        what=f"the branch head's {probe.path} ({expected})",
        timeout=timeout,
        interval=interval,
        sleep=sleep,
        clock=clock,
    )


@dataclass(frozen=True)
class OriginWait:
    url: str
    timeout: float = 600.0
    interval: float = 10.0


# --- the whole job ---------------------------------------------------------------------------


@dataclass
class BranchPurge:
    commit: str
    plan: PurgePlan
    requests_sent: int


def _commit_of(repo: Path, ref: str, what: str) -> str:
    commit = git.rev(repo, ref)
    if commit is None:
        raise CfPurgeError(f"{what} {ref!r} is not a commit in {str(repo)!r}", exit_code=EXIT_USAGE)
    return commit


def purge_branch(
    settings: Settings,
    *,
    repo: Path,
    remote: str = "origin",
    branch: str = "gh-pages",
    since: str | None = None,
    origin: OriginWait | None = None,
    client_factory: pipeline.ClientFactory | None = None,
) -> BranchPurge:
    """Fetch `remote/branch`, then purge what its tree changed since the last purge.

    The baseline is the manifest at `settings.manifest_path` (the tree the last purge left
    behind); without one, the tree of `since` (e.g. the branch head before `mike deploy`), and
    without that the first run records the head as the baseline and purges nothing. The purge,
    the pending file, the lock and the commit are `pipeline.deploy`'s: the manifest committed is
    the head's tree manifest. With `origin`, nothing is sent before the origin serves the head.
    """
    commit = git.fetch_branch(repo, remote, branch)
    if commit is None:
        raise CfPurgeError(
            f"{remote!r} has no branch {branch!r}: nothing is deployed yet (run `mike deploy "
            "--push` first, or check --remote and --branch)",
            exit_code=EXIT_USAGE,
        )
    log.info("cfpurge: %s/%s is %s", remote, branch, commit[:12])
    settings = with_branch_hosts(settings, repo, commit)
    normalize = make_normalizer(settings.ignore_changes)
    site_url = str(settings.site)

    head = tree_blobs(repo, commit, settings.exclude)
    new = Manifest(site_url=site_url, files=_normalized(repo, head, normalize))
    baseline = None
    if since is not None:
        base_commit = _commit_of(repo, since, "--since")
        baseline = tree_manifest(
            repo, base_commit, site_url, exclude=settings.exclude, normalize=normalize
        )
    if settings.dry_run:
        plan = pipeline.preview(settings, new, baseline)
        pipeline.report(plan, settings)
        return BranchPurge(commit, plan, 0)
    if origin is not None:
        settings.require_purge_access()
        probe = choose_probe(pipeline.preview(settings, new, baseline), head)
        if probe is not None:
            try:
                wait_for_branch(origin.url, probe, timeout=origin.timeout, interval=origin.interval)
            except CfPurgeError:
                path = pipeline.save_pending_plan(settings, new, baseline)
                log.error("cfpurge: the purge is kept as pending in %s", path)
                raise
    result = pipeline.deploy(settings, new, baseline=baseline, client_factory=client_factory)
    pipeline.report(result.plan, settings)
    return BranchPurge(commit, result.plan, result.requests_sent)
