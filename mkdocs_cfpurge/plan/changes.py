"""The difference between the last deploy's manifest and this build's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"


@dataclass(frozen=True, order=True)
class Change:
    path: str
    status: Status
    reason: str


RESENT = "resent: the deploy that published the baseline may not have purged it"


def diff(
    old: Mapping[str, str], new: Mapping[str, str], resend: Iterable[str] = ()
) -> list[Change]:
    """Added, modified and deleted files, sorted by path, each with the reason it counts.

    `resend` files count as changed even when their hash is the same (see Manifest.resend).
    """
    changes = [
        Change(path, Status.ADDED, "not in the last deploy") for path in new.keys() - old.keys()
    ]
    changes += [Change(path, Status.DELETED, "no longer built") for path in old.keys() - new.keys()]
    changes += [
        Change(path, Status.MODIFIED, f"hash differs ({old[path][:12]} → {digest[:12]})")
        for path, digest in new.items()
        if path in old and old[path] != digest
    ]
    changed = {change.path for change in changes}
    changes += [
        Change(path, Status.MODIFIED if path in new else Status.DELETED, RESENT)
        for path in set(resend) - changed
    ]
    changes.sort()
    return changes
