"""What may be sent: the one check every source of request bodies goes through.

A fresh plan, a saved plan (`purge --plan`), pending.json and a plan carried in a build's marker
are all input: each body must stay inside the site the settings describe (its hosts and path, or
`extra_urls`), within Cloudflare's caps, `purge_everything` only when allowed (plan/scope.py).
"""

from __future__ import annotations

from pathlib import Path

from mkdocs_cfpurge.errors import UsageError
from mkdocs_cfpurge.plan.bodies import Body, merge_requests
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.plan.scope import OutOfScope, Scope
from mkdocs_cfpurge.plan.urls import unicode_name
from mkdocs_cfpurge.settings import Settings
from mkdocs_cfpurge.state import Pending


def check_source(requests: list[Body], settings: Settings, where: str, way_out: str = "") -> None:
    """Refuse bodies that reach beyond the site `settings` describe (plan/scope.py).

    The one check every source of bodies goes through before anything is sent: a fresh plan, a
    saved plan, pending.json. `where` names the source in the message.
    """
    scope = Scope.of(
        settings.mapper(),
        settings.extra_urls,
        everything_allowed=settings.allow_purge_everything or settings.strategy == "everything",
    )
    try:
        scope.check(requests)
    except OutOfScope as exc:
        raise UsageError(f"{where}: {exc}; nothing was sent{way_out}") from None


def check_saved_plan(saved: PurgePlan, settings: Settings) -> None:
    """A saved plan is input, not code: it must be made for this site and zone, and each of its
    bodies pass `check_source`."""
    where = f"plan file {saved.source!r}" if saved.source else "the saved plan"
    if saved.site_url != str(settings.site):
        raise UsageError(
            f"{where} was made for site_url {saved.site_url!r:.200}, but the site_url given is "
            f"{str(settings.site)!r}; nothing was sent"
        )
    zone = saved.zone_id
    if zone is not None and settings.zone_id is not None and zone.lower() != settings.zone_id:
        raise UsageError(
            f"{where} was made for zone {zone!r:.80}, but the configured zone_id is "
            f"{settings.zone_id!r}; nothing was sent"
        )
    check_source(saved.requests, settings, where)


def pending_path(settings: Settings) -> Path:
    return settings.manifest_path.with_name("pending.json")


def add_owed(plan: PurgePlan, pending: Pending, settings: Settings) -> None:
    """Add to the plan what an earlier run still owes (checked like any other body), and show,
    once, the entries Cloudflare refused in the last run (they are never sent again)."""
    if pending.requests:
        where = f"pending file {str(pending_path(settings))!r}"
        way_out = (
            ". It was made under other options (hosts, schemes, extra_urls, "
            "allow_purge_everything): give those again, or delete the file (what it owes is "
            "then never sent: purge those pages by hand)"
        )
        check_source(pending.requests, settings, where, way_out)
        plan.requests = merge_requests(
            pending.requests, plan.requests, max_files=settings.max_files_per_request
        )
        plan.notes.append(
            f"includes {len(pending.requests)} request(s) still owed by an earlier run"
        )
    for refusal in pending.refused:
        plan.notes.append(
            f"not sent again: Cloudflare refused in the last run the {refusal.describe()}"
        )


def idn_notes(settings: Settings) -> list[str]:
    """Each internationalised host, in both its forms: the plan's URLs hold the ASCII one."""
    notes = []
    for host in settings.mapper().hosts:
        name = host.partition(":")[0] if not host.startswith("[") else host
        shown = unicode_name(name)
        if shown != name:
            notes.append(f"host {shown} is purged as {name} (its IDNA form, which cache keys hold)")
    return notes
