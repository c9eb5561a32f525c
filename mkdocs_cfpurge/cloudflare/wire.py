"""Cloudflare's answers as pydantic models: the v4 envelope and a zone.

Request bodies are checked by plan/bodies.py, the one body validator.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ApiMessage(BaseModel):
    code: int
    message: str
    documentation_url: str | None = None
    source: dict[str, Any] | None = None


class Envelope(BaseModel):
    """Every Cloudflare v4 answer: success, errors, messages, result."""

    success: bool
    errors: list[ApiMessage] = Field(default_factory=list)
    messages: list[Any] = Field(default_factory=list)
    result: Any = None

    def result_id(self) -> str | None:
        if isinstance(self.result, dict):
            value = self.result.get("id")
            return str(value) if value is not None else None
        return None


class Zone(BaseModel):
    id: str
    name: str
    status: str | None = None


class TokenStatus(BaseModel):
    """`GET /user/tokens/verify`'s result: the token's id and `status` (active, disabled,
    expired)."""

    id: str | None = None
    status: str


class Refusal(BaseModel):
    """One entry of a purge body that Cloudflare refused (a 400 naming it, not the body's size),
    with Cloudflare's code and message. Recorded apart from what is owed: sending it again would
    only be refused again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["files", "tags", "hosts", "prefixes"]
    entry: str | dict[str, Any]
    code: int | None = None
    message: str = ""

    def describe(self) -> str:
        entry = self.entry if isinstance(self.entry, str) else json.dumps(self.entry)
        because = f"{self.code}: {self.message}" if self.code is not None else self.message
        return f"{self.kind} entry {entry} ({because or 'no reason given'})"
