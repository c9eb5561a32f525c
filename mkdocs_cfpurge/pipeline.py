"""The whole job, front-end neutral: built site → manifest → changes → plan → purge → commit.

The MkDocs plugin, the CLI and the watcher call these functions; nothing here imports mkdocs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mkdocs_cfpurge.build.atomic import write_atomic
from mkdocs_cfpurge.build.manifest import Manifest, build_manifest
from mkdocs_cfpurge.build.noise import make_normalizer
from mkdocs_cfpurge.deploy.origin import MARKER_NAME
from mkdocs_cfpurge.errors import CfPurgeError
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.auto import Budget
from mkdocs_cfpurge.plan.changes import diff
from mkdocs_cfpurge.plan.plan import Body, PurgePlan, build_plan, merge_requests
from mkdocs_cfpurge.plan.report import append_step_summary, markdown_summary, text_summary
from mkdocs_cfpurge.settings import Settings
from mkdocs_cfpurge.state import Pending, StateStore

if TYPE_CHECKING:  # httpx and pydantic load only when a purge really runs
    from mkdocs_cfpurge.cloudflare.client import CloudflareClient

ClientFactory = Callable[[Settings], "CloudflareClient"]


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
        raise CfPurgeError(
            f"site folder {str(site_dir)!r} holds no files (after 'exclude'): was the site built "
            "there?"
        )
    return manifest


def with_site_hosts(settings: Settings, site_dir: Path) -> Settings:
    """Add the custom domain a `CNAME` file in the site announces (GitHub Pages)."""
    try:
        lines = (site_dir / "CNAME").read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        return settings
    hosts = [h.lower() for h in lines[:1] if h.lower() not in settings.mapper().hosts]
    if not hosts:
        return settings
    log.info("cfpurge: %s/CNAME names %s: its URLs are purged too", site_dir.name, hosts[0])
    return replace(settings, hosts=(*settings.hosts, *hosts))


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
        changes = diff(old.files, new.files, old.resend)
        plan = build_plan(
            changes,
            mapper,
            strategy=settings.strategy,
            max_files_per_request=settings.max_files_per_request,
            zone_id=settings.zone_id,
            extra_urls=settings.extra_urls,
            old_files=old.files.keys(),
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


def hosts_of(requests: list[Body], site_hosts: tuple[str, ...]) -> list[str]:
    """Every host a purge touches: the site's, and those named in the bodies (extra URLs,
    pending or saved plans), so the zone check covers them all."""
    hosts = dict.fromkeys(site_hosts)
    for body in requests:
        for item in body.get("files", ()):
            url = item["url"] if isinstance(item, dict) else item
            hosts[urlsplit(url).netloc.lower()] = None
        for item in body.get("prefixes", ()):
            hosts[item.split("/", 1)[0].lower()] = None
        for item in body.get("hosts", ()):
            hosts[item.lower()] = None
    return list(hosts)


@dataclass
class PurgeResult:
    plan: PurgePlan
    requests_sent: int


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


def deploy(
    settings: Settings,
    new: Manifest | None,
    *,
    saved_plan: PurgePlan | None = None,
    baseline: Manifest | None = None,
    client_factory: ClientFactory | None = None,
) -> PurgeResult:
    """Purge what changed (and what is still owed), then commit the new manifest.

    With `new`, the plan is made again under the lock from the manifest on disk, so two runs can
    never both purge against the same baseline. With `saved_plan`, its bodies are sent as they
    are. `baseline` stands in for a missing local manifest (what the deployed branch publishes).
    Only when every request is confirmed is the manifest committed; otherwise what is not
    confirmed stays in `pending.json` and `PurgeIncomplete` is raised.
    """
    settings.require_purge_access()
    with StateStore(settings.manifest_path, str(settings.site)) as state:
        pending = state.load_pending()
        if new is not None:
            plan = make_plan(state.load_manifest() or baseline, new, settings, pending)
        else:
            assert saved_plan is not None
            plan = saved_plan
            plan.requests = merge_requests(
                pending.requests, plan.requests, max_files=settings.max_files_per_request
            )
        to_commit = new if new is not None else pending.next_manifest
        if plan.is_empty:
            state.commit(to_commit)
            return PurgeResult(plan, 0)
        with (client_factory or default_client)(settings) as client:
            if settings.verify_zone:
                client.check_zone(hosts_of(plan.requests, settings.mapper().hosts))
            state.save_pending(Pending(plan.requests, to_commit))
            from mkdocs_cfpurge.cloudflare.client import PurgeIncomplete

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


def save_pending_plan(settings: Settings, new: Manifest, baseline: Manifest | None = None) -> Path:
    """Keep this deploy's purge owed, for a later `mkdocs-cfpurge purge` (it cannot run now)."""
    with StateStore(settings.manifest_path, str(settings.site)) as state:
        pending = state.load_pending()
        plan = make_plan(state.load_manifest() or baseline, new, settings, pending)
        state.save_pending(Pending(plan.requests, new))
        return state.pending_path
