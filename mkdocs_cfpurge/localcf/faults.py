"""Scripted misbehaviour for the local API: the failures a purge client must survive."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Literal

FaultKind = Literal["fail", "drop", "delay", "trickle", "garble", "echo", "answer"]
# Which requests a fault meets: purge POSTs, or reads of the zone (GET /zones/{id}).
Route = Literal["purge", "zone"]


@dataclass(frozen=True)
class Fault:
    """One scripted answer. `status`, `code` and `retry_after` matter for "fail" (`status` also
    for "echo" and "answer"), `seconds` for "delay" and "trickle".

    - "trickle": the usual answer, its header lines sent `seconds` apart (`lines` of them);
    - "garble": a 200 whose body claims gzip and is not;
    - "echo": an HTML error page (`status`) quoting every request header, after `body`;
    - "answer": `status` with `body` as it is (JSON or not).
    """

    kind: FaultKind
    remaining: int
    status: int = 500
    code: int | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    route: Route = "purge"
    lines: int = 0
    body: bytes = b""


class FaultQueue:
    """Faults in the order they were scripted, each used up by `remaining` requests.

    Queued rather than last-one-wins so a test can script a sequence such as "two 503s, then a
    dropped connection" and know which request meets which fault.
    """

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        if fault.remaining < 0:
            raise ValueError(f"fault count must be >= 0, got {fault.remaining}")
        if fault.remaining:
            with self._lock:
                self._queue.append(fault)

    def take(self, route: Route = "purge") -> Fault | None:
        """The first fault scripted for `route`, for the current request; None when none is."""
        with self._lock:
            for at, fault in enumerate(self._queue):
                if fault.route != route:
                    continue
                if fault.remaining == 1:
                    del self._queue[at]
                else:
                    self._queue[at] = replace(fault, remaining=fault.remaining - 1)
                return fault
            return None
