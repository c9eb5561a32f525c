"""CloudflareClient: sends purge bodies within Cloudflare's limits, retries what can be retried.

Every failure comes out as one `CfPurgeError`, with Cloudflare's codes and a message a user can
act on, and never with a credential in it (nor a piece of one: redact.py). Every request has a
deadline from connect to last byte (http.py), and a purge as a whole ends within
`purge_timeout`. An entry Cloudflare refuses is found by sending the refused body in halves; it is
reported and set apart (`refused`) while everything else is purged.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx
from pydantic import ValidationError

from mkdocs_cfpurge.cloudflare.limits import (
    DEFAULT_FILES_PER_REQUEST,
    GLOBAL_REQUESTS,
    GLOBAL_WINDOW,
    PLAN_LIMITS,
    TokenBucket,
)
from mkdocs_cfpurge.cloudflare.wire import Envelope, Refusal, TokenStatus, Zone
from mkdocs_cfpurge.errors import (
    CfPurgeError,
    ConfigError,
    PurgeFailed,
    PurgeIncomplete,
    UsageError,
)
from mkdocs_cfpurge.http import TRANSIENT, DeadlineClient
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.bodies import Body, batches, check_body, merge_requests, purge_type
from mkdocs_cfpurge.plan.cacherules import PHASE, CacheRuleset
from mkdocs_cfpurge.plan.urls import dns_name
from mkdocs_cfpurge.redact import clip, redact
from mkdocs_cfpurge.settings import Credentials, check_api_base, is_loopback

MAX_RETRY_AFTER = 300.0
REQUEST_DEADLINE = 30.0  # seconds from connect to last byte, per request
SHOWN_ANSWER = 200  # characters of an answer that is no envelope, quoted in an error
# A 400 with one of these codes is about the request as a whole (credentials, zone), never about
# one of its entries: halving the body would only get the same answer twice as often.
REQUEST_WIDE_CODES = frozenset({1000, 6003, 6103, 6111, 7003, 9109, 10000})
# More refused entries than this in one run is no longer "a few bad entries": the run stops and
# keeps the rest owed, rather than spend two requests on every entry of a body.
MAX_REFUSED = 50
# Entries refused one by one before Cloudflare has accepted any request of the run: past this,
# the refusal is about the requests (an error code not known as request-wide), not the entries,
# and they stay owed instead of being set apart.
REQUEST_WIDE_AFTER = 8
RETRY_STATUSES = {429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
# Over-cap `files` batches come back as 400 with a message and no fixed code, so the message
# is all there is to go on; a refusal of one entry whose message happens to match is told apart
# by the count (see _narrow_if_refused).
_TOO_MANY = re.compile(r"(more than|too many|exceed|maximum|limit)", re.IGNORECASE)
_ADVICE = {
    10000: "the API token is invalid, or lacks the Zone → Cache Purge permission on this zone",
    9109: "the token may not access this zone (check the token's zone resources)",
    7003: "no such zone: check zone_id (the 32-character id on the zone's Overview page)",
    1012: "Cloudflare found the request body malformed",
    1014: "Cloudflare expected an array in the request body",
    6003: "the credentials are malformed (check api_token, or api_email and api_key)",
}


class ApiFailure(PurgeFailed):
    """Cloudflare answered, and not with success: its errors as `details` ("code: message"),
    the first one's message as `reason` (or the start of an answer that is no envelope)."""

    def __init__(
        self, message: str, *, codes: tuple[int, ...], status: int, details: str, reason: str
    ) -> None:
        super().__init__(message, codes=codes, status=status)
        self.details = redact(details)
        self.reason = redact(reason)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with full jitter."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class CloudflareClient:
    """Talks to one zone of the Cloudflare API (or the local server) with one `httpx.Client`."""

    def __init__(
        self,
        credentials: Credentials,
        zone_id: str,
        *,
        api_base: str,
        plan: str = "free",
        method: str = "purge",
        max_files_per_request: int = DEFAULT_FILES_PER_REQUEST,
        retry: RetryPolicy | None = None,
        timeout: float = REQUEST_DEADLINE,
        purge_timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.api_base = check_api_base(api_base)
        self.zone_id = zone_id
        self.endpoint = "invalidate_cache" if method == "invalidate" else "purge_cache"
        self.max_files = max_files_per_request
        # The cap before a "too many" answer lowered it: put back when the answer proves to be
        # about an entry (one URL refused cannot be too many).
        self._cap_before_split: int | None = None
        self._accepted = 0  # requests Cloudflare accepted during this client's purges
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.purge_timeout = purge_timeout
        # Entries Cloudflare refused during this client's purges (see purge_all).
        self.refused: list[Refusal] = []
        self._ends_by: float | None = None  # while purge_all runs with a purge_timeout
        self._secrets = credentials.secrets()
        self._token_auth = bool(credentials.api_token)
        self._sleep = sleep
        self._clock = clock or time.monotonic
        # Set (from any thread) to end purge_all() before its next request.
        self.stop_requested = threading.Event()
        self._rng = rng or random.Random()
        limits = PLAN_LIMITS[plan]
        # `clock` drives the buckets; `sleep` must advance it (both default to real time).
        # Cloudflare counts a purge when it arrives, a moment after this client counted it. When
        # that moment shrinks from one request to the next, Cloudflare's bucket holds fewer
        # tokens than this one, and a body sent as soon as this one has enough is refused (429,
        # then Retry-After: at least 1 s). Pacing this bucket 50 ms of URLs (at least one body)
        # below the plan's burst keeps it behind Cloudflare's.
        margin = max(float(max_files_per_request), limits.url_rate * 0.05)
        self._url_bucket = TokenBucket(
            limits.url_rate, max(1.0, limits.url_burst - margin), clock=clock
        )
        self._flex_bucket = TokenBucket(limits.flex_rate, limits.flex_burst, clock=clock)
        self._api_bucket = TokenBucket(
            GLOBAL_REQUESTS / GLOBAL_WINDOW, GLOBAL_REQUESTS, clock=clock
        )
        # Credentials ride on this client only, whose base URL is api_base: they go nowhere else.
        # Plain http is allowed on loopback only; an HTTP_PROXY from the environment must not
        # carry the credentials off this machine in clear.
        loopback = is_loopback(httpx.URL(self.api_base).host)
        self._http = DeadlineClient(
            deadline=timeout,
            base_url=self.api_base + "/",
            headers={**credentials.headers(), "User-Agent": "mkdocs-cfpurge"},
            transport=transport,
            follow_redirects=False,
            trust_env=not loopback,
        )

    def __enter__(self) -> CloudflareClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- errors -------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _api_error(self, what: str, status: int, envelope: Envelope | None, raw: str) -> ApiFailure:
        codes = tuple(e.code for e in envelope.errors) if envelope else ()
        details = "; ".join(f"{e.code}: {e.message}" for e in envelope.errors) if envelope else ""
        details = self._redact(details)
        advice = next((_ADVICE[c] for c in codes if c in _ADVICE), "")
        message = f"{what} failed with HTTP {status}" + (f" ({details})" if details else "")
        if not details and raw:
            # Redacted before the cut: a secret the answer echoes never survives in part.
            details = clip(self._redact(raw), SHOWN_ANSWER)
            message += f": {details}"
        if advice:
            message += f": {advice}"
        reason = envelope.errors[0].message if envelope and envelope.errors else details
        return ApiFailure(message, codes=codes, status=status, details=details, reason=reason)

    # -- transport ----------------------------------------------------------------------------

    def _request(self, method: str, path: str, what: str, json: Any = None) -> httpx.Response:
        """Send with retries on 429, 5xx, timeouts and dropped connections."""
        attempt = 0
        while True:
            attempt += 1
            self._api_bucket.take(1, self._pause)
            try:
                response = self._http.request(method, path, json=json)
            except TRANSIENT as exc:
                if attempt >= self.retry.attempts:
                    raise PurgeFailed(
                        self._redact(
                            f"{what} failed after {attempt} attempts: {type(exc).__name__}: {exc}"
                        ),
                    ) from None
                delay = self.retry.backoff(attempt, self._rng)
                log.warning("%s: %s; retrying in %.1fs", what, type(exc).__name__, delay)
                self._pause(delay)
                continue
            if response.status_code not in RETRY_STATUSES or attempt >= self.retry.attempts:
                return response
            delay = self._retry_after(response) or self.retry.backoff(attempt, self._rng)
            log.warning(
                "%s: HTTP %d; retrying in %.1fs (attempt %d of %d)",
                what,
                response.status_code,
                delay,
                attempt,
                self.retry.attempts,
            )
            self._pause(delay)

    def _pause(self, seconds: float) -> None:
        """Sleep, unless that would carry the purge past `purge_timeout`: then stop it."""
        if self._ends_by is not None and self._clock() + seconds > self._ends_by:
            raise PurgeFailed(self._past_bound())
        self._sleep(seconds)

    def _past_bound(self) -> str:
        return (
            f"the purge reached its bound of {self.purge_timeout:g}s (purge_timeout) and "
            "stopped; raise purge_timeout, or let the next run send the rest"
        )

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        try:
            # Cloudflare's longest window is five minutes: a larger value would only stall CI.
            return min(MAX_RETRY_AFTER, max(0.0, float(value)))
        except ValueError:
            return None

    @staticmethod
    def _envelope(response: httpx.Response) -> Envelope | None:
        try:
            return Envelope.model_validate_json(response.content)
        except ValidationError:
            return None

    # -- API ----------------------------------------------------------------------------------

    def get_zone(self) -> Zone:
        what = f"reading zone {self.zone_id}"
        response = self._request("GET", f"zones/{self.zone_id}", what)
        envelope = self._envelope(response)
        if response.is_success and envelope is not None and envelope.success:
            try:
                return Zone.model_validate(envelope.result)
            except ValidationError:
                raise PurgeFailed(
                    f"{what}: GET {self.api_base}/zones/{self.zone_id} answered success without "
                    f"a zone id and name: {clip(self._redact(response.text), SHOWN_ANSWER)}",
                    status=response.status_code,
                ) from None
        raise self._api_error(what, response.status_code, envelope, response.text)

    def check_zone(self, hosts: Sequence[str]) -> None:
        """Refuse hosts the zone does not own; a token without Zone Read gets one warning."""
        try:
            zone = self.get_zone()
        except CfPurgeError as exc:
            if exc.status in (401, 403):
                # A wrong token and a token without Zone Read both end here: one more request
                # tells them apart, so a wrong token is never reported as a permission problem.
                self._refuse_an_invalid_token()
            if exc.status == 403:  # 9109 or 10000: the token lacks Zone Read
                log.warning(
                    "cfpurge: the token may not read zone %s (add Zone → Zone Read to check "
                    "that the zone owns the hosts, or set verify_zone: false); purging anyway",
                    self.zone_id,
                )
                return
            raise
        try:
            name = dns_name(zone.name)  # an IDN zone compares in its IDNA form, as hosts are
        except ValueError:
            name = zone.name.lower()
        foreign = [h for h in hosts if not _host_in_zone(h, name)]
        if foreign:
            raise UsageError(
                f"zone {self.zone_id} is {name!r}, which does not own host(s) "
                f"{', '.join(foreign)}: check zone_id and hosts (nothing was purged)"
            )

    def verify_token(self) -> tuple[bool | None, str]:
        """Whether Cloudflare accepts the API token (`GET /user/tokens/verify`), and what it said.

        None when it cannot be told: legacy key credentials, or an answer that is no verdict.
        """
        if not self._token_auth:
            return None, "legacy key credentials have no token to verify"
        what = "verifying the API token"
        try:
            response = self._request("GET", "user/tokens/verify", what)
        except CfPurgeError as exc:
            return None, exc.message
        envelope = self._envelope(response)
        if response.is_success and envelope is not None and envelope.success:
            try:
                token = TokenStatus.model_validate(envelope.result)
            except ValidationError:
                return None, "no token status in the answer"
            return token.status == "active", f"the token is {token.status}"
        if response.status_code in (400, 401, 403) and envelope is not None:
            details = "; ".join(f"{e.code}: {e.message}" for e in envelope.errors)
            return False, self._redact(f"HTTP {response.status_code}, {details}")
        return None, f"HTTP {response.status_code}"

    def _refuse_an_invalid_token(self) -> None:
        valid, said = self.verify_token()
        if valid is False:
            raise ConfigError(
                "api_token",
                f"Cloudflare does not accept this API token (GET /user/tokens/verify: {said}); "
                "create one in the Cloudflare dashboard: My Profile → API Tokens → Create Token, "
                "with Zone → Cache Purge (and Zone → Zone → Read) on this zone. Nothing was purged",
            )

    def get_cache_rules(self) -> CacheRuleset | None:
        """The zone's Cache Rules (the `http_request_cache_settings` phase's entrypoint
        ruleset), or None when the zone has none (404). A token without Cache Rules Read gets
        PurgeFailed with status 403."""
        what = "reading the zone's cache rules"
        path = f"zones/{self.zone_id}/rulesets/phases/{PHASE}/entrypoint"
        response = self._request("GET", path, what)
        if response.status_code == 404:
            return None
        envelope = self._envelope(response)
        if response.is_success and envelope is not None and envelope.success:
            try:
                return CacheRuleset.model_validate(envelope.result)
            except ValidationError:
                raise PurgeFailed(f"{what}: the answer is not a ruleset") from None
        raise self._api_error(what, response.status_code, envelope, response.text)

    def purge(self, body: Body) -> str | None:
        """Send one body; return Cloudflare's purge id."""
        try:
            check_body(body, "the body")
        except ValueError as exc:
            raise PurgeFailed(
                f"refusing to send a purge body Cloudflare would reject: {exc}"
            ) from None
        kind = purge_type(body)
        if kind == "files":
            self._url_bucket.take(len(body["files"]), self._wait_logged)
        else:
            self._flex_bucket.take(1, self._wait_logged)
        what = f"{self.endpoint} ({kind})"
        response = self._request("POST", f"zones/{self.zone_id}/{self.endpoint}", what, json=body)
        envelope = self._envelope(response)
        if response.is_success and envelope is not None and envelope.success:
            return envelope.result_id()
        raise self._api_error(what, response.status_code, envelope, response.text)

    def _wait_logged(self, seconds: float) -> None:
        if seconds >= 1:
            log.info("cfpurge: waiting %.0fs for Cloudflare's rate limit", seconds)
        self._pause(seconds)

    def purge_all(self, bodies: Sequence[Body]) -> int:
        """Send every body in order; return how many requests went out.

        A `files` body Cloudflare finds too large is split in halves, and the smaller size is kept
        for the rest of the run. A body Cloudflare refuses for its content (a 400 that is about
        neither its size nor the credentials) is sent again in halves, down to the entries it
        refuses: those are logged and added to `refused`, everything else is purged. On a failure
        that retries cannot mend, or once `purge_timeout` is spent, `PurgeIncomplete` lists every
        body not yet confirmed.
        """
        queue: deque[Body] = deque(piece for body in bodies for piece in self._fit(body))
        total_urls = sum(len(b["files"]) for b in queue if "files" in b)
        bound = ""
        if self.purge_timeout is not None:
            self._ends_by = self._clock() + self.purge_timeout
            bound = f", the purge at most {self.purge_timeout:g}s (purge_timeout)"
        log.info(
            "cfpurge: %d request(s) to send; each has %gs from connect to last byte%s",
            len(queue),
            self.timeout,
            bound,
        )
        try:
            return self._send_all(queue, total_urls)
        finally:
            self._ends_by = None

    def _send_all(self, queue: deque[Body], total_urls: int) -> int:
        done_urls = sent = 0
        while queue:
            body = queue.popleft()
            if self._ends_by is not None and self._clock() >= self._ends_by:
                raise PurgeIncomplete(PurgeFailed(self._past_bound()), [body, *queue])
            if self.stop_requested.is_set():
                # Between requests only: the one in flight completed; the rest stays owed.
                stopped = PurgeFailed("stopped on request")
                raise PurgeIncomplete(stopped, [body, *queue])
            if len(body.get("files", ())) > self.max_files:
                # Queued before Cloudflare taught us a smaller cap: refit, don't get refused again.
                queue.extendleft(reversed(self._fit(body)))
                continue
            try:
                self.purge(body)
            except CfPurgeError as exc:
                if self._split_if_too_large(body, exc, queue):
                    continue
                if self._narrow_if_refused(body, exc, queue):
                    continue
                raise PurgeIncomplete(exc, [body, *queue]) from None
            sent += 1
            self._accepted += 1
            done_urls += len(body.get("files", ()))
            log.info(
                "cfpurge: request %d of %d (%s) done; %d/%d URLs purged",
                sent,
                sent + len(queue),
                purge_type(body),
                done_urls,
                total_urls,
            )
        return sent

    def _fit(self, body: Body) -> list[Body]:
        if "files" not in body or len(body["files"]) <= self.max_files:
            return [body]
        return batches("files", body["files"], self.max_files)

    def _split_if_too_large(self, body: Body, exc: CfPurgeError, queue: deque[Body]) -> bool:
        files = body.get("files")
        if exc.status != 400 or not files or len(files) < 2 or not _TOO_MANY.search(exc.message):
            return False
        if self._cap_before_split is None:
            self._cap_before_split = self.max_files
        self.max_files = math.ceil(len(files) / 2)
        log.warning(
            "cfpurge: Cloudflare refused %d URLs in one request; sending at most %d from now on",
            len(files),
            self.max_files,
        )
        queue.extendleft(reversed(self._fit(body)))
        return True

    def _narrow_if_refused(self, body: Body, exc: CfPurgeError, queue: deque[Body]) -> bool:
        """A body Cloudflare refused for an entry in it: send it again in halves, or record the
        one entry left as refused. False when the refusal is about something else."""
        kind = purge_type(body)
        items = body[kind]
        if (
            not isinstance(exc, ApiFailure)
            or exc.status != 400
            or not isinstance(items, list)
            # Only `files` bodies are split for their size (the flex kinds' halving is this).
            or (kind == "files" and len(items) > 1 and _TOO_MANY.search(exc.message))
            or REQUEST_WIDE_CODES.intersection(exc.codes)
        ):
            return False
        if len(self.refused) >= MAX_REFUSED:
            log.error(
                "cfpurge: Cloudflare refused %d entries already: more than a few bad entries; "
                "the rest stays owed",
                len(self.refused),
            )
            return False
        if len(items) == 1:
            code = exc.codes[0] if exc.codes else None
            refusal = Refusal.model_validate(
                {"kind": kind, "entry": items[0], "code": code, "message": exc.reason}
            )
            self.refused.append(refusal)
            log.error("cfpurge: Cloudflare refused the %s; not sent again", refusal.describe())
            if not self._accepted and len(self.refused) >= REQUEST_WIDE_AFTER:
                self._refusing_everything(exc, queue)
            if self._cap_before_split is not None and _TOO_MANY.search(exc.message):
                # The halving that led here was about this entry, not the request's size.
                self.max_files = max(self.max_files, self._cap_before_split)
                self._cap_before_split = None
            return True
        half = math.ceil(len(items) / 2)
        log.warning(
            "cfpurge: Cloudflare refused a request of %d %s (%s); sending it in halves to find "
            "the entries it refuses",
            len(items),
            kind,
            exc.details or f"HTTP {exc.status}",
        )
        queue.extendleft([{kind: items[half:]}, {kind: items[:half]}])
        return True

    def _refusing_everything(self, exc: ApiFailure, queue: deque[Body]) -> NoReturn:
        """Every entry refused on its own and no request accepted: the entries set apart so far
        go back to what is owed, with the rest, and the purge stops."""
        owed = merge_requests([{r.kind: [r.entry]} for r in self.refused], max_files=self.max_files)
        count, self.refused = len(self.refused), []
        cause = PurgeFailed(
            f"Cloudflare refused each of the {count} entries sent on its own and accepted no "
            f"request ({exc.details or f'HTTP {exc.status}'}): the refusal is about the requests, "
            "not the entries, which stay owed (those reported refused above included)",
            codes=exc.codes,
            status=exc.status,
        )
        raise PurgeIncomplete(cause, [*owed, *queue])


def _host_in_zone(host: str, zone: str) -> bool:
    host = host.split(":")[0].lower()
    return host == zone or host.endswith("." + zone)
