"""The use case, front-end neutral: built site → manifest → changes → plan → purge → commit.

Two entry points, one for each moment of a deploy:

- `prepare(site_dir, settings)` right after the build: hash the output, find the baseline (local
  manifest → deployed branch → live marker → none), plan against it, write the build marker
  (with the plan this deploy owes) and report the plan;
- `purge(settings, source)` once the deploy is done: dry run or not, wait for the origin (or keep
  the purge pending), check the zone, send, commit the manifest, report. `source` is a built
  manifest, a prepared build (or one read back from its marker: `read_build`), a saved plan, or
  None for what is pending.

The MkDocs plugin, the CLI, the watcher and the deploy flows (gh-deploy, purge-branch) only
gather their inputs and call these; nothing here imports mkdocs or a front end.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mkdocs_cfpurge.baselines import (
    AnyBaseline,
    BranchBaseline,
    comparable_files,
    current_baseline,
    find_baseline,
    no_baseline_note,
)
from mkdocs_cfpurge.build.atomic import write_atomic
from mkdocs_cfpurge.build.manifest import (
    Manifest,
    build_manifest,
    compile_excludes,
    iter_site_files,
)
from mkdocs_cfpurge.build.marker import MARKER_NAME, read_marker, write_marker
from mkdocs_cfpurge.build.noise import make_normalizer, presets_in, sampled_pages
from mkdocs_cfpurge.errors import PurgeFailed, PurgeIncomplete, UsageError
from mkdocs_cfpurge.freshness import (
    QueryVariants,
    apply_cache_rules,
    hashing_note,
    hashing_of,
    read_cache_rules,
    unread_cache_rules,
)
from mkdocs_cfpurge.freshness import (
    mass_change_hint as mass_change_hint,  # where it always was, for callers
)
from mkdocs_cfpurge.guard import add_owed, check_saved_plan, check_source, idn_notes
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.auto import Budget
from mkdocs_cfpurge.plan.baseline import Baseline, BaselineSource
from mkdocs_cfpurge.plan.bodies import Body, hosts_of, merge_requests
from mkdocs_cfpurge.plan.cacherules import (
    CacheRulesCheck,
    SiteFiles,
)
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
EVERYTHING: Body = {"purge_everything": True}


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
    manifest.hashing = hashing_of(settings).to_dict()
    manifest.noise_seen = tuple(presets_in(sampled_pages(site_dir, manifest.files)))
    return manifest


def read_site(site_dir: Path, settings: Settings) -> tuple[Settings, Manifest]:
    """The settings with the hosts the site's own `CNAME` announces, and the site's manifest."""
    settings = site_settings(site_dir, settings)
    return settings, scan(site_dir, settings)


def site_settings(site_dir: Path, settings: Settings) -> Settings:
    """The settings with the hosts the site's own `CNAME` announces."""
    if not site_dir.is_dir():
        raise UsageError(f"site folder {str(site_dir)!r} does not exist or is not a folder")
    try:
        cname: bytes | None = (site_dir / "CNAME").read_bytes()
    except OSError:
        cname = None
    return settings.with_cname(cname, f"{site_dir.name}/CNAME")


# --- the plan ------------------------------------------------------------------------------


def make_plan(
    old: Manifest | None,
    new: Manifest,
    settings: Settings,
    pending: Pending | None = None,
    *,
    rules: CacheRulesCheck | None = None,
    baseline: Baseline | None = None,
) -> PurgePlan:
    """The plan from the last deploy's manifest to this build's, plus what is still owed, under
    the zone's cache rules when they were read.

    `baseline` says where `old` came from (or why there is none): the plan states it.
    """
    mapper = settings.mapper()
    variants = QueryVariants.decide(settings, rules.rules if rules is not None else None)
    if old is None:
        plan = build_plan([], mapper, strategy=settings.strategy, zone_id=settings.zone_id)
        plan.notes.append(no_baseline_note(baseline, new, settings))
        if baseline is not None and baseline.unknown and settings.allow_purge_everything:
            plan.requests, plan.strategy = [dict(EVERYTHING)], "everything"
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
            query_variants=variants.needed,
        )
        variants.record(plan)
    if baseline is not None:
        plan.baseline = baseline
        # The local manifest is the usual case: the plan's `baseline` field says it, no note.
        if old is not None and baseline.source is not BaselineSource.LOCAL_MANIFEST:
            plan.notes.insert(0, baseline.describe())
    for note in (hashing_note(old, new), mass_change_hint(old, new, settings.ignore_changes)):
        if note:
            plan.notes.append(note)
    plan.notes += idn_notes(settings)
    check_source(plan.requests, settings, "the plan")
    if pending is not None:
        add_owed(plan, pending, settings)
    if rules is not None:
        files = set(new.files) | (set(old.files) if old is not None else set())
        changed = {change.path for change in plan.changes}
        apply_cache_rules(plan, settings, rules, SiteFiles(mapper, files, changed))
    return plan


def preview(
    settings: Settings,
    new: Manifest,
    baseline: AnyBaseline = None,
    rules: CacheRulesCheck | None = None,
) -> PurgePlan:
    """The plan a deploy of `new` would send, reading the state but changing nothing."""
    store = StateStore(settings.manifest_path, str(settings.site))
    current = current_baseline(store, baseline)
    return make_plan(
        current.manifest, new, settings, store.load_pending(), rules=rules, baseline=current
    )


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
    """What a build knows before its deploy: its manifest, its plan and the baseline that plan
    was made against (a deployed branch's or the origin's, read before the deploy).

    `from_marker`: read back from the marker in the built folder by a later job (`read_build`):
    the plan is what the build owes, not yet reported here, and the baseline's manifest is not
    at hand. `live`: the origin may be asked again at purge time when the build found no
    baseline.
    """

    settings: Settings
    manifest: Manifest
    plan: PurgePlan
    baseline: Baseline | None = None
    from_marker: bool = False
    live: bool = False


def prepare(
    site_dir: Path,
    settings: Settings,
    *,
    baseline: BranchBaseline | None = None,
    live: bool | None = None,
    env: Mapping[str, str] = os.environ,
) -> PreparedBuild:
    """Hash the built site, find the baseline, plan against it, write the build marker (with the
    plan this deploy owes) and report.

    `baseline` (a deployed branch) and `live` (the marker the origin serves) are the sources the
    front end says apply; they are asked only when there is no local manifest. `live` defaults
    to the `live_baseline` option.
    """
    settings, manifest = read_site(site_dir, settings)
    live = settings.live_baseline if live is None else live
    found = find_baseline(settings, manifest, branch=baseline, live=live)
    # A deploy's purge reads the zone's cache rules right before sending; a dry run says it
    # did not.
    rules = unread_cache_rules(settings) if settings.dry_run else None
    plan = preview(settings, manifest, found, rules)
    # With no baseline, every file may have changed: the next deploy resends them all.
    owed = list(manifest.files) if found.unknown else owed_paths(plan)
    write_marker(site_dir, manifest, owed, carried_plan(plan))
    report(plan, settings, env)
    return PreparedBuild(settings, manifest, plan, found, live=live)


def carried_plan(plan: PurgePlan) -> dict[str, Any]:
    """The plan as the marker carries it: published with the site, so without the zone id."""
    return {**plan.to_dict(), "zone_id": None}


def read_build(site_dir: Path, settings: Settings) -> tuple[Settings, Manifest | PreparedBuild]:
    """A built folder as the purge step after its deploy sees it: the build its marker records
    (manifest and owed plan, as made at build time, maybe on another runner) when the marker
    carries a plan; else the folder's manifest, hashed now."""
    settings = site_settings(site_dir, settings)
    marker = read_marker(site_dir)
    if marker is None or marker.purge is None:
        return settings, scan(site_dir, settings)
    where = f"{str(site_dir / MARKER_NAME)!r}"
    if marker.site_url != str(settings.site):
        raise UsageError(
            f"{where} was made for site_url {marker.site_url!r}, not {str(settings.site)!r}"
        )
    try:
        plan = PurgePlan.from_dict(marker.purge)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{where} carries an invalid plan: {exc}") from None
    missing = [path for path in marker.manifest.files if not (site_dir / path).is_file()]
    if missing:
        raise UsageError(
            f"{where} lists {len(missing)} file(s) the folder does not hold (first: "
            f"{missing[0]!r}): it belongs to another build; build again, or run "
            "`mkdocs-cfpurge mark` on this folder"
        )
    present = iter_site_files(site_dir, compile_excludes([*settings.exclude, f"/{MARKER_NAME}"]))
    unmarked = [path for path in present if path not in marker.manifest.files]
    if unmarked:
        log.warning(
            "cfpurge: %d file(s) of %s are not in its marker (written after it, or excluded at "
            "build time), so their changes are not purged: %s",
            len(unmarked),
            site_dir,
            ", ".join(unmarked[:3]) + (" …" if len(unmarked) > 3 else ""),
        )
    plan.zone_id = settings.zone_id
    baseline = plan.baseline or Baseline(BaselineSource.NONE, where, "the marker names none")
    log.info("cfpurge: the plan this build owes comes from its marker; %s", baseline.describe())
    return settings, PreparedBuild(
        settings, marker.manifest, plan, baseline, from_marker=True, live=True
    )


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
        purge_timeout=settings.purge_timeout,
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
    found: AnyBaseline = baseline
    if prepared is not None:
        settings, found = prepared.settings, prepared.baseline
    new = prepared.manifest if prepared is not None else source
    saved = source if isinstance(source, PurgePlan) else None
    if not isinstance(new, Manifest):
        new = None
    if saved is not None:
        check_saved_plan(saved, settings)
    if settings.dry_run:
        return _dry_run(settings, prepared, new, saved, found, env)
    settings.require_purge_access()
    if prepared is not None and prepared.live:
        found = look_again(prepared)
    carried = prepared.plan if prepared is not None and prepared.from_marker else None
    waited = None
    if origin_ready is not None:
        try:
            waited = origin_ready()
        except PurgeFailed:
            if new is not None:
                defer(settings, new, found, carried)
            raise
    result = _send(settings, new, saved, found, client_factory, carried)
    result.waited = waited
    if prepared is None or prepared.from_marker or result.plan.requests != prepared.plan.requests:
        report(result.plan, settings, env)  # what was sent, when it differs from what was shown
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
    baseline: AnyBaseline,
    env: Mapping[str, str],
) -> PurgeResult:
    if prepared is not None:
        plan = prepared.plan  # made when the build was prepared (and reported then, unless read
        if prepared.from_marker:  # back from its marker by a later job)
            report(plan, settings, env)
    else:
        rules = unread_cache_rules(settings)
        if new is not None:
            plan = preview(settings, new, baseline, rules)
        else:
            pending = StateStore(settings.manifest_path, str(settings.site)).load_pending()
            plan = saved or PurgePlan(str(settings.site), settings.zone_id, [], [])
            add_owed(plan, pending, settings)
            if rules is not None:  # never read in a dry run: only its note is added
                apply_cache_rules(plan, settings, rules)
        report(plan, settings, env)
    where = f"; plan written to {settings.plan_path}" if settings.plan_path else ""
    log.info("cfpurge: dry run%s, nothing sent", where)
    return PurgeResult(plan, 0, dry_run=True)


def _send(
    settings: Settings,
    new: Manifest | None,
    saved: PurgePlan | None,
    baseline: AnyBaseline,
    client_factory: ClientFactory | None,
    carried: PurgePlan | None = None,
) -> PurgeResult:
    """Under the lock: plan (again, from the manifest on disk, so two runs never both purge
    against one baseline), check the zone, keep what is owed, send, commit."""
    with StateStore(settings.manifest_path, str(settings.site)) as state:
        pending = state.load_pending()
        current = current_baseline(state, baseline)
        if new is not None:
            plan = owed_plan(current, new, settings, pending, carried)
        else:
            plan = saved or PurgePlan(str(settings.site), settings.zone_id, [], [])
            add_owed(plan, pending, settings)
        to_commit = new if new is not None else pending.next_manifest
        recorded = new is not None and current.source is BaselineSource.NONE
        if plan.is_empty:
            state.commit(to_commit)
            return PurgeResult(plan, 0, baseline_recorded=recorded)
        with (client_factory or default_client)(settings) as client:
            if settings.verify_zone:
                # Every host the purge names: the site's, and those of extra URLs, pending or
                # saved plans.
                hosts = dict.fromkeys([*settings.mapper().hosts, *hosts_of(plan.requests)])
                client.check_zone(list(hosts))
            if settings.check_cache_rules:
                rules = read_cache_rules(client)
                if new is not None:
                    plan = owed_plan(current, new, settings, pending, carried, rules)
                else:
                    apply_cache_rules(plan, settings, rules, to_commit or current.manifest)
            state.save_pending(Pending(plan.requests, to_commit))
            try:
                sent = client.purge_all(plan.requests)
            except PurgeIncomplete as exc:
                state.save_pending(Pending(exc.unsent, to_commit, list(client.refused)))
                log.error(
                    "cfpurge: %d request(s) still owed are saved in %s; the next run sends them",
                    len(exc.unsent),
                    state.pending_path,
                )
                raise
            refused = list(client.refused)
        state.commit(to_commit)
        if refused:
            # Everything else went out: the manifest is committed, so a refused entry never
            # holds up a later deploy. It is kept apart to be shown once more, then dropped.
            state.save_pending(Pending([], None, refused))
            raise PurgeFailed(
                f"Cloudflare refused {len(refused)} entr{'y' if len(refused) == 1 else 'ies'} "
                f"(each listed above; the first: {refused[0].describe()}); everything else was "
                f"purged and the manifest committed. They are recorded in {state.pending_path}, "
                "shown in the next plan and never sent again",
                codes=tuple(r.code for r in refused if r.code is not None),
                status=400,
            )
        log.info("cfpurge: purge complete (%d request(s)); manifest committed", sent)
        return PurgeResult(plan, sent)


def owed_plan(
    current: Baseline,
    new: Manifest,
    settings: Settings,
    pending: Pending,
    carried: PurgePlan | None = None,
    rules: CacheRulesCheck | None = None,
) -> PurgePlan:
    """What a deploy of `new` owes, with what is pending: the plan against `current`, or the
    plan the build carried in its marker when the baseline's manifest is not at hand here;
    under the zone's cache rules when they were read.

    With no baseline at all, only the whole zone is a purge that cannot miss anything: sent when
    `allow_purge_everything` (here or at build time) allows it, else PurgeFailed (exit 1).
    """
    if carried is None:
        plan = make_plan(current.manifest, new, settings, pending, rules=rules, baseline=current)
    else:
        # The marker came with the folder: input, checked like a saved plan.
        where = f"the plan carried in the site's {MARKER_NAME}"
        check_source(carried.requests, settings, where)
        if current.manifest is None:
            plan = replace(carried, requests=list(carried.requests), notes=list(carried.notes))
            add_owed(plan, pending, settings)
        else:
            # The build planned with options this front end may not have (mkdocs.yml's hosts,
            # the theme's query-string links): what it owes stays owed, with what changed since
            # the manifest here (the two differ when another deploy came between).
            plan = make_plan(current.manifest, new, settings, pending, baseline=current)
            plan.requests = merge_requests(
                plan.requests, carried.requests, max_files=settings.max_files_per_request
            )
            plan.notes.append(f"includes {where} (made with the build's options)")
        if rules is not None:
            apply_cache_rules(plan, settings, rules, new)
    if current.unknown:
        if settings.allow_purge_everything:
            plan.requests, plan.strategy = [dict(EVERYTHING)], "everything"
        if not any("purge_everything" in body for body in plan.requests):
            raise PurgeFailed(
                f"no baseline to compare this build with ({current.detail}): nothing purged, "
                "nothing recorded. Set allow_purge_everything (--allow-purge-everything) to "
                f"purge the whole zone, keep {str(settings.manifest_path)!r} between runs, or "
                f"make the origin ({settings.origin_base}) readable where the site is built"
            )
    return plan


def look_again(prepared: PreparedBuild) -> Baseline | None:
    """A build that found no baseline (its origin could not be read) asks the origin once more,
    before the deploy is published there: what it serves then is the baseline after all."""
    baseline, settings = prepared.baseline, prepared.settings
    if baseline is None or not baseline.unknown or settings.manifest_path.exists():
        return baseline
    from mkdocs_cfpurge.deploy.live import read_live_marker

    served = read_live_marker(settings.origin_base, str(settings.site))
    if served.digest is not None and served.digest == prepared.manifest.digest():
        log.warning(
            "cfpurge: no baseline: the origin already serves this build, so what it replaced "
            "is unknown"
        )
        return baseline
    if served.unknown:
        log.warning("cfpurge: still no baseline: %s", served.detail)
        return baseline
    log.info("cfpurge: the build found no baseline; at purge time, %s", served.describe())
    return served


def defer(
    settings: Settings,
    new: Manifest,
    baseline: AnyBaseline = None,
    carried: PurgePlan | None = None,
) -> Path | None:
    """Keep this build's purge owed for a later run (the origin never served the build, or the
    deploy could not be followed); return the pending file (None in a dry run: it keeps
    nothing, and with no baseline there is nothing known to keep)."""
    if settings.dry_run:
        return None
    with StateStore(settings.manifest_path, str(settings.site)) as state:
        pending = state.load_pending()
        try:
            plan = owed_plan(current_baseline(state, baseline), new, settings, pending, carried)
        except PurgeFailed as exc:
            log.error("cfpurge: nothing kept pending: %s", exc)
            return None
        state.save_pending(Pending(plan.requests, new, pending.refused))
    log.error(
        "cfpurge: the purge is kept as pending in %s; once the origin serves this build, send it "
        "with: %s",
        state.pending_path,
        purge_pending_command(settings),
    )
    return state.pending_path


def purge_pending_command(settings: Settings) -> str:
    """The CLI command that sends what is pending, with every option that widens the site's
    scope (pending.json is checked against it, like any plan: check_source)."""
    words = ["mkdocs-cfpurge", "purge", "--manifest", str(settings.manifest_path)]
    words += ["--site-url", str(settings.site)]
    words += [word for host in settings.hosts for word in ("--host", host)]
    words += [word for scheme in settings.schemes for word in ("--scheme", scheme)]
    words += [word for url in settings.extra_urls for word in ("--extra-url", url)]
    if settings.allow_purge_everything:
        words.append("--allow-purge-everything")
    if settings.strategy == "everything":
        words += ["--strategy", "everything"]
    return shlex.join(words)


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
