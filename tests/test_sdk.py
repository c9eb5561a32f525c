"""Cloudflare's official Python SDK (`cloudflare`) as a client of `mkdocs-cfpurge local-server`.

The real CLI runs in a subprocess; the SDK talks to it as it would to api.cloudflare.com: every
purge type, invalidate, zones.get, zones.list (paginated), user.tokens.verify, the error codes
as the SDK's exceptions, 429 with Retry-After, and each plan's URLs-per-request cap. The SDK only
ever reaches 127.0.0.1: its base URL is the local server's, its HTTP client ignores proxy
variables, and every request it sends is checked.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cloudflare import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    Cloudflare,
    DefaultHttpxClient,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

from mkdocs_cfpurge.localcf.api import name_matches, paginated
from tests.helpers import ZONE_ID, subprocess_env

TOKEN = "tok-SDK-c0ffee-1d2e3f"
SITE = "https://docs.example.com/"
API_LINE = re.compile(r"Cloudflare API: (http://127\.0\.0\.1:\d+/client/v4) .*accepted: '(.*)'$")


@dataclass
class Served:
    """A `local-server` process: its API base URL and every line it printed since."""

    base_url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _printed: threading.Condition = field(default_factory=threading.Condition)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._printed:
                self.lines.append(line.rstrip("\n"))
                self._printed.notify_all()

    def wait_for_lines(self, n: int) -> list[str]:
        """The first `n` purge lines (they are printed as each purge is accepted)."""
        with self._printed:
            assert self._printed.wait_for(lambda: len(self.purge_lines()) >= n, timeout=10)
            return self.purge_lines()[:n]

    def purge_lines(self) -> list[str]:
        return [line for line in self.lines if re.match(r"(purge|invalidate)_cache: ", line)]


def serve(*args: str) -> Iterator[Served]:
    command = [sys.executable, "-m", "mkdocs_cfpurge", "local-server", "--token", TOKEN, *args]
    process = subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline().rstrip("\n")
        match = API_LINE.search(first)
        assert match, first
        assert match.group(2) == TOKEN  # the token it accepts, as printed
        served = Served(match.group(1), process)
        threading.Thread(target=served.read, daemon=True).start()
        yield served
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def enterprise() -> Iterator[Served]:
    yield from serve("--plan", "enterprise")


@pytest.fixture
def free() -> Iterator[Served]:
    yield from serve("--plan", "free")


class Sent:
    """Every request the SDK sends, each checked to go to 127.0.0.1 only."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> None:
        assert request.url.host == "127.0.0.1", request.url
        self.requests.append(request)


def sdk(server: Served, token: str = TOKEN, **options: Any) -> tuple[Cloudflare, Sent]:
    sent = Sent()
    # trust_env=False: no HTTP(S)_PROXY or netrc from the environment applies.
    http = DefaultHttpxClient(trust_env=False, event_hooks={"request": [sent]})
    client = Cloudflare(
        api_token=token,
        base_url=server.base_url,
        http_client=http,
        **{"max_retries": 0, "timeout": 10.0, **options},
    )
    return client, sent


def error_codes(error: APIStatusError) -> list[int]:
    body: Any = error.body
    return [entry["code"] for entry in body["errors"]]


def urls(n: int) -> list[str]:
    return [f"{SITE}page-{i}/" for i in range(n)]


# --- purges ---------------------------------------------------------------------------------


def test_every_purge_type_is_accepted_with_an_id(enterprise: Served) -> None:
    client, _ = sdk(enterprise)
    before = len(enterprise.purge_lines())
    answers = [
        client.cache.purge(zone_id=ZONE_ID, files=urls(3)),
        client.cache.purge(
            zone_id=ZONE_ID, files=[{"url": SITE, "headers": {"CF-Device-Type": "mobile"}}]
        ),
        client.cache.purge(zone_id=ZONE_ID, tags=["docs", "guide"]),
        client.cache.purge(zone_id=ZONE_ID, hosts=["docs.example.com"]),
        client.cache.purge(zone_id=ZONE_ID, prefixes=["docs.example.com/guide/"]),
        client.cache.purge(zone_id=ZONE_ID, purge_everything=True),
    ]
    assert all(
        answer is not None and re.fullmatch(r"[0-9a-f]{32}", answer.id) for answer in answers
    )
    assert enterprise.wait_for_lines(before + 6)[before:] == [
        "purge_cache: 3 files",
        "purge_cache: 1 files",
        "purge_cache: 2 tags",
        "purge_cache: 1 hosts",
        "purge_cache: 1 prefixes",
        "purge_cache: everything",
    ]


def test_invalidate_takes_the_same_bodies(enterprise: Served) -> None:
    client, sent = sdk(enterprise)
    before = len(enterprise.purge_lines())
    answer = client.cache.invalidate(zone_id=ZONE_ID, files=urls(2))
    assert answer is not None and answer.id
    assert sent.requests[-1].url.path == f"/client/v4/zones/{ZONE_ID}/invalidate_cache"
    assert enterprise.wait_for_lines(before + 1)[before:] == ["invalidate_cache: 2 files"]


def test_a_body_mixing_purge_types_is_a_bad_request_1012(enterprise: Served) -> None:
    client, _ = sdk(enterprise)
    with pytest.raises(BadRequestError) as caught:
        client.cache.purge(zone_id=ZONE_ID, tags=["docs"], extra_body={"hosts": ["example.com"]})
    assert caught.value.status_code == 400 and error_codes(caught.value) == [1012]


# --- the caps of each plan ------------------------------------------------------------------


def test_enterprise_takes_500_urls_in_one_request_and_refuses_501(enterprise: Served) -> None:
    client, _ = sdk(enterprise)
    before = len(enterprise.purge_lines())
    assert client.cache.purge(zone_id=ZONE_ID, files=urls(500)) is not None
    with pytest.raises(BadRequestError, match="More than 500 files"):
        client.cache.purge(zone_id=ZONE_ID, files=urls(501))
    assert enterprise.wait_for_lines(before + 1)[before:] == ["purge_cache: 500 files"]


def test_free_takes_30_urls_in_one_request_and_refuses_31(free: Served) -> None:
    client, _ = sdk(free)
    assert client.cache.purge(zone_id=ZONE_ID, files=urls(30)) is not None
    with pytest.raises(BadRequestError, match="More than 30 files") as caught:
        client.cache.purge(zone_id=ZONE_ID, files=urls(31))
    assert caught.value.status_code == 400
    assert free.wait_for_lines(1) == ["purge_cache: 30 files"]


def test_past_the_free_plans_burst_a_purge_is_refused_429_with_retry_after(free: Served) -> None:
    client, _ = sdk(free)
    for i in range(25):  # the Free plan's burst of tag/host/prefix/everything purges
        client.cache.purge(zone_id=ZONE_ID, prefixes=[f"docs.example.com/{i}/"])
    with pytest.raises(RateLimitError) as caught:
        client.cache.purge(zone_id=ZONE_ID, prefixes=["docs.example.com/one-too-many/"])
    assert caught.value.status_code == 429 and error_codes(caught.value) == [971]
    # Five a minute: the next token is about 12 s away, said in whole seconds.
    assert 1 <= int(caught.value.response.headers["Retry-After"]) <= 12


# --- zones and tokens -----------------------------------------------------------------------


def test_zones_get_reads_the_zone(enterprise: Served) -> None:
    client, _ = sdk(enterprise)
    zone = client.zones.get(zone_id=ZONE_ID)
    assert zone is not None
    assert (zone.id, zone.name, zone.status) == (ZONE_ID, "example.com", "active")


def test_zones_get_of_an_unknown_or_malformed_id_maps_to_the_sdks_errors(
    enterprise: Served,
) -> None:
    client, _ = sdk(enterprise)
    with pytest.raises(NotFoundError) as unknown:
        client.zones.get(zone_id="f" * 32)
    assert error_codes(unknown.value) == [7003]
    with pytest.raises(BadRequestError) as malformed:
        client.zones.get(zone_id="not-a-zone-id")
    assert error_codes(malformed.value) == [7003]


@pytest.mark.parametrize("per_page", [None, 5])
def test_zones_list_ends_after_the_pages_there_are(
    enterprise: Served, per_page: int | None
) -> None:
    client, sent = sdk(enterprise)
    listed = client.zones.list() if per_page is None else client.zones.list(per_page=per_page)
    zones = list(listed)
    assert [(z.id, z.name) for z in zones] == [(ZONE_ID, "example.com")]
    pages = [r.url.params.get("page", "1") for r in sent.requests]
    assert pages == ["1", "2"]  # the SDK stops at the first empty page
    first = client.zones.list() if per_page is None else client.zones.list(per_page=per_page)
    assert first.result_info is not None
    assert first.result_info.to_dict() == {
        "page": 1,
        "per_page": per_page or 20,
        "count": 1,
        "total_count": 1,
        "total_pages": 1,
    }


def test_zones_list_filters_by_name(enterprise: Served) -> None:
    client, _ = sdk(enterprise)
    assert [z.name for z in client.zones.list(name="example.com")] == ["example.com"]
    assert [z.name for z in client.zones.list(name="ends_with:.com")] == ["example.com"]
    assert list(client.zones.list(name="example.org")) == []


def test_zones_list_refuses_a_page_size_the_api_does_not_take(enterprise: Served) -> None:
    client, _ = sdk(enterprise)
    with pytest.raises(BadRequestError, match="per_page must be a number from 5 to 50"):
        client.zones.list(per_page=51)


def test_tokens_verify_accepts_the_servers_token_and_refuses_another(
    enterprise: Served,
) -> None:
    client, sent = sdk(enterprise)
    verified = client.user.tokens.verify()
    assert verified is not None and verified.status == "active"
    assert sent.requests[-1].url.path == "/client/v4/user/tokens/verify"

    wrong, _ = sdk(enterprise, token="tok-WRONG-0000")
    with pytest.raises(AuthenticationError) as caught:
        wrong.user.tokens.verify()
    assert caught.value.status_code == 401 and error_codes(caught.value) == [1000]


def test_a_wrong_token_may_not_purge_nor_read_the_zone(enterprise: Served) -> None:
    wrong, _ = sdk(enterprise, token="tok-WRONG-0000")
    with pytest.raises(PermissionDeniedError) as purge:
        wrong.cache.purge(zone_id=ZONE_ID, files=urls(1))
    with pytest.raises(PermissionDeniedError) as read:
        wrong.zones.get(zone_id=ZONE_ID)
    assert error_codes(purge.value) == error_codes(read.value) == [10000]


# --- the pagination itself, over more items than one zone ----------------------------------


def test_pages_split_the_items_and_a_page_past_the_last_is_empty() -> None:
    items = list(range(12))
    pages = [paginated(items, page, 5) for page in (1, 2, 3, 4)]
    assert [p["result"] for p in pages] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11], []]
    assert [p["result_info"]["count"] for p in pages] == [5, 5, 2, 0]
    assert {(p["result_info"]["total_count"], p["result_info"]["total_pages"]) for p in pages} == {
        (12, 3)
    }


@pytest.mark.parametrize(
    ("query", "matches"),
    [
        ("example.com", True),
        ("EXAMPLE.com", True),
        ("example.org", False),
        ("starts_with:exa", True),
        ("contains:ample", True),
        ("not_equal:example.com", False),
        ("ends_with_case_sensitive:.COM", False),
    ],
)
def test_zone_name_filters(query: str, matches: bool) -> None:
    assert name_matches(query, "example.com") is matches
