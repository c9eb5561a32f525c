"""Where the last deploy is found: the local manifest, the deployed branch, the marker the
origin serves (live), else none, and what a plan with nothing to compare with means."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import replace

from mkdocs_cfpurge.build.manifest import Manifest, compile_excludes
from mkdocs_cfpurge.build.marker import MARKER_NAME
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.baseline import Baseline, BaselineSource, given, local
from mkdocs_cfpurge.settings import Settings
from mkdocs_cfpurge.state import StateStore

# What a deployed branch holds (given this build's manifest), asked only when there is no local
# manifest (a fresh runner); None when there is no such branch.
BranchBaseline = Callable[[Manifest], "Baseline | None"]


def comparable_files(old: Manifest, settings: Settings) -> dict[str, str]:
    """The last deploy's files that this run hashes too: a file `exclude` leaves out now (a
    baseline recorded before the pattern was added, or by a tool that hashed the whole folder)
    is neither deleted nor purged, as `exclude` promises."""
    if not settings.exclude:
        return old.files
    excluded = compile_excludes(settings.exclude)
    return {path: sha for path, sha in old.files.items() if not excluded.match_file(path)}


def no_baseline_note(baseline: Baseline | None, new: Manifest, settings: Settings) -> str:
    """What a plan with nothing to compare with means, said for this mode (a dry run records
    nothing) and this kind of "none" (a first deploy is not an unknown deployed state)."""
    looked = f"no manifest of an earlier deploy at {settings.manifest_path}"
    if baseline is not None and baseline.detail:
        looked = baseline.detail
    if baseline is not None and baseline.unknown:
        then = (
            "the purge step purges the whole zone (allow_purge_everything)"
            if settings.allow_purge_everything
            else "the purge step fails (exit 1) rather than purge nothing; keep the manifest "
            "between runs, make origin_url reachable from this runner, or set "
            "allow_purge_everything to purge the whole zone instead"
        )
        return (
            f"no baseline: {looked}. What this deploy changed is unknown (this is not taken "
            f"for a first deploy): {then}"
        )
    if settings.dry_run:
        return (
            f"{looked}: nothing to compare this build with, and a dry run records nothing. To "
            f"get a baseline, deploy once (the {MARKER_NAME} it publishes is the baseline the "
            "next build reads from the origin), or record what is deployed now: "
            f"mkdocs-cfpurge manifest DEPLOYED_SITE_DIR --site-url {settings.site} --out "
            f"{shlex.quote(str(settings.manifest_path))}"
        )
    then = ""
    if baseline is not None and baseline.where.endswith(MARKER_NAME):  # the origin was read
        then = f"; the next deploy compares with the {MARKER_NAME} this one publishes"
    return (
        f"{looked}: this deploy records the baseline ({len(new.files)} files) and purges "
        f"nothing{then}"
    )


AnyBaseline = Manifest | Baseline | None


def current_baseline(state: StateStore, baseline: AnyBaseline) -> Baseline:
    """The local manifest when there is one (it always comes first), else `baseline` (a bare
    manifest is one a deploy flow read from its branch; None: nothing was found)."""
    manifest = state.load_manifest()
    if manifest is not None:
        return local(manifest, str(state.manifest_path))
    if isinstance(baseline, Baseline):
        return baseline
    return given(baseline)


def find_baseline(
    settings: Settings,
    new: Manifest,
    *,
    branch: BranchBaseline | None = None,
    live: bool = False,
) -> Baseline:
    """The baseline of a deploy of `new`, in order: the local manifest, the deployed branch (when
    the front end knows one), the marker the origin serves (`live`), else none."""
    store = StateStore(settings.manifest_path, str(settings.site))
    found = current_baseline(store, None)
    if found.manifest is not None:
        log.info("cfpurge: %s", found.describe())
        return found
    looked = [f"no manifest of an earlier deploy at {settings.manifest_path}"]
    if branch is not None:
        deployed = branch(new)
        if deployed is not None:
            return deployed
        looked.append("no deployed branch")
    if not live:
        return Baseline(BaselineSource.NONE, str(settings.manifest_path), "; ".join(looked), True)
    from mkdocs_cfpurge.deploy.live import read_live_marker

    served = read_live_marker(settings.origin_base, str(settings.site))
    if served.manifest is not None:
        return served
    return replace(served, detail="; ".join([*looked, served.detail]))
