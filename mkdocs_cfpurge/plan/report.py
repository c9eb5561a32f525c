"""What a plan means for people: a short text summary, Markdown for pull requests and CI jobs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mkdocs_cfpurge.plan.bodies import purge_type
from mkdocs_cfpurge.plan.changes import Status
from mkdocs_cfpurge.plan.plan import PurgePlan

SHOWN_URLS = 5


def _counts(plan: PurgePlan) -> str:
    return ", ".join(f"{plan.count(status)} {status.value}" for status in Status)


def _kinds(plan: PurgePlan) -> str:
    kinds: dict[str, int] = {}
    for body in plan.requests:
        kinds[purge_type(body)] = kinds.get(purge_type(body), 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: a '|' in a file name would split the row."""
    return text.replace("|", "\\|").replace("\n", " ")


def first_urls(plan: PurgePlan, limit: int = SHOWN_URLS) -> list[str]:
    urls = [url for change in plan.changes for url in change.urls]
    return list(dict.fromkeys(urls))[:limit]


def text_summary(plan: PurgePlan, *, dry_run: bool) -> str:
    """A few lines for the build log."""
    head = "cfpurge (dry run)" if dry_run else "cfpurge"
    notes = [f"  note: {note}" for note in plan.notes]
    if not plan.changes and plan.is_empty:
        what = "nothing to purge" if plan.notes else "no output file changed; nothing to purge"
        return "\n".join([f"{head}: {what}", *notes])
    lines = [
        f"{head}: {len(plan.changes)} changed file(s) ({_counts(plan)}); "
        f"{len(plan.requests)} request(s) ({_kinds(plan) or 'none'}), strategy {plan.strategy}"
    ]
    shown = first_urls(plan)
    total = len({url for change in plan.changes for url in change.urls})
    lines += [f"  {url}" for url in shown]
    if total > len(shown):
        lines.append(f"  … and {total - len(shown)} more URL(s)")
    return "\n".join(lines + notes)


def markdown_summary(plan: PurgePlan, *, dry_run: bool) -> str:
    """A Markdown section for a pull request or a GitHub Actions job summary."""
    title = "Cloudflare purge plan" + (" (dry run)" if dry_run else "")
    lines = [f"### {title}", "", f"Site: `{plan.site_url}`, strategy `{plan.strategy}`", ""]
    if not plan.changes and plan.is_empty:
        notes = [f"> {note}" for note in plan.notes]
        what = "Nothing to purge." if plan.notes else "No output file changed: nothing to purge."
        return "\n".join([*lines, what, *notes, ""])
    lines += [
        f"**{len(plan.changes)}** changed file(s): {_counts(plan)}. "
        f"**{len(plan.requests)}** request(s): {_kinds(plan) or 'none'}.",
        "",
        "| file | status | reason | URLs |",
        "|---|---|---|---|",
    ]
    for change in plan.changes[:50]:
        urls = "<br>".join(f"`{_cell(url)}`" for url in change.urls[:4])
        more = f" (+{len(change.urls) - 4})" if len(change.urls) > 4 else ""
        lines.append(
            f"| `{_cell(change.path)}` | {change.status.value} | {_cell(change.describe())} "
            f"| {urls}{more} |"
        )
    if len(plan.changes) > 50:
        lines.append(f"| … | | {len(plan.changes) - 50} more file(s) | |")
    lines += [f"> {note}" for note in plan.notes]
    lines += ["", "<details><summary>Request bodies</summary>", "", "```json"]
    lines += [plan.to_json().decode().rstrip(), "```", "", "</details>", ""]
    return "\n".join(lines)


def append_step_summary(markdown: str, env: Mapping[str, str] = os.environ) -> Path | None:
    """Append to GitHub Actions' job summary when the job has one."""
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(markdown + "\n")
    return path


def append_outputs(values: Mapping[str, str], env: Mapping[str, str] = os.environ) -> Path | None:
    """Set GitHub Actions step outputs (`name=value` lines in $GITHUB_OUTPUT) when the step has
    them. Values are single lines: a newline would start another output."""
    target = env.get("GITHUB_OUTPUT")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        for name, value in values.items():
            handle.write(f"{name}={' '.join(value.splitlines())}\n")
    return path
