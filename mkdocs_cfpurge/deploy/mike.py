"""mike, the versioned-docs deployer: recognise the builds it runs, which must not purge.

mike builds each version with `mkdocs build` in a subprocess before it commits and pushes: that
build knows nothing of aliases, versions.json or the root index, and nothing is deployed yet.
The purge belongs after `mike deploy --push`, over the whole branch (`mkdocs-cfpurge
purge-branch`, see branch.py).
"""

from __future__ import annotations

from collections.abc import Mapping

# mike runs `mkdocs build` with this variable set to the version being built.
MIKE_VERSION_VAR = "MIKE_DOCS_VERSION"


def mike_build_version(env: Mapping[str, str]) -> str | None:
    """The version mike is building, when this process is the `mkdocs build` mike started."""
    version = env.get(MIKE_VERSION_VAR, "").strip()
    return version or None
