"""Wait until the origin serves the new build, so a purge does not re-cache the old bytes.

GitHub Pages publishes minutes after a push. The origin is polled, past every cache, for a file
whose bytes tell the builds apart: the build marker (its digest), or for a branch that another
tool wrote (mike) one file the push changed (its git blob id, or a 404 for a removed one).

Polls start a quarter second apart and back off to `origin_interval`: a host that publishes in
seconds is caught at once, one that takes minutes costs a bounded number of requests, and the
purge goes out at most `origin_interval` after the origin serves the build.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mkdocs_cfpurge.build.marker import MARKER_NAME, served_digest
from mkdocs_cfpurge.deploy.git import blob_id
from mkdocs_cfpurge.errors import PurgeFailed
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.urls import encode_path
from mkdocs_cfpurge.settings import Settings, is_loopback

if TYPE_CHECKING:
    import httpx

    from mkdocs_cfpurge.http import DeadlineClient

PROGRESS_EVERY = 30.0  # seconds between two "still waiting" lines
FIRST_PAUSE = 0.25  # seconds between the first two polls; each pause then grows by BACKOFF
BACKOFF = 1.5

# What a poll of the origin made of the answer: (done, a few words on it for the progress line).
Check = Callable[["httpx.Response"], tuple[bool, str]]


@dataclass(frozen=True)
class OriginWait:
    """Where the origin serves the site's root, and how long and how often to poll it.

    `until_build` and `until_file` give the wait the deploy use case runs before purging.
    """

    url: str
    timeout: float
    interval: float
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    @classmethod
    def of(cls, settings: Settings) -> OriginWait:
        """The wait `origin_url`, `origin_timeout` and `origin_interval` describe."""
        return cls(settings.origin_base, settings.origin_timeout, settings.origin_interval)

    def until_build(self, digest: str) -> Callable[[], float]:
        """A wait for the origin's marker to hold `digest` (this build's)."""

        def check(response: httpx.Response) -> tuple[bool, str]:
            served = served_digest(response.content) if response.is_success else None
            earlier = ", an earlier build" if served else ""
            return served == digest, f"HTTP {response.status_code}{earlier}"

        return lambda: self.poll(MARKER_NAME, check, "this build")

    def until_file(self, path: str, blob: str | None) -> Callable[[], float]:
        """A wait for the origin to serve `path` with git blob id `blob` (None: a 404)."""

        def check(response: httpx.Response) -> tuple[bool, str]:
            last = f"HTTP {response.status_code}"
            if blob is None:
                return response.status_code == 404, last
            if not response.is_success:
                return False, last
            served = blob_id(response.content)
            return served == blob, f"{last}, blob {served[:12]}"

        expected = "a 404" if blob is None else f"blob {blob[:12]}"
        return lambda: self.poll(encode_path(path), check, f"the branch head's {path} ({expected})")

    def poll(self, path: str, check: Check, what: str) -> float:
        """GET the origin's `path` past every cache until `check` is satisfied; return the
        seconds waited. On timeout, PurgeFailed (exit 1) says what the origin last answered."""
        import httpx

        url = self.url.rstrip("/") + "/" + path
        start = self.clock()
        deadline = start + self.timeout
        last = "no answer yet"
        last_logged = -PROGRESS_EVERY
        timeout = min(30.0, max(self.interval, 5.0))
        pause = min(FIRST_PAUSE, self.interval)
        polls = 0
        with origin_client(url, timeout) as http:
            while True:
                polls += 1
                try:
                    response = http.get(
                        url,
                        params={"cfpurge": uuid.uuid4().hex},  # past any cache keyed on the URL
                        headers={"Cache-Control": "no-cache", "Pragma": "no-cache"},
                    )
                    done, last = check(response)
                    if done:
                        waited = self.clock() - start
                        log.info(
                            "cfpurge: the origin serves %s (after %.1fs, %d poll(s))",
                            what,
                            waited,
                            polls,
                        )
                        return waited
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                now = self.clock()
                if now >= deadline:
                    raise PurgeFailed(
                        f"the origin did not serve {what} at {url} within {self.timeout:.0f}s "
                        f"(last answer: {last}); nothing purged"
                    )
                if now - last_logged >= PROGRESS_EVERY:
                    last_logged = now
                    log.info(
                        "cfpurge: waiting for the origin to serve %s (%s; %.0fs of %.0fs)",
                        what,
                        last,
                        now - start,
                        self.timeout,
                    )
                self.sleep(min(pause, max(0.0, deadline - now)))
                pause = min(pause * BACKOFF, self.interval)


def origin_client(url: str, timeout: float) -> DeadlineClient:
    """A client for the origin at `url`: each request ends within `timeout` (connect to last
    byte), redirects followed, and never a proxy to loopback (the environment's proxy settings
    apply to other hosts, as they do for any HTTP tool)."""
    import httpx

    from mkdocs_cfpurge.http import DeadlineClient

    loopback = is_loopback(httpx.URL(url).host)
    return DeadlineClient(deadline=timeout, follow_redirects=True, trust_env=not loopback)
