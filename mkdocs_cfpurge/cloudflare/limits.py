"""Cloudflare's published purge limits per plan (shared/reference/cloudflare.md).

Both the client (to pace itself) and the local server (to enforce them) read this table, so a
change of Cloudflare's limits is made in one place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

PLANS = ("free", "pro", "business", "enterprise")
DEFAULT_FILES_PER_REQUEST = 30  # the cap the API long enforced on every plan
MAX_FILES_PER_REQUEST = 500  # Enterprise's cap; nothing accepts more
MAX_ITEMS_PER_FLEX_REQUEST = 100  # tags, hosts, prefixes
MAX_PREFIX_SEPARATORS = 31
# Cloudflare's global API limit, per user: 1,200 requests per 5 minutes.
GLOBAL_REQUESTS = 1200
GLOBAL_WINDOW = 300.0


@dataclass(frozen=True)
class PlanLimits:
    """Token buckets: URLs for `files` purges, requests for tag/host/prefix/everything purges."""

    url_rate: float  # URLs per second
    url_burst: float
    flex_rate: float  # requests per second
    flex_burst: float
    files_per_request: int


PLAN_LIMITS: dict[str, PlanLimits] = {
    "free": PlanLimits(800.0, 800.0, 5 / 60, 25.0, DEFAULT_FILES_PER_REQUEST),
    "pro": PlanLimits(1500.0, 1500.0, 5.0, 25.0, DEFAULT_FILES_PER_REQUEST),
    "business": PlanLimits(1500.0, 1500.0, 10.0, 50.0, DEFAULT_FILES_PER_REQUEST),
    "enterprise": PlanLimits(3000.0, 3000.0, 50.0, 500.0, MAX_FILES_PER_REQUEST),
}


class TokenBucket:
    """A thread-safe token bucket: `rate` tokens per second, at most `burst` stored."""

    def __init__(
        self, rate: float, burst: float, *, clock: Callable[[], float] | None = None
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock or time.monotonic
        self._tokens = burst
        self._stamp = self._clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_take(self, amount: float) -> float:
        """Take `amount` tokens if there are enough and return 0, else the seconds to wait."""
        with self._lock:
            self._refill()
            # A request larger than the burst can never fit; let it through once the bucket is full.
            need = min(amount, self.burst)
            if self._tokens >= need:
                self._tokens -= amount
                return 0.0
            return (need - self._tokens) / self.rate

    def take(self, amount: float, sleep: Callable[[float], None] | None = None) -> float:
        """Block until `amount` tokens are taken; return the seconds waited."""
        sleep = sleep or time.sleep
        waited = 0.0
        while (wait := self.try_take(amount)) > 0:
            # Never a wait too small to move the clock (a spin with a coarse or fake clock).
            wait = max(wait, 1e-3)
            sleep(wait)
            waited += wait
        return waited
