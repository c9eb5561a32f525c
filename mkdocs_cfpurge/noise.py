"""Output that changes without a content change, removed before hashing (`ignore_changes`).

Only the matched spans are dropped: a page whose noise changed AND whose text changed still
hashes differently, so a real edit is never hidden.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Sequence

from mkdocs_cfpurge.errors import config_error
from mkdocs_cfpurge.manifest import Normalizer

# Known MkDocs noise, opt-in by name in `ignore_changes`.
PRESETS: dict[str, str] = {
    # The mkdocs and readthedocs themes end every page with the build time.
    "mkdocs-build-date": r"<!--\s*MkDocs version : [^\n]*\n\s*Build Date UTC : [^\n]*\n\s*-->",
    # sitemap.xml's lastmod is the build day; sitemap.xml.gz is compared decompressed.
    "sitemap-lastmod": r"<lastmod>[^<]*</lastmod>",
}
TEXT_SUFFIXES = (".html", ".htm", ".xml", ".json", ".txt", ".xhtml", ".rss", ".atom")


def compile_patterns(
    entries: Sequence[str], option: str = "ignore_changes"
) -> list[re.Pattern[bytes]]:
    patterns = []
    for entry in entries:
        source = PRESETS.get(entry, entry)
        try:
            patterns.append(re.compile(source.encode("utf-8")))
        except re.error as exc:
            raise config_error(option, f"{entry!r} is not a regular expression: {exc}") from None
    return patterns


class NoiseFilter:
    """Strips the noise from text outputs (and gzipped text, compared decompressed)."""

    def __init__(self, patterns: Sequence[re.Pattern[bytes]]) -> None:
        self.patterns = patterns

    def applies(self, path: str) -> bool:
        lower = path.lower().removesuffix(".gz")
        return lower.endswith(TEXT_SUFFIXES)

    def strip(self, data: bytes) -> bytes:
        for pattern in self.patterns:
            data = pattern.sub(b"", data)
        return data

    def __call__(self, path: str, data: bytes) -> bytes:
        if not path.lower().endswith(".gz"):
            return self.strip(data)
        try:
            # The gzip header holds a timestamp: compare what it decompresses to.
            return b"gz:" + self.strip(gzip.decompress(data))
        except (OSError, EOFError, zlib.error):
            return data


def make_normalizer(entries: Sequence[str]) -> Normalizer | None:
    """The filter for `ignore_changes` entries (preset names or regular expressions)."""
    patterns = compile_patterns(entries)
    return NoiseFilter(patterns) if patterns else None
