"""A commit of a deployed branch as the site it serves: path → hash, symlinks followed.

A static host serves a branch's tree as it is, with symlinks followed inside it (mike's aliases
are symlinks by default: GitHub Pages serves `latest/guide/` from `1.1/guide/`). The manifest of
that tree compares with another commit's exactly where the served bytes differ.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path

from mkdocs_cfpurge.build.manifest import Manifest, Normalizer, compile_excludes
from mkdocs_cfpurge.deploy import git
from mkdocs_cfpurge.log import log

SYMLINK_MODE = "120000"
# Symlinks to symlinks are followed this deep; deeper chains (or loops) are left out.
MAX_LINK_DEPTH = 8


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
        with git.BlobReader(repo) as reader:
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


def served_hashes(
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
    with git.BlobReader(repo) as reader:
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
    return Manifest(site_url=site_url, files=served_hashes(repo, blobs, normalize))
