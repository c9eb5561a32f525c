"""The difference between the last deploy's manifest and this build's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"


class Reason(str, Enum):
    """Why a path is in the plan. Code compares these, never the words shown to people."""

    NEW = "new"
    GONE = "gone"
    HASH_DIFFERS = "hash-differs"
    # The baseline came from a deployed marker: that deploy's own purge may never have been sent.
    RESENT = "resent"
    FOLDER_APPEARED = "folder-appeared"
    FOLDER_REMOVED = "folder-removed"

    @property
    def text(self) -> str:
        return _TEXT[self]


_TEXT = {
    Reason.NEW: "not in the last deploy",
    Reason.GONE: "no longer built",
    Reason.HASH_DIFFERS: "hash differs",
    Reason.RESENT: "resent: the deploy that published the baseline may not have purged it",
    Reason.FOLDER_APPEARED: "folder appeared: /X now redirects to /X/",
    Reason.FOLDER_REMOVED: "folder removed: /X no longer redirects",
}


@dataclass(frozen=True, order=True)
class Change:
    path: str
    status: Status
    reason: Reason
    detail: str = ""

    def describe(self) -> str:
        return self.reason.text + (f" ({self.detail})" if self.detail else "")


def diff(
    old: Mapping[str, str], new: Mapping[str, str], resend: Iterable[str] = ()
) -> list[Change]:
    """Added, modified and deleted files, sorted by path, each with the reason it counts.

    `resend` files count as changed even when their hash is the same (see Manifest.resend).
    """
    changes = [Change(path, Status.ADDED, Reason.NEW) for path in new.keys() - old.keys()]
    changes += [Change(path, Status.DELETED, Reason.GONE) for path in old.keys() - new.keys()]
    changes += [
        Change(path, Status.MODIFIED, Reason.HASH_DIFFERS, f"{old[path][:12]} → {digest[:12]}")
        for path, digest in new.items()
        if path in old and old[path] != digest
    ]
    changed = {change.path for change in changes}
    changes += [
        Change(path, Status.MODIFIED if path in new else Status.DELETED, Reason.RESENT)
        for path in set(resend) - changed
    ]
    changes.sort()
    return changes
