"""The state a deploy leaves behind: the manifest, what is still owed, and the lock around both.

Beside the manifest (default `.cache/plugin/cfpurge/manifest.json`):
- `manifest.json`: the hashes of the last deploy whose purge fully succeeded;
- `pending.json`: requests not yet confirmed by Cloudflare, and the manifest to commit once they
  are. It is written before the first request goes out, so a process killed mid-purge leaves it
  listing everything that might be owed; resending a confirmed purge is harmless, losing one is not.
  Apart from them (`refused`), the entries Cloudflare refused in the last run: never sent again,
  shown once in the next run's plan, then dropped;
- `manifest.json.lock`: held for the whole run through `filelock` (flock on Unix, msvcrt on
  Windows: released by the OS if the process dies; a soft lock, the file's existence, where
  neither exists).

Both files are replaced atomically, so a kill at any moment leaves each either old or new.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import BaseFileLock, FileLock, Timeout
from pydantic import ValidationError

from mkdocs_cfpurge.build.atomic import write_atomic
from mkdocs_cfpurge.build.manifest import Manifest, load_manifest
from mkdocs_cfpurge.build.safejson import parse_json
from mkdocs_cfpurge.cloudflare.wire import Refusal
from mkdocs_cfpurge.errors import PurgeFailed, UsageError, WriteFailed
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.bodies import Body, check_bodies

PENDING_VERSION = 1
PENDING_WAY_OUT = (
    "Fix it, or delete it to start afresh: what it owes is then never sent, so purge the pages "
    "of the last deploy by hand (or purge everything once)"
)


@dataclass
class Pending:
    requests: list[Body] = field(default_factory=list)
    next_manifest: Manifest | None = None
    refused: list[Refusal] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.requests and self.next_manifest is None and not self.refused


class StateStore:
    """Lock, read and commit the state of one manifest. Use as a context manager."""

    def __init__(self, manifest_path: Path, site_url: str, *, lock_timeout: float = 30.0) -> None:
        self.manifest_path = manifest_path
        self.pending_path = manifest_path.with_name("pending.json")
        self.lock_path = manifest_path.with_name(manifest_path.name + ".lock")
        self.site_url = site_url
        self.lock_timeout = lock_timeout
        self._lock: BaseFileLock | None = None

    def __enter__(self) -> StateStore:
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteFailed(self.lock_path, exc) from None
        # The store owns the lock, not a thread: thread_local=False.
        lock = FileLock(self.lock_path, mode=0o644, thread_local=False)
        deadline = time.monotonic() + self.lock_timeout
        told = False
        while True:
            try:
                lock.acquire(blocking=False)
                break
            except Timeout:
                if time.monotonic() >= deadline:
                    # Exit 1, not 2: nothing is wrong with the input, a retry later succeeds.
                    raise PurgeFailed(
                        f"another mkdocs-cfpurge run holds the lock {str(self.lock_path)!r} "
                        f"(waited {self.lock_timeout:.0f}s); let it finish, then run again",
                    ) from None
                if not told:
                    log.info(
                        "cfpurge: another run holds the lock %s; waiting up to %.0fs",
                        self.lock_path,
                        self.lock_timeout,
                    )
                    told = True
                time.sleep(0.1)
            except OSError as exc:  # after Timeout, which is one too: the file cannot be made
                raise WriteFailed(self.lock_path, exc) from None
        self._lock = lock
        self._remove_stale_temp_files()
        return self

    def _remove_stale_temp_files(self) -> None:
        """A process killed mid-write leaves its temp file behind; only a lock holder writes
        them, so once the lock is ours any that remain are leftovers."""
        for name in (self.manifest_path.name, self.pending_path.name):
            for leftover in self.manifest_path.parent.glob(f".{name}.*.tmp"):
                with contextlib.suppress(OSError):
                    leftover.unlink()

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def load_manifest(self) -> Manifest | None:
        return load_manifest(self.manifest_path, self.site_url)

    def load_pending(self) -> Pending:
        try:
            data = parse_json(self.pending_path.read_bytes())
        except FileNotFoundError:
            return Pending()
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"pending file {str(self.pending_path)!r} is corrupt ({exc}); it was left as it "
                f"is. {PENDING_WAY_OUT}"
            ) from None
        try:
            return self._parse_pending(data)
        except (KeyError, TypeError, ValueError) as exc:
            problem = f"{exc.args[0]!r} is missing" if isinstance(exc, KeyError) else str(exc)
            raise UsageError(
                f"pending file {str(self.pending_path)!r} is invalid ({problem}); it was left as "
                f"it is. {PENDING_WAY_OUT}"
            ) from None

    def _parse_pending(self, data: Any) -> Pending:
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data["version"] != PENDING_VERSION:
            raise ValueError(f"unknown version {data['version']!r:.40}")
        if data["site_url"] != self.site_url:
            raise ValueError(f"made for site_url {data['site_url']!r:.200}, not {self.site_url!r}")
        requests = check_bodies(data["requests"], "requests")
        raw = data.get("next_manifest")
        try:
            manifest = None if raw is None else Manifest.from_dict(raw)
        except ValueError as exc:
            raise ValueError(f"'next_manifest': {exc}") from None
        if manifest is not None and manifest.site_url != self.site_url:
            # Committed as this site's manifest, it would plan every later deploy against
            # another site's files.
            raise ValueError(
                f"'next_manifest' is for site_url {manifest.site_url!r:.200}, not {self.site_url!r}"
            )
        refused = data.get("refused", [])
        if not isinstance(refused, list):
            raise ValueError("'refused' must be a list")
        try:
            entries = [Refusal.model_validate(entry) for entry in refused]
        except ValidationError as exc:
            raise ValueError(f"'refused': {exc.errors()[0]['msg']}") from None
        return Pending(requests, manifest, entries)

    def save_pending(self, pending: Pending) -> None:
        data = {
            "version": PENDING_VERSION,
            "site_url": self.site_url,
            "requests": pending.requests,
            "next_manifest": (
                {
                    "site_url": pending.next_manifest.site_url,
                    "files": pending.next_manifest.files,
                    "hashing": pending.next_manifest.hashing,
                }
                if pending.next_manifest is not None
                else None
            ),
            "refused": [entry.model_dump() for entry in pending.refused],
        }
        write_atomic(self.pending_path, json.dumps(data, sort_keys=True).encode())

    def commit(self, manifest: Manifest | None) -> None:
        """Everything owed was purged: record the new manifest, then forget the pending state."""
        if manifest is not None:
            manifest.save(self.manifest_path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pending_path)


def recorded_site_url(manifest_path: Path) -> str | None:
    """The site_url the state beside `manifest_path` was made for (pending.json's, else the
    manifest's), if any."""
    found = pending_site_url(manifest_path)
    if found is not None:
        return found
    try:
        data = parse_json(manifest_path.read_bytes())
        return str(data["site_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pending_site_url(manifest_path: Path) -> str | None:
    """The site_url recorded in the pending file beside a manifest, if any."""
    try:
        data = parse_json(manifest_path.with_name("pending.json").read_bytes())
        return str(data["site_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
