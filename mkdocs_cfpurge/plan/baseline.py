"""Where the manifest a plan compares with came from, in the order a deploy looks for it.

local manifest → deployed branch (gh-deploy, mike) → live marker (what the origin serves now) →
none. A plan states which one it used (`PurgePlan.baseline`, a note, the log). "None" is two
different things that must never be confused: the first deploy with this tool (nothing deployed
carries a marker: nothing to purge), and no baseline at all (the origin could not be read, or
served something else: what this deploy changed is unknown, so a purge cannot be exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from mkdocs_cfpurge.build.manifest import Manifest


class BaselineSource(str, Enum):
    LOCAL_MANIFEST = "local-manifest"
    DEPLOYED_BRANCH = "deployed-branch"
    LIVE_MARKER = "live-marker"
    NONE = "none"


@dataclass(frozen=True)
class Baseline:
    """A baseline (or the lack of one), where it was found or looked for, and what came of it.

    `manifest` is None exactly when `source` is NONE. Then `first_deploy` says whether nothing
    is deployed yet (a 404 marker, or no look at the origin at all: the earlier behaviour) or
    whether the deployed state is unknown (a network error, a 5xx, a file that is not this
    tool's marker or is another site's). `digest` is the baseline build's digest when known.
    """

    source: BaselineSource
    where: str = ""
    detail: str = ""
    first_deploy: bool = False
    digest: str | None = None
    manifest: Manifest | None = field(default=None, compare=False, repr=False)

    @property
    def unknown(self) -> bool:
        """No baseline, and no reason to believe nothing was deployed before."""
        return self.source is BaselineSource.NONE and not self.first_deploy

    def describe(self) -> str:
        """One line for the plan's notes and the log."""
        if self.source is BaselineSource.NONE:
            head = "first deploy with this tool" if self.first_deploy else "no baseline"
            return f"baseline: none ({head}): {self.detail}" if self.detail else f"baseline: {head}"
        where = f" {self.where}" if self.where else ""
        label = {
            BaselineSource.LOCAL_MANIFEST: "the manifest",
            BaselineSource.DEPLOYED_BRANCH: "the deployed branch",
            BaselineSource.LIVE_MARKER: "the marker the origin serves at",
        }[self.source]
        return f"baseline: {label}{where}" + (f" ({self.detail})" if self.detail else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "where": self.where,
            "detail": self.detail,
            "first_deploy": self.first_deploy,
            "digest": self.digest,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Baseline:
        """The baseline a plan (or a marker's owed purge) names; ValueError if malformed."""
        if not isinstance(data, dict):
            raise ValueError("'baseline' is not a JSON object")
        try:
            source = BaselineSource(data.get("source"))
        except ValueError:
            raise ValueError(f"'baseline': unknown source {data.get('source')!r}") from None
        texts = [data.get(key, "") for key in ("where", "detail")]
        digest, first = data.get("digest"), data.get("first_deploy", False)
        if not all(isinstance(text, str) for text in texts):
            raise ValueError("'baseline': 'where' and 'detail' must be strings")
        if digest is not None and not isinstance(digest, str):
            raise ValueError("'baseline': 'digest' must be a string or null")
        if not isinstance(first, bool):
            raise ValueError("'baseline': 'first_deploy' must be true or false")
        return cls(source, texts[0], texts[1], first, digest)


def local(manifest: Manifest, path: str) -> Baseline:
    return Baseline(BaselineSource.LOCAL_MANIFEST, path, manifest=manifest)


def given(manifest: Manifest | None, where: str = "") -> Baseline:
    """A manifest a deploy flow read itself (a deployed branch's tree or marker); None: the
    flow found nothing deployed, which counts as a first deploy, as it always did."""
    if manifest is None:
        return Baseline(BaselineSource.NONE, where, first_deploy=True)
    return Baseline(BaselineSource.DEPLOYED_BRANCH, where, manifest=manifest)
