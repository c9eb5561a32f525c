"""The local Cloudflare: API answers, limits, faults and the edge cache, over real HTTP."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from mkdocs_cfpurge.localcf import LocalCloudflare, PurgeRecord
from mkdocs_cfpurge.localcf.api import RateLimiter
from tests.cfschema import load_purge_body_validator
from tests.helpers import ZONE_ID

TOKEN = "secret-token"  # LocalCloudflare's own default, which several tests rely on
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SITE = "https://docs.example.com"

validate_body = load_purge_body_validator()
validate_as_published = load_purge_body_validator(strict=False)


@pytest.fixture
def cf_options() -> dict[str, Any]:
    # These tests send bodies Cloudflare's schema refuses, on purpose: no check of them after.
    return {"api_token": TOKEN, "check_bodies": False}


def client_for(server: LocalCloudflare, **kwargs: Any) -> httpx.Client:
    kwargs.setdefault("headers", AUTH)
    kwargs.setdefault("timeout", 5.0)
    return httpx.Client(base_url=server.api_base, trust_env=False, **kwargs)


@pytest.fixture
def api(cf: LocalCloudflare) -> Iterator[httpx.Client]:
    with client_for(cf) as client:
        yield client


def purge(
    client: httpx.Client, body: Any, *, action: str = "purge_cache", strict: bool = True
) -> httpx.Response:
    """POST a body that Cloudflare's schema accepts (strictly, unless told otherwise)."""
    (validate_body if strict else validate_as_published)(body)
    return client.post(f"/zones/{ZONE_ID}/{action}", json=body)


def codes(response: httpx.Response) -> list[int]:
    payload = response.json()
    assert payload["success"] is False
    assert payload["result"] is None
    return [error["code"] for error in payload["errors"]]


def files(n: int) -> dict[str, list[str]]:
    return {"files": [f"{SITE}/page-{i}/" for i in range(n)]}


# --- the schema helper itself ---------------------------------------------------------------


def test_schema_helper_reads_cloudflares_shapes() -> None:
    validate_body({"files": [f"{SITE}/", f"{SITE}/a"]})
    validate_body({"files": [{"url": f"{SITE}/a", "headers": {"CF-IPCountry": "US"}}]})
    validate_body({"purge_everything": True})
    mixed = {"files": [f"{SITE}/", {"url": f"{SITE}/a"}]}
    bad_bodies: list[object] = [{"files": "x"}, {"files": [], "tags": []}, {"tags": [1]}, {}]
    for bad in [*bad_bodies, ["x"], mixed]:
        with pytest.raises(jsonschema.ValidationError):
            validate_body(bad)
    validate_as_published({"files": "x", "tags": []})  # the published anyOf lets objects through
    with pytest.raises(jsonschema.ValidationError):
        validate_as_published(["x"])


# --- accepted purges ------------------------------------------------------------------------


def test_purge_answers_the_envelope_and_is_recorded(cf: LocalCloudflare, api: httpx.Client) -> None:
    body = {"files": [f"{SITE}/", f"{SITE}/a"]}
    response = purge(api, body)

    assert response.status_code == 200
    payload = response.json()
    assert payload.keys() == {"success", "errors", "messages", "result"}
    assert (payload["success"], payload["errors"], payload["messages"]) == (True, [], [])
    assert re.fullmatch(r"[0-9a-f]{32}", payload["result"]["id"])
    [record] = cf.purges
    assert record == PurgeRecord(
        method="purge_cache",
        kind="files",
        items=(f"{SITE}/", f"{SITE}/a"),
        time=record.time,
        id=payload["result"]["id"],
    )
    [seen] = cf.requests
    assert seen["method"] == "POST"
    assert seen["path"] == f"/client/v4/zones/{ZONE_ID}/purge_cache"
    assert (seen["status"], seen["body"]) == (200, body)
    assert seen["headers"]["Authorization"] == "***"
    assert TOKEN not in repr(cf.requests)
    assert seen["time"] <= record.time + 1 and record.time <= time.monotonic()


def test_file_objects_keep_their_headers(cf: LocalCloudflare, api: httpx.Client) -> None:
    body = {
        "files": [
            {"url": f"{SITE}/a", "headers": {"CF-Device-Type": "mobile", "CF-IPCountry": "US"}},
            {"url": f"{SITE}/b"},
        ]
    }

    assert purge(api, body).status_code == 200

    [record] = cf.purges
    assert record.items == (
        (f"{SITE}/a", frozenset({("CF-Device-Type", "mobile"), ("CF-IPCountry", "US")})),
        (f"{SITE}/b", frozenset()),
    )


@pytest.mark.parametrize(
    ("body", "kind", "items"),
    [
        ({"tags": ["Guide", "api"]}, "tags", ("Guide", "api")),
        ({"hosts": ["docs.example.com"]}, "hosts", ("docs.example.com",)),
        ({"prefixes": ["docs.example.com/guide/"]}, "prefixes", ("docs.example.com/guide/",)),
        ({"purge_everything": True}, "purge_everything", ()),
    ],
)
@pytest.mark.parametrize("action", ["purge_cache", "invalidate_cache"])
def test_every_purge_type_is_accepted_on_both_routes(
    cf: LocalCloudflare,
    api: httpx.Client,
    body: dict[str, Any],
    kind: str,
    items: tuple[str, ...],
    action: str,
) -> None:
    response = purge(api, body, action=action)

    assert response.status_code == 200, response.text
    assert [(r.method, r.kind, r.items) for r in cf.purges] == [(action, kind, items)]


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 403, 10000),
        ({"Authorization": "Bearer wrong-token"}, 403, 10000),
        ({"X-Auth-Email": "me@example.com", "X-Auth-Key": "wrong"}, 403, 10000),
        ({"Authorization": TOKEN}, 400, 6003),
        ({"Authorization": f"Token {TOKEN}"}, 400, 6003),
    ],
)
def test_bad_credentials_are_refused_and_nothing_is_purged(
    headers: dict[str, str], status: int, code: int
) -> None:
    with (
        LocalCloudflare(
            api_token=TOKEN, api_email="me@example.com", api_key="k" * 37, rate_limit=False
        ) as server,
        client_for(server, headers=headers) as client,
    ):
        response = purge(client, files(1))
        legacy = {"X-Auth-Email": "Me@Example.com", "X-Auth-Key": "k" * 37}
        accepted = httpx.post(
            f"{server.api_base}/zones/{ZONE_ID}/purge_cache",
            json=files(1),
            headers=legacy,
            trust_env=False,
        )

        assert response.status_code == status
        assert codes(response)[0] == code
        assert accepted.status_code == 200  # the legacy key pair works when configured
        assert len(server.purges) == 1
        assert [r["status"] for r in server.requests] == [status, 200]


ONE_OF = 'Request must contain one of "purge_everything", "files", "tags", "hosts" or "prefixes"'


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"files": [f"{SITE}/"], "tags": ["a"]}, 1012, ONE_OF),
        ({"files": [f"{SITE}/"], "purge_everything": True}, 1012, ONE_OF),
        ({}, 1012, ONE_OF),
        ({"urls": [f"{SITE}/"]}, 1012, ONE_OF),
        ({"purge_everything": False}, 1012, ONE_OF),
        ({"purge_everything": "true"}, 1012, ONE_OF),
        ({"files": []}, 1012, ONE_OF),
        ({"files": f"{SITE}/"}, 1014, "files"),
        ({"tags": "a,b"}, 1014, "tags"),
        ({"hosts": {"docs.example.com": True}}, 1014, "hosts"),
        ({"files": ["/relative/"]}, 1012, "absolute"),
        ({"files": [{"url": f"{SITE}/", "headers": {"CF-IPCountry": 1}}]}, 1012, "headers"),
        ({"hosts": ["https://docs.example.com"]}, 1012, "hostname"),
        ({"prefixes": ["https://docs.example.com/guide/"]}, 1012, "scheme"),
        ({"prefixes": ["docs.example.com/guide/?page=2"]}, 1012, "query"),
        ({"prefixes": ["docs.example.com" + "/a" * 32]}, 1012, "separators"),
        ({"tags": ["x" * 1025]}, 1012, "1024"),
    ],
)
def test_malformed_bodies_are_refused(
    cf: LocalCloudflare, api: httpx.Client, body: dict[str, Any], code: int, message: str
) -> None:
    response = purge(api, body, strict=False)

    assert response.status_code == 400
    assert codes(response) == [code]
    assert message in response.json()["errors"][0]["message"]
    assert cf.purges == []


@pytest.mark.parametrize("content", [b"", b"{not json", b'["files"]', b"\xff\xfe"])
def test_bodies_that_are_not_a_json_object_get_1012(
    cf: LocalCloudflare, api: httpx.Client, content: bytes
) -> None:
    response = api.post(f"/zones/{ZONE_ID}/purge_cache", content=content)

    assert response.status_code == 400
    assert codes(response) == [1012]
    assert cf.purges == []


def test_files_over_the_cap_are_refused_and_the_cap_is_configurable() -> None:
    with LocalCloudflare(rate_limit=False) as default, client_for(default) as client:
        assert purge(client, files(30)).status_code == 200
        over = purge(client, files(31))
        assert over.status_code == 400
        message = over.json()["errors"][0]["message"].lower()
        assert "more than 30" in message and "files" in message
        assert len(default.purges) == 1

    with (
        LocalCloudflare(max_files_per_request=5, rate_limit=False) as small,
        client_for(small) as client,
    ):
        assert purge(client, files(6)).status_code == 400
        assert purge(client, files(5)).status_code == 200

    with (
        LocalCloudflare(max_files_per_request=None, rate_limit=False) as by_plan,
        client_for(by_plan) as client,
    ):
        assert purge(client, files(31)).status_code == 400
        by_plan.set_plan("enterprise")
        assert purge(client, files(500)).status_code == 200
        assert purge(client, files(501)).status_code == 400


@pytest.mark.parametrize("kind", ["prefixes", "tags", "hosts"])
def test_flex_purges_over_100_items_are_refused(
    cf: LocalCloudflare, api: httpx.Client, kind: str
) -> None:
    items = [f"h{i}.example.com" + ("/p/" if kind == "prefixes" else "") for i in range(101)]

    over = purge(api, {kind: items})
    at_cap = purge(api, {kind: items[:100]})

    assert over.status_code == 400
    assert "more than 100" in over.json()["errors"][0]["message"].lower()
    assert at_cap.status_code == 200
    assert [len(r.items) for r in cf.purges] == [100]


# --- rate limits ----------------------------------------------------------------------------


def test_free_plan_allows_a_burst_of_25_flex_purges() -> None:
    with LocalCloudflare(plan="free", rate_limit=True) as server, client_for(server) as client:
        for _ in range(3):  # refused bodies must not spend tokens
            assert purge(client, {"prefixes": "x"}, strict=False).status_code == 400
        statuses = [
            purge(client, {"prefixes": [f"docs.example.com/{i}/"]}).status_code for i in range(26)
        ]
        assert statuses == [200] * 25 + [429]
        limited = client.post(f"/zones/{ZONE_ID}/purge_cache", json={"tags": ["a"]})

    assert codes(limited) == [971]
    assert int(limited.headers["Retry-After"]) >= 1
    assert len(server.purges) == 25
    assert [r["status"] for r in server.requests][-2:] == [429, 429]


def test_url_bucket_counts_files_and_refills_with_time() -> None:
    now = [100.0]
    with (
        LocalCloudflare(plan="free", rate_limit=True, clock=lambda: now[0]) as server,
        client_for(server) as client,
    ):
        # 26 x 30 = 780 of the free plan's 800-URL burst; 30 more do not fit.
        assert all(purge(client, files(30)).status_code == 200 for _ in range(26))
        limited = purge(client, files(30))
        assert limited.status_code == 429
        assert codes(limited) == [971]
        assert int(limited.headers["Retry-After"]) >= 1
        assert purge(client, {"tags": ["a"]}).status_code == 200  # a separate bucket

        now[0] += 10 / 800  # exactly the 10 URLs that were missing
        assert purge(client, files(30)).status_code == 200
        assert purge(client, files(1)).status_code == 429

        server.set_plan("pro")  # a fresh 1500-URL bucket
        assert purge(client, files(30)).status_code == 200
        assert len(server.purges) == 26 + 1 + 1 + 1


def test_global_limit_is_1200_calls_per_5_minutes() -> None:
    now = [0.0]
    limiter = RateLimiter("enterprise", enabled=True, clock=lambda: now[0])

    assert all(limiter.admit_call() == 0 for _ in range(1200))
    assert limiter.admit_call() == pytest.approx(300 / 1200)
    now[0] += 300 / 1200
    assert limiter.admit_call() == 0


# --- scripted faults ------------------------------------------------------------------------


def test_fail_next_answers_the_scripted_status_before_anything_else(
    cf: LocalCloudflare, api: httpx.Client
) -> None:
    cf.fail_next(2, status=503)
    cf.fail_next(1, status=429, retry_after=7)

    assert api.get(f"/zones/{ZONE_ID}").status_code == 200  # GETs are never scripted
    first = api.post(f"/zones/{ZONE_ID}/purge_cache", json=files(1), headers={"Authorization": ""})
    second = purge(api, {"purge_everything": True}, action="invalidate_cache")
    throttled = purge(api, files(1))
    passed = purge(api, files(1))

    assert (first.status_code, codes(first)) == (503, [10001])  # precedes auth and validation
    assert second.status_code == 503
    assert (throttled.status_code, codes(throttled)) == (429, [971])
    assert throttled.headers["Retry-After"] == "7"
    assert passed.status_code == 200
    assert len(cf.purges) == 1
    assert [r["status"] for r in cf.requests] == [200, 503, 503, 429, 200]


def test_fail_next_takes_a_custom_code(cf: LocalCloudflare, api: httpx.Client) -> None:
    cf.fail_next(1, status=400, code=1234)

    response = purge(api, files(1))

    assert (response.status_code, codes(response)) == (400, [1234])
    assert "Retry-After" not in response.headers


def test_drop_next_closes_without_answering(cf: LocalCloudflare, api: httpx.Client) -> None:
    cf.drop_next(1)

    with pytest.raises(httpx.RemoteProtocolError):
        purge(api, files(1))
    assert purge(api, files(2)).status_code == 200

    assert [r["status"] for r in cf.requests] == [0, 200]
    assert [len(r.items) for r in cf.purges] == [2]


def test_delay_next_outlasts_a_client_timeout_and_still_purges(
    cf: LocalCloudflare, api: httpx.Client
) -> None:
    cf.delay_next(1, 0.6)

    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        api.post(f"/zones/{ZONE_ID}/purge_cache", json=files(1), timeout=0.2)
    while not cf.purges and time.monotonic() - started < 5:
        time.sleep(0.02)
    assert cf.purges[0].time - started >= 0.6
    started = time.monotonic()
    assert purge(api, files(1)).status_code == 200
    assert time.monotonic() - started < 0.5


# --- zones, tokens, routes ------------------------------------------------------------------


def test_zone_and_token_routes(cf: LocalCloudflare, api: httpx.Client) -> None:
    zone = api.get(f"/zones/{ZONE_ID}").json()
    listed = api.get("/zones", params={"name": "example.com"}).json()
    unlisted = api.get("/zones", params={"name": "example.org"}).json()
    verified = api.get("/user/tokens/verify")
    bad_token = api.get("/user/tokens/verify", headers={"Authorization": "Bearer nope"})

    assert zone["success"] is True
    assert (zone["result"]["id"], zone["result"]["name"]) == (ZONE_ID, "example.com")
    assert zone["result"]["status"] == "active"
    assert [z["id"] for z in listed["result"]] == [ZONE_ID]
    assert unlisted["result"] == []
    assert (verified.status_code, verified.json()["result"]["status"]) == (200, "active")
    assert (bad_token.status_code, codes(bad_token)) == (401, [1000])


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/zones/ffffffffffffffffffffffffffffffff", 404),
        ("POST", "/zones/ffffffffffffffffffffffffffffffff/purge_cache", 404),
        ("POST", "/zones/example.com/purge_cache", 400),
        ("GET", f"/zones/{ZONE_ID}/purge_cache", 404),
        ("POST", f"/zones/{ZONE_ID}/purge", 404),
        ("GET", "/accounts", 404),
    ],
)
def test_wrong_zones_and_routes_get_7003(
    cf: LocalCloudflare, api: httpx.Client, method: str, path: str, status: int
) -> None:
    response = api.request(method, path, json=files(1) if method == "POST" else None)

    assert (response.status_code, codes(response)) == (status, [7003])
    assert cf.purges == []


def test_outside_the_api_prefix_there_is_no_route(cf: LocalCloudflare) -> None:
    response = httpx.get(cf.api_base.replace("/client/v4", "/v4/zones"), trust_env=False)

    assert (response.status_code, codes(response)) == (404, [7003])


def test_token_without_zone_read_gets_9109_but_may_purge() -> None:
    with (
        LocalCloudflare(zone_readable=False, rate_limit=False) as server,
        client_for(server) as client,
    ):
        zone = client.get(f"/zones/{ZONE_ID}")
        listed = client.get("/zones", params={"name": "example.com"})
        purged = purge(client, files(1))

    assert (zone.status_code, codes(zone)) == (403, [9109])
    assert listed.json()["result"] == []
    assert purged.status_code == 200


def test_no_credentials_configured_means_an_open_api() -> None:
    with (
        LocalCloudflare(api_token=None, rate_limit=False) as server,
        client_for(server, headers={}) as client,
    ):
        assert purge(client, files(1)).status_code == 200


# --- the edge -------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    for path, text in {
        "index.html": "home v1",
        "guide/index.html": "guide v1",
        "guide/install/index.html": "install v1",
        "other/index.html": "other v1",
    }.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def section_tags(path: str) -> list[str]:
    return ["Section-" + path.strip("/").split("/")[0]] if path.strip("/") else []


@pytest.fixture
def edge(site: Path) -> Iterator[LocalCloudflare]:
    with LocalCloudflare(origin=site, rate_limit=False, cache_tags=section_tags) as server:
        yield server


@pytest.fixture
def edge_api(edge: LocalCloudflare) -> Iterator[httpx.Client]:
    with client_for(edge) as client:
        yield client


def text(server: LocalCloudflare, url: str, **headers: str) -> tuple[str, str]:
    response = server.edge_fetch(url, headers=headers or None)
    return response.body.decode(), response.cache_status


@pytest.mark.parametrize(
    ("body", "other_kept"),
    [
        ({"files": [f"{SITE}/guide/"]}, True),
        ({"files": [{"url": f"{SITE}/guide/", "headers": {"Origin": SITE}}]}, True),
        ({"prefixes": ["Docs.Example.com/guide/"]}, True),
        ({"tags": ["section-GUIDE"]}, True),
        ({"hosts": ["docs.example.com"]}, False),
        ({"purge_everything": True}, False),
    ],
)
def test_stale_page_is_served_until_a_purge_matches_it(
    site: Path, edge: LocalCloudflare, edge_api: httpx.Client, body: Any, other_kept: bool
) -> None:
    assert text(edge, f"{SITE}/guide/") == ("guide v1", "MISS")
    assert text(edge, f"{SITE}/guide/") == ("guide v1", "HIT")
    assert text(edge, f"{SITE}/other/") == ("other v1", "MISS")
    (site / "guide/index.html").write_text("guide v2")
    (site / "other/index.html").write_text("other v2")
    assert text(edge, f"{SITE}/guide/") == ("guide v1", "HIT")

    assert purge(edge_api, body).status_code == 200

    assert text(edge, f"{SITE}/guide/") == ("guide v2", "MISS")
    assert text(edge, f"{SITE}/guide/") == ("guide v2", "HIT")
    other = ("other v1", "HIT") if other_kept else ("other v2", "MISS")
    assert text(edge, f"{SITE}/other/") == other


def test_a_files_purge_evicts_exactly_one_cache_key(
    site: Path, edge: LocalCloudflare, edge_api: httpx.Client
) -> None:
    urls = [
        f"{SITE}/guide/",
        f"{SITE}/guide/index.html",
        f"{SITE}/guide",  # a cached redirect
        "http://docs.example.com/guide/",
        f"{SITE}/guide/?page=2",
        "https://example.com/guide/",
    ]
    for url in urls:
        assert text(edge, url)[1] == "MISS"

    for url in urls:
        assert purge(edge_api, {"files": [url]}).status_code == 200
        assert edge.edge_fetch(url).cache_status == "MISS", url
        assert all(edge.edge_fetch(u).cache_status == "HIT" for u in urls if u != url), url


def test_variants_are_purged_only_with_their_headers(
    edge: LocalCloudflare, edge_api: httpx.Client
) -> None:
    url = f"{SITE}/guide/"
    mobile = {"CF-Device-Type": "mobile"}
    assert edge.edge_fetch(url).cache_status == "MISS"
    assert edge.edge_fetch(url, mobile).cache_status == "MISS"
    assert edge.edge_fetch(url, {"CF-Device-Type": "mobile"}).cache_status == "HIT"

    purge(edge_api, {"files": [url]})
    assert edge.edge_fetch(url, mobile).cache_status == "HIT"
    assert edge.edge_fetch(url).cache_status == "MISS"

    purge(edge_api, {"files": [{"url": url, "headers": {"cf-device-type": "mobile"}}]})
    assert edge.edge_fetch(url, mobile).cache_status == "MISS"
    assert edge.edge_fetch(url).cache_status == "HIT"


def test_prefix_purge_covers_schemes_and_queries_below_it(
    edge: LocalCloudflare, edge_api: httpx.Client
) -> None:
    below = [f"{SITE}/guide/install/", f"{SITE}/guide/?q=1", "http://docs.example.com/guide/"]
    outside = [f"{SITE}/other/", f"{SITE}/", "https://www.example.com/guide/"]
    for url in below + outside:
        edge.edge_fetch(url)

    purge(edge_api, {"prefixes": ["docs.example.com/guide/"]})

    assert [edge.edge_fetch(u).cache_status for u in below] == ["MISS"] * 3
    assert [edge.edge_fetch(u).cache_status for u in outside] == ["HIT"] * 3


def test_a_cached_404_hides_a_new_page_until_purged(
    site: Path, edge: LocalCloudflare, edge_api: httpx.Client
) -> None:
    url = f"{SITE}/new/"
    first = edge.edge_fetch(url)
    (site / "new").mkdir()
    (site / "new/index.html").write_text("new page")
    second = edge.edge_fetch(url)

    purge(edge_api, {"files": [url]})
    third = edge.edge_fetch(url)

    assert (first.status, first.cache_status) == (404, "MISS")
    assert (second.status, second.cache_status) == (404, "HIT")
    assert (third.status, third.cache_status, third.body) == (200, "MISS", b"new page")


def test_folder_origin_serves_like_a_static_host(site: Path, edge: LocalCloudflare) -> None:
    (site / "404.html").write_text("custom 404")
    (site / "café").mkdir()
    (site / "café/index.html").write_text("unicode")

    redirect = edge.edge_fetch(f"{SITE}/guide")
    missing = edge.edge_fetch(f"{SITE}/missing.css")
    unicode = edge.edge_fetch(f"{SITE}/caf%C3%A9/")
    escape = edge.edge_fetch(f"{SITE}/%2e%2e/%2e%2e/etc/passwd")

    assert (redirect.status, redirect.headers["location"]) == (301, "/guide/")
    assert (missing.status, missing.body) == (404, b"custom 404")
    assert (unicode.status, unicode.body) == (200, b"unicode")
    assert escape.status == 404
    assert "cache-tag" not in edge.edge_fetch(f"{SITE}/guide/").headers


def test_invalidate_marks_stale_and_the_next_fetch_revalidates(
    site: Path, edge: LocalCloudflare, edge_api: httpx.Client
) -> None:
    edge.edge_fetch(f"{SITE}/guide/")
    edge.edge_fetch(f"{SITE}/other/")
    (site / "guide/index.html").write_text("guide v2")

    response = purge(edge_api, {"prefixes": ["docs.example.com/guide/"]}, action="invalidate_cache")

    assert response.status_code == 200
    assert text(edge, f"{SITE}/guide/") == ("guide v2", "EXPIRED")
    assert text(edge, f"{SITE}/guide/") == ("guide v2", "HIT")
    assert text(edge, f"{SITE}/other/") == ("other v1", "HIT")
    assert [r.method for r in edge.purges] == ["invalidate_cache"]


def test_hosts_outside_the_zone_are_not_served(edge: LocalCloudflare) -> None:
    response = edge.edge_fetch("https://example.org/")

    assert (response.status, response.cache_status) == (530, "")
    assert edge.edge_fetch("https://EXAMPLE.com/").status == 200


def test_edge_log_records_each_fetch(edge: LocalCloudflare) -> None:
    before = time.monotonic()
    edge.edge_fetch(f"{SITE}/guide/")
    edge.edge_fetch("http://docs.example.com/guide/?x=1")

    log = edge.edge_log
    assert [(e["url"], e["cache_status"]) for e in log] == [
        (f"{SITE}/guide/", "MISS"),
        ("http://docs.example.com/guide/?x=1", "MISS"),
    ]
    assert all(before <= float(str(e["time"])) <= time.monotonic() for e in log)


def test_no_origin_means_no_edge(cf: LocalCloudflare) -> None:
    assert cf.edge_url is None
    with pytest.raises(RuntimeError):
        cf.edge_fetch(f"{SITE}/")


@pytest.fixture
def http_origin(site: Path) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_url_origin_is_proxied_and_cached(site: Path, http_origin: str) -> None:
    with LocalCloudflare(origin=http_origin, rate_limit=False) as server:
        assert text(server, f"{SITE}/guide/") == ("guide v1", "MISS")
        (site / "guide/index.html").write_text("guide v2")
        assert text(server, f"{SITE}/guide/") == ("guide v1", "HIT")
        redirect = server.edge_fetch(f"{SITE}/guide")
        missing = server.edge_fetch(f"{SITE}/nope/")
        with client_for(server) as client:
            purge(client, {"hosts": ["docs.example.com"]})
        assert text(server, f"{SITE}/guide/") == ("guide v2", "MISS")

    assert (redirect.status, redirect.cache_status) == (301, "MISS")
    assert redirect.headers["location"].endswith("/guide/")
    assert (missing.status, missing.cache_status) == (404, "MISS")


@pytest.mark.parametrize("origin", ["http://example.com", "https://127.0.0.1:1", "ftp://x/"])
def test_only_local_http_origins_are_allowed(origin: str) -> None:
    with pytest.raises(ValueError):
        LocalCloudflare(origin=origin)


# --- the CLI hook ---------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_run_local_server_echoes_addresses_and_purges_until_sigterm(site: Path) -> None:
    script = (
        "from mkdocs_cfpurge.localcf import run_local_server; "
        "run_local_server(lambda line: print(line, flush=True), "
        f"zone_id={ZONE_ID!r}, zone_name='example.com', api_token={TOKEN!r}, origin={str(site)!r})"
    )
    root = Path(__file__).resolve().parents[1]
    with subprocess.Popen(
        [sys.executable, "-c", script], cwd=root, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        api_line, edge_line = process.stdout.readline(), process.stdout.readline()
        api_base = re.search(r"http://127\.0\.0\.1:\d+/client/v4", api_line)
        edge_url = re.search(r"http://127\.0\.0\.1:\d+", edge_line)
        assert api_base and edge_url, (api_line, edge_line)
        with httpx.Client(base_url=api_base.group(0), headers=AUTH, trust_env=False) as client:
            assert purge(client, files(3)).status_code == 200
            assert purge(client, {"purge_everything": True}).status_code == 200
        purge_lines = [process.stdout.readline().strip() for _ in range(2)]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0

    assert purge_lines == ["purge_cache: 3 files", "purge_cache: everything"]
