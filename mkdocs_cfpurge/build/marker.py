"""The build marker: `cfpurge-build.json` at the site root, published with every deploy.

It holds the build's digest (what the origin wait looks for), its manifest (the baseline of the
next deploy, for a runner that keeps no state) and the files this deploy's purge is about (resent
by a runner that cannot know whether that purge happened). It is never hashed itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkdocs_cfpurge.build.atomic import write_atomic
from mkdocs_cfpurge.build.manifest import Manifest

MARKER_NAME = "cfpurge-build.json"
MARKER_VERSION = 1


@dataclass(frozen=True)
class Marker:
    manifest: Manifest
    digest: str
    owed: tuple[str, ...] = ()

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
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def parse(cls, raw: bytes) -> Marker:
        """The marker in `raw`; ValueError when it is not one of this tool's markers."""
        data: Any = json.loads(raw)
        if not isinstance(data, dict) or data.get("version") != MARKER_VERSION:
            raise ValueError(f"not a version {MARKER_VERSION} {MARKER_NAME}")
        manifest = Manifest.from_dict(
            {"site_url": data.get("site_url"), "files": data.get("manifest")}
        )
        digest, owed = data.get("digest"), data.get("owed", [])
        if not isinstance(digest, str):
            raise ValueError("'digest' must be a string")
        if not isinstance(owed, list) or not all(isinstance(path, str) for path in owed):
            raise ValueError("'owed' must be a list of paths")
        return cls(manifest, digest, tuple(owed))


def write_marker(site_dir: Path, manifest: Manifest, owed: Iterable[str] = ()) -> Path:
    """Publish the build's digest and manifest with the site (the baseline of the next deploy).

    `owed` lists the files this deploy's purge is about. Whether that purge succeeds is only known
    after the push, so a deploy that starts from this marker with no state of its own (a fresh
    CI runner) purges them once more: a purge sent twice is harmless, one lost is not.
    """
    path = site_dir / MARKER_NAME
    write_atomic(path, Marker(manifest, manifest.digest(), tuple(owed)).to_json())
    return path


def served_digest(body: bytes) -> str | None:
    """The digest of the build whose marker `body` is, or None if it is no marker."""
    try:
        return Marker.parse(body).digest
    except ValueError:
        return None
