"""Class 9 of issue 13: `CFPURGE_DRY_RUN` never fails open.

Its usual yes spellings make a dry run (nothing sent), its no spellings let the purge go, and
anything else (`2`, `maybe`) is refused with exit 2 naming the variable, before anything is sent:
in the CLI (a real subprocess) and in the plugin (a real `mkdocs build` that purges).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from mkdocs.exceptions import Abort

from mkdocs_cfpurge.localcf import LocalCloudflare
from tests.helpers import (
    MANIFEST_FILE,
    TOKEN,
    ZONE_ID,
    make_site,
    run_build,
    subprocess_env,
    write_files,
)

pytestmark = pytest.mark.slow  # a subprocess or a real build per spelling: seconds in all
SITE_URL = "https://docs.example.com/"
YES = ["1", "y", "Yes", "TRUE", "on"]
NO = ["0", "n", "No", "false", "off", ""]
NEITHER = ["2", "maybe", "enable", "yes please", "-1"]


def posts(cf: LocalCloudflare) -> list[object]:
    return [r for r in cf.requests if r["method"] == "POST"]


@pytest.fixture
def changed_site(tmp_path: Path) -> tuple[Path, Path]:
    site, manifest = tmp_path / "site", tmp_path / "state" / "manifest.json"
    write_files(site, {"index.html": "v1"})
    command = ["manifest", str(site), "--site-url", SITE_URL, "--out", str(manifest)]
    subprocess.run([sys.executable, "-m", "mkdocs_cfpurge", *command], check=True)
    write_files(site, {"index.html": "v2"})
    return site, manifest


def cli(
    site: Path, manifest: Path, cf: LocalCloudflare, value: str
) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(
        CLOUDFLARE_API_TOKEN=TOKEN,
        CLOUDFLARE_ZONE_ID=ZONE_ID,
        CLOUDFLARE_API_BASE=cf.api_base,
        CFPURGE_DRY_RUN=value,
    )
    argv = ["purge", str(site), "--site-url", SITE_URL, "--manifest", str(manifest)]
    return subprocess.run(
        [sys.executable, "-m", "mkdocs_cfpurge", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("value", [*YES, *NO, *NEITHER])
def test_cli(value: str, changed_site: tuple[Path, Path], cf: LocalCloudflare) -> None:
    site, manifest = changed_site
    before = manifest.read_bytes()
    done = cli(site, manifest, cf, value)
    if value in NEITHER:
        assert done.returncode == 2, done.stderr
        assert f"variable CFPURGE_DRY_RUN={value!r} is not a yes/no value" in done.stderr
        assert posts(cf) == [] and manifest.read_bytes() == before
    elif value in YES:
        assert done.returncode == 0, done.stderr
        assert "dry run" in done.stderr and posts(cf) == [] and manifest.read_bytes() == before
    else:
        assert done.returncode == 0, done.stderr
        assert len(posts(cf)) == 1 and manifest.read_bytes() != before


@pytest.mark.parametrize("value", ["y", "2", "n"])
def test_plugin(
    value: str, tmp_path: Path, cf: LocalCloudflare, caplog: pytest.LogCaptureFixture
) -> None:
    options = {"zone_id": ZONE_ID, "purge_on": ["build"], "api_base": cf.api_base}
    config_file = make_site(tmp_path, site_url=SITE_URL, options=options)
    env = {"CLOUDFLARE_API_TOKEN": TOKEN, "SOURCE_DATE_EPOCH": "1700000000"}
    run_build(config_file, env)  # the first deploy: records the baseline, sends nothing
    manifest = tmp_path / MANIFEST_FILE
    before = manifest.read_bytes()
    write_files(tmp_path / "docs", {"about.md": "# About\n\nChanged.\n"})
    env["CFPURGE_DRY_RUN"] = value
    if value == "2":
        with caplog.at_level(logging.ERROR), pytest.raises(Abort):
            run_build(config_file, env)
        assert "variable CFPURGE_DRY_RUN='2' is not a yes/no value" in caplog.text
        assert posts(cf) == [] and manifest.read_bytes() == before
    else:
        run_build(config_file, env)
        assert (len(posts(cf)) == 1) is (value == "n")
        assert (manifest.read_bytes() == before) is (value == "y")
