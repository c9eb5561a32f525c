"""The purge plan: the exact request bodies to send, in order, and why.

The same inputs give the same bytes, so a plan reviewed in a pull request is the plan that gets
sent. `planner.py` makes plans; everything else only reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mkdocs_cfpurge.build.safejson import parse_json
from mkdocs_cfpurge.errors import UsageError
from mkdocs_cfpurge.plan.baseline import Baseline
from mkdocs_cfpurge.plan.bodies import Body, check_bodies
from mkdocs_cfpurge.plan.changes import Reason, Status

PLAN_VERSION = 1


@dataclass(frozen=True)
class PlannedChange:
    path: str
    status: Status
    reason: Reason
    urls: tuple[str, ...]
    detail: str = ""

    def describe(self) -> str:
        return self.reason.text + (f" ({self.detail})" if self.detail else "")

    @property
    def is_folder(self) -> bool:
        """A folder's slashless URL (`X/` stands for `/X`), not a file."""
        return self.path.endswith("/")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status.value,
            "reason": self.reason.value,
            "detail": self.detail,
            "urls": list(self.urls),
        }

    @classmethod
    def from_dict(cls, data: Any) -> PlannedChange:
        if not isinstance(data, dict):
            raise ValueError("a change is not a JSON object")
        urls = data["urls"]
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ValueError(f"change {data.get('path')!r}: 'urls' must be a list of strings")
        return cls(
            str(data["path"]),
            Status(data["status"]),
            Reason(data["reason"]),
            tuple(urls),
            str(data.get("detail", "")),
        )


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
    # The file a saved plan was read from (for messages); never written into the plan.
    source: str | None = field(default=None, compare=False)
    # What the changes were computed against (None: a saved or pending plan, sent as it is).
    baseline: Baseline | None = None

    @property
    def is_empty(self) -> bool:
        return not self.requests

    def count(self, status: Status) -> int:
        return sum(1 for change in self.changes if change.status is status)

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
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
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
            data = parse_json(path.read_bytes())
        except FileNotFoundError:
            raise UsageError(f"plan file {str(path)!r} does not exist") from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"plan file {str(path)!r} is not valid JSON: {exc}") from None
        try:
            plan = cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            problem = f"{exc.args[0]!r} is missing" if isinstance(exc, KeyError) else str(exc)
            raise UsageError(f"plan file {str(path)!r} is invalid: {problem}") from None
        plan.source = str(path)
        return plan

    @classmethod
    def from_dict(cls, data: Any) -> PurgePlan:
        if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
            raise ValueError(f"not a version {PLAN_VERSION} plan")
        requests = check_bodies(data["requests"], "requests")
        changes = data["changes"]
        if not isinstance(changes, list):
            raise ValueError("'changes' must be a list")
        zone_id, baseline = data.get("zone_id"), data.get("baseline")
        if zone_id is not None and not isinstance(zone_id, str):
            raise ValueError("'zone_id' must be a string or null")
        return cls(
            site_url=str(data["site_url"]),
            zone_id=zone_id,
            changes=[PlannedChange.from_dict(change) for change in changes],
            requests=requests,
            strategy=str(data.get("strategy", "files")),
            notes=[str(note) for note in data.get("notes", [])],
            decisions=list(data.get("decisions", [])),
            baseline=None if baseline is None else Baseline.from_dict(baseline),
        )
