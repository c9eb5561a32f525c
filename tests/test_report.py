"""The report: log lines, plan JSON and Markdown beside it, the GitHub job summary."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.settings import Settings


def test_report_writes_json_markdown_and_the_job_summary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.create(
        site_url="https://docs.example.com/",
        manifest_path=tmp_path / "state" / "manifest.json",
        plan_path=tmp_path / "state" / "plan.json",
        strategy="files",
        dry_run=True,
        env={},
    )
    old = Manifest("https://docs.example.com/", {"guide/index.html": "a", "a|b.html": "a"})
    new = Manifest("https://docs.example.com/", {"guide/index.html": "b", "a|b.html": "b"})
    plan = pipeline.make_plan(old, new, settings)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")

    with caplog.at_level(logging.INFO, "mkdocs.plugins.cfpurge"):
        markdown = pipeline.report(plan, settings, {"GITHUB_STEP_SUMMARY": str(summary)})

    assert json.loads((tmp_path / "state" / "plan.json").read_bytes()) == plan.to_dict()
    assert (tmp_path / "state" / "plan.md").read_text() == markdown
    assert summary.read_text() == "earlier step\n" + markdown + "\n"
    assert "(dry run)" in markdown and "`a\\|b.html`" in markdown
    assert "https://docs.example.com/guide/" in markdown
    logged = caplog.text
    assert "2 changed file(s) (0 added, 2 modified, 0 deleted)" in logged
    assert "https://docs.example.com/guide/" in logged
