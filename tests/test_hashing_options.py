"""Noise from the plugins people use, and one set of hashing options for every command (issue
12): presets for mkdocs-git-revision-date-localized-plugin and mkdocs-rss-plugin, a hint that
names the preset the pages need, and a manifest that records the options it was hashed with."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mkdocs_cfpurge import freshness, pipeline
from mkdocs_cfpurge.build.manifest import Manifest, build_manifest, load_manifest
from mkdocs_cfpurge.build.marker import read_marker, write_marker
from mkdocs_cfpurge.build.noise import Hashing, make_normalizer
from mkdocs_cfpurge.cli import cli
from mkdocs_cfpurge.plugin import CfPurgePlugin
from mkdocs_cfpurge.state import Pending, StateStore
from tests.helpers import BIN, git, run_main, settings_for, subprocess_env, write_files

SITE_URL = "https://docs.example.com/"
PRESET = "git-revision-date-localized"


# --- the presets, on what the plugins write -------------------------------------------------


def span(kind: str, when: str, text: str) -> str:
    """One date as mkdocs-git-revision-date-localized-plugin 1.x writes it (util.add_spans)."""
    return (
        f'<span class="git-revision-date-localized-plugin git-revision-date-localized-plugin-'
        f'{kind}" title="{when}">{text}</span>'
    )


def timeago(when: str, iso: str) -> str:
    return span("timeago", when, f'<span class="timeago" datetime="{iso}" locale="en"></span>')


def minified(html: str) -> str:
    """As mkdocs-minify-plugin leaves it: no quotes around a value without spaces."""
    return html.replace('"timeago"', "timeago").replace('locale="en"', "locale=en")


def page(body: str, stamp: str) -> str:
    return f"<html><body><article>{body}</article><aside>{stamp}</aside></body></html>\n"


@pytest.mark.parametrize(
    "stamps",
    [
        (span("date", "May 1, 2026 10:00:00 UTC", "May 1, 2026"),
         span("date", "May 2, 2026 11:11:11 UTC", "May 2, 2026")),
        (span("iso_datetime", "May 1, 2026 10:00:00 UTC", "2026-05-01 10:00:00"),
         span("iso_datetime", "May 1, 2026 10:00:07 UTC", "2026-05-01 10:00:07")),
        (timeago("May 1, 2026 10:00:00 UTC", "2026-05-01T10:00:00+00:00")
         + span("iso_date", "May 1, 2026 10:00:00 UTC", "2026-05-01"),
         timeago("May 1, 2026 10:00:09 UTC", "2026-05-01T10:00:09+00:00")
         + span("iso_date", "May 1, 2026 10:00:09 UTC", "2026-05-01")),
        (span("custom", "1 mai 2026 10:00:00 UTC", "01. Mai 2026"),
         span("custom", "2 mai 2026 10:00:00 UTC", "02. Mai 2026")),
        # Minified (mkdocs-minify-plugin): the quotes a value without spaces needs not.
        (minified(timeago("May 1, 2026 10:00:00 UTC", "2026-05-01T10:00:00+00:00")),
         minified(timeago("May 3, 2026 10:00:00 UTC", "2026-05-03T10:00:00+00:00"))),
    ],
)  # fmt: skip
def test_the_preset_absorbs_every_date_the_plugin_writes_but_never_an_edit(
    tmp_path: Path, stamps: tuple[str, str]
) -> None:
    def hashes(name: str, html: str, ignore: list[str]) -> dict[str, str]:
        write_files(tmp_path / name, {"index.html": html})
        return build_manifest(tmp_path / name, SITE_URL, normalize=make_normalizer(ignore)).files

    first, later = stamps
    assert hashes("a", page("Hello", first), [PRESET]) == hashes(
        "b", page("Hello", later), [PRESET]
    )
    assert hashes("c", page("Hello", first), []) != hashes("d", page("Hello", later), [])
    edited = hashes("e", page("Hello!", later), [PRESET])
    assert edited != hashes("f", page("Hello", first), [PRESET])  # noise and an edit: a change


def test_the_rss_preset_absorbs_the_feed_build_dates_only(tmp_path: Path) -> None:
    """The channel head of mkdocs-rss-plugin's rss.xml.jinja2: its pubDate and lastBuildDate
    are the build time; an item's own date is not noise."""

    def feed(built: str, item_date: str) -> str:
        return (
            "<rss><channel><title>Docs</title>\n    <pubDate>" + built + "</pubDate>\n"
            "    <lastBuildDate>" + built + "</lastBuildDate>\n    <ttl>1440</ttl>\n"
            f"<item><title>A</title><pubDate>{item_date}</pubDate></item></channel></rss>\n"
        )

    normalize = make_normalizer(["rss-build-date"])
    assert normalize is not None
    one = normalize("feed_rss_created.xml", feed("Fri, 01 May 2026 10:00:00 -0000", "x").encode())
    two = normalize("feed_rss_created.xml", feed("Sat, 02 May 2026 09:00:00 -0000", "x").encode())
    assert one == two
    moved = normalize("feed_rss_created.xml", feed("Sat, 02 May 2026 09:00:00 -0000", "y").encode())
    assert moved != one


def test_the_hint_names_the_preset_the_pages_need_and_none_already_on() -> None:
    pages = {f"p{i}/index.html": "a" for i in range(20)}
    old = Manifest(SITE_URL, pages)
    new = Manifest(SITE_URL, dict.fromkeys(pages, "b"), noise_seen=(PRESET, "mkdocs-build-date"))
    hint = freshness.mass_change_hint(old, new, ["mkdocs-build-date"])
    assert hint is not None and "20 of 20 pages changed" in hint
    assert f"add the preset(s) {PRESET} to `ignore_changes`" in hint
    assert "mkdocs-build-date" not in hint
    quiet = Manifest(SITE_URL, dict.fromkeys(pages, "b"))
    generic = freshness.mass_change_hint(old, quiet, [PRESET])
    assert generic is not None and "no preset matches these pages; on: " + PRESET in generic
    assert "add the preset" not in generic


# --- one set of hashing options -------------------------------------------------------------

HASHING_COMMANDS = ["manifest", "mark", "plan", "purge", "watch", "purge-branch", "verify"]


@pytest.mark.parametrize("command", HASHING_COMMANDS)
def test_every_command_that_hashes_takes_the_same_hashing_flags(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "--exclude" in result.output and "--ignore-changes" in result.output


def test_the_plugin_takes_the_same_hashing_options() -> None:
    errors, _ = CfPurgePlugin().load_config({"exclude": ["*.map"], "ignore_changes": [PRESET]})
    assert errors == []


def test_the_manifest_records_its_hashing_options_and_old_manifests_still_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    write_files(site, {"index.html": "<p>home</p>", "a.map": "x"})
    out = tmp_path / "manifest.json"
    argv = ["manifest", str(site), "--site-url", SITE_URL, "--out", str(out)]
    code, _, err = run_main([*argv, "--ignore-changes", PRESET, "--exclude", "*.map"], capsys)
    assert code == 0, err
    data = json.loads(out.read_bytes())
    expected = Hashing(("*.map",), (PRESET,))
    assert data["hashing"] == expected.to_dict()
    assert set(data["files"]) == {"index.html"}
    # The fingerprint changes with any option, and with what a preset strips.
    assert expected.fingerprint() != Hashing(("*.map",), ()).fingerprint()
    assert expected.fingerprint() != Hashing((), (PRESET,)).fingerprint()

    del data["hashing"]  # a manifest of an earlier version
    out.write_text(json.dumps(data), encoding="utf-8")
    old = load_manifest(out, SITE_URL)
    assert old is not None and old.hashing is None
    settings = settings_for(tmp_path / "state", ignore_changes=[PRESET], exclude=["*.map"])
    plan = pipeline.make_plan(old, pipeline.scan(site, settings), settings)
    assert not any("hashing options" in note for note in plan.notes)
    assert plan.changes == []


def test_a_baseline_hashed_with_other_options_is_reported_and_what_follows(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    write_files(site, {"index.html": "<p>home</p>", "a.map": "x", "b/index.html": "<p>b</p>"})
    before = settings_for(tmp_path / "state", exclude=["*.map"])
    old = pipeline.scan(site, before)
    after = settings_for(tmp_path / "state", ignore_changes=[PRESET])
    plan = pipeline.make_plan(old, pipeline.scan(site, after), after)
    [note] = [n for n in plan.notes if "hashing options" in n]
    assert "exclude ['*.map'] → []" in note
    assert f"ignore_changes [] → ['{PRESET}']" in note
    assert "counts as changed once" in note and "no longer excluded counts as added" in note
    assert "newly excluded is left out on both sides" in note
    assert [(c.path, c.status.value) for c in plan.changes] == [("a.map", "added")]
    same = pipeline.make_plan(old, pipeline.scan(site, before), before)
    assert not any("hashing options" in n for n in same.notes)


# --- real builds: Material and mkdocs-git-revision-date-localized-plugin ----------------------

PAGES = {
    f"section{i}/page{j}.md": f"# Page {i}.{j}\n\nText {i}.{j}.\n"
    for i in range(3)
    for j in range(4)
}
PAGES["index.md"] = "# Home\n\nWelcome.\n"


def revision_project(root: Path, date_type: str) -> Path:
    """A Material project using the plugin the way its README shows, with the build date
    fallback, in a git repository whose pages are not committed yet: every date it writes is
    the build time."""
    write_files(root / "docs", PAGES)
    plugin: dict[str, Any] = {
        "fallback_to_build_date": True,
        "enable_creation_date": True,
        "type": date_type,
    }
    if date_type == "custom":
        plugin["custom_format"] = "%d. %B %Y %H:%M:%S"
    config = {
        "site_name": "Dates",
        "site_url": SITE_URL,
        "theme": {"name": "material", "features": ["search.highlight"]},
        "plugins": ["search", {"git-revision-date-localized": plugin}],
    }
    (root / "mkdocs.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", "mkdocs.yml")
    git(root, "commit", "-qm", "config only: the pages have no history yet")
    return root


def mkdocs_build(project: Path, into: Path) -> Path:
    # No SOURCE_DATE_EPOCH: the build as CI runs it (the sitemaps carry the build time).
    done = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--site-dir", str(into)],
        cwd=project,
        env=subprocess_env(SOURCE_DATE_EPOCH=None, NO_MKDOCS_2_WARNING="1"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return into


@pytest.mark.slow
@pytest.mark.parametrize("date_type", ["timeago", "datetime", "custom"])
def test_two_builds_without_a_content_change_plan_nothing_beyond_the_sitemaps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], date_type: str
) -> None:
    project = revision_project(tmp_path / "project", date_type)
    first = mkdocs_build(project, tmp_path / "first")
    stamp = first / "section0" / "page0" / "index.html"
    assert b"git-revision-date-localized-plugin" in stamp.read_bytes()  # Material shows it
    time.sleep(1.1)  # the plugin's dates count seconds
    second = mkdocs_build(project, tmp_path / "second")
    assert stamp.read_bytes() != (second / "section0" / "page0" / "index.html").read_bytes()

    manifest = tmp_path / "manifest.json"
    site = ["--site-url", SITE_URL]
    ignore = ["--ignore-changes", PRESET]
    assert (
        run_main(["manifest", str(first), *site, *ignore, "--out", str(manifest)], capsys)[0] == 0
    )
    argv = ["plan", str(second), *site, "--manifest", str(manifest), "--format", "json"]

    code, out, err = run_main([*argv, *ignore], capsys)
    assert code == 0, err
    plan = json.loads(out)
    assert {c["path"] for c in plan["changes"]} <= {"sitemap.xml", "sitemap.xml.gz"}
    assert not any("hashing options" in note or "pages changed" in note for note in plan["notes"])

    # The same plan without the option: the baseline's options differ, and the plan says so;
    # every page differs, and the hint names the preset that absorbs it.
    code, out, err = run_main(argv, capsys)
    assert code == 0, err
    plan = json.loads(out)
    changed = {c["path"] for c in plan["changes"]}
    assert {f"section{i}/page{j}/index.html" for i in range(3) for j in range(4)} <= changed
    notes = " ".join(plan["notes"])
    assert f"ignore_changes ['{PRESET}'] → []" in notes
    assert f"add the preset(s) {PRESET} to `ignore_changes`" in notes


@pytest.mark.slow
def test_outside_any_repository_the_build_date_fallback_is_absorbed_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No git history to read at all: only `fallback_to_build_date` lets the build through."""
    project = revision_project(tmp_path / "project", "iso_datetime")
    shutil.rmtree(project / ".git")
    first = mkdocs_build(project, tmp_path / "first")
    time.sleep(1.1)
    second = mkdocs_build(project, tmp_path / "second")
    manifest = tmp_path / "manifest.json"
    site = ["--site-url", SITE_URL, "--ignore-changes", PRESET]
    assert run_main(["manifest", str(first), *site, "--out", str(manifest)], capsys)[0] == 0
    code, out, err = run_main(
        ["plan", str(second), *site, "--manifest", str(manifest), "--format", "json"], capsys
    )
    assert code == 0, err
    assert {c["path"] for c in json.loads(out)["changes"]} <= {"sitemap.xml", "sitemap.xml.gz"}


def test_the_hashing_options_survive_a_purge_left_pending(tmp_path: Path) -> None:
    """A manifest committed from pending.json (the purge finished on a later run) keeps them."""
    site = tmp_path / "site"
    write_files(site, {"index.html": "<p>home</p>"})
    settings = settings_for(tmp_path / "state", ignore_changes=[PRESET])
    new = pipeline.scan(site, settings)
    with StateStore(settings.manifest_path, SITE_URL) as state:
        state.save_pending(Pending([{"files": [SITE_URL]}], new))
    with StateStore(settings.manifest_path, SITE_URL) as state:
        state.commit(state.load_pending().next_manifest)
    committed = load_manifest(settings.manifest_path, SITE_URL)
    assert committed is not None and committed.hashing == Hashing((), (PRESET,)).to_dict()


def test_the_build_marker_carries_the_hashing_options_to_the_next_deploy(tmp_path: Path) -> None:
    """A runner that keeps no state takes its baseline from the live marker: the marker must say
    how its hashes were made, or a change of ignore_changes would pass unnoticed."""
    site = tmp_path / "site"
    write_files(site, {"index.html": "<p>home</p>", "a.map": "x"})
    before = settings_for(tmp_path / "state", exclude=["*.map"])
    built = pipeline.scan(site, before)
    write_marker(site, built)
    marker = read_marker(site)
    assert marker is not None and marker.manifest.hashing == built.hashing is not None
    after = settings_for(tmp_path / "state", ignore_changes=[PRESET])
    plan = pipeline.make_plan(marker.manifest, pipeline.scan(site, after), after)
    assert any("hashed with other hashing options" in note for note in plan.notes)
