"""The manifest: a hash of every file of a built site, and where it came from.

Hashing is streamed (large files never sit in memory whole) and runs on a thread pool: hashlib
releases the GIL while it digests, so the threads really use every core.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pathspec import GitIgnoreSpec

from mkdocs_cfpurge.build.atomic import write_atomic
from mkdocs_cfpurge.errors import ConfigError, UsageError

FORMAT_VERSION = 1
ALGORITHM = "sha256"
CHUNK = 1 << 20


class Normalizer(Protocol):
    """Rewrites some files' bytes before hashing (see `noise.py`)."""

    def applies(self, path: str) -> bool: ...

    def __call__(self, path: str, data: bytes) -> bytes: ...


@dataclass
class Manifest:
    """Hashes of a site's output files, keyed by POSIX path relative to the site folder."""

    site_url: str
    files: dict[str, str] = field(default_factory=dict)
    algorithm: str = ALGORITHM
    version: int = FORMAT_VERSION
    # Files whose purge is not known to have happened (a baseline read from a deployed marker):
    # a plan against this manifest purges them again. Never saved.
    resend: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        data = {
            "version": self.version,
            "algorithm": self.algorithm,
            "site_url": self.site_url,
            "files": self.files,
        }
        return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False).encode() + b"\n"

    def digest(self) -> str:
        """One hash for the whole build: what the origin marker publishes."""
        return hashlib.sha256(json.dumps(self.files, sort_keys=True).encode()).hexdigest()

    def save(self, path: Path) -> None:
        write_atomic(path, self.to_json())

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """The manifest a JSON object describes; ValueError names what is wrong with it."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        try:
            files, site_url = data["files"], data["site_url"]
            version, algorithm = (
                data.get("version", FORMAT_VERSION),
                data.get("algorithm", ALGORITHM),
            )
        except KeyError as exc:
            raise ValueError(f"{exc.args[0]!r} is missing") from None
        if not isinstance(site_url, str):
            raise ValueError("'site_url' must be a string")
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()
        ):
            raise ValueError("'files' must map paths to hashes")
        if version != FORMAT_VERSION or algorithm != ALGORITHM:
            raise ValueError(
                f"format {version}/{algorithm}; this version reads {FORMAT_VERSION}/{ALGORITHM}"
            )
        return cls(site_url=site_url, files=files)


def compile_excludes(
    patterns: tuple[str, ...] | list[str], option: str = "exclude"
) -> GitIgnoreSpec:
    try:
        return GitIgnoreSpec.from_lines(list(patterns))
    except Exception as exc:  # pathspec raises several types for a bad pattern
        raise ConfigError(option, f"invalid gitignore-style pattern: {exc}") from None


def iter_site_files(site_dir: Path, excludes: GitIgnoreSpec | None = None) -> Iterator[str]:
    """Every regular file under `site_dir` (symlinks followed), as a POSIX relative path.

    Folder by folder, depth first, names sorted: a folder's files, then its subfolders. A folder
    that cannot be listed is skipped, as `os.walk` does.
    """
    for rel, _ in _walk(site_dir, excludes):
        yield rel


def _walk(site_dir: Path, excludes: GitIgnoreSpec | None) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """`iter_site_files`, with each file's directory entry (its size costs no extra walk)."""
    if not site_dir.is_dir():
        raise UsageError(f"site folder {str(site_dir)!r} does not exist or is not a folder")
    root = os.fspath(site_dir)
    # Each entry: the folder, its relative path ("" or "x/y/"), its real path, and the real
    # folders on the walked path to it: a symlink to any of them is a loop, even one that goes
    # through other symlinks (a/l -> b, b/l -> a). Only symlinks need `realpath` (a syscall per
    # path component): a plain subfolder's real path is its parent's plus its name.
    stack: list[tuple[str, str, str, frozenset[str]]] = [
        (root, "", os.path.realpath(root), frozenset())
    ]
    while stack:
        dirpath, rel_dir, real, chain = stack.pop()
        chain = chain | {real}
        try:
            with os.scandir(dirpath) as listing:
                entries = sorted(listing, key=_entry_name)
        except OSError:
            continue
        files: list[os.DirEntry[str]] = []
        subdirs: list[tuple[str, str, str, frozenset[str]]] = []
        for entry in entries:
            if not _is_dir(entry):
                files.append(entry)
                continue
            name = entry.name
            if excludes is not None and excludes.match_file(rel_dir + name + "/"):
                continue
            target = os.path.realpath(entry.path) if _is_link(entry) else os.path.join(real, name)
            if target in chain or real.startswith(target + os.sep):
                raise UsageError(
                    f"symlink loop in the site folder: {rel_dir + name!r} points back to "
                    f"{os.path.relpath(target, root)!r}"
                )
            subdirs.append((entry.path, rel_dir + name + "/", target, chain))
        for entry in files:
            rel = rel_dir + entry.name
            if excludes is not None and excludes.match_file(rel):
                continue  # never hashed nor purged: its name needs no URL
            _check_name(site_dir, rel)
            if _is_file(entry):  # a dangling symlink serves nothing
                yield rel, entry
        stack.extend(reversed(subdirs))


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows symlinks
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()  # follows symlinks; a stat only for a symlink
    except OSError:
        return False


def _is_link(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return True  # unknown: let realpath find out


_CONTROL = re.compile("[\x00-\x1f]")


def _check_name(site_dir: Path, rel: str) -> None:
    if not rel.isascii():
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise UsageError(
                f"file name '{shown}' in {str(site_dir)!r} is not valid UTF-8: no URL can name it"
            ) from None
    if _CONTROL.search(rel):
        raise UsageError(
            f"file name {rel!r} in {str(site_dir)!r} holds a control character (newline?)"
        )


def hash_file(path: str, normalize: Normalizer | None = None, rel: str = "") -> str:
    return _hash(path, normalize, rel, memoryview(bytearray(CHUNK)))


def _hash(path: str, normalize: Normalizer | None, rel: str, buffer: memoryview) -> str:
    """sha256 of a file's bytes (normalized first when `normalize` applies to `rel`).

    Unbuffered reads into a buffer the caller reuses: no allocation per file. hashlib releases
    the GIL while it digests (and so does a read while the kernel copies), so threads overlap.
    """
    with open(path, "rb", buffering=0) as handle:
        if normalize is not None and normalize.applies(rel):
            return hashlib.sha256(normalize(rel, handle.readall())).hexdigest()
        digest = hashlib.sha256()
        while size := handle.readinto(buffer):
            digest.update(buffer[:size])
        return digest.hexdigest()


def _size(entry: os.DirEntry[str]) -> int:
    try:
        return entry.stat().st_size
    except OSError:
        return 0  # gone or unreadable: hashing it reports the error


def default_workers() -> int:
    """Threads for the big files (the calling thread hashes the small ones)."""
    return min(8, os.cpu_count() or 1)


BIG_FILE = 256 << 10  # from this size a file is hashed on a pool thread


def build_manifest(
    site_dir: Path,
    site_url: str,
    *,
    exclude: tuple[str, ...] | list[str] = (),
    normalize: Normalizer | None = None,
    workers: int | None = None,
) -> Manifest:
    """Hash every file of a built site.

    Files of `BIG_FILE` and more are hashed on `workers` pool threads, the others in this
    thread. hashlib releases the GIL while it digests, so threads pay off for big files. For a
    small page, the Python code and system calls around the digest take about as long as the
    digest itself, and threads contending for the GIL at each of them cost more than they gain
    (on two cores, 50k pages: twice the CPU time, 1.8x the wall time; benchmarks/hashing.py).
    """
    excludes = compile_excludes(exclude) if exclude else None
    root = os.fspath(site_dir)
    # The whole walk first: its errors (symlink loops, bad names) come before any read error.
    found = list(_walk(site_dir, excludes))
    workers = workers or default_workers()
    buffer = memoryview(bytearray(CHUNK))
    hashes: list[str | Future[str]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for rel, entry in found:
                full = os.path.join(root, rel)
                if workers > 1 and _size(entry) >= BIG_FILE:
                    hashes.append(pool.submit(hash_file, full, normalize, rel))
                else:
                    hashes.append(_hash(full, normalize, rel, buffer))
            digests = [h if isinstance(h, str) else h.result() for h in hashes]
        except BaseException:
            for h in hashes:  # an error (or Ctrl-C) need not wait for the other files
                if not isinstance(h, str):
                    h.cancel()
            raise
    return Manifest(
        site_url=site_url, files=dict(zip((rel for rel, _ in found), digests, strict=True))
    )


def load_manifest(path: Path, site_url: str | None = None) -> Manifest | None:
    """The saved manifest, or None when there is none yet.

    A manifest that cannot be read, or that was made for another site, is an error naming the
    file: replacing it silently would lose track of what the last deploy published.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"manifest {str(path)!r} cannot be read: {exc.strerror}") from None
    try:
        manifest = Manifest.from_dict(json.loads(raw))
    except ValueError as exc:
        raise UsageError(
            f"manifest {str(path)!r} is corrupt ({exc}); it was left as it is. Delete it to "
            "start over (the next run then has no baseline), or restore it from version control"
        ) from None
    if site_url is not None and manifest.site_url != site_url:
        raise UsageError(
            f"manifest {str(path)!r} was made for site_url {manifest.site_url!r}, not "
            f"{site_url!r}; point 'manifest' at another file, or delete this one"
        )
    return manifest
