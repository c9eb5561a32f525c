"""The pipeline's logger.

It lives under `mkdocs.plugins.` so that, inside MkDocs, its records show with MkDocs' own and
warnings count for `--strict`; the CLI gives it a handler of its own. No mkdocs import needed.
Every record is redacted before any handler sees it (redact.py).
"""

from __future__ import annotations

import logging

from mkdocs_cfpurge.redact import RedactingFilter

log = logging.getLogger("mkdocs.plugins.cfpurge")
log.addFilter(RedactingFilter())
