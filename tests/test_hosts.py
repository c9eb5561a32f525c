"""Class 7 of issue 13: host names are DNS names, and an IDN host is purged in its IDNA form.

A cache key holds the ASCII (IDNA) form of an internationalised host, so that is what every URL,
prefix and zone check uses; the plan shows both forms. Anything that is no host name (a space, an
empty label, a hyphen at an end) is refused where it is given: an option, site_url, CNAME.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mkdocs_cfpurge.errors import ConfigError, UsageError
from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.plan.urls import SiteUrl, dns_host, parse_host, unicode_name
from mkdocs_cfpurge.settings import check_full_url
from tests.helpers import TOKEN, ZONE_ID, MakeCf, run_main, settings_for, write_files

IDN = "bücher.example.com"
ACE = "xn--bcher-kva.example.com"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("docs.example.com", "docs.example.com"),
        ("Docs.EXAMPLE.com", "docs.example.com"),
        (IDN, ACE),
        ("BÜCHER.example.com", ACE),
        (ACE, ACE),
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("_acme.example.com", "_acme.example.com"),
        ("localhost", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1:8000", "127.0.0.1:8000"),
        ("[::1]", "[::1]"),
        ("[::1]:8443", "[::1]:8443"),
        (f"{IDN}:8443", f"{ACE}:8443"),
        ("zero\u200bwidth.example.com", "zerowidth.example.com"),  # UTS 46 maps it away
    ],
)
def test_host_names_as_cache_keys_hold_them(value: str, expected: str) -> None:
    assert dns_host(value) == expected
    assert parse_host(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "do cs.example.com",
        "docs..example.com",
        ".example.com",
        "example.com.",
        "-docs.example.com",
        "docs-.example.com",
        "do\tcs.example.com",
        "docs.exa$mple.com",
        "a" * 64 + ".example.com",
        ("a" * 60 + ".") * 5 + "com",
        "1.2.3",
        "xn--zz.example.com",
        "docs.example.com:0",
        "docs.example.com:65536",
        "docs.example.com:http",
        "[::g]",
    ],
)
def test_what_is_no_host_name_is_refused_naming_the_option(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_host(value)
    assert caught.value.option == "hosts"
    with pytest.raises(ConfigError, match="'site_url'"):
        SiteUrl.parse(f"https://{value}/")


def test_site_url_and_extra_urls_take_the_idna_form() -> None:
    assert str(SiteUrl.parse(f"https://{IDN}/Bücher/")) == f"https://{ACE}/B%C3%BCcher/"
    assert check_full_url(f"https://{IDN}:8443/feed.xml") == f"https://{ACE}:8443/feed.xml"
    with pytest.raises(ConfigError, match="credentials"):
        check_full_url("https://me@docs.example.com/feed.xml")
    assert unicode_name(ACE) == IDN


def test_cname_names_a_host_or_is_an_error_naming_the_file(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert ACE in settings.with_cname(f"{IDN}\n".encode(), "site/CNAME").mapper().hosts
    for raw in (b"https://docs.example.com/", b"bad!host.example.com", b"\xff\xfe"):
        with pytest.raises(UsageError, match="site/CNAME"):
            settings.with_cname(raw, "site/CNAME")


@pytest.mark.usefixtures("cf_env")
def test_an_idn_host_is_purged_in_its_idna_form_and_the_plan_shows_both(
    cf: LocalCloudflare,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site, manifest = tmp_path / "site", tmp_path / "state" / "manifest.json"
    write_files(site, {"index.html": "v1", "CNAME": f"{IDN}\n"})
    common = ["--site-url", "https://docs.example.com/", "--manifest", str(manifest)]
    assert run_main(["purge", str(site), *common, "--strategy", "files"], capsys)[0] == 0
    write_files(site, {"index.html": "v2"})
    code, _, err = run_main(["purge", str(site), *common, "--strategy", "files"], capsys)
    assert code == 0, err
    assert f"host {IDN} is purged as {ACE} (its IDNA form, which cache keys hold)" in err
    [record] = cf.purges
    assert f"https://{ACE}/" in record.items and f"https://{ACE}/index.html" in record.items
    assert all(isinstance(i, str) and i.isascii() for i in record.items)


def test_the_local_server_refuses_a_url_whose_host_is_not_ascii(cf: LocalCloudflare) -> None:
    """As Cloudflare does: a cache key holds the IDNA form only."""
    import httpx

    response = httpx.post(
        f"{cf.api_base}/zones/{ZONE_ID}/purge_cache",
        headers={"Authorization": f"Bearer {TOKEN}"},
        content=json.dumps({"files": [f"https://{IDN}/"]}).encode(),
        trust_env=False,
    )
    assert response.status_code == 400 and "valid host name" in response.text
    assert cf.purges == []


def test_the_zone_check_compares_an_idn_zone_in_its_idna_form(make_cf: MakeCf) -> None:
    from mkdocs_cfpurge.cloudflare.client import CloudflareClient
    from mkdocs_cfpurge.settings import Credentials

    cf = make_cf(zone_name="bücher.example")
    with CloudflareClient(Credentials(api_token=TOKEN), ZONE_ID, api_base=cf.api_base) as client:
        client.check_zone(["docs.xn--bcher-kva.example"])
        with pytest.raises(UsageError, match="does not own"):
            client.check_zone(["docs.example.com"])
