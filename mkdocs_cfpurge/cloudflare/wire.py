"""Cloudflare's purge request bodies and response envelope, as pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UrlAndHeaders(_Strict):
    url: str
    headers: dict[str, str] = Field(default_factory=dict)


class FilesBody(_Strict):
    files: list[str] | list[UrlAndHeaders] = Field(min_length=1)


class TagsBody(_Strict):
    tags: list[str] = Field(min_length=1)


class HostsBody(_Strict):
    hosts: list[str] = Field(min_length=1)


class PrefixesBody(_Strict):
    prefixes: list[str] = Field(min_length=1)


class EverythingBody(_Strict):
    purge_everything: Literal[True]


PurgeBody = FilesBody | TagsBody | HostsBody | PrefixesBody | EverythingBody
purge_body_adapter: TypeAdapter[PurgeBody] = TypeAdapter(PurgeBody)


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
