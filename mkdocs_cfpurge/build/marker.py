"""The build marker: `cfpurge-build.json` at the site root, published with every deploy.

It holds the build's digest (what the origin wait looks for), its manifest and the hashing
options it was made with (the baseline of the next deploy, for a runner that keeps no state), the
files this deploy's purge is about (resent by a runner that cannot know whether that purge
happened) and, under `purge`, the plan this build owes (its baseline and exact request bodies,
without the zone id), so that a later job holding only the built folder sends exactly that.
`purge` and `hashing` are optional: markers published before they existed still read as
baselines. It is never hashed itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkdocs_cfpurge.build.atomic import write_atomic
from mkdocs_cfpurge.build.manifest import Manifest, check_site_path
from mkdocs_cfpurge.build.safejson import parse_json
from mkdocs_cfpurge.errors import UsageError

MARKER_NAME = "cfpurge-build.json"
MARKER_VERSION = 1
# A 100,000-file site's marker is about 12 MB (its manifest, and the owed plan of a deploy that
# changed every page): a bigger one is refused, read from a folder or from the origin.
MAX_MARKER_BYTES = 64 << 20


@dataclass(frozen=True)
class Marker:
    manifest: Manifest
    digest: str
    owed: tuple[str, ...] = ()
    # The plan this build owes, as a plan's JSON object (checked where it is read: plan.py).
    purge: Mapping[str, Any] | None = None

    @property
    def site_url(self) -> str:
        return self.manifest.site_url

    def to_json(self) -> bytes:
        data = {
            "version": MARKER_VERSION,
            "site_url": self.manifest.site_url,
            "digest": self.digest,
            "manifest": self.manifest.files,
            "owed": sorted(set(self.owed)),
        }
        if self.manifest.hashing is not None:
            data["hashing"] = self.manifest.hashing
        if self.purge is not None:
            data["purge"] = dict(self.purge)
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def parse(cls, raw: bytes) -> Marker:
        """The marker in `raw`; ValueError when it is not one of this tool's markers."""
        data: Any = parse_json(raw)
        if not isinstance(data, dict) or data.get("version") != MARKER_VERSION:
            raise ValueError(f"not a version {MARKER_VERSION} {MARKER_NAME}")
        manifest = Manifest.from_dict(
            {
                "site_url": data.get("site_url"),
                "files": data.get("manifest"),
                "hashing": data.get("hashing"),  # absent from markers published before it was
            }
        )
        digest, owed, purge = data.get("digest"), data.get("owed", []), data.get("purge")
        if not isinstance(digest, str):
            raise ValueError("'digest' must be a string")
        if not isinstance(owed, list):
            raise ValueError("'owed' must be a list of paths")
        for path in owed:
            check_site_path(path)
        if purge is not None and not isinstance(purge, dict):
            raise ValueError("'purge' must be a JSON object")
        return cls(manifest, digest, tuple(owed), purge)


def write_marker(
    site_dir: Path,
    manifest: Manifest,
    owed: Iterable[str] = (),
    purge: Mapping[str, Any] | None = None,
) -> Path:
    """Publish the build's digest and manifest with the site (the baseline of the next deploy).

    `owed` lists the files this deploy's purge is about. Whether that purge succeeds is only known
    after the push, so a deploy that starts from this marker with no state of its own (a fresh
    CI runner) purges them once more: a purge sent twice is harmless, one lost is not. `purge` is
    the plan this deploy owes, for `mkdocs-cfpurge purge SITE_DIR` run where no state is kept.
    """
    path = site_dir / MARKER_NAME
    write_atomic(path, Marker(manifest, manifest.digest(), tuple(owed), purge).to_json())
    return path


def read_marker(site_dir: Path) -> Marker | None:
    """The marker in a built folder; None when it has none. One that cannot be read, is too big
    or is not this tool's is an error naming the file (exit 2)."""
    path = site_dir / MARKER_NAME
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_MARKER_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"{str(path)!r} cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_MARKER_BYTES:
        raise UsageError(f"{str(path)!r} is larger than {MAX_MARKER_BYTES >> 20} MiB")
    try:
        return Marker.parse(raw)
    except ValueError as exc:
        raise UsageError(f"{str(path)!r} is not a valid build marker: {exc}") from None


def served_digest(body: bytes) -> str | None:
    """The digest of the build whose marker `body` is, or None if it is no marker."""
    try:
        return Marker.parse(body).digest
    except ValueError:
        return None
