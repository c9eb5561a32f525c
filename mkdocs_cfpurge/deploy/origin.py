"""Wait until the origin serves this build, so a purge does not re-cache the old bytes.

GitHub Pages publishes minutes after a push. Each build carries a marker file holding its
manifest's digest; the origin is polled for it, past every cache, until it shows this build.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mkdocs_cfpurge.build.atomic import write_atomic
from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.errors import EXIT_PURGE_FAILED, CfPurgeError
from mkdocs_cfpurge.log import log

if TYPE_CHECKING:
    import httpx

MARKER_NAME = "cfpurge-build.json"
MARKER_VERSION = 1
PROGRESS_EVERY = 30.0  # seconds between two "still waiting" lines


def write_marker(site_dir: Path, manifest: Manifest, owed: Iterable[str] = ()) -> Path:
    """Publish the build's digest and manifest with the site (the baseline of the next deploy).

    `owed` lists the files this deploy's purge is about. Whether that purge succeeds is only known
    after the push, so a deploy that starts from this marker with no state of its own (a fresh
    CI runner) purges them once more: a purge sent twice is harmless, one lost is not.
    """
    data = {
        "version": MARKER_VERSION,
        "site_url": manifest.site_url,
        "digest": manifest.digest(),
        "manifest": manifest.files,
        "owed": sorted(set(owed)),
    }
    path = site_dir / MARKER_NAME
    write_atomic(path, json.dumps(data, sort_keys=True, separators=(",", ":")).encode())
    return path


def marker_url(origin_url: str) -> str:
    return origin_url.rstrip("/") + "/" + MARKER_NAME


def served_digest(body: bytes) -> str | None:
    try:
        data: Any = json.loads(body)
        return str(data["digest"])
    except (ValueError, KeyError, TypeError):
        return None


# What a poll of the origin made of the answer: (done, a few words on it for the progress line).
Check = Callable[["httpx.Response"], tuple[bool, str]]


def poll_origin(
    url: str,
    check: Check,
    *,
    what: str,
    timeout: float,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """GET `url` past every cache until `check` is satisfied; return the seconds waited.

    On timeout, a CfPurgeError (exit 1) says what the origin last answered.
    """
    import httpx

    start = clock()
    deadline = start + timeout
    last = "no answer yet"
    last_logged = -PROGRESS_EVERY
    with httpx.Client(timeout=min(30.0, max(interval, 5.0)), follow_redirects=True) as http:
        while True:
            try:
                response = http.get(
                    url,
                    params={"cfpurge": uuid.uuid4().hex},  # past any cache keyed on the URL
                    headers={"Cache-Control": "no-cache", "Pragma": "no-cache"},
                )
                done, last = check(response)
                if done:
                    waited = clock() - start
                    log.info("cfpurge: the origin serves %s (after %.0fs)", what, waited)
                    return waited
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            now = clock()
            if now >= deadline:
                raise CfPurgeError(
                    f"the origin did not serve {what} at {url} within {timeout:.0f}s (last "
                    f"answer: {last}); nothing purged",
                    exit_code=EXIT_PURGE_FAILED,
                )
            if now - last_logged >= PROGRESS_EVERY:
                last_logged = now
                log.info(
                    "cfpurge: waiting for the origin to serve %s (%s; %.0fs of %.0fs)",
                    what,
                    last,
                    now - start,
                    timeout,
                )
            sleep(min(interval, max(0.0, deadline - now)))


def wait_for_origin(
    origin_url: str,
    digest: str,
    *,
    timeout: float = 600.0,
    interval: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """Poll the origin's marker until it holds `digest`; return the seconds waited."""

    def check(response: httpx.Response) -> tuple[bool, str]:
        served = served_digest(response.content) if response.is_success else None
        earlier = ", an earlier build" if served else ""
        return served == digest, f"HTTP {response.status_code}{earlier}"

    return poll_origin(
        marker_url(origin_url),
        check,
        what="this build",
        timeout=timeout,
        interval=interval,
        sleep=sleep,
        clock=clock,
    )
