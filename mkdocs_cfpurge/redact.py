"""One redaction for every text that may carry a credential: answers, exceptions, requests, logs.

A secret is masked wherever it appears whole, and so is every fragment of it `MIN_FRAGMENT`
characters or longer, wherever it sits: a text cut by someone else (a server that echoes a request
header into an error page of limited size, a library that shortens an exception message) can hold
part of a secret, and a text cut here is cut only after redaction. A shorter fragment tells an
attacker next to nothing (5 of a token's 40 characters) and is too common to mask without garbling
ordinary text.

Secrets are registered once, when credentials are created; `redact` then masks every registered
secret, so no caller has to carry them around. The package's logger runs every record through
`RedactingFilter` (log.py), and every `CfPurgeError` redacts its message when it is made.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator

MIN_FRAGMENT = 6
MASK = "***"

_secrets: set[str] = set()
_lock = threading.Lock()


def register(*secrets: str | None) -> None:
    """Mask these secrets (empty ones ignored) in every text redacted from now on."""
    with _lock:
        _secrets.update(s for s in secrets if s)


def forget_all() -> None:
    """Mask nothing any more (tests: one test's secrets must not mask another's text)."""
    with _lock:
        _secrets.clear()


def registered() -> tuple[str, ...]:
    with _lock:
        return tuple(_secrets)


def _spans(text: str, secret: str) -> Iterator[tuple[int, int]]:
    """Where `text` holds a piece of `secret` at least MIN_FRAGMENT long (the whole secret when
    it is shorter): one span per matching window, overlapping where the piece is longer."""
    size = min(MIN_FRAGMENT, len(secret))
    for start in range(len(secret) - size + 1):
        window = secret[start : start + size]
        at = text.find(window)
        while at != -1:
            yield at, at + size
            at = text.find(window, at + 1)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every registered secret (and `secrets`), and every fragment of one long enough
    to matter, replaced by MASK."""
    every = {*registered(), *(s for s in secrets if s)}
    if not text or not every:
        return text
    spans = sorted(span for secret in every for span in _spans(text, secret))
    if not spans:
        return text
    pieces: list[str] = []
    done = 0
    start, end = spans[0]
    for span_start, span_end in spans[1:]:
        if span_start <= end:  # overlapping or touching: one piece of a secret
            end = max(end, span_end)
            continue
        pieces += [text[done:start], MASK]
        done, (start, end) = end, (span_start, span_end)
    pieces += [text[done:start], MASK, text[end:]]
    return "".join(pieces)


def clip(text: str, limit: int) -> str:
    """Redact, then cut to `limit` characters (an ellipsis says it was cut)."""
    clean = redact(text)
    return clean if len(clean) <= limit else clean[:limit] + "…"


class RedactingFilter(logging.Filter):
    """Redacts every record's message, and its traceback, before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not registered():
            return True
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
