"""Scripted misbehaviour for the local API: the failures a purge client must survive."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Literal

FaultKind = Literal["fail", "drop", "delay"]


@dataclass(frozen=True)
class Fault:
    """One scripted answer. `status`, `code` and `retry_after` matter for "fail" only,
    `seconds` for "delay" only."""

    kind: FaultKind
    remaining: int
    status: int = 500
    code: int | None = None
    retry_after: float | None = None
    seconds: float = 0.0


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

    def take(self) -> Fault | None:
        """The fault for the current request, or None when nothing is scripted."""
        with self._lock:
            if not self._queue:
                return None
            head = self._queue[0]
            if head.remaining == 1:
                self._queue.popleft()
            else:
                self._queue[0] = replace(head, remaining=head.remaining - 1)
            return head
