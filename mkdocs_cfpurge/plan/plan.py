"""The purge plan: the exact request bodies to send, in order, and why.

One purge type per body (Cloudflare rejects mixed bodies with 1012), `files` bodies of at most
`max_files_per_request` entries, at most 100 prefixes/hosts/tags per body. The same inputs give the
same bytes, so a plan reviewed in a pull request is the plan that gets sent.
"""

from __future__ import annotations

import bisect
import json
import posixpath
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mkdocs_cfpurge.cloudflare.limits import MAX_ITEMS_PER_FLEX_REQUEST, MAX_PREFIX_SEPARATORS
from mkdocs_cfpurge.errors import CfPurgeError
from mkdocs_cfpurge.plan.auto import Budget, choose
from mkdocs_cfpurge.plan.changes import Change, Status
from mkdocs_cfpurge.plan.urls import UrlMapper

PLAN_VERSION = 1
STRATEGIES = ("auto", "files", "prefixes", "everything")
PURGE_TYPES = ("files", "tags", "hosts", "prefixes", "purge_everything")

Body = dict[str, Any]


@dataclass(frozen=True)
class PlannedChange:
    path: str
    status: Status
    reason: str
    urls: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status.value,
            "reason": self.reason,
            "urls": list(self.urls),
        }


@dataclass
class PurgePlan:
    site_url: str
    zone_id: str | None
    changes: list[PlannedChange]
    requests: list[Body]
    strategy: str = "files"
    notes: list[str] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    version: int = PLAN_VERSION

    @property
    def is_empty(self) -> bool:
        return not self.requests

    def count(self, status: Status) -> int:
        return sum(1 for change in self.changes if change.status is status)

    def purged_items(self) -> int:
        return sum(len(items) if isinstance(items, list) else 1 for items in _values(self.requests))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "site_url": self.site_url,
            "zone_id": self.zone_id,
            "strategy": self.strategy,
            "notes": self.notes,
            "decisions": self.decisions,
            "changes": [change.to_dict() for change in self.changes],
            "requests": self.requests,
        }

    def to_json(self) -> bytes:
        return (
            json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False).encode()
            + b"\n"
        )

    @classmethod
    def load(cls, path: Path) -> PurgePlan:
        """Read a saved plan, refusing anything Cloudflare would reject."""
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise CfPurgeError(f"plan file {str(path)!r} does not exist") from None
        except (OSError, ValueError) as exc:
            raise CfPurgeError(f"plan file {str(path)!r} is not valid JSON: {exc}") from None
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise CfPurgeError(f"plan file {str(path)!r} is invalid: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any) -> PurgePlan:
        if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
            raise ValueError(f"not a version {PLAN_VERSION} plan")
        requests = data["requests"]
        if not isinstance(requests, list):
            raise ValueError("'requests' must be a list")
        for number, body in enumerate(requests, 1):
            check_body(body, f"request {number}")
        changes = [
            PlannedChange(c["path"], Status(c["status"]), c.get("reason", ""), tuple(c["urls"]))
            for c in data["changes"]
        ]
        zone_id = data.get("zone_id")
        if zone_id is not None and not isinstance(zone_id, str):
            raise ValueError("'zone_id' must be a string or null")
        return cls(
            site_url=str(data["site_url"]),
            zone_id=zone_id,
            changes=changes,
            requests=requests,
            strategy=str(data.get("strategy", "files")),
            notes=list(data.get("notes", [])),
            decisions=list(data.get("decisions", [])),
        )


def purge_type(body: Body) -> str:
    return next(key for key in PURGE_TYPES if key in body)


def check_body(body: Any, where: str) -> None:
    """One purge type per body, each a list (or `purge_everything: true`)."""
    if not isinstance(body, dict):
        raise ValueError(f"{where} is not a JSON object")
    kinds = [key for key in body if key in PURGE_TYPES]
    unknown = [key for key in body if key not in PURGE_TYPES]
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}")
    if len(kinds) != 1:
        raise ValueError(
            f"{where} mixes purge types {kinds}; Cloudflare takes exactly one per request"
            if kinds
            else f"{where} names no purge type"
        )
    kind = kinds[0]
    if kind == "purge_everything":
        if body[kind] is not True:
            raise ValueError(f"{where}: purge_everything must be true")
    elif not isinstance(body[kind], list) or not body[kind]:
        raise ValueError(f"{where}: {kind} must be a non-empty list")
    elif kind == "files" and all(isinstance(item, dict) for item in body[kind]):
        # Cloudflare's schema: an array of URL strings, or one of {url, headers}, never both.
        for item in body[kind]:
            if (
                not isinstance(item.get("url"), str)
                or not isinstance(item.get("headers", {}), dict)
                or set(item) - {"url", "headers"}
            ):
                raise ValueError(f"{where}: {item!r} is not a {{url, headers}} entry")
    elif not all(isinstance(item, str) and item for item in body[kind]):
        raise ValueError(
            f"{where}: {kind} must hold only non-empty strings"
            + (" (or only {url, headers} objects)" if kind == "files" else "")
        )


def _values(requests: Iterable[Body]) -> Iterable[Any]:
    for body in requests:
        yield body[purge_type(body)]


def batches(kind: str, items: Sequence[Any], size: int) -> list[Body]:
    return [{kind: list(items[i : i + size])} for i in range(0, len(items), size)]


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
    parents = {path.rpartition("/")[0] for path in paths}
    parents.discard("")
    folders = set(parents)
    for parent in parents:
        folder = parent.rpartition("/")[0]
        while folder and folder not in folders:
            folders.add(folder)
            folder = folder.rpartition("/")[0]
    return folders


def _strict_ancestors(folder: str) -> Iterable[str]:
    folder = folder.rpartition("/")[0]
    while folder:
        yield folder
        folder = folder.rpartition("/")[0]


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
    entries = [(f, Status.ADDED, "folder appeared: /X now redirects to /X/") for f in appeared]
    entries += [(f, Status.DELETED, "folder removed: /X no longer redirects") for f in removed]
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
) -> PurgePlan:
    """Turn changed files into request bodies with the chosen strategy.

    `old_files` and `new_files` (the two manifests' paths) reveal folders that appeared or
    disappeared, and let `auto` count the unchanged URLs a prefix would take down.
    """
    planned = [
        PlannedChange(c.path, c.status, c.reason, tuple(mapper.urls(c.path))) for c in changes
    ]
    if old_files or new_files:  # without the file lists, no folder is known to come or go
        planned += folder_changes(changes, old_files, new_files, mapper)
    plan = PurgePlan(str(mapper.site), zone_id, planned, [], strategy)
    if not planned:
        return plan
    extra = list(extra_urls)
    if strategy == "everything":
        plan.requests = [{"purge_everything": True}]
    elif strategy == "prefixes":
        folders = collapse_folders(
            posixpath.dirname(change.path)
            for change in planned
            if "/" in change.path and not change.path.endswith("/")
        )
        plan.requests = _prefix_bodies(planned, mapper, max_files_per_request, extra, plan, folders)
    elif strategy == "files":
        urls = _unique([url for change in planned for url in change.urls] + extra)
        plan.requests = file_bodies(urls, mapper, max_files_per_request)
    elif strategy == "auto":
        budget = budget or Budget()
        file_paths = [c.path for c in planned if not c.path.endswith("/")]
        loose = sum(len(c.urls) for c in planned if c.path.endswith("/")) + len(extra)
        choice = choose(
            file_paths,
            set(old_files) | set(new_files),
            mapper,
            loose_urls=loose,
            budget=budget,
            max_files=max_files_per_request,
        )
        plan.notes += choice.notes
        plan.decisions = choice.decisions
        if choice.everything:
            plan.requests = [{"purge_everything": True}]
        else:
            plan.requests = _prefix_bodies(
                planned, mapper, max_files_per_request, extra, plan, choice.folders
            )
    else:
        raise CfPurgeError(f"option 'strategy': unknown strategy {strategy!r}")
    return plan


def collapse_folders(folders: Iterable[str]) -> list[str]:
    """Drop every folder that lies inside another one of the set."""
    kept: list[str] = []
    seen: set[str] = set()
    for folder in sorted(set(folders)):
        if not any(parent in seen for parent in _strict_ancestors(folder)):
            kept.append(folder)
            seen.add(folder)
    return kept


def _inside(folder: str, parents: set[str]) -> bool:
    return folder in parents or any(p in parents for p in _strict_ancestors(folder))


def _prefix_bodies(
    planned: Sequence[PlannedChange],
    mapper: UrlMapper,
    max_files: int,
    extra_urls: Sequence[str],
    plan: PurgePlan,
    folders: Sequence[str],
) -> list[Body]:
    """Each folder becomes a prefix; changes outside every folder stay `files`.

    A prefix of the site's top folder would be the whole site, so top-level files (index.html,
    sitemap.xml, 404.html) are purged by URL instead.
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
    loose = [
        url
        for change in planned
        # A folder change (`X/`) stands for its slashless URL, which no prefix `X/` covers.
        if change.path.endswith("/") or not _inside(posixpath.dirname(change.path), covered)
        for url in change.urls
    ]
    urls = _unique(loose + list(extra_urls))
    return batches("prefixes", _unique(prefixes), MAX_ITEMS_PER_FLEX_REQUEST) + file_bodies(
        urls, mapper, max_files
    )


def merge_requests(*request_lists: Sequence[Body], max_files: int) -> list[Body]:
    """Bodies of several plans as one list, each item once, re-batched within the caps.

    A `purge_everything` anywhere makes every other body redundant. URL strings and
    `{url, headers}` entries stay in separate bodies, as Cloudflare's schema wants.
    """
    bodies = [body for requests in request_lists for body in requests]
    if any("purge_everything" in body for body in bodies):
        return [{"purge_everything": True}]
    groups: dict[tuple[str, bool], dict[str, Any]] = {}
    for body in bodies:
        kind = purge_type(body)
        for item in body[kind]:
            is_object = isinstance(item, dict)
            key = json.dumps(item, sort_keys=True) if is_object else item
            groups.setdefault((kind, is_object), {})[key] = item
    merged: list[Body] = []
    # Broad purges first: once a prefix went out, the URLs below it are already fresh.
    for kind, is_object in _MERGE_ORDER:
        size = max_files if kind == "files" else MAX_ITEMS_PER_FLEX_REQUEST
        merged += batches(kind, list(groups.get((kind, is_object), {}).values()), size)
    return merged


_MERGE_ORDER = (
    ("prefixes", False),
    ("hosts", False),
    ("tags", False),
    ("files", False),
    ("files", True),
)
