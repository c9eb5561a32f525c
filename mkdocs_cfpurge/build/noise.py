"""Output that changes without a content change, removed before hashing (`ignore_changes`).

Only the matched spans are dropped: a page whose noise changed AND whose text changed still
hashes differently, so a real edit is never hidden.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkdocs_cfpurge.build.manifest import Normalizer
from mkdocs_cfpurge.errors import ConfigError

TEXT_SUFFIXES = (".html", ".htm", ".xml", ".json", ".txt", ".xhtml", ".rss", ".atom")


@dataclass(frozen=True)
class Rule:
    """A pattern to drop, the files it can occur in, and a literal it cannot match without
    (checked first: a plain `in` costs far less than a regex over a large search index)."""

    pattern: re.Pattern[bytes]
    suffixes: tuple[str, ...] = TEXT_SUFFIXES
    literal: bytes = b""

    def strip(self, path: str, data: bytes) -> bytes:
        if not path.endswith(self.suffixes) or self.literal not in data:
            return data
        return self.pattern.sub(b"", data)


# Known MkDocs (and Sphinx) noise, opt-in by name in `ignore_changes`.
PRESETS: dict[str, Rule] = {
    # Sphinx's `html_last_updated_fmt` stamps the build time into every page ("Last updated on
    # Jan 02, 2026." in the basic theme and the themes built on it, "Last updated on:" in some):
    # the phrase and what follows it on its line, up to the next tag, at most 64 characters.
    "sphinx-last-updated": Rule(
        re.compile(rb"Last updated on:?[^<\n]{0,64}"), (".html", ".htm"), b"Last updated on"
    ),
    # The mkdocs and readthedocs themes end every page with the build time.
    "mkdocs-build-date": Rule(
        re.compile(rb"<!--\s*MkDocs version : [^\n]*\n\s*Build Date UTC : [^\n]*\n\s*-->"),
        (".html", ".htm"),
        b"Build Date UTC",
    ),
    # sitemap.xml's lastmod is the build day; sitemap.xml.gz is compared decompressed.
    "sitemap-lastmod": Rule(re.compile(rb"<lastmod>[^<]*</lastmod>"), (".xml",), b"<lastmod>"),
    # mkdocs-git-revision-date-localized-plugin (Material's "Last update" and "Created" lines):
    # every date it writes is one span of class `git-revision-date-localized-plugin-{type}`
    # titled with the full date and time: the types date, datetime, iso_date, iso_datetime,
    # custom, and timeago (an empty `<span class="timeago" datetime=…>` inside, then an
    # iso_date span), for the page's last update, its creation (enable_creation_date) and the
    # site's last update, whether they come from git or from the build time
    # (fallback_to_build_date, or a page git does not know). Optional quotes: minifiers drop them.
    "git-revision-date-localized": Rule(
        re.compile(
            rb"<span class=[\"']git-revision-date-localized-plugin "
            rb"git-revision-date-localized-plugin-[\w-]+[\"'] title=[\"'][^\"'<>]*[\"']>"
            rb"(?:<span class=[\"']?timeago[\"']? datetime=[\"']?[^\"'\s<>]*[\"']? "
            rb"locale=[\"']?[^\"'\s<>]*[\"']?></span>|[^<]*)</span>"
        ),
        (".html", ".htm"),
        b"git-revision-date-localized-plugin",
    ),
    # mkdocs-rss-plugin: the feed's own publication and build dates are the build time.
    "rss-build-date": Rule(
        re.compile(rb"<pubDate>[^<]*</pubDate>\s*<lastBuildDate>[^<]*</lastBuildDate>"),
        (".xml", ".rss"),
        b"<lastBuildDate>",
    ),
}


def compile_patterns(entries: Sequence[str], option: str = "ignore_changes") -> list[Rule]:
    """Preset names or regular expressions (applied to every text output) as rules."""
    rules = []
    for entry in entries:
        if entry in PRESETS:
            rules.append(PRESETS[entry])
            continue
        try:
            rules.append(Rule(re.compile(entry.encode("utf-8"))))
        except re.error as exc:
            raise ConfigError(option, f"{entry!r} is not a regular expression: {exc}") from None
    return rules


class NoiseFilter:
    """Strips the noise from text outputs (and gzipped text, compared decompressed)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = rules

    def applies(self, path: str) -> bool:
        lower = path.lower().removesuffix(".gz")
        return lower.endswith(TEXT_SUFFIXES)

    def strip(self, path: str, data: bytes) -> bytes:
        for rule in self.rules:
            data = rule.strip(path, data)
        return data

    def __call__(self, path: str, data: bytes) -> bytes:
        lower = path.lower()
        if not lower.endswith(".gz"):
            return self.strip(lower, data)
        try:
            # The gzip header holds a timestamp: compare what it decompresses to.
            return b"gz:" + self.strip(lower[:-3], gzip.decompress(data))
        except (OSError, EOFError, zlib.error):
            return data


def presets_in(pages: Iterable[bytes], enabled: Sequence[str] = ()) -> list[str]:
    """The presets whose noise these (HTML) pages carry, leaving out those already on."""
    found = []
    for name, rule in PRESETS.items():
        if name in enabled or ".html" not in rule.suffixes:
            continue
        if any(rule.literal in page and rule.pattern.search(page) for page in pages):
            found.append(name)
    return found


def sampled_pages(site_dir: Path, paths: Iterable[str], limit: int = 20) -> list[bytes]:
    """Up to `limit` HTML pages of a built site, the home page first: enough to tell which
    presets' noise a site carries (plugins stamp every page alike)."""
    pages = sorted(
        (p for p in paths if p.endswith((".html", ".htm"))), key=lambda p: (p != "index.html", p)
    )
    found = []
    for path in pages[:limit]:
        try:
            found.append((site_dir / path).read_bytes())
        except OSError:
            continue
    return found


@dataclass(frozen=True)
class Hashing:
    """What decides a manifest's hashes besides the bytes: the files left out (`exclude`) and
    the noise stripped (`ignore_changes`). Two manifests compare like with like only when
    their fingerprints agree."""

    exclude: tuple[str, ...] = ()
    ignore_changes: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        # A preset counts by what it strips, so a preset changed by an upgrade counts too.
        stripped = [
            [rule.pattern.pattern.decode("utf-8", "replace"), list(rule.suffixes)]
            for rule in compile_patterns(self.ignore_changes)
        ]
        data = {"exclude": list(self.exclude), "ignore_changes": stripped}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "exclude": list(self.exclude),
            "ignore_changes": list(self.ignore_changes),
            "fingerprint": self.fingerprint(),
        }


def make_normalizer(entries: Sequence[str]) -> Normalizer | None:
    """The filter for `ignore_changes` entries (preset names or regular expressions)."""
    rules = compile_patterns(entries)
    return NoiseFilter(rules) if rules else None
