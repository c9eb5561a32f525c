"""Cloudflare's answers as pydantic models: the v4 envelope and a zone.

Request bodies are checked by plan/bodies.py, the one body validator.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


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
