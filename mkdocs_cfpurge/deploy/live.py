"""The live marker: what the origin serves now, as the baseline of a deploy that keeps no state.

Every deploy publishes its manifest in `cfpurge-build.json`. A runner with no local manifest and
no deployed branch (actions/deploy-pages, rsync, Netlify, S3...) reads it from the origin, past
every cache, as the origin wait does. What the answer means:

- 200 with this tool's marker for this site_url: the baseline (its own purge's files resent);
- 404: nothing deployed carries a marker: the first deploy with this tool;
- anything else (a network error, a 5xx, a file that is not a marker or too big, another
  site_url's marker): no baseline. That is never taken for a first deploy: what this deploy
  changed is unknown.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from mkdocs_cfpurge.build.marker import MARKER_NAME, MAX_MARKER_BYTES, Marker
from mkdocs_cfpurge.deploy.origin import origin_client
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.baseline import Baseline, BaselineSource

if TYPE_CHECKING:
    import httpx

READ_SECONDS = 20.0  # the whole read, retries included: a build must not hang on the origin
ATTEMPTS = 3  # network errors and 5xx are retried once or twice within READ_SECONDS


class _TooBig(Exception):
    pass


def marker_url(origin_base: str) -> str:
    return origin_base.rstrip("/") + "/" + MARKER_NAME


def read_live_marker(
    origin_base: str,
    site_url: str,
    *,
    seconds: float = READ_SECONDS,
    attempts: int = ATTEMPTS,
    max_bytes: int = MAX_MARKER_BYTES,
    sleep: Callable[[float], None] | None = None,
) -> Baseline:
    """The baseline the marker served under `origin_base` gives for `site_url` (see above)."""
    import httpx

    url = marker_url(origin_base)
    deadline = time.monotonic() + seconds
    problem = "no answer"
    with origin_client(url, seconds) as http:
        for attempt in range(attempts):
            try:
                status, body = _get(http, url, deadline, max_bytes)
            except _TooBig:
                return _none(url, f"{MARKER_NAME} is larger than {max_bytes >> 20} MiB")
            except (httpx.HTTPError, TimeoutError) as exc:  # TimeoutError: the deadline, mid-body
                problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                if status == 404:
                    return Baseline(
                        BaselineSource.NONE,
                        url,
                        f"the origin answers 404 for {MARKER_NAME}",
                        first_deploy=True,
                    )
                if body is not None:
                    return _parse(url, body, site_url)
                problem = f"HTTP {status}"
                if status < 500:
                    break  # a 403 or a 410 is what the origin means: asking again changes nothing
            pause = 0.5 * 2**attempt
            if attempt + 1 == attempts or time.monotonic() + pause >= deadline:
                break
            log.info("cfpurge: reading %s: %s; trying again", url, problem)
            (sleep or time.sleep)(pause)
    return _none(url, f"the origin could not be read ({problem})")


def _get(http: httpx.Client, url: str, deadline: float, max_bytes: int) -> tuple[int, bytes | None]:
    """(status, body) of one GET past every cache; body None unless 200. Streamed: a body past
    `max_bytes` or the deadline stops the read."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no time left")
    with http.stream(
        "GET",
        url,
        params={"cfpurge": uuid.uuid4().hex},  # past any cache keyed on the URL
        headers={"Cache-Control": "no-cache", "Pragma": "no-cache"},
        timeout=min(10.0, left),  # each phase (connect, each read) within what is left
    ) as response:
        if response.status_code != 200:
            return response.status_code, None
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _TooBig
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise _TooBig
            if time.monotonic() > deadline:
                raise TimeoutError("the read outlasted its deadline")
            chunks.append(chunk)
        return 200, b"".join(chunks)


def _parse(url: str, body: bytes, site_url: str) -> Baseline:
    try:
        marker = Marker.parse(body)
    except ValueError as exc:  # json's errors are ValueErrors too
        return _none(url, f"what it serves is not this tool's {MARKER_NAME} ({exc})")
    if marker.site_url != site_url:
        return _none(url, f"its {MARKER_NAME} was made for site_url {marker.site_url!r}")
    detail = f"build {marker.digest[:12]}, {len(marker.manifest.files)} files"
    if marker.owed:
        detail += (
            f"; {len(marker.owed)} file(s) of that deploy's own purge resent, since this run "
            "cannot know that it succeeded"
        )
    return Baseline(
        BaselineSource.LIVE_MARKER,
        url,
        detail,
        digest=marker.digest,
        manifest=replace(marker.manifest, resend=marker.owed),
    )


def _none(url: str, why: str) -> Baseline:
    return Baseline(BaselineSource.NONE, url, why, first_deploy=False)
