"""Cloudflare's published purge request schema, as a validator any test can call on a body.

The schema is the extract in shared/reference/cloudflare-purge-openapi.json (from
cloudflare/api-schemas). Set CFPURGE_OPENAPI to read it from elsewhere.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

SCHEMA_NAME = "cloudflare-purge-openapi.json"
OPERATION = "POST /zones/{zone_id}/purge_cache"
_ROOT = "urn:cloudflare:purge-request"


def schema_path() -> Path:
    here = Path(__file__).resolve().parent
    candidates = [
        Path(os.environ.get("CFPURGE_OPENAPI", "")),
        here / "data" / SCHEMA_NAME,
        here.parents[1] / "shared" / "reference" / SCHEMA_NAME,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{SCHEMA_NAME} not found; set CFPURGE_OPENAPI to its path")


@functools.cache
def load_purge_body_validator(*, strict: bool = True) -> Callable[[object], None]:
    """A callable that raises jsonschema.ValidationError for a body the schema rejects.

    As published (`strict=False`) the body schema is an anyOf of six object shapes with no
    required properties, so it accepts any JSON object: mixed types, `"files": "x"`, ...
    `strict=True` (the default) reads each shape as the one-field body it documents: its field
    is required, no other field is allowed, a `files` array holds either URL strings or
    `{url, headers}` objects (not both: no shape allows a mix), and an object needs its url.
    Use strict for bodies a client builds; the published form for bodies a test sends to prove
    the server, not the schema, refuses them.
    """
    spec = json.loads(schema_path().read_text(encoding="utf-8"))
    entry = spec["operations"][OPERATION]
    schemas: dict[str, Any] = copy.deepcopy(entry["referenced_schemas"])
    body = copy.deepcopy(entry["operation"]["requestBody"]["content"]["application/json"]["schema"])
    if strict:
        _tighten(body, schemas)
    # Refs read "#/components/schemas/NAME": keep the body schema and its components in one
    # registered document so those refs resolve inside it.
    document = {**body, "components": {"schemas": schemas}}
    Draft7Validator.check_schema(document)
    registry: Registry[Any] = Registry().with_resource(
        _ROOT, Resource.from_contents(document, default_specification=DRAFT7)
    )
    validator = Draft7Validator({"$ref": _ROOT}, registry=registry)

    def validate(instance: object) -> None:
        validator.validate(instance)

    return validate


def _tighten(body: dict[str, Any], schemas: dict[str, Any]) -> None:
    for choice in body["anyOf"]:
        shape = schemas[choice["$ref"].rsplit("/", 1)[1]]
        shape["required"] = sorted(shape["properties"])
        shape["additionalProperties"] = False
        items = shape["properties"].get("files", {}).get("items", {})
        if items.get("type") == "object":
            items["required"] = ["url"]
