"""JSON read from files and answers, with every way a document can be bad as one ValueError."""

from __future__ import annotations

import json
from typing import Any


def parse_json(raw: bytes | str) -> Any:
    """`json.loads`, except that a document nested too deeply for the parser (RecursionError),
    or bytes that are not UTF-8, raise ValueError like any other malformed document."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply to be a file this tool wrote") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
