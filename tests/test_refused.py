"""Class 1 of issue 13: an entry Cloudflare refuses never wedges a deploy.

The local Cloudflare refuses bodies holding entries that a pattern matches (a 400 naming the
entry, as Cloudflare refuses an entry it finds invalid). The client sends a refused body again in
halves down to the entries refused, purges all the rest, and sets those apart; the deploy exits 1
that time, commits the manifest, keeps the refused entries in pending.json apart from what is
owed, shows them once in the next run's plan, then drops them. All over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import math
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.cloudflare.client import (
    MAX_REFUSED,
    REQUEST_WIDE_AFTER,
    CloudflareClient,
    RetryPolicy,
)
from mkdocs_cfpurge.errors import PurgeIncomplete, UsageError
from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.settings import Credentials
from mkdocs_cfpurge.state import StateStore
from tests.helpers import TOKEN, ZONE_ID, MakeCf, run_main, settings_for, write_files

SITE_URL = "https://docs.example.com/"
LOGGER = "mkdocs.plugins.cfpurge"


def urls(n: int, start: int = 0) -> list[str]:
    return [f"{SITE_URL}page-{i}/" for i in range(start, start + n)]


def client_for(cf: LocalCloudflare) -> CloudflareClient:
    return CloudflareClient(
        Credentials(api_token=TOKEN),
        ZONE_ID,
        api_base=cf.api_base,
        retry=RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01),
        rng=random.Random(1),
        transport=httpx.HTTPTransport(verify=False),
    )


def accepted(cf: LocalCloudflare) -> list[Any]:
    return [item for record in cf.purges for item in record.items]


def test_a_refused_batch_is_narrowed_to_the_refused_entries_and_the_rest_is_purged(
    cf: LocalCloudflare, caplog: pytest.LogCaptureFixture
) -> None:
    cf.refuse_entries(r"/page-(7|22)/$")
    bodies = [{"files": urls(30)}, {"files": urls(30, 30)}]
    with caplog.at_level(logging.INFO, LOGGER), client_for(cf) as client:
        client.purge_all(bodies)

    bad = {f"{SITE_URL}page-7/", f"{SITE_URL}page-22/"}
    assert sorted(accepted(cf)) == sorted(set(urls(60)) - bad)  # each good URL exactly once
    assert {r.entry for r in client.refused} == bad
    assert all(r.kind == "files" and r.code == 1012 for r in client.refused)
    assert all("refused by this zone" in r.message for r in client.refused)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert sorted(e for e in errors if "refused the files entry" in e) == sorted(
        f"cfpurge: Cloudflare refused the files entry {url} (1012: Invalid files entry "
        f'"{url}": refused by this zone); not sent again'
        for url in bad
    )
    # Halving: about two requests per level of the refused body's halving tree, per bad entry.
    posts = [r for r in cf.requests if r["method"] == "POST"]
    assert len(posts) <= 2 + 2 * 2 * math.ceil(math.log2(30))


def test_an_entry_refused_in_words_that_sound_like_too_many_files_is_still_set_apart(
    cf: LocalCloudflare,
) -> None:
    # Over-cap batches are known only by their message; an entry refused with a message that
    # reads the same must still be narrowed to and set apart, not halve the cap for good.
    cf.refuse_entries(r"/page-7/$", why="URL exceeds the maximum length")
    with client_for(cf) as client:
        client.purge_all([{"files": urls(30)}, {"files": urls(30, 30)}])

    bad = f"{SITE_URL}page-7/"
    assert sorted(accepted(cf)) == sorted(set(urls(60)) - {bad})
    assert [(r.entry, r.code) for r in client.refused] == [(bad, 1012)]
    assert "exceeds the maximum length" in client.refused[0].message
    # The cap comes back once the one entry is found: the second body goes whole.
    assert client.max_files == 30
    assert cf.purges[-1].items == tuple(urls(30, 30))


@pytest.mark.parametrize("why", ["refused by this zone", "prefix exceeds the maximum length"])
@pytest.mark.parametrize("kind", ["prefixes", "hosts"])
def test_flex_entries_are_narrowed_too(cf: LocalCloudflare, kind: str, why: str) -> None:
    # Only `files` bodies are refused for their size: a flex refusal is narrowed whatever it says.
    items = [f"docs{i}.example.com" + ("/" if kind == "prefixes" else "") for i in range(9)]
    cf.refuse_entries(r"^docs4\.", why=why)
    with client_for(cf) as client:
        client.purge_all([{kind: items}])
    assert accepted(cf) == [item for item in items if not item.startswith("docs4.")]
    assert [(r.kind, r.entry) for r in client.refused] == [(kind, items[4])]


def test_every_entry_refused_on_its_own_is_a_refusal_of_the_requests_and_all_stays_owed(
    cf: LocalCloudflare,
) -> None:
    # A 400 whose code is not known as request-wide, on every request: halving would otherwise
    # set apart good entries one by one, and they would never be purged.
    cf.fail_next(10_000, 400, code=1001)
    bodies = [{"files": urls(30)}, {"files": urls(30, 30)}]
    with client_for(cf) as client, pytest.raises(PurgeIncomplete) as caught:
        client.purge_all(bodies)
    assert client.refused == []
    owed = [url for body in caught.value.unsent for url in body["files"]]
    assert sorted(owed) == sorted(urls(60))  # every URL still owed, each once
    assert "the refusal is about the requests, not the entries" in caught.value.message
    posts = [r for r in cf.requests if r["method"] == "POST"]
    assert len(posts) < 2 * REQUEST_WIDE_AFTER + 2 * math.ceil(math.log2(30))


@pytest.mark.parametrize("code", [6003, 10000, 7003])
def test_a_400_about_the_request_as_a_whole_is_not_narrowed(cf: LocalCloudflare, code: int) -> None:
    cf.fail_next(1, 400, code=code)
    with client_for(cf) as client, pytest.raises(PurgeIncomplete) as caught:
        client.purge_all([{"files": urls(30)}])
    assert len([r for r in cf.requests if r["method"] == "POST"]) == 1
    assert caught.value.unsent == [{"files": urls(30)}]
    assert client.refused == []


def test_a_zone_that_refuses_everything_sets_nothing_apart(make_cf: MakeCf) -> None:
    cf = make_cf()
    cf.refuse_entries(r".")
    bodies = [{"files": urls(30)}, {"files": urls(30, 30)}, {"files": urls(30, 60)}]
    with client_for(cf) as client, pytest.raises(PurgeIncomplete) as caught:
        client.purge_all(bodies)
    assert client.refused == [] and cf.purges == []
    unsent = [url for body in caught.value.unsent for url in body["files"]]
    assert sorted(unsent) == sorted(urls(90))


def test_more_than_a_few_bad_entries_stops_after_max_refused(make_cf: MakeCf) -> None:
    cf = make_cf()
    cf.refuse_entries(r"/page-[1-9]")  # every entry but page-0/, which goes through first
    bodies = [{"files": urls(30)}, {"files": urls(30, 30)}, {"files": urls(30, 60)}]
    with client_for(cf) as client, pytest.raises(PurgeIncomplete) as caught:
        client.purge_all(bodies)
    assert len(client.refused) == MAX_REFUSED
    assert accepted(cf) == [f"{SITE_URL}page-0/"]
    # Every entry neither refused nor purged stays owed.
    unsent = {url for body in caught.value.unsent for url in body["files"]}
    assert unsent | {r.entry for r in client.refused} == set(urls(90)) - {f"{SITE_URL}page-0/"}


# --- three deploys through the CLI: the case -------------------------------------------

PAGES = 120
BAD = 7  # p007's URLs are refused by the zone


def site(version: int) -> dict[str, str]:
    """Build 1 has every page at v1; build 2 rewrites p000..p099; build 3 rewrites p100..p119."""
    files = {"index.html": "<h1>home</h1>"}
    for i in range(PAGES):
        v = 1 if version == 1 else 2 if i < 100 else 1 if version == 2 else 3
        files[f"p{i:03}/index.html"] = f"<h1>p{i:03}</h1><p>v{v}</p>"
    return files


@pytest.fixture
def deploy(
    tmp_path: Path,
    cf_env: None,
    capsys: pytest.CaptureFixture[str],
) -> Any:
    manifest = tmp_path / "state" / "manifest.json"

    def run(version: int) -> tuple[int, str]:
        site_dir = tmp_path / f"v{version}"
        write_files(site_dir, site(version))
        argv = ["purge", str(site_dir), "--site-url", SITE_URL, "--manifest", str(manifest)]
        code, _, err = run_main([*argv, "--strategy", "files"], capsys)
        assert TOKEN not in err
        return code, err

    return run


def test_a_refused_url_never_blocks_a_later_deploy(
    deploy: Any, cf: LocalCloudflare, tmp_path: Path
) -> None:
    manifest = tmp_path / "state" / "manifest.json"
    pending = manifest.with_name("pending.json")
    refused = [f"{SITE_URL}p{BAD:03}/", f"{SITE_URL}p{BAD:03}/index.html"]
    assert deploy(1)[0] == 0  # the baseline
    cf.refuse_entries(rf"/p{BAD:03}/")

    code, err = deploy(2)
    assert code == 1, err
    assert "Cloudflare refused 2 entries" in err and "manifest committed" in err
    for url in refused:
        assert f"refused the files entry {url} (1012: " in err
    changed = {f"{SITE_URL}p{i:03}/{tail}" for i in range(100) for tail in ("", "index.html")}
    assert set(accepted(cf)) == changed - set(refused)  # all else purged in the same run
    settings = settings_for(manifest.parent, site_url=SITE_URL)
    assert manifest.read_bytes() == pipeline.scan(tmp_path / "v2", settings).to_json()
    left = json.loads(pending.read_bytes())
    assert left["requests"] == [] and left["next_manifest"] is None
    assert sorted(r["entry"] for r in left["refused"]) == refused

    before = len(cf.purges)
    code, err = deploy(3)
    assert code == 0, err
    # Shown once more in the next run's plan, never sent again.
    assert err.count("not sent again: Cloudflare refused in the last run") == 2
    sent = [item for record in cf.purges[before:] for item in record.items]
    assert set(sent) == {
        f"{SITE_URL}p{i:03}/{t}" for i in range(100, 120) for t in ("", "index.html")
    }
    assert not pending.exists()

    code, err = deploy(3)
    assert code == 0, err
    assert "nothing to purge" in err and "refused" not in err


def test_refused_entries_in_pending_are_validated(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "manifest.json", SITE_URL)
    store.pending_path.write_text(
        json.dumps(
            {
                "version": 1,
                "site_url": SITE_URL,
                "requests": [],
                "next_manifest": None,
                "refused": [{"kind": "purge_everything", "entry": "x"}],
            }
        )
    )
    with pytest.raises(UsageError, match=r"pending file .*pending\.json.*'refused'.*delete it"):
        store.load_pending()
