"""`ignore_changes`: build noise absorbed, real edits never hidden (issue 5)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mkdocs_cfpurge.build.manifest import Manifest, build_manifest
from mkdocs_cfpurge.build.noise import PRESETS, make_normalizer
from mkdocs_cfpurge.errors import CfPurgeError
from mkdocs_cfpurge.pipeline import mass_change_hint
from tests.helpers import make_site, read_plan, run_build, write_files

PRESET_NAMES = ["mkdocs-build-date", "sitemap-lastmod"]


def page(date: str, body: str) -> str:
    return (
        f"<html><body><p>{body}</p>\n<!--\nMkDocs version : 1.6.1\n"
        f"Build Date UTC : {date}\n-->\n</body></html>\n"
    )


def sitemap(day: str) -> str:
    return f"<urlset><url><loc>https://e.com/</loc><lastmod>{day}</lastmod></url></urlset>\n"


def hashes(root: Path, files: dict[str, str | bytes], ignore: list[str]) -> dict[str, str]:
    write_files(root, files)
    normalize = make_normalizer(ignore)
    return build_manifest(root, "https://e.com/", normalize=normalize).files


def test_build_date_noise_is_ignored_but_a_real_edit_is_not(tmp_path: Path) -> None:
    first = hashes(tmp_path / "a", {"index.html": page("2026-01-01 10:00", "Hello")}, PRESET_NAMES)
    noise = hashes(tmp_path / "b", {"index.html": page("2026-01-02 11:11", "Hello")}, PRESET_NAMES)
    edit = hashes(tmp_path / "c", {"index.html": page("2026-01-02 11:11", "Hello!")}, PRESET_NAMES)
    assert noise == first
    assert edit != first  # noise AND a real edit: still a change


def test_without_the_preset_the_build_date_is_a_change(tmp_path: Path) -> None:
    first = hashes(tmp_path / "a", {"index.html": page("2026-01-01 10:00", "Hello")}, [])
    noise = hashes(tmp_path / "b", {"index.html": page("2026-01-02 11:11", "Hello")}, [])
    assert noise != first


def test_sitemap_lastmod_and_its_gzip_twin_are_compared_without_the_date(tmp_path: Path) -> None:
    def files(day: str, loc_extra: str = "", mtime: int = 0) -> dict[str, str | bytes]:
        xml = sitemap(day).replace("</loc>", f"{loc_extra}</loc>")
        return {
            "sitemap.xml": xml,
            "sitemap.xml.gz": gzip.compress(xml.encode(), mtime=mtime),
        }

    first = hashes(tmp_path / "a", files("2026-01-01", mtime=1), PRESET_NAMES)
    noise = hashes(tmp_path / "b", files("2026-01-02", mtime=2), PRESET_NAMES)
    edit = hashes(tmp_path / "c", files("2026-01-02", "new/", mtime=2), PRESET_NAMES)
    assert noise == first
    assert edit["sitemap.xml"] != first["sitemap.xml"]
    assert edit["sitemap.xml.gz"] != first["sitemap.xml.gz"]


def test_binary_files_are_hashed_as_they_are(tmp_path: Path) -> None:
    data = b"\x89PNG <lastmod>x</lastmod>"
    got = hashes(tmp_path, {"logo.png": data}, PRESET_NAMES)
    import hashlib

    assert got["logo.png"] == hashlib.sha256(data).hexdigest()


def test_a_custom_regex_is_applied_and_a_bad_one_names_the_option() -> None:
    normalize = make_normalizer([r'<meta name="commit" content="[0-9a-f]+">'])
    assert normalize is not None
    a = normalize("x.html", b'<meta name="commit" content="abc123"><p>t</p>')
    b = normalize("x.html", b'<meta name="commit" content="def456"><p>t</p>')
    assert a == b
    with pytest.raises(CfPurgeError, match="ignore_changes"):
        make_normalizer(["(unclosed"])
    assert set(PRESET_NAMES) <= set(PRESETS)


def test_real_mkdocs_builds_on_two_days_purge_only_the_edited_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mkdocs theme stamps the build time in every page, sitemap lastmod the day: with the
    presets, two builds a day apart purge exactly the edited page and the search index."""
    config = make_site(tmp_path, options={"ignore_changes": PRESET_NAMES, "dry_run": True})
    env = {"CFPURGE_DRY_RUN": "1"}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    built = run_build(config, env)
    from mkdocs_cfpurge import pipeline
    from mkdocs_cfpurge.plugin import settings_from_config

    settings = settings_from_config(
        built.plugins["cfpurge"].config,
        built,
        env,
    )
    pipeline.scan(Path(built.site_dir), settings).save(settings.manifest_path)

    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(1700000000 + 86400 + 3600))
    write_files(tmp_path / "docs", {"about.md": "# About\n\nWho we are, now.\n"})
    run_build(config, env)

    changed = {c["path"] for c in read_plan(tmp_path)["changes"]}
    assert changed == {"about/index.html", "search/search_index.json"}
    site = Path(built.site_dir)
    assert b"Build Date UTC" in (site / "index.html").read_bytes()  # the noise was there


def test_mass_change_hint_names_the_likely_causes() -> None:
    pages = {f"p{i}/index.html": "a" for i in range(20)}
    old = Manifest("https://e.com/", pages)
    most = Manifest("https://e.com/", {**pages, **{f"p{i}/index.html": "b" for i in range(15)}})
    few = Manifest("https://e.com/", {**pages, "p0/index.html": "b"})
    added = Manifest("https://e.com/", {**pages, **{f"n{i}/index.html": "b" for i in range(40)}})
    hint = mass_change_hint(old, most)
    assert hint is not None and "15 of 20 pages" in hint and "ignore_changes" in hint
    assert "navigation" in hint
    assert mass_change_hint(old, few) is None
    assert mass_change_hint(old, added) is None  # new pages alone are no sign of noise
