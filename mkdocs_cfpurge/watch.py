"""`mkdocs-cfpurge watch`: purge what changed each time a deploy lands in a served folder.

For sites deployed by copying files onto the web server (rsync, scp, a CI job that swaps a
`current` symlink) rather than through `mkdocs gh-deploy`. The folder is watched with watchdog;
once it has been quiet for `quiet_period` seconds (a whole deploy, not each file of it), it is
hashed and handed to `pipeline.purge`, the same plan, client, manifest and pending state as the
plugin and `mkdocs-cfpurge purge` use.

How deploys land, and what this module does about each:
- rsync writes `.name.XXXXXX` beside each target, then renames it over the target: the quiet
  period spans the whole transfer, and a temporary file still present when it ends means the
  transfer stalled, so the deploy is awaited a little longer (it is never hashed or purged);
- `rm -rf site && cp -r build site`: the folder's inotify watch dies with it, so the parent
  folder is watched too and the folder is watched again as soon as it exists again;
- `ln -sfn releases/2 current`: the link lives in the parent folder (watched), and the watch
  follows the link to the new release (watches are always placed on the resolved folder).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Literal

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.errors import (
    CfPurgeError,
    ConfigError,
    PurgeFailed,
    PurgeIncomplete,
    UsageError,
)
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.settings import Settings

if TYPE_CHECKING:
    from mkdocs_cfpurge.cloudflare.client import CloudflareClient

# rsync's in-progress copy of `name` is `.name.XXXXXX`; with --delay-updates every new file waits
# in a `.~tmp~` folder until the end of the transfer.
_RSYNC_TEMP = re.compile(r"\..+\.[A-Za-z0-9]{6}")
_RSYNC_DELAY_DIR = ".~tmp~"
# Only writes count. Reads are left out on purpose: hashing the folder opens every file, and
# counting those opens would make each scan trigger the next one. Attribute changes (touch,
# chmod) leave the bytes as they were.
_WRITE_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
]
DEFAULT_QUIET_PERIOD = 2.0
DEFAULT_RETRY_DELAY = 60.0
# How many quiet periods a deploy whose temporary files are still there is awaited before it is
# purged anyway (the files are then taken for leftovers of a killed transfer, and skipped).
MAX_TEMP_WAITS = 10
KEPT_ROUNDS = 100

Outcome = Literal["purged", "baseline", "nothing", "unchanged", "failed", "interrupted", "dry-run"]


@dataclass(frozen=True)
class Round:
    """One pass over the folder: what it found and what became of the purge."""

    number: int
    outcome: Outcome
    files: int
    plan: PurgePlan | None = None
    requests_sent: int = 0
    error: str | None = None


def is_temporary(path: str) -> bool:
    """A file an rsync transfer still has in flight (never content of the site)."""
    parts = path.split("/")
    return _RSYNC_DELAY_DIR in parts[:-1] or bool(_RSYNC_TEMP.fullmatch(parts[-1]))


def _path_of(value: bytes | str) -> str:
    return os.fsdecode(value)


class _Handler(FileSystemEventHandler):
    """Forwards watchdog events (from the observer's thread) to the watcher."""

    def __init__(self, on_event: Callable[[FileSystemEvent], None]) -> None:
        self._on_event = on_event

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._on_event(event)


class DeployWatcher:
    """Watches `site_dir`; after each deploy (a burst of writes, then quiet) purges what changed.

    `start()` runs one pass at once (it records the baseline when there is no manifest yet, and
    sends whatever an earlier run left owed), then one per deploy, on a thread of its own.
    `stop()` lets the request in flight finish, keeps the rest owed in `pending.json` (the next
    run sends it) and returns once the thread has ended. Tests wait with `wait_rounds(n)` or
    `wait_idle()`; `rounds` lists the last passes.
    """

    def __init__(
        self,
        site_dir: Path,
        settings: Settings,
        *,
        quiet_period: float = DEFAULT_QUIET_PERIOD,
        client_factory: pipeline.ClientFactory | None = None,
        retry_delay: float = DEFAULT_RETRY_DELAY,
    ) -> None:
        if not quiet_period > 0:
            raise ConfigError("quiet_period", f"{quiet_period!r} must be above 0 seconds")
        if not retry_delay > 0:
            raise ConfigError("retry_delay", f"{retry_delay!r} must be above 0 seconds")
        # Not resolved: when it is a symlink, it is the link that a deploy switches.
        self.site_dir = Path(os.path.abspath(site_dir))
        self.settings = settings
        self.quiet_period = quiet_period
        self.retry_delay = retry_delay
        self.client_factory = client_factory
        self.error: BaseException | None = None

        self._cond = threading.Condition()
        # All of the following are guarded by _cond.
        self._dirty = False  # writes seen since the last pass began
        self._last_event = 0.0  # time.monotonic() of the latest write seen
        self._rewatch = False  # the folder (or the link to it) itself was replaced
        self._retry_at: float | None = None
        self._busy = False  # a pass is running
        self._stopping = False
        self._rounds: deque[Round] = deque(maxlen=KEPT_ROUNDS)
        self._round_count = 0

        # Written by the worker thread only.
        self._last: Manifest | None = None  # what the last successful pass deployed
        self._owed = False  # a purge failed: pending.json holds requests to send
        self._temp_waits = 0
        self._missing_logged = False

        self._stop_requests = threading.Event()  # read by the client wrapper, between requests
        self._observer = Observer()
        self._site_handler = _Handler(self._on_site_event)
        self._parent_handler = _Handler(self._on_parent_event)
        self._site_watch: ObservedWatch | None = None
        self._watched: tuple[str, int, int] | None = None  # real path, device, inode
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> DeployWatcher:
        if self._thread is not None:
            raise RuntimeError("a DeployWatcher can be started once")
        parent = self.site_dir.parent
        if not parent.is_dir():
            raise UsageError(f"folder {str(parent)!r} (which holds SITE_DIR) does not exist")
        # Non-recursive: only the entry named like the site matters there (see _on_parent_event).
        self._observer.schedule(
            self._parent_handler, str(parent), recursive=False, event_filter=_WRITE_EVENTS
        )
        self._observer.start()
        self._ensure_site_watch()
        self._thread = threading.Thread(target=self._run, name="cfpurge-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Finish the request in flight, keep the rest owed, and end the watcher's thread."""
        with self._cond:
            self._stopping = True
            unhandled = self._dirty
            self._cond.notify_all()
        self._stop_requests.set()
        if self._observer.is_alive():
            self._observer.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._observer.is_alive():
            self._observer.join(timeout)
        if unhandled:
            log.info(
                "cfpurge watch: changes seen since the last deploy were not purged yet; "
                "the next start compares the folder with the manifest and purges them"
            )

    def __enter__(self) -> DeployWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- what tests and front ends read ------------------------------------------------------

    @property
    def rounds(self) -> list[Round]:
        with self._cond:
            return list(self._rounds)

    @property
    def round_count(self) -> int:
        with self._cond:
            return self._round_count

    @property
    def transfer_waits(self) -> int:
        """Passes put off so far because a transfer's temporary files were still there."""
        return self._temp_waits

    def wait_rounds(self, count: int, timeout: float) -> bool:
        """Wait until `count` passes have ended in all; False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._round_count >= count or not self.running, timeout
            ) and (self._round_count >= count)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no pass runs and no write awaits its quiet period.

        Writes reach the watcher after a short delay (watchdog pairs the halves of a rename
        first), so right after writing, wait with `wait_rounds` rather than this.
        """
        with self._cond:
            return self._cond.wait_for(
                lambda: not (self._busy or self._dirty or self._rewatch), timeout
            )

    # --- events (observer thread) ------------------------------------------------------------

    def _touch(self, *, rewatch: bool = False) -> None:
        with self._cond:
            self._dirty = True
            self._last_event = time.monotonic()
            self._rewatch = self._rewatch or rewatch
            self._cond.notify_all()

    def _on_site_event(self, event: FileSystemEvent) -> None:
        watched = self._watched
        # The watched folder itself went (rm -rf): its inotify watch is gone with it.
        gone = (
            watched is not None
            and isinstance(event, DirDeletedEvent)
            and _path_of(event.src_path) == watched[0]
        )
        self._touch(rewatch=gone)

    def _on_parent_event(self, event: FileSystemEvent) -> None:
        names = {os.path.basename(_path_of(event.src_path))}
        if isinstance(event, (FileMovedEvent, DirMovedEvent)):
            names.add(os.path.basename(_path_of(event.dest_path)))
        # Siblings (other releases being uploaded, logs) do not concern the site until the
        # entry named like SITE_DIR changes: a folder replaced, or a symlink switched.
        if self.site_dir.name in names:
            self._touch(rewatch=True)

    # --- watches (worker thread) -------------------------------------------------------------

    def _ensure_site_watch(self, force: bool = False) -> None:
        """Watch the folder SITE_DIR currently is (it may have been replaced or re-linked)."""
        try:
            real = os.path.realpath(self.site_dir)
            stat = os.stat(real)
            current = (real, stat.st_dev, stat.st_ino) if os.path.isdir(real) else None
        except OSError:
            current = None
        if current == self._watched and not force:
            return
        if self._site_watch is not None:
            with contextlib.suppress(KeyError):  # already gone with the observer
                self._observer.unschedule(self._site_watch)
            self._site_watch = None
        self._watched = current
        if current is None:
            return
        try:
            self._site_watch = self._observer.schedule(
                self._site_handler, current[0], recursive=True, event_filter=_WRITE_EVENTS
            )
        except OSError as exc:
            raise PurgeFailed(
                f"cannot watch {current[0]!r}: {exc} (on Linux, the inotify limit "
                "fs.inotify.max_user_watches may be too low for this many folders)",
            ) from None
        # Files may have landed before the new watch saw them: wait for a quiet period anew.
        self._touch()

    # --- the worker --------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._pass(first=True)
            while self._wait_for_deploy():
                self._pass(first=False)
        except BaseException as exc:  # a bug, or a watch that cannot be placed: end, loudly
            self.error = exc
            log.error("cfpurge watch: stopped on an unexpected error: %s", exc, exc_info=True)
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _wait_for_deploy(self) -> bool:
        """Block until a deploy has landed (writes, then quiet) or a retry is due; False on stop."""
        while True:
            with self._cond:
                if self._stopping:
                    return False
                rewatch, self._rewatch = self._rewatch, False
                if not rewatch:
                    now = time.monotonic()
                    if self._dirty:
                        remaining = self._last_event + self.quiet_period - now
                        if remaining <= 0:
                            self._dirty = False
                            self._retry_at = None
                            self._busy = True
                            return True
                        self._cond.wait(remaining)
                    elif self._retry_at is not None:
                        if now >= self._retry_at:
                            self._retry_at = None
                            self._busy = True
                            return True
                        self._cond.wait(self._retry_at - now)
                    else:
                        self._cond.wait()
                    continue
            # Outside the lock: the observer's thread takes its own lock, then ours.
            self._ensure_site_watch(force=True)

    def _record(self, entry: Round) -> None:
        with self._cond:
            self._round_count += 1
            self._rounds.append(entry)
            self._busy = False
            self._cond.notify_all()

    def _again_after_quiet(self) -> None:
        with self._cond:
            self._dirty = True
            self._last_event = time.monotonic()
            self._busy = False
            self._cond.notify_all()

    def _pass(self, *, first: bool) -> None:
        self._ensure_site_watch()
        with self._cond:
            # This pass reads the folder as it is now: writes seen so far are covered by it.
            self._dirty = False
            self._busy = True
        try:
            settings, manifest = pipeline.read_site(self.site_dir, self.settings)
        except (CfPurgeError, OSError) as exc:
            # The folder is being replaced, or a file vanished between listing and hashing:
            # the writes that caused it will end in a quiet period, and a pass after it.
            if not self._missing_logged:
                log.info("cfpurge watch: %s; waiting for the deploy to land", exc)
                self._missing_logged = True
            with self._cond:
                self._busy = False
                self._cond.notify_all()
            return
        self._missing_logged = False
        temporary = [path for path in manifest.files if is_temporary(path)]
        if temporary and self._temp_waits < MAX_TEMP_WAITS:
            self._temp_waits += 1
            self._again_after_quiet()
            return
        if temporary:
            log.warning(
                "cfpurge watch: %d temporary file(s) of a transfer stay in the folder (%s); "
                "left out of the purge",
                len(temporary),
                temporary[0],
            )
        self._temp_waits = 0
        for path in temporary:
            del manifest.files[path]
        if self._stop_requests.is_set():
            # Stopping: no new purge starts; the next start compares the folder and catches up.
            with self._cond:
                self._busy = False
                self._cond.notify_all()
            return
        number = self.round_count + 1
        unchanged = self._last is not None and manifest.files == self._last.files
        if unchanged and not first and not self._owed:
            log.info(
                "cfpurge watch: deploy %d: files rewritten with the same content; nothing to purge",
                number,
            )
            self._record(Round(number, "unchanged", len(manifest.files)))
            return
        self._record(self._deploy(number, settings, manifest))

    def _deploy(self, number: int, settings: Settings, manifest: Manifest) -> Round:
        try:
            result = pipeline.purge(settings, manifest, client_factory=self._client)
        except CfPurgeError as exc:
            self._owed = True
            if self._stop_requests.is_set() and isinstance(exc, PurgeIncomplete):
                log.info(
                    "cfpurge watch: deploy %d: stopped mid-purge; %d request(s) still owed "
                    "are kept in pending.json, the next run sends them",
                    number,
                    len(exc.unsent),
                )
                return Round(number, "interrupted", len(manifest.files), error=str(exc))
            with self._cond:
                self._retry_at = time.monotonic() + self.retry_delay
            log.error(
                "cfpurge watch: deploy %d failed: %s; trying again in %.0fs",
                number,
                exc,
                self.retry_delay,
            )
            return Round(number, "failed", len(manifest.files), error=str(exc))
        self._last = manifest
        self._owed = False
        plan = result.plan
        if result.dry_run or result.baseline_recorded:
            outcome: Outcome = "dry-run" if result.dry_run else "baseline"
            what = {
                "dry-run": f"(dry run): {len(plan.changes)} changed file(s); nothing sent",
                "baseline": f"baseline of {len(manifest.files)} file(s) recorded; nothing purged",
            }[outcome]
            log.info("cfpurge watch: deploy %d %s", number, what)
            return Round(number, outcome, len(manifest.files), plan)
        urls = {url for change in plan.changes for url in change.urls}
        outcome = "purged" if result.requests_sent else "nothing"
        log.info(
            "cfpurge watch: deploy %d: %d changed file(s), %d URL(s); %d request(s) sent",
            number,
            len(plan.changes),
            len(urls),
            result.requests_sent,
        )
        return Round(number, outcome, len(manifest.files), plan, result.requests_sent)

    def _client(self, settings: Settings) -> CloudflareClient:
        """The pipeline's client, stopping between requests once the watcher is asked to stop:
        the request in flight completes and pipeline.purge keeps the rest in pending.json."""
        client = (self.client_factory or pipeline.default_client)(settings)
        client.stop_requested = self._stop_requests
        return client


def run_watch(
    site_dir: Path, settings: Settings, *, quiet_period: float = DEFAULT_QUIET_PERIOD
) -> None:
    """Watch until SIGTERM or SIGINT (the CLI's `watch`); return once stopped cleanly."""
    if not settings.dry_run:
        settings.require_purge_access()  # fail at once (exit 2), not on the first deploy
    watcher = DeployWatcher(site_dir, settings, quiet_period=quiet_period)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        # A second signal ends the process at once: pending.json is written before any request
        # goes out, so even then nothing owed is lost.
        signal.signal(signum, signal.SIG_DFL)

    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, on_signal) for sig in signals}
    try:
        watcher.start()
        log.info(
            "cfpurge watch: watching %s (quiet period %gs); SIGTERM or Ctrl-C stops",
            site_dir,
            quiet_period,
        )
        # A timed wait: signal handlers run between waits, and a dead worker ends the loop too.
        while not stop.wait(0.2) and watcher.running:
            pass
    finally:
        watcher.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if watcher.error is not None:
        if isinstance(watcher.error, CfPurgeError):
            raise watcher.error
        raise PurgeFailed(f"watch stopped on an unexpected error: {watcher.error}")
    log.info("cfpurge watch: stopped (%d deploy(s) handled)", watcher.round_count)
