"""The manifest: a hash of every file of a built site, and where it came from.

Hashing is streamed (large files never sit in memory whole) and runs on a thread pool: hashlib
releases the GIL while it digests, so the threads really use every core.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pathspec import GitIgnoreSpec

from mkdocs_cfpurge.atomic import write_atomic
from mkdocs_cfpurge.errors import CfPurgeError, config_error

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


def compile_excludes(
    patterns: tuple[str, ...] | list[str], option: str = "exclude"
) -> GitIgnoreSpec:
    try:
        return GitIgnoreSpec.from_lines(list(patterns))
    except Exception as exc:  # pathspec raises several types for a bad pattern
        raise config_error(option, f"invalid gitignore-style pattern: {exc}") from None


def iter_site_files(site_dir: Path, excludes: GitIgnoreSpec | None = None) -> Iterator[str]:
    """Every regular file under `site_dir` (symlinks followed), as a POSIX relative path."""
    if not site_dir.is_dir():
        raise CfPurgeError(f"site folder {str(site_dir)!r} does not exist or is not a folder")
    root = os.fspath(site_dir)
    # The real folders on the walked path to each folder: a symlink to any of them is a loop,
    # even one that goes through other symlinks (a/l -> b, b/l -> a).
    chains: dict[str, frozenset[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        chain = chains.pop(dirpath, frozenset()) | {real}
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        for name in list(dirnames):
            if excludes is not None and excludes.match_file(rel_dir + name + "/"):
                dirnames.remove(name)
                continue
            target = os.path.realpath(os.path.join(dirpath, name))
            if target in chain or real.startswith(target + os.sep):
                raise CfPurgeError(
                    f"symlink loop in the site folder: {rel_dir + name!r} points back to "
                    f"{os.path.relpath(target, root)!r}"
                )
            chains[os.path.join(dirpath, name)] = chain
        dirnames.sort()
        for name in sorted(filenames):
            rel = rel_dir + name
            if excludes is not None and excludes.match_file(rel):
                continue  # never hashed nor purged: its name needs no URL
            _check_name(site_dir, rel)
            full = os.path.join(dirpath, name)
            if not os.path.isfile(full):  # a dangling symlink serves nothing
                continue
            yield rel


def _check_name(site_dir: Path, rel: str) -> None:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise CfPurgeError(
            f"file name '{shown}' in {str(site_dir)!r} is not valid UTF-8: no URL can name it"
        ) from None
    if any(ch in rel for ch in "\n\r\t\x00") or any(ord(ch) < 0x20 for ch in rel):
        raise CfPurgeError(
            f"file name {rel!r} in {str(site_dir)!r} holds a control character (newline?)"
        )


def hash_file(path: str, normalize: Normalizer | None = None, rel: str = "") -> str:
    with open(path, "rb") as handle:
        if normalize is not None and normalize.applies(rel):
            return hashlib.sha256(normalize(rel, handle.read())).hexdigest()
        digest = hashlib.sha256()
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
        return digest.hexdigest()


def build_manifest(
    site_dir: Path,
    site_url: str,
    *,
    exclude: tuple[str, ...] | list[str] = (),
    normalize: Normalizer | None = None,
    workers: int | None = None,
) -> Manifest:
    """Hash every file of a built site."""
    excludes = compile_excludes(exclude) if exclude else None
    paths = list(iter_site_files(site_dir, excludes))
    root = os.fspath(site_dir)

    def one(rel: str) -> str:
        return hash_file(os.path.join(root, rel), normalize, rel)

    workers = workers or min(8, (os.cpu_count() or 1) + 2)
    if len(paths) < 64 or workers == 1:
        hashes = [one(rel) for rel in paths]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            hashes = list(pool.map(one, paths, chunksize=64))
    return Manifest(site_url=site_url, files=dict(zip(paths, hashes, strict=True)))


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
        raise CfPurgeError(f"manifest {str(path)!r} cannot be read: {exc.strerror}") from None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        files = data["files"]
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()
        ):
            raise ValueError("'files' must map paths to hashes")
        manifest = Manifest(
            site_url=str(data["site_url"]),
            files=files,
            algorithm=str(data["algorithm"]),
            version=int(data["version"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CfPurgeError(
            f"manifest {str(path)!r} is corrupt ({exc}); it was left as it is. Delete it to "
            "start over (the next run then has no baseline), or restore it from version control"
        ) from None
    if manifest.version != FORMAT_VERSION or manifest.algorithm != ALGORITHM:
        raise CfPurgeError(
            f"manifest {str(path)!r} has format {manifest.version}/{manifest.algorithm}; this "
            f"version reads {FORMAT_VERSION}/{ALGORITHM}"
        )
    if site_url is not None and manifest.site_url != site_url:
        raise CfPurgeError(
            f"manifest {str(path)!r} was made for site_url {manifest.site_url!r}, not "
            f"{site_url!r}; point 'manifest' at another file, or delete this one"
        )
    return manifest


def files_of(manifest: Manifest | None) -> Mapping[str, str]:
    return manifest.files if manifest is not None else {}
