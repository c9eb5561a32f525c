"""The use case, front-end neutral: built site → manifest → changes → plan → purge → commit.

Two entry points, one for each moment of a deploy:

- `prepare(site_dir, settings)` right after the build: hash the output, plan against the last
  deploy, write the build marker (with what this deploy owes) and report the plan;
- `purge(settings, source)` once the deploy is done: dry run or not, wait for the origin (or keep
  the purge pending), check the zone, send, commit the manifest, report. `source` is a built
  manifest, a prepared build, a saved plan, or None for what is pending.

The MkDocs plugin, the CLI, the watcher and the deploy flows (gh-deploy, purge-branch) only
gather their inputs and call these; nothing here imports mkdocs or a front end.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mkdocs_cfpurge.build.atomic import write_atomic
from mkdocs_cfpurge.build.manifest import Manifest, build_manifest, compile_excludes
from mkdocs_cfpurge.build.marker import MARKER_NAME, write_marker
from mkdocs_cfpurge.build.noise import make_normalizer
from mkdocs_cfpurge.errors import PurgeFailed, PurgeIncomplete, UsageError
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.auto import Budget
from mkdocs_cfpurge.plan.bodies import hosts_of, merge_requests
from mkdocs_cfpurge.plan.changes import Reason, diff
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.plan.planner import build_plan
from mkdocs_cfpurge.plan.report import append_step_summary, markdown_summary, text_summary
from mkdocs_cfpurge.settings import Settings
from mkdocs_cfpurge.state import Pending, StateStore

if TYPE_CHECKING:  # httpx loads only when a purge really runs
    from mkdocs_cfpurge.cloudflare.client import CloudflareClient

ClientFactory = Callable[[Settings], "CloudflareClient"]
# Blocks until the origin serves the new build (returns the seconds waited); PurgeFailed if not.
OriginReady = Callable[[], float]
# What the deployed site holds (given this build's manifest), read only when there is no local
# manifest: a fresh runner.
BaselineSource = Callable[[Manifest], "Manifest | None"]


# --- the build -----------------------------------------------------------------------------


def scan(site_dir: Path, settings: Settings) -> Manifest:
    """Hash the built site (the marker and `exclude` patterns left out, noise stripped).

    An empty folder is refused: against a baseline it would read as "every page deleted".
    """
    manifest = build_manifest(
        site_dir,
        str(settings.site),
        exclude=(*settings.exclude, f"/{MARKER_NAME}"),
        normalize=make_normalizer(settings.ignore_changes),
    )
    if not manifest.files:
        raise UsageError(
            f"site folder {str(site_dir)!r} holds no files (after 'exclude'): was the site built "
            "there?"
        )
    return manifest


def read_site(site_dir: Path, settings: Settings) -> tuple[Settings, Manifest]:
    """The settings with the hosts the site's own `CNAME` announces, and the site's manifest."""
    if not site_dir.is_dir():
        raise UsageError(f"site folder {str(site_dir)!r} does not exist or is not a folder")
    try:
        cname: bytes | None = (site_dir / "CNAME").read_bytes()
    except OSError:
        cname = None
    settings = settings.with_cname(cname, f"{site_dir.name}/CNAME")
    return settings, scan(site_dir, settings)


# --- the plan ------------------------------------------------------------------------------


def make_plan(
    old: Manifest | None, new: Manifest, settings: Settings, pending: Pending | None = None
) -> PurgePlan:
    """The plan from the last deploy's manifest to this build's, plus what is still owed."""
    mapper = settings.mapper()
    if old is None:
        plan = build_plan([], mapper, strategy=settings.strategy, zone_id=settings.zone_id)
        plan.notes.append(
            f"no manifest of an earlier deploy at {settings.manifest_path}: this deploy "
            f"records the baseline ({len(new.files)} files) and purges nothing"
        )
    else:
        old_files = comparable_files(old, settings)
        plan = build_plan(
            diff(old_files, new.files, old.resend),
            mapper,
            strategy=settings.strategy,
            max_files_per_request=settings.max_files_per_request,
            zone_id=settings.zone_id,
            extra_urls=settings.extra_urls,
            old_files=old_files.keys(),
            new_files=new.files.keys(),
            budget=Budget(
                settings.cloudflare_plan,
                settings.max_purge_seconds,
                settings.max_collateral,
                settings.allow_purge_everything,
            ),
        )
    hint = mass_change_hint(old, new)
    if hint:
        plan.notes.append(hint)
    if pending is not None and pending.requests:
        plan.requests = merge_requests(
            pending.requests, plan.requests, max_files=settings.max_files_per_request
        )
        plan.notes.append(
            f"includes {len(pending.requests)} request(s) still owed by an earlier run"
        )
    return plan


def comparable_files(old: Manifest, settings: Settings) -> dict[str, str]:
    """The last deploy's files that this run hashes too: a file `exclude` leaves out now (a
    baseline recorded before the pattern was added, or by a tool that hashed the whole folder)
    is neither deleted nor purged, as `exclude` promises."""
    if not settings.exclude:
        return old.files
    excluded = compile_excludes(settings.exclude)
    return {path: sha for path, sha in old.files.items() if not excluded.match_file(path)}


def mass_change_hint(old: Manifest | None, new: Manifest) -> str | None:
    """When most pages changed, say why that usually happens."""
    if old is None:
        return None
    # Pages in both builds only: a new version or section adds pages without changing others.
    pages = [p for p in new.files if p.endswith(".html") and p in old.files]
    changed = [p for p in pages if old.files.get(p) != new.files[p]]
    if len(pages) < 10 or len(changed) * 2 <= len(pages):
        return None
    return (
        f"{len(changed)} of {len(pages)} pages changed: usually a navigation change (a page "
        "title, a page added or removed) which rewrites every page, or noise such as a build "
        "date or commit id that `ignore_changes` can absorb (presets: mkdocs-build-date, "
        "sitemap-lastmod)"
    )


def preview(settings: Settings, new: Manifest, baseline: Manifest | None = None) -> PurgePlan:
    """The plan a deploy of `new` would send, reading the state but changing nothing."""
    store = StateStore(settings.manifest_path, str(settings.site))
    old = store.load_manifest() or baseline
    return make_plan(old, new, settings, store.load_pending())


def owed_paths(plan: PurgePlan) -> list[str]:
    """The files this deploy's own purge is about (not those resent for an earlier deploy)."""
    return [c.path for c in plan.changes if not c.is_folder and c.reason is not Reason.RESENT]


def report(plan: PurgePlan, settings: Settings, env: Mapping[str, str] = os.environ) -> str:
    """Log the summary, write the plan (JSON and Markdown) and the CI job summary; return the
    Markdown."""
    dry_run = settings.dry_run
    for line in text_summary(plan, dry_run=dry_run).splitlines():
        log.info(line)
    markdown = markdown_summary(plan, dry_run=dry_run)
    if settings.plan_path is not None:
        write_atomic(settings.plan_path, plan.to_json())
        # Beside the JSON, for a pull request comment or a CI artifact.
        write_atomic(settings.plan_path.with_suffix(".md"), markdown.encode())
    append_step_summary(markdown, env)
    return markdown


@dataclass(frozen=True)
class PreparedBuild:
    """What a build knows before its deploy: its manifest, its plan (already reported) and the
    baseline that plan was made against (a deployed branch's, read before the push)."""

    settings: Settings
    manifest: Manifest
    plan: PurgePlan
    baseline: Manifest | None = None


def prepare(
    site_dir: Path,
    settings: Settings,
    *,
    baseline: BaselineSource | None = None,
    env: Mapping[str, str] = os.environ,
) -> PreparedBuild:
    """Hash the built site, plan against the last deploy, write the build marker and report.

    `baseline` is asked only when there is no local manifest (a fresh runner).
    """
    settings, manifest = read_site(site_dir, settings)
    old = None
    if baseline is not None and not settings.manifest_path.exists():
        old = baseline(manifest)
    plan = preview(settings, manifest, old)
    write_marker(site_dir, manifest, owed_paths(plan))
    report(plan, settings, env)
    return PreparedBuild(settings, manifest, plan, old)


# --- the purge -----------------------------------------------------------------------------


@dataclass
class PurgeResult:
    plan: PurgePlan
    requests_sent: int
    dry_run: bool = False
    baseline_recorded: bool = False  # no earlier manifest: this run only recorded one
    waited: float | None = None  # seconds the origin took to serve the build


def default_client(settings: Settings, **options: Any) -> CloudflareClient:
    """The client the settings describe; `options` (retry, timeout, sleep, transport...) go to
    CloudflareClient as they are, so a caller changes how it sends, never where or as whom."""
    from mkdocs_cfpurge.cloudflare.client import CloudflareClient

    zone_id, credentials = settings.require_purge_access()
    return CloudflareClient(
        credentials,
        zone_id,
        api_base=settings.api_base,
        plan=settings.cloudflare_plan,
        method=settings.method,
        max_files_per_request=settings.max_files_per_request,
        **options,
    )


Source = Manifest | PreparedBuild | PurgePlan | None


def purge(
    settings: Settings,
    source: Source,
    *,
    baseline: Manifest | None = None,
    origin_ready: OriginReady | None = None,
    client_factory: ClientFactory | None = None,
    env: Mapping[str, str] = os.environ,
) -> PurgeResult:
    """The deploy use case: purge what changed (and what is still owed), then commit.

    `source`: a built manifest (planned again under the lock, against the manifest on disk, else
    `baseline`), a prepared build (the same, its plan already reported), a saved plan (its bodies
    sent as they are), or None (only what is pending). A dry run reports the plan and touches
    nothing. With `origin_ready`, nothing is sent before the origin serves the build; if it never
    does, the purge is kept pending for the next run. Only when every request is confirmed is the
    manifest committed; otherwise what is not confirmed stays in `pending.json` and
    `PurgeIncomplete` is raised.
    """
    prepared = source if isinstance(source, PreparedBuild) else None
    if prepared is not None:
        settings, baseline = prepared.settings, prepared.baseline
    new = prepared.manifest if prepared is not None else source
    saved = source if isinstance(source, PurgePlan) else None
    if not isinstance(new, Manifest):
        new = None
    if settings.dry_run:
        return _dry_run(settings, prepared, new, saved, baseline, env)
    settings.require_purge_access()
    waited = None
    if origin_ready is not None:
        try:
            waited = origin_ready()
        except PurgeFailed:
            if new is not None:
                defer(settings, new, baseline)
            raise
    result = _send(settings, new, saved, baseline, client_factory)
    result.waited = waited
    if prepared is None:
        report(result.plan, settings, env)
    if result.baseline_recorded:
        log.info("cfpurge: first deploy, nothing to purge: baseline recorded")
    elif result.requests_sent == 0:
        log.info("cfpurge: nothing to purge")
    if settings.verify_after_purge and result.requests_sent and new is not None:
        _verify(result.plan, new, settings)
    return result


def _dry_run(
    settings: Settings,
    prepared: PreparedBuild | None,
    new: Manifest | None,
    saved: PurgePlan | None,
    baseline: Manifest | None,
    env: Mapping[str, str],
) -> PurgeResult:
    if prepared is not None:
        plan = prepared.plan  # made and reported when the build was prepared
    else:
        if new is not None:
            plan = preview(settings, new, baseline)
        else:
            pending = StateStore(settings.manifest_path, str(settings.site)).load_pending()
            plan = saved or PurgePlan(str(settings.site), settings.zone_id, [], [])
            plan.requests = merge_requests(
                pending.requests, plan.requests, max_files=settings.max_files_per_request
            )
        report(plan, settings, env)
    where = f"; plan written to {settings.plan_path}" if settings.plan_path else ""
    log.info("cfpurge: dry run%s, nothing sent", where)
    return PurgeResult(plan, 0, dry_run=True)


def _send(
    settings: Settings,
    new: Manifest | None,
    saved: PurgePlan | None,
    baseline: Manifest | None,
    client_factory: ClientFactory | None,
) -> PurgeResult:
    """Under the lock: plan (again, from the manifest on disk, so two runs never both purge
    against one baseline), check the zone, keep what is owed, send, commit."""
    with StateStore(settings.manifest_path, str(settings.site)) as state:
        pending = state.load_pending()
        old = state.load_manifest() or baseline
        if new is not None:
            plan = make_plan(old, new, settings, pending)
        else:
            plan = saved or PurgePlan(str(settings.site), settings.zone_id, [], [])
            plan.requests = merge_requests(
                pending.requests, plan.requests, max_files=settings.max_files_per_request
            )
        to_commit = new if new is not None else pending.next_manifest
        recorded = new is not None and old is None
        if plan.is_empty:
            state.commit(to_commit)
            return PurgeResult(plan, 0, baseline_recorded=recorded)
        with (client_factory or default_client)(settings) as client:
            if settings.verify_zone:
                # Every host the purge names: the site's, and those of extra URLs, pending or
                # saved plans.
                hosts = dict.fromkeys([*settings.mapper().hosts, *hosts_of(plan.requests)])
                client.check_zone(list(hosts))
            state.save_pending(Pending(plan.requests, to_commit))
            try:
                sent = client.purge_all(plan.requests)
            except PurgeIncomplete as exc:
                state.save_pending(Pending(exc.unsent, to_commit))
                log.error(
                    "cfpurge: %d request(s) still owed are saved in %s; the next run sends them",
                    len(exc.unsent),
                    state.pending_path,
                )
                raise
        state.commit(to_commit)
        log.info("cfpurge: purge complete (%d request(s)); manifest committed", sent)
        return PurgeResult(plan, sent)


def defer(settings: Settings, new: Manifest, baseline: Manifest | None = None) -> Path | None:
    """Keep this build's purge owed for a later run (the origin never served the build, or the
    deploy could not be followed); return the pending file (None in a dry run: it keeps
    nothing)."""
    if settings.dry_run:
        return None
    with StateStore(settings.manifest_path, str(settings.site)) as state:
        pending = state.load_pending()
        plan = make_plan(state.load_manifest() or baseline, new, settings, pending)
        state.save_pending(Pending(plan.requests, new))
    log.error(
        "cfpurge: the purge is kept as pending in %s; once the origin serves this build, send it "
        "with: mkdocs-cfpurge purge --manifest %s --site-url %s",
        state.pending_path,
        shlex.quote(str(settings.manifest_path)),
        shlex.quote(str(settings.site)),
    )
    return state.pending_path


def _verify(plan: PurgePlan, new: Manifest, settings: Settings) -> None:
    """Fetch every purged URL through the CDN: a 200 from the API only means "accepted"."""
    from mkdocs_cfpurge.verify import verify_manifest

    outcome = verify_manifest(plan, new, settings, connect_to=settings.verify_connect_to)
    outcome.log()
    if not outcome.ok:
        raise PurgeFailed(
            f"{len(outcome.stale)} URL(s) still stale and {len(outcome.errors)} unchecked "
            "after the purge (see above)"
        )
