"""The pipeline's logger.

It lives under `mkdocs.plugins.` so that, inside MkDocs, its records show with MkDocs' own and
warnings count for `--strict`; the CLI gives it a handler of its own. No mkdocs import needed.
"""

from __future__ import annotations

import logging

log = logging.getLogger("mkdocs.plugins.cfpurge")
