"""The zone check tells a token Cloudflare refuses from a valid token without Zone Read, with at
most one extra request (`GET /user/tokens/verify`), and only when the zone read was refused."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.errors import ConfigError, ExitCode
from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.settings import Settings
from tests.helpers import TOKEN, ZONE_ID, MakeCf, settings_for, write_files

SITE = "https://docs.example.com/"
WRONG_TOKEN = "tok-WRONG-7e57ab1e-42"
EMAIL, KEY = "ops@example.com", "legacy-key-0123456789abcdef"
ZONE = f"/client/v4/zones/{ZONE_ID}"
VERIFY = "/client/v4/user/tokens/verify"


def deploy_v2(tmp_path: Path, settings: Settings) -> Manifest:
    """v1 recorded as the last deploy; v2 (one page changed) built and returned."""
    site = tmp_path / "site"
    write_files(site, {"index.html": "home", "guide/index.html": "guide v1"})
    pipeline.scan(site, settings).save(settings.manifest_path)
    write_files(site, {"guide/index.html": "guide v2"})
    return pipeline.scan(site, settings)


def calls(cf: LocalCloudflare) -> list[tuple[str, str, int]]:
    """The zone read, the token check and the purges (the Cache Rules read is another step's)."""
    return [
        (r["method"], r["path"], r["status"]) for r in cf.requests if "/rulesets/" not in r["path"]
    ]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_token_cloudflare_refuses_is_reported_as_invalid_and_nothing_is_sent(
    tmp_path: Path, cf: LocalCloudflare, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path / "state", cf, env={"CLOUDFLARE_API_TOKEN": WRONG_TOKEN})
    new = deploy_v2(tmp_path, settings)
    before = settings.manifest_path.read_bytes()

    with pytest.raises(ConfigError) as caught:
        pipeline.purge(settings, new)

    error = caught.value
    assert error.option == "api_token" and error.exit_code == ExitCode.USAGE
    assert "Cloudflare does not accept this API token" in str(error)
    assert "My Profile → API Tokens" in str(error)
    assert "\n" not in str(error) and WRONG_TOKEN not in str(error)
    assert calls(cf) == [("GET", ZONE, 403), ("GET", VERIFY, 401)]
    assert warnings_of(caplog) == []  # not reported as a missing permission
    assert settings.manifest_path.read_bytes() == before
    assert not settings.manifest_path.with_name("pending.json").exists()


def test_a_valid_token_without_zone_read_costs_one_request_warns_once_and_purges(
    tmp_path: Path, make_cf: MakeCf, caplog: pytest.LogCaptureFixture
) -> None:
    cf = make_cf(zone_readable=False)
    settings = settings_for(tmp_path / "state", cf)
    new = deploy_v2(tmp_path, settings)

    result = pipeline.purge(settings, new)

    assert result.requests_sent == 1
    assert calls(cf) == [
        ("GET", ZONE, 403),
        ("GET", VERIFY, 200),
        ("POST", f"{ZONE}/purge_cache", 200),
    ]
    [warning] = warnings_of(caplog)
    assert "may not read zone" in warning
    assert settings.manifest_path.read_bytes() == new.to_json()


def test_a_readable_zone_needs_no_token_check(tmp_path: Path, cf: LocalCloudflare) -> None:
    settings = settings_for(tmp_path / "state", cf)
    pipeline.purge(settings, deploy_v2(tmp_path, settings))
    assert calls(cf) == [("GET", ZONE, 200), ("POST", f"{ZONE}/purge_cache", 200)]


def test_legacy_key_credentials_have_no_token_to_verify(
    tmp_path: Path, make_cf: MakeCf, caplog: pytest.LogCaptureFixture
) -> None:
    cf = make_cf(api_token=None, api_email=EMAIL, api_key=KEY, zone_readable=False)
    env: dict[str, Any] = {"CLOUDFLARE_EMAIL": EMAIL, "CLOUDFLARE_API_KEY": KEY}
    settings = settings_for(tmp_path / "state", cf, env=env)
    pipeline.purge(settings, deploy_v2(tmp_path, settings))
    assert calls(cf) == [("GET", ZONE, 403), ("POST", f"{ZONE}/purge_cache", 200)]
    assert len(warnings_of(caplog)) == 1
    assert TOKEN not in caplog.text
