"""Query-string variants of changed pages, and the prefixes that reach them.

Cloudflare's default cache key holds the query string, so `guide/?h=term` (a search result link
of Material for MkDocs' `search.highlight`) and `guide/?utm_source=x` are cached apart from
`guide/`. No `files` entry can list them; a prefix purges every query variant below it, so a
prefix at the page's own path (`docs.example.com/guide/`) does, and takes down the pages below
that folder with it. The home page's own path is the site root: its variants cost the whole
site, and the plan says so.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from mkdocs_cfpurge.cloudflare.limits import MAX_PREFIX_SEPARATORS
from mkdocs_cfpurge.plan.auto import url_count
from mkdocs_cfpurge.plan.urls import UrlMapper, ancestors

PAGE_SUFFIXES = (".html", ".htm")
ROOT = ""


def is_page(path: str) -> bool:
    return path.endswith(PAGE_SUFFIXES)


def own_path(page: str) -> tuple[str, bool]:
    """The page's own URL path as a site path, and whether it is a folder: `guide/index.html`
    is served as `guide/` (folder `guide`), the top `index.html` as the root (folder ''),
    `about.html` as itself."""
    if page == "index.html":
        return ROOT, True
    if page.endswith("/index.html"):
        return page[: -len("/index.html")], True
    return page, False


@dataclass
class PageVariants:
    """The prefixes the changed pages' query variants need: folders (`ROOT` for the whole
    site) and the files of pages not served as a folder."""

    folders: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def whole_site(self) -> bool:
        return ROOT in self.folders

    def covers(self, path: str) -> bool:
        """Whether these prefixes purge the file at `path` (every URL of it)."""
        if self.whole_site or path in self.files:
            return True
        folders = set(self.folders)
        return any(folder in folders for folder in ancestors(path))


class _Unchanged:
    """The unchanged files, sorted, to count what a prefix takes down with one bisect."""

    def __init__(self, files: Collection[str], changed: Collection[str], mapper: UrlMapper):
        self.sorted = sorted(set(files) - set(changed))
        self.mapper = mapper

    def below(self, start: str) -> int:
        low = bisect.bisect_left(self.sorted, start)
        high = low
        while high < len(self.sorted) and self.sorted[high].startswith(start):
            high += 1
        return sum(url_count(self.mapper, path) for path in self.sorted[low:high])


def _within_depth(mapper: UrlMapper, folder: str) -> str:
    """The folder, or its nearest ancestor whose prefix Cloudflare takes (31 separators)."""
    while folder and mapper.site.path.count("/") + folder.count("/") + 1 > MAX_PREFIX_SEPARATORS:
        folder = folder.rpartition("/")[0]
    return folder


def page_variants(
    pages: Sequence[str],
    mapper: UrlMapper,
    *,
    files: Collection[str],
    changed: Collection[str],
    needed: Callable[[str], bool] | None = None,
) -> PageVariants:
    """The prefixes at the own paths of `pages` (changed pages), each once, none inside
    another. `needed(page)` False leaves a page out (the zone's key ignores its query)."""
    wanted = [page for page in pages if is_page(page) and (needed is None or needed(page))]
    variants = PageVariants()
    if not wanted:
        return variants
    folders: dict[str, str] = {}  # folder -> the page that needs it
    singles: dict[str, str] = {}
    for page in sorted(wanted):
        path, is_folder = own_path(page)
        if is_folder:
            folders.setdefault(_within_depth(mapper, path), page)
        elif _within_depth(mapper, path) == path:
            singles[path] = page
        else:
            folders.setdefault(_within_depth(mapper, path), page)
    unchanged = _Unchanged(files, changed, mapper)
    if ROOT in folders:
        variants.folders = [ROOT]
        total = unchanged.below("")
        variants.decisions.append(
            {
                "query_variants_of": "index.html",
                "prefix_folder": "",
                "unchanged_urls": total,
                "why": "the home page's variants (/?h=…) are reached only by a prefix at the "
                "site root",
            }
        )
        variants.notes.append(
            f"query variants: the home page changed, and its variants (`/?h=…`) are reached "
            f"only by a prefix at the site root: the whole site is purged ({total} unchanged "
            "URL(s) with it)"
        )
        return variants
    kept: set[str] = set()
    for folder in sorted(folders, key=lambda f: (f.count("/"), f)):
        if not any(a in kept for a in ancestors(folder)):
            kept.add(folder)
    variants.folders = sorted(kept)
    variants.files = sorted(path for path in singles if not any(a in kept for a in ancestors(path)))
    for folder in variants.folders:
        variants.decisions.append(
            {
                "query_variants_of": folders[folder],
                "prefix_folder": folder + "/",
                "unchanged_urls": unchanged.below(folder + "/"),
            }
        )
    for path in variants.files:
        variants.decisions.append(
            {
                "query_variants_of": singles[path],
                "prefix_file": path,
                "unchanged_urls": unchanged.below(path),
            }
        )
    collateral = sum(d["unchanged_urls"] for d in variants.decisions)
    variants.notes.append(
        f"query variants: {len(wanted)} changed page(s) purged by {len(variants.decisions)} "
        f"prefix(es) at their own paths, so every `?query` copy goes too ({collateral} "
        "unchanged URL(s) below those paths with them)"
    )
    return variants
