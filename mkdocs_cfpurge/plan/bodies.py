"""Purge request bodies as Cloudflare takes them: one purge type each, within the caps.

Everything after the planner (the client, the pending state, reports, verify) reads bodies
through this module only, so none of them depends on how a plan is made.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from mkdocs_cfpurge.cloudflare.limits import MAX_ITEMS_PER_FLEX_REQUEST

Body = dict[str, Any]
PURGE_TYPES = ("files", "tags", "hosts", "prefixes", "purge_everything")


def purge_type(body: Body) -> str:
    return next(key for key in PURGE_TYPES if key in body)


def check_body(body: Any, where: str) -> None:
    """Raise ValueError unless `body` is one that Cloudflare's schema accepts.

    One purge type per body, each a non-empty list (or `purge_everything: true`); `files` holds
    URL strings or `{url, headers}` objects, never both. `where` names the body in the message.
    """
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
    items = body[kind]
    if kind == "purge_everything":
        if items is not True:
            raise ValueError(f"{where}: purge_everything must be true")
    elif not isinstance(items, list) or not items:
        raise ValueError(f"{where}: {kind} must be a non-empty list")
    elif kind == "files" and all(isinstance(item, dict) for item in items):
        for item in items:
            headers = item.get("headers", {})
            if (
                not isinstance(item.get("url"), str)
                or not isinstance(headers, dict)
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
                or set(item) - {"url", "headers"}
            ):
                raise ValueError(f"{where}: {item!r} is not a {{url, headers}} entry")
    elif not all(isinstance(item, str) and item for item in items):
        raise ValueError(
            f"{where}: {kind} must hold only non-empty strings"
            + (" (or only {url, headers} objects)" if kind == "files" else "")
        )


def check_bodies(bodies: Any, where: str) -> list[Body]:
    """A list of bodies read from a file (a plan, pending.json), each checked."""
    if not isinstance(bodies, list):
        raise ValueError(f"'{where}' must be a list")
    for number, body in enumerate(bodies, 1):
        check_body(body, f"request {number}")
    return bodies


def batches(kind: str, items: Sequence[Any], size: int) -> list[Body]:
    return [{kind: list(items[i : i + size])} for i in range(0, len(items), size)]


def item_url(item: str | dict[str, Any]) -> str:
    """The URL of a `files` entry (a string, or a `{url, headers}` object)."""
    return item["url"] if isinstance(item, dict) else item


def hosts_of(requests: Iterable[Body]) -> list[str]:
    """Every host the bodies name (URLs, prefixes, hosts), lower case, in order of appearance."""
    hosts: dict[str, None] = {}
    for body in requests:
        for item in body.get("files", ()):
            hosts[urlsplit(item_url(item)).netloc.lower()] = None
        for item in body.get("prefixes", ()):
            hosts[item.split("/", 1)[0].lower()] = None
        for item in body.get("hosts", ()):
            hosts[item.lower()] = None
    return list(hosts)


# Broad purges first: once a prefix went out, the URLs below it are already fresh.
_MERGE_ORDER = (
    ("prefixes", False),
    ("hosts", False),
    ("tags", False),
    ("files", False),
    ("files", True),
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
    for kind, is_object in _MERGE_ORDER:
        size = max_files if kind == "files" else MAX_ITEMS_PER_FLEX_REQUEST
        merged += batches(kind, list(groups.get((kind, is_object), {}).values()), size)
    return merged
