"""Class 4 of issue 13: a saved plan (and pending.json) is input, checked like a fresh plan.

`mkdocs-cfpurge purge --plan FILE` runs against the local Cloudflare over HTTP: every plan that
reaches beyond the site (its hosts, its path, `extra_urls`), purges the zone without
`allow_purge_everything`, breaks a cap, or names another zone or site is refused with exit 2,
naming the file and what is wrong; nothing is sent, nothing written.
"""

from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path
from typing import Any

import pytest

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.state import Pending, StateStore
from tests.helpers import ZONE_ID, run_main, settings_for, tree_bytes

SITE_URL = "https://docs.example.com/docs/"  # a site below the root of its host
OTHER_ZONE = "fedcba9876543210fedcba9876543210"


def plan_json(requests: list[dict[str, Any]], **fields: Any) -> str:
    data = {
        "version": 1,
        "site_url": SITE_URL,
        "zone_id": ZONE_ID,
        "changes": [],
        "requests": requests,
        **fields,
    }
    return json.dumps(data)


pytestmark = pytest.mark.usefixtures("cf_env")


def posts(cf: LocalCloudflare) -> list[Any]:
    return [r["body"] for r in cf.requests if r["method"] == "POST"]


# (requests, plan fields, extra flags, what the message must say)
REFUSED: dict[str, tuple[list[dict[str, Any]], dict[str, Any], list[str], str]] = {
    "purge_everything": (
        [{"purge_everything": True}],
        {},
        [],
        "purges everything cached for the whole zone: set allow_purge_everything",
    ),
    "the apex host": ([{"hosts": ["example.com"]}], {}, [], "host 'example.com'"),
    "the site's own host, below its root": (
        [{"hosts": ["docs.example.com"]}],
        {},
        [],
        "host 'docs.example.com': a hosts purge takes down everything",
    ),
    "a prefix above the site's path": (
        [{"prefixes": ["docs.example.com/"]}],
        {},
        [],
        "prefix 'docs.example.com/' is outside the site's hosts",
    ),
    "a prefix on another host": (
        [{"prefixes": ["www.example.com/docs/"]}],
        {},
        [],
        "prefix 'www.example.com/docs/' is outside",
    ),
    "a URL on a host the site does not serve": (
        [{"files": ["https://www.example.com/docs/a/"]}],
        {},
        [],
        "URL 'https://www.example.com/docs/a/' is outside the site's hosts",
    ),
    "a URL above the site's path": (
        [{"files": ["https://docs.example.com/admin/"]}],
        {},
        [],
        "is outside the site's hosts (docs.example.com; options site_url, hosts) under /docs/",
    ),
    "a URL climbing out of the site's path": (
        [{"files": ["https://docs.example.com/docs/%2e%2e/admin/"]}],
        {},
        [],
        "is outside",
    ),
    "an ftp URL": (
        [{"files": ["ftp://docs.example.com/docs/a"]}],
        {},
        [],
        "scheme 'ftp' is not one the site is purged for (https; option schemes)",
    ),
    "an http URL of an https site": (
        [{"files": ["http://docs.example.com/docs/a"]}],
        {},
        [],
        "scheme 'http'",
    ),
    "a URL with credentials": (
        [{"files": [{"url": "https://me@docs.example.com/docs/a", "headers": {}}]}],
        {},
        [],
        "is outside",
    ),
    "cache tags": ([{"tags": ["docs"]}], {}, [], "purges cache tags, which reach the whole zone"),
    "more prefixes than Cloudflare takes": (
        [{"prefixes": [f"docs.example.com/docs/{i}/" for i in range(101)]}],
        {},
        [],
        "holds 101 prefixes; Cloudflare takes 100 at most",
    ),
    "another zone": (
        [{"files": [SITE_URL]}],
        {"zone_id": OTHER_ZONE},
        [],
        f"made for zone '{OTHER_ZONE}', but the configured zone_id is '{ZONE_ID}'",
    ),
    "another site": (
        [{"files": ["https://other.example.com/"]}],
        {"site_url": "https://other.example.com/"},
        [],
        f"made for site_url 'https://other.example.com/', but the site_url given is '{SITE_URL}'",
    ),
    "purge_everything, in a dry run too": (
        [{"purge_everything": True}],
        {},
        ["--dry-run"],
        "allow_purge_everything",
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_saved_plan_beyond_the_site_is_refused(
    name: str, cf: LocalCloudflare, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requests, fields, flags, says = REFUSED[name]
    plan = tmp_path / "plan.json"
    plan.write_text(plan_json(requests, **fields))
    state = tmp_path / "state"
    before = tree_bytes(tmp_path)
    argv = [
        "purge",
        "--plan",
        str(plan),
        "--site-url",
        SITE_URL,
        "--manifest",
        str(state / "m.json"),
    ]
    code, _, err = run_main([*argv, *flags], capsys)
    assert code == 2, err
    assert f"plan file {str(plan)!r}" in err and says in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert posts(cf) == [] and tree_bytes(tmp_path) == before


@pytest.mark.parametrize(
    ("requests", "flags"),
    [
        ([{"purge_everything": True}], ["--allow-purge-everything"]),
        ([{"purge_everything": True}], ["--strategy", "everything"]),
        (
            [{"files": ["https://feeds.example.com/rss.xml"]}],
            ["--extra-url", "https://feeds.example.com/rss.xml"],
        ),
        ([{"files": ["https://www.example.com/docs/a/"]}], ["--host", "www.example.com"]),
        ([{"prefixes": ["docs.example.com/docs/guide/", "docs.example.com/docs/"]}], []),
        (
            [
                {
                    "files": [
                        {
                            "url": "https://docs.example.com/docs/a",
                            "headers": {"CF-Device-Type": "mobile"},
                        }
                    ]
                }
            ],
            [],
        ),
    ],
)
def test_a_saved_plan_inside_the_site_is_sent_as_it_is(
    requests: list[dict[str, Any]],
    flags: list[str],
    cf: LocalCloudflare,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(plan_json(requests))
    manifest = str(tmp_path / "state" / "m.json")
    code, _, err = run_main(
        ["purge", "--plan", str(plan), "--site-url", SITE_URL, "--manifest", manifest, *flags],
        capsys,
    )
    assert code == 0, err
    assert posts(cf) == requests


def test_a_saved_plan_needs_the_site_url_from_the_configuration(
    cf: LocalCloudflare, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(plan_json([{"files": [SITE_URL]}]))
    manifest = str(tmp_path / "state" / "m.json")
    code, _, err = run_main(["purge", "--plan", str(plan), "--manifest", manifest], capsys)
    assert code == 2 and "needs --site-url" in err and posts(cf) == []


def test_the_plans_zone_never_overrides_the_configured_one(
    cf: LocalCloudflare,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a configured zone the plan's is not taken: the zone comes from the settings."""
    monkeypatch.delenv("CLOUDFLARE_ZONE_ID")
    plan = tmp_path / "plan.json"
    plan.write_text(plan_json([{"files": [SITE_URL]}]))
    manifest = str(tmp_path / "state" / "m.json")
    argv = ["purge", "--plan", str(plan), "--site-url", SITE_URL, "--manifest", manifest]
    code, _, err = run_main(argv, capsys)
    assert code == 2 and "option 'zone_id': is not set" in err and posts(cf) == []


# --- pending.json ---------------------------------------------------------------------------------


def test_pending_beyond_the_site_is_refused_with_the_way_out(
    cf: LocalCloudflare, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "state" / "manifest.json"
    with StateStore(manifest, SITE_URL) as store:
        store.save_pending(Pending([{"files": ["https://www.example.com/docs/a/"]}]))
    before = tree_bytes(tmp_path)
    argv = ["purge", "--site-url", SITE_URL, "--manifest", str(manifest)]
    code, _, err = run_main(argv, capsys)
    assert code == 2, err
    assert f"pending file {str(manifest.with_name('pending.json'))!r}" in err
    assert "URL 'https://www.example.com/docs/a/' is outside" in err
    assert "give those again, or delete the file" in err
    assert posts(cf) == [] and tree_bytes(tmp_path) == before

    # Given the options it was made under again, it is sent.
    code, _, err = run_main([*argv, "--host", "www.example.com"], capsys)
    assert code == 0, err
    assert posts(cf) == [{"files": ["https://www.example.com/docs/a/"]}]
    assert not manifest.with_name("pending.json").exists()


def test_the_deferred_purge_hint_sends_what_is_pending_under_the_same_scope(
    cf: LocalCloudflare,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A deploy whose origin never served it keeps its purge pending and says which command
    sends it: that command passes the scope check (a CNAME's host, extra URLs included)."""
    settings = settings_for(
        tmp_path / "state",
        cf,
        site_url=SITE_URL,
        hosts=["www.example.com"],
        extra_urls=["https://feeds.example.com/rss.xml"],
    )
    old = Manifest(SITE_URL, {"index.html": "a" * 64})
    new = Manifest(SITE_URL, {"index.html": "b" * 64})
    with caplog.at_level(logging.ERROR, "mkdocs.plugins.cfpurge"):
        pipeline.defer(settings, new, old)
    hint = caplog.text.split("send it with: ")[1].splitlines()[0]
    argv = shlex.split(hint)
    assert argv[:2] == ["mkdocs-cfpurge", "purge"]
    code, _, err = run_main(argv[1:], capsys)
    assert code == 0, err
    sent = {url for body in posts(cf) for url in body["files"]}
    assert "https://www.example.com/docs/" in sent
    assert "https://feeds.example.com/rss.xml" in sent
