"""CloudflareClient against the local Cloudflare over real HTTP: auth, retries, splits, pacing.

Every body the server receives is checked against Cloudflare's published schema. Retries never
wait for real: `sleep` is injected and recorded, and where pacing is the point the token buckets
of both sides run on one fake clock that the injected sleep advances.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mkdocs_cfpurge.cloudflare.client import CloudflareClient, RetryPolicy
from mkdocs_cfpurge.errors import CfPurgeError, ConfigError, PurgeIncomplete
from mkdocs_cfpurge.localcf import LocalCloudflare, PurgeRecord
from mkdocs_cfpurge.settings import Credentials
from tests.cfschema import load_purge_body_validator
from tests.helpers import TOKEN, ZONE_ID, MakeCf

validate_body = load_purge_body_validator()

OTHER_ZONE = "fedcba9876543210fedcba9876543210"
SITE = "https://docs.example.com"
LOGGER = "mkdocs.plugins.cfpurge"
FAST = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05)


class FakeTime:
    """A clock that moves only when slept on: pacing without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        # At least a microsecond: TokenBucket.take asks for waits below a float's resolution
        # near 1000.0 (4.5e-14 s), which would leave this clock, and the bucket, stuck forever.
        self.now += max(seconds, 1e-6)


def urls(n: int, start: int = 0) -> list[str]:
    return [f"{SITE}/page-{i}/" for i in range(start, start + n)]


def purge_posts(cf: LocalCloudflare) -> list[dict[str, Any]]:
    """Every purge POST the server received (answered, refused or dropped), in order."""
    posts = [r for r in cf.requests if r["method"] == "POST"]
    for request in posts:
        validate_body(request["body"])
    return posts


def accepted_items(cf: LocalCloudflare) -> list[Any]:
    return [item for record in cf.purges for item in record.items]


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


def make_client(
    cf: LocalCloudflare,
    fake: FakeTime,
    *,
    token: str = TOKEN,
    zone_id: str = ZONE_ID,
    retry: RetryPolicy = FAST,
    **kwargs: Any,
) -> CloudflareClient:
    kwargs.setdefault("timeout", 5.0)
    # The default transport loads the CA bundle (0.1-0.2 s a client); plain http to 127.0.0.1
    # needs none of it.
    kwargs.setdefault("transport", httpx.HTTPTransport(verify=False))
    return CloudflareClient(
        Credentials(api_token=token),
        zone_id,
        api_base=cf.api_base,
        retry=retry,
        sleep=fake.sleep,
        clock=fake.clock,
        rng=random.Random(1),
        **kwargs,
    )


# --- auth, addresses and methods -----------------------------------------------------------------


def test_bearer_token_purge_returns_cloudflares_id(cf: LocalCloudflare, clock: FakeTime) -> None:
    body = {"files": urls(2)}
    with make_client(cf, clock) as client:
        purge_id = client.purge(body)

    [record] = cf.purges
    assert (record.method, record.kind, record.items) == ("purge_cache", "files", tuple(urls(2)))
    assert purge_id == record.id
    [post] = purge_posts(cf)
    assert post["path"] == f"/client/v4/zones/{ZONE_ID}/purge_cache"
    assert post["body"] == body
    assert post["headers"]["Authorization"] == "***"  # the server redacts what it records
    assert "X-Auth-Key" not in post["headers"]
    assert clock.sleeps == []


def test_legacy_email_and_global_key_authenticate() -> None:
    key = "k" * 37
    with LocalCloudflare(
        zone_id=ZONE_ID, api_token=None, api_email="me@example.com", api_key=key, rate_limit=False
    ) as cf:
        for credentials, accepted in [
            (Credentials(api_email="me@example.com", api_key=key), True),
            (Credentials(api_email="me@example.com", api_key="x" * 37), False),
        ]:
            client = CloudflareClient(
                credentials,
                ZONE_ID,
                api_base=cf.api_base,
                retry=FAST,
                sleep=FakeTime().sleep,
                transport=httpx.HTTPTransport(verify=False),
            )
            with client:
                if accepted:
                    client.purge({"files": urls(1)})
                else:
                    with pytest.raises(CfPurgeError) as caught:
                        client.purge({"files": urls(1)})
                    assert caught.value.codes == (10000,)
                    assert "x" * 37 not in str(caught.value)
        posts = purge_posts(cf)
        assert [p["status"] for p in posts] == [200, 403]
        assert {p["headers"]["X-Auth-Email"] for p in posts} == {"me@example.com"}
        assert {p["headers"]["X-Auth-Key"] for p in posts} == {"***"}
        assert "Authorization" not in posts[0]["headers"]
        assert len(cf.purges) == 1


@pytest.mark.parametrize(
    "api_base",
    [
        "http://api.cloudflare.com/client/v4",
        "http://10.0.0.1:8787/client/v4",
        "http://127.0.0.1.nip.io/client/v4",
        "ftp://127.0.0.1/client/v4",
        "not a url",
    ],
)
def test_api_base_must_be_https_unless_loopback(api_base: str) -> None:
    with pytest.raises(ConfigError) as caught:
        CloudflareClient(Credentials(api_token=TOKEN), ZONE_ID, api_base=api_base)
    assert caught.value.option == "api_base"
    assert caught.value.exit_code == 2
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    "api_base",
    [
        "https://api.cloudflare.com/client/v4/",
        "http://127.0.0.1:8787/client/v4",
        "http://127.0.0.2:8787/client/v4",
        "http://localhost:8787/client/v4",
        "http://[::1]:8787/client/v4",
    ],
)
def test_https_or_loopback_api_base_is_accepted(api_base: str) -> None:
    # Construction sends nothing (and the mock transport could not), so even Cloudflare's real
    # address is safe to name here.
    transport = httpx.MockTransport(lambda request: httpx.Response(599))
    with CloudflareClient(
        Credentials(api_token=TOKEN), ZONE_ID, api_base=api_base, transport=transport
    ) as client:
        assert client.api_base == api_base.rstrip("/")


def test_invalidate_method_posts_to_invalidate_cache(cf: LocalCloudflare, clock: FakeTime) -> None:
    with make_client(cf, clock, method="invalidate") as client:
        client.purge_all([{"files": urls(3)}, {"prefixes": ["docs.example.com/guide/"]}])

    assert [(r.method, r.kind) for r in cf.purges] == [
        ("invalidate_cache", "files"),
        ("invalidate_cache", "prefixes"),
    ]
    assert {p["path"] for p in purge_posts(cf)} == {f"/client/v4/zones/{ZONE_ID}/invalidate_cache"}


def test_credentials_go_to_api_base_only_and_redirects_are_not_followed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(307, headers={"Location": "http://127.0.0.1:9/steal"})

    api_base = "https://api.cloudflare.com/client/v4"
    client = CloudflareClient(
        Credentials(api_token=TOKEN),
        ZONE_ID,
        api_base=api_base,
        transport=httpx.MockTransport(handler),
        retry=FAST,
        sleep=FakeTime().sleep,
    )
    with client, pytest.raises(CfPurgeError, match="HTTP 307"):
        client.purge({"files": urls(1)})
    assert [str(r.url) for r in seen] == [f"{api_base}/zones/{ZONE_ID}/purge_cache"]
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"


# --- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("retry_after", [1, 3])
def test_429_storm_honours_retry_after(
    cf: LocalCloudflare,
    clock: FakeTime,
    caplog: pytest.LogCaptureFixture,
    retry_after: int,
) -> None:
    cf.fail_next(4, 429, retry_after=retry_after)
    with caplog.at_level(logging.WARNING, LOGGER), make_client(cf, clock) as client:
        client.purge({"files": urls(5)})

    # Retry-After, not the (0.01 s) backoff, decided every wait.
    assert clock.sleeps == [float(retry_after)] * 4
    assert [p["status"] for p in purge_posts(cf)] == [429] * 4 + [200]
    assert accepted_items(cf) == urls(5)
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 4 and all("HTTP 429" in m for m in retries)


def test_an_outsized_retry_after_is_capped_at_cloudflares_window(
    cf: LocalCloudflare, clock: FakeTime
) -> None:
    cf.fail_next(1, 429, retry_after=86400)
    with make_client(cf, clock) as client:
        client.purge({"files": urls(2)})
    assert clock.sleeps == [300.0]
    assert accepted_items(cf) == urls(2)


def test_5xx_is_retried_with_exponential_backoff_and_jitter(
    cf: LocalCloudflare, clock: FakeTime
) -> None:
    cf.fail_next(1, 500)
    cf.fail_next(1, 502)
    cf.fail_next(1, 503)
    policy = RetryPolicy(attempts=6, base_delay=0.01, max_delay=1.0)
    with make_client(cf, clock, retry=policy) as client:
        client.purge({"files": urls(1)})

    assert [p["status"] for p in purge_posts(cf)] == [500, 502, 503, 200]
    assert len(clock.sleeps) == 3
    for attempt, delay in enumerate(clock.sleeps, 1):
        assert 0 <= delay <= 0.01 * 2 ** (attempt - 1)
    assert len(cf.purges) == 1


def test_backoff_grows_exponentially_is_jittered_and_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0)
    rng = random.Random(42)
    for attempt, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
        draws = [policy.backoff(attempt, rng) for _ in range(300)]
        assert all(0 <= d <= cap for d in draws)
        assert max(draws) > 0.8 * cap  # grows with the attempt...
        assert min(draws) < 0.2 * cap  # ...with full jitter below it
        assert len(set(draws)) > 250


def test_dropped_connections_are_retried(cf: LocalCloudflare, clock: FakeTime) -> None:
    cf.drop_next(2)
    with make_client(cf, clock) as client:
        client.purge({"files": urls(4)})

    assert [p["status"] for p in purge_posts(cf)] == [0, 0, 200]  # 0: closed without answer
    assert accepted_items(cf) == urls(4)
    assert len(clock.sleeps) == 2


def test_a_timeout_is_retried(
    cf: LocalCloudflare, clock: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    cf.delay_next(1, 2.0)  # stop() cuts the wait short at teardown
    with caplog.at_level(logging.WARNING, LOGGER), make_client(cf, clock, timeout=0.3) as client:
        purge_id = client.purge({"files": urls(1)})

    assert clock.sleeps
    assert "ReadTimeout; retrying" in caplog.records[0].getMessage()
    # The timed-out request may still land later (as on Cloudflare); the retry's id is returned.
    assert purge_id in {record.id for record in cf.purges}


@pytest.mark.parametrize("fault", ["fail", "drop"])
def test_retries_are_bounded(cf: LocalCloudflare, clock: FakeTime, fault: str) -> None:
    if fault == "fail":
        cf.fail_next(50, 500)
    else:
        cf.drop_next(50)
    policy = RetryPolicy(attempts=3, base_delay=0.01)
    with make_client(cf, clock, retry=policy) as client, pytest.raises(CfPurgeError) as caught:
        client.purge({"files": urls(1)})

    assert len(purge_posts(cf)) == 3
    assert len(clock.sleeps) == 2
    assert caught.value.exit_code == 1
    assert cf.purges == []
    if fault == "fail":
        assert caught.value.status == 500
        assert "HTTP 500" in str(caught.value)
    else:
        assert "failed after 3 attempts" in str(caught.value)


# --- errors that retrying cannot mend ------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "status", "code", "advice"),
    [
        ("bad token", 403, 10000, "the API token is invalid, or lacks the Zone → Cache Purge"),
        ("unknown zone", 404, 7003, "no such zone: check zone_id"),
        ("malformed", 400, 1012, "Cloudflare found the request body malformed"),
        ("no access", 403, 9109, "the token may not access this zone"),
    ],
)
def test_other_4xx_fail_at_once_with_advice(
    cf: LocalCloudflare, clock: FakeTime, case: str, status: int, code: int, advice: str
) -> None:
    token, zone = TOKEN, ZONE_ID
    if case == "bad token":
        token = "tok-WRONG-0000"
    elif case == "unknown zone":
        zone = OTHER_ZONE
    else:
        cf.fail_next(1, status, code=code)
    with (
        make_client(cf, clock, token=token, zone_id=zone) as client,
        pytest.raises(CfPurgeError) as caught,
    ):
        client.purge({"files": urls(1)})

    error = caught.value
    assert (error.status, error.codes, error.exit_code) == (status, (code,), 1)
    assert f"failed with HTTP {status} ({code}: " in str(error)
    assert advice in str(error)
    assert len(purge_posts(cf)) == 1  # not retried
    assert clock.sleeps == []
    assert cf.purges == []
    assert token not in str(error) and TOKEN not in str(error)


def test_secrets_never_reach_error_text_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Even a server (or a transport) that echoes the credential gets it redacted."""
    key = "KEY-abcdef0123456789"
    answers: list[Callable[[httpx.Request], httpx.Response]] = [
        lambda r: httpx.Response(400, text=f"bad header {r.headers.get('X-Auth-Key')}"),
        lambda r: httpx.Response(
            403,
            json={
                "success": False,
                "errors": [{"code": 10000, "message": f"key {key} refused"}],
                "messages": [],
                "result": None,
            },
        ),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if not answers:
            raise httpx.ConnectError(f"cannot connect with {key}", request=request)
        return answers.pop(0)(request)

    client = CloudflareClient(
        Credentials(api_email="me@example.com", api_key=key),
        ZONE_ID,
        api_base="https://api.cloudflare.com/client/v4",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=2, base_delay=0.01),
        sleep=FakeTime().sleep,
    )
    errors = []
    with caplog.at_level(logging.DEBUG, LOGGER), client:
        for _ in range(3):
            with pytest.raises(CfPurgeError) as caught:
                client.purge({"files": urls(1)})
            errors.append(caught.value)
    assert [e.status for e in errors] == [400, 403, None]
    for error in errors:
        assert key not in str(error) and key not in repr(error) and key not in error.message
        assert "***" in str(error)
    assert key not in caplog.text


def test_a_200_without_a_successful_envelope_is_not_a_purge() -> None:
    client = CloudflareClient(
        Credentials(api_token=TOKEN),
        ZONE_ID,
        api_base="https://api.cloudflare.com/client/v4",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, text="<html>ok</html>")),
        retry=FAST,
        sleep=FakeTime().sleep,
    )
    with client, pytest.raises(CfPurgeError, match=r"HTTP 200: <html>ok</html>"):
        client.purge({"files": urls(1)})


def test_a_body_cloudflare_would_refuse_is_never_sent(cf: LocalCloudflare, clock: FakeTime) -> None:
    bad: list[dict[str, Any]] = [
        {"files": urls(1), "tags": ["x"]},
        {"files": [urls(1)[0], {"url": urls(2)[1]}]},
        {"files": []},
        {"purge_everything": False},
    ]
    with make_client(cf, clock) as client:
        for body in bad:
            with pytest.raises(CfPurgeError):
                client.purge(body)
        with pytest.raises(PurgeIncomplete) as caught:
            client.purge_all([{"files": urls(1)}, bad[0], {"files": urls(1, 5)}])

    assert caught.value.unsent == [bad[0], {"files": urls(1, 5)}]
    assert caught.value.exit_code == 1
    assert accepted_items(cf) == urls(1)
    assert len(purge_posts(cf)) == 1


# --- batches, progress and partial failure -------------------------------------------------------


def test_over_cap_batch_is_split_and_the_smaller_size_kept(make_cf: MakeCf) -> None:
    everything = urls(90)
    cf = make_cf(max_files_per_request=10)
    with make_client(cf, FakeTime(), max_files_per_request=30) as client:
        sent = client.purge_all([{"files": everything}])
        learned = client.max_files
    posts = purge_posts(cf)

    sizes = [(len(p["body"]["files"]), p["status"]) for p in posts]
    # 30 refused, then 15 refused: from there on no body is larger than 8.
    assert sizes[:2] == [(30, 400), (15, 400)]
    assert all(size <= 8 and status == 200 for size, status in sizes[2:]), sizes
    assert learned == 8
    assert sent == len(posts) - 2
    accepted = accepted_items(cf)
    assert sorted(accepted) == sorted(everything)  # every URL once, none lost
    assert all(len(record.items) <= 10 for record in cf.purges)


def test_object_entries_are_split_too(make_cf: MakeCf) -> None:
    entries = [{"url": url, "headers": {"CF-Device-Type": "mobile"}} for url in urls(12)]
    cf = make_cf(max_files_per_request=5)
    with make_client(cf, FakeTime()) as client:
        client.purge_all([{"files": entries}])
    purge_posts(cf)
    expected = {(e["url"], frozenset({("CF-Device-Type", "mobile")})) for e in entries}
    assert set(accepted_items(cf)) == expected and len(accepted_items(cf)) == 12


def test_a_body_of_one_url_refused_as_too_large_is_not_split_forever(make_cf: MakeCf) -> None:
    cf = make_cf()
    cf.fail_next(5, 400, code=1017)
    with make_client(cf, FakeTime()) as client:
        # A 400 that is not about the size (the message does not say so) is about the entry:
        # set apart as refused, never sent again.
        assert client.purge_all([{"files": urls(1)}]) == 0
    assert [(r.entry, r.code) for r in client.refused] == [(urls(1)[0], 1017)]
    assert len(purge_posts(cf)) == 1


def test_a_progress_line_per_request(
    cf: LocalCloudflare, clock: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    bodies = [{"files": urls(30)}, {"files": urls(5, 30)}, {"prefixes": ["docs.example.com/a/"]}]
    with caplog.at_level(logging.INFO, LOGGER), make_client(cf, clock) as client:
        assert client.purge_all(bodies) == 3

    progress = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert progress == [
        "cfpurge: 3 request(s) to send; each has 5s from connect to last byte",
        "cfpurge: request 1 of 3 (files) done; 30/35 URLs purged",
        "cfpurge: request 2 of 3 (files) done; 35/35 URLs purged",
        "cfpurge: request 3 of 3 (prefixes) done; 35/35 URLs purged",
    ]


def test_failure_part_way_lists_exactly_what_was_not_confirmed(
    clock: FakeTime, make_cf: MakeCf
) -> None:
    bodies: list[dict[str, Any]] = [
        {"files": urls(3)},
        {"files": urls(3, 3)},
        {"hosts": ["docs.example.com"]},
    ]

    def break_after_first(record: PurgeRecord) -> None:
        if len(cf.purges) == 1:  # the first accepted purge: everything after it fails
            cf.fail_next(100, 500)

    cf = make_cf(on_purge=break_after_first)
    policy = RetryPolicy(attempts=2, base_delay=0.01)
    with make_client(cf, clock, retry=policy) as client, pytest.raises(PurgeIncomplete) as ex:
        client.purge_all(bodies)
    purge_posts(cf)

    assert ex.value.unsent == bodies[1:]
    assert (ex.value.exit_code, ex.value.status) == (1, 500)
    assert "2 request(s) not confirmed" in str(ex.value)
    assert accepted_items(cf) == urls(3)


# --- the zone check ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hosts", [["example.com"], ["docs.example.com", "www.example.com"], ["DOCS.Example.COM:443"]]
)
def test_zone_check_passes_for_hosts_in_the_zone(
    cf: LocalCloudflare, clock: FakeTime, hosts: list[str]
) -> None:
    with make_client(cf, clock) as client:
        client.check_zone(hosts)
    assert [(r["method"], r["path"]) for r in cf.requests] == [
        ("GET", f"/client/v4/zones/{ZONE_ID}")
    ]


@pytest.mark.parametrize(
    ("hosts", "foreign"),
    [
        (["example.org"], "example.org"),
        (["docs.example.com", "notexample.com"], "notexample.com"),
        (["example.com.evil.net"], "example.com.evil.net"),
    ],
)
def test_zone_check_refuses_hosts_the_zone_does_not_own(
    cf: LocalCloudflare, clock: FakeTime, hosts: list[str], foreign: str
) -> None:
    with make_client(cf, clock) as client, pytest.raises(CfPurgeError) as caught:
        client.check_zone(hosts)
    message = str(caught.value)
    assert f"zone {ZONE_ID} is 'example.com', which does not own host(s) {foreign}" in message
    assert "nothing was purged" in message
    assert purge_posts(cf) == []


def test_token_without_zone_read_gets_one_warning(
    clock: FakeTime, caplog: pytest.LogCaptureFixture, make_cf: MakeCf
) -> None:
    cf = make_cf(zone_readable=False)
    with caplog.at_level(logging.WARNING, LOGGER), make_client(cf, clock) as client:
        client.check_zone(["docs.example.com"])
        client.purge({"files": urls(1)})
        assert len(cf.purges) == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "may not read zone" in warnings[0].getMessage()
    assert "verify_zone: false" in warnings[0].getMessage()


def test_zone_check_with_an_unknown_zone_fails_clearly(clock: FakeTime, make_cf: MakeCf) -> None:
    cf = make_cf()
    with (
        make_client(cf, clock, zone_id=OTHER_ZONE) as client,
        pytest.raises(CfPurgeError, match="no such zone: check zone_id"),
    ):
        client.check_zone(["docs.example.com"])
    assert purge_posts(cf) == []


# --- pacing --------------------------------------------------------------------------------------


def test_flex_purges_are_paced_to_the_free_plan(clock: FakeTime, make_cf: MakeCf) -> None:
    bodies = [{"prefixes": [f"docs.example.com/s{i}/"]} for i in range(30)]
    cf = make_cf(plan="free", rate_limit=True, clock=clock.clock)
    with make_client(cf, clock, plan="free") as client:
        assert client.purge_all(bodies) == 30
    statuses = [p["status"] for p in purge_posts(cf)]

    assert statuses == [200] * 30  # the client waited; the server never had to refuse
    # Burst 25, then 5 per minute: the last 5 requests each waited for one token (12 s).
    assert sum(clock.sleeps) == pytest.approx(5 * 12, rel=0.01)
    assert len(cf.purges) == 30


def test_url_purges_are_paced_to_the_free_plan(clock: FakeTime, make_cf: MakeCf) -> None:
    bodies = [{"files": urls(30, 30 * i)} for i in range(30)]  # 900 URLs: burst is 800
    cf = make_cf(plan="free", rate_limit=True, clock=clock.clock)
    with make_client(cf, clock, plan="free") as client:
        client.purge_all(bodies)
    statuses = [p["status"] for p in purge_posts(cf)]

    assert statuses == [200] * 30
    # The client keeps 50 ms of URLs (40) below the burst of 800, so Cloudflare's bucket is
    # never behind its own: 900 URLs wait (900 - 760) / 800 s in all.
    assert sum(clock.sleeps) == pytest.approx(140 / 800, rel=0.05)


def test_a_client_paced_for_a_bigger_plan_is_throttled_and_recovers(
    clock: FakeTime, make_cf: MakeCf
) -> None:
    """The control for the pacing tests: without the right plan the server does refuse."""
    bodies = [{"prefixes": [f"docs.example.com/s{i}/"]} for i in range(27)]
    cf = make_cf(plan="free", rate_limit=True, clock=clock.clock)
    with make_client(cf, clock, plan="enterprise") as client:
        client.purge_all(bodies)
    posts = purge_posts(cf)

    assert [p["status"] for p in posts] == [200] * 25 + [429, 200, 429, 200]
    assert clock.sleeps == [12.0, 12.0]  # the Retry-After the server sent
    assert len(cf.purges) == 27


def test_a_proxy_from_the_environment_never_gets_a_loopback_api_call(
    cf: LocalCloudflare, clock: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain http is allowed on loopback only: the token must not travel to a proxy in clear.

    The "proxy" is a closed port on 127.0.0.1, so a client that used it fails to connect.
    """
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # The default transport: a transport given by the caller already ignores proxy variables.
    client = CloudflareClient(
        Credentials(api_token=TOKEN),
        ZONE_ID,
        api_base=cf.api_base,
        retry=RetryPolicy(attempts=2, base_delay=0.01),
        sleep=clock.sleep,
    )
    with client:
        client.purge({"files": urls(1)})
    assert accepted_items(cf) == urls(1)
    assert clock.sleeps == []
