"""Changed files to a purge plan, with the chosen strategy.

One purge type per body (Cloudflare rejects mixed bodies with 1012), `files` bodies of at most
`max_files_per_request` entries, at most 100 prefixes/hosts/tags per body.
"""

from __future__ import annotations

import bisect
import posixpath
from collections.abc import Callable, Collection, Iterable, Sequence

from mkdocs_cfpurge.cloudflare.limits import (
    MAX_ITEMS_PER_FLEX_REQUEST,
    MAX_PREFIX_SEPARATORS,
)
from mkdocs_cfpurge.errors import ConfigError
from mkdocs_cfpurge.plan.auto import Budget, choose
from mkdocs_cfpurge.plan.bodies import Body, batches
from mkdocs_cfpurge.plan.changes import Change, Reason, Status
from mkdocs_cfpurge.plan.plan import PlannedChange, PurgePlan
from mkdocs_cfpurge.plan.urls import UrlMapper, ancestors
from mkdocs_cfpurge.plan.variants import PageVariants, is_page, page_variants


def file_bodies(urls: Sequence[str], mapper: UrlMapper, max_files: int) -> list[Body]:
    """`files` bodies: plain URLs, then one `{url, headers}` entry per URL per header map.

    Plain strings and objects go in separate bodies: Cloudflare's schema takes an array of one
    kind or the other, never both.
    """
    bodies = batches("files", urls, max_files)
    entries = [
        {"url": url, "headers": dict(headers)}
        for headers in mapper.cache_key_headers
        for url in urls
    ]
    return bodies + batches("files", entries, max_files)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def folders_of(paths: Iterable[str]) -> set[str]:
    """Every folder holding a file, at any depth ('' for the top is left out)."""
    folders: set[str] = set()
    for path in paths:
        for folder in ancestors(path):
            if folder in folders:
                break  # and so are all of its own ancestors
            folders.add(folder)
    return folders


def _folders_missing_from(folders: Iterable[str], files: Collection[str]) -> list[str]:
    """The folders no file of `files` lies in (one sort and a bisect each, not a folder set)."""
    ordered = sorted(files)
    missing = []
    for folder in folders:
        at = bisect.bisect_left(ordered, folder + "/")
        if at == len(ordered) or not ordered[at].startswith(folder + "/"):
            missing.append(folder)
    return missing


def folder_changes(
    changes: Sequence[Change],
    old_files: Collection[str],
    new_files: Collection[str],
    mapper: UrlMapper,
) -> list[PlannedChange]:
    """The slashless `X` of every folder `X/` that appeared or disappeared.

    `/X` answers a redirect to `/X/` once the folder exists, a 404 before: both get cached.
    Only an added file can make a folder appear, only a deleted one make it disappear.
    """
    added = folders_of(c.path for c in changes if c.status is Status.ADDED)
    deleted = folders_of(c.path for c in changes if c.status is Status.DELETED)
    appeared = _folders_missing_from(added, old_files) if added else []
    removed = _folders_missing_from(deleted, new_files) if deleted else []
    entries = [(f, Status.ADDED, Reason.FOLDER_APPEARED) for f in appeared]
    entries += [(f, Status.DELETED, Reason.FOLDER_REMOVED) for f in removed]
    return [
        PlannedChange(folder + "/", status, reason, tuple(mapper.folder_urls(folder)))
        for folder, status, reason in sorted(entries)
    ]


def build_plan(
    changes: Sequence[Change],
    mapper: UrlMapper,
    *,
    strategy: str = "files",
    max_files_per_request: int = 30,
    zone_id: str | None = None,
    extra_urls: Sequence[str] = (),
    old_files: Collection[str] = (),
    new_files: Collection[str] = (),
    budget: Budget | None = None,
    query_variants: Callable[[str], bool] | None = None,
) -> PurgePlan:
    """Turn changed files into request bodies with the chosen strategy.

    `old_files` and `new_files` (the two manifests' paths) reveal folders that appeared or
    disappeared, and let `auto` count the unchanged URLs a prefix would take down.
    `query_variants(page)` says whether a changed page's query-string variants must go too: a
    prefix at its own path then covers it, whatever the strategy (no URL reaches them).
    """
    planned = [
        PlannedChange(c.path, c.status, c.reason, tuple(mapper.urls(c.path)), c.detail)
        for c in changes
    ]
    if old_files or new_files:  # without the file lists, no folder is known to come or go
        planned += folder_changes(changes, old_files, new_files, mapper)
    plan = PurgePlan(str(mapper.site), zone_id, planned, [], strategy)
    if not planned:
        return plan
    extra = list(extra_urls)
    variants = PageVariants()
    if query_variants is not None and strategy != "everything":
        variants = page_variants(
            [c.path for c in planned if not c.is_folder and is_page(c.path)],
            mapper,
            files=set(old_files) | set(new_files),
            changed={c.path for c in planned},
            needed=query_variants,
        )
        plan.decisions += variants.decisions
        plan.notes += variants.notes
    if strategy == "everything":
        plan.requests = [{"purge_everything": True}]
    elif variants.whole_site:
        plan.requests = _prefix_bodies(planned, mapper, max_files_per_request, extra, plan, [""])
    elif strategy == "prefixes":
        folders = collapse_folders(
            [
                *(
                    posixpath.dirname(change.path)
                    for change in planned
                    if "/" in change.path and not change.is_folder
                ),
                *variants.folders,
            ]
        )
        plan.requests = _prefix_bodies(
            planned, mapper, max_files_per_request, extra, plan, folders, variants.files
        )
    elif strategy == "files" and (variants.folders or variants.files):
        plan.requests = _prefix_bodies(
            planned, mapper, max_files_per_request, extra, plan, variants.folders, variants.files
        )
    elif strategy == "files":
        urls = _unique([url for change in planned for url in change.urls] + extra)
        plan.requests = file_bodies(urls, mapper, max_files_per_request)
    elif strategy == "auto":
        budget = budget or Budget()
        file_paths = [c.path for c in planned if not c.is_folder and c.path not in variants.files]
        loose = sum(len(c.urls) for c in planned if c.is_folder) + len(extra)
        choice = choose(
            file_paths,
            set(old_files) | set(new_files),
            mapper,
            loose_urls=loose,
            budget=budget,
            max_files=max_files_per_request,
            required=variants.folders,
            fixed_prefixes=sum(len(mapper.file_prefixes(path)) for path in variants.files),
        )
        plan.notes += choice.notes
        plan.decisions += choice.decisions
        if choice.everything:
            plan.requests = [{"purge_everything": True}]
        else:
            plan.requests = _prefix_bodies(
                planned, mapper, max_files_per_request, extra, plan, choice.folders, variants.files
            )
    else:
        raise ConfigError("strategy", f"unknown strategy {strategy!r}")
    return plan


def collapse_folders(folders: Iterable[str]) -> list[str]:
    """Drop every folder that lies inside another one of the set."""
    kept: list[str] = []
    seen: set[str] = set()
    for folder in sorted(set(folders)):
        if not any(parent in seen for parent in ancestors(folder)):
            kept.append(folder)
            seen.add(folder)
    return kept


def _inside(folder: str, parents: set[str]) -> bool:
    # '' is the site root: every folder lies inside it.
    return folder in parents or "" in parents or any(p in parents for p in ancestors(folder))


def _prefix_bodies(
    planned: Sequence[PlannedChange],
    mapper: UrlMapper,
    max_files: int,
    extra_urls: Sequence[str],
    plan: PurgePlan,
    folders: Sequence[str],
    file_prefixes: Sequence[str] = (),
) -> list[Body]:
    """Each folder becomes a prefix; changes outside every folder stay `files`.

    A prefix of the site's top folder would be the whole site, so top-level files (index.html,
    sitemap.xml, 404.html) are purged by URL instead, unless the folders hold the root ('',
    for the home page's query variants). `file_prefixes` are files purged by a prefix at their
    own path (their query variants).
    """
    prefixes: list[str] = []
    too_deep: set[str] = set()
    for folder in folders:
        for prefix in mapper.prefixes(folder):
            if prefix.count("/") > MAX_PREFIX_SEPARATORS:
                too_deep.add(folder)
            else:
                prefixes.append(prefix)
    if too_deep:
        plan.notes.append(
            f"{len(too_deep)} folder(s) nest deeper than Cloudflare's {MAX_PREFIX_SEPARATORS} "
            "separators per prefix; their files are purged by URL"
        )
    covered = set(folders) - too_deep
    singles = set(file_prefixes)
    for path in file_prefixes:
        prefixes += mapper.file_prefixes(path)
    loose = [
        url
        for change in planned
        # A folder change (`X/`) stands for its slashless URL, which no prefix `X/` covers;
        # the root's prefix covers everything.
        if (change.is_folder and "" not in covered)
        or not (change.path in singles or _inside(posixpath.dirname(change.path), covered))
        for url in change.urls
    ]
    urls = _unique(loose + list(extra_urls))
    return batches("prefixes", _unique(prefixes), MAX_ITEMS_PER_FLEX_REQUEST) + file_bodies(
        urls, mapper, max_files
    )
