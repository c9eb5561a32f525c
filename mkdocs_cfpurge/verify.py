"""`mkdocs-cfpurge verify`: fetch what a purge covered and prove the CDN serves the new bytes.

Cloudflare answers a purge with 200 once it has accepted it, not once every cache has dropped the
old copy; only a fetch through the CDN shows what visitors get. Each URL of the plan's changes is
fetched once and its body hashed the way the manifest hashes the file (with the same
`ignore_changes` noise filter), so a page is fresh exactly when the bytes served are the bytes
built. Deleted files must answer 404 (or 410) instead.

httpx is imported inside the functions that fetch, so that importing this module (the CLI does)
costs nothing until a fetch happens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from mkdocs_cfpurge.build.manifest import Manifest, Normalizer
from mkdocs_cfpurge.build.noise import make_normalizer
from mkdocs_cfpurge.errors import ConfigError
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.changes import Status
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.settings import Settings, check_connect_to

if TYPE_CHECKING:
    import httpx

Outcome = Literal["fresh", "stale", "deleted", "error"]
GONE = frozenset({404, 410})
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT = 10.0
Headers = tuple[tuple[str, str], ...]


REDIRECTS = frozenset({301, 302, 303, 307, 308})
# What a URL should answer now: a built file's bytes, a redirect (the slashless `/X` of a folder
# `X/`, as static hosts answer it), or 404 (a file or folder deleted).
Expect = Literal["file", "redirect", "gone"]


@dataclass(frozen=True)
class Target:
    """One cache key to check: a URL (plus the headers of a custom cache key variant)."""

    url: str
    path: str
    headers: Headers
    expect: Expect
    expected_hash: str = ""  # the file's manifest hash, when `expect` is "file"


@dataclass(frozen=True)
class UrlCheck:
    url: str
    path: str
    headers: Headers
    outcome: Outcome
    status: int | None
    cache_status: str  # the CF-Cache-Status answered ("" when none)
    detail: str

    def line(self) -> str:
        variant = "".join(f" [{name}: {value}]" for name, value in self.headers)
        status = str(self.status) if self.status is not None else "-"
        line = f"{self.outcome:7} {status:>3} {self.cache_status or '-':9} {self.url}{variant}"
        return line + (f": {self.detail}" if self.detail else "")


@dataclass
class VerifyResult:
    checks: list[UrlCheck] = field(default_factory=list)

    def of(self, outcome: Outcome) -> list[UrlCheck]:
        return [check for check in self.checks if check.outcome == outcome]

    @property
    def stale(self) -> list[UrlCheck]:
        return self.of("stale")

    @property
    def errors(self) -> list[UrlCheck]:
        return self.of("error")

    @property
    def ok(self) -> bool:
        """Every URL proven fresh (or gone): nothing stale, nothing left unchecked."""
        return not self.stale and not self.errors

    def summary(self) -> str:
        line = (
            f"verify: {len(self.of('fresh'))} URL(s) fresh, {len(self.stale)} stale, "
            f"{len(self.of('deleted'))} deleted → 404"
        )
        if self.errors:
            line += f", {len(self.errors)} not checked (errors)"
        return line

    def log(self) -> None:
        """Each stale or unchecked URL as a warning, then the summary (for the plugin)."""
        for check in self.checks:
            if check.outcome in ("stale", "error"):
                log.warning("cfpurge: %s", check.line())
        (log.info if self.ok else log.warning)("cfpurge: %s", self.summary())


def body_hash(path: str, body: bytes, normalize: Normalizer | None) -> str:
    """The body's hash as the manifest computes the file's (see manifest.hash_file)."""
    if normalize is not None and normalize.applies(path):
        body = normalize(path, body)
    return hashlib.sha256(body).hexdigest()


def header_variants(plan: PurgePlan) -> dict[str, list[Headers]]:
    """The custom cache-key variants (`{url, headers}` entries) the plan purged, by URL."""
    variants: dict[str, list[Headers]] = {}
    for body in plan.requests:
        for item in body.get("files", ()):
            if isinstance(item, dict) and item.get("headers"):
                headers = tuple(sorted(item["headers"].items()))
                known = variants.setdefault(item["url"], [])
                if headers not in known:
                    known.append(headers)
    return variants


def targets(plan: PurgePlan, manifest: Manifest) -> tuple[list[Target], list[UrlCheck]]:
    """What to fetch, and the URLs that cannot be checked (the plan names a file not built)."""
    variants = header_variants(plan)
    found: dict[tuple[str, Headers], Target] = {}
    missing: list[UrlCheck] = []
    for change in plan.changes:
        expect: Expect = "file"
        expected_hash = ""
        if change.status is Status.DELETED:
            expect = "gone"
        elif change.path.endswith("/"):
            expect = "redirect"  # a folder that appeared: its slashless URL redirects
        elif change.path in manifest.files:
            expected_hash = manifest.files[change.path]
        else:
            missing += [
                UrlCheck(url, change.path, (), "error", None, "", "not among SITE_DIR's files")
                for url in change.urls
            ]
            continue
        for url in change.urls:
            for headers in [(), *variants.get(url, [])]:
                target = Target(url, change.path, headers, expect, expected_hash)
                found.setdefault((url, headers), target)
    return list(found.values()), missing


def _request(
    target: Target, connect_to: str | None
) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The address, headers and extensions of one fetch (see `--connect-to`)."""
    import httpx

    public = httpx.URL(target.url)
    headers = dict(target.headers)
    if connect_to is None:
        return public, headers, {}
    # Like curl --connect-to: the public URL's path and query, sent to another server, which
    # learns the public host and scheme from the headers (as a CDN's edge or origin would).
    address = httpx.URL(connect_to).copy_with(raw_path=public.raw_path)
    headers.update({"Host": public.netloc.decode("ascii"), "X-Forwarded-Proto": public.scheme})
    # TLS to that server is still for the public host name (SNI and certificate check).
    extensions = {"sni_hostname": public.host} if address.scheme == "https" else {}
    return address, headers, extensions


def _classify(
    target: Target, status: int, body: bytes, normalize: Normalizer | None
) -> tuple[Outcome, str]:
    if target.expect == "gone":
        if status in GONE:
            return "deleted", ""
        if status == 200 or status in REDIRECTS:
            return "stale", f"deleted, still answers {status}"
        return "error", f"expected 404, got HTTP {status}"
    if status in GONE:
        return "stale", f"answers {status}, though built (a cached 404 from before it existed?)"
    if target.expect == "redirect":
        # Hosts differ on a slashless folder URL (a redirect, or the index itself): either way
        # the old cached answer, a 404, is gone.
        if status == 200 or status in REDIRECTS:
            return "fresh", ""
        return "error", f"expected a redirect, got HTTP {status}"
    if status == 200:
        served = body_hash(target.path, body, normalize)
        if served == target.expected_hash:
            return "fresh", ""
        built = target.expected_hash[:12]
        return "stale", f"body sha256 {served[:12]}… is not the built file's {built}…"
    return "error", f"expected 200, got HTTP {status}"


def _check(
    client: httpx.Client, target: Target, connect_to: str | None, normalize: Normalizer | None
) -> UrlCheck:
    import httpx

    address, headers, extensions = _request(target, connect_to)
    try:
        response = client.get(address, headers=headers, extensions=extensions)
    except httpx.HTTPError as exc:
        what = "timed out" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
        return UrlCheck(target.url, target.path, target.headers, "error", None, "", what)
    outcome, detail = _classify(target, response.status_code, response.content, normalize)
    return UrlCheck(
        target.url,
        target.path,
        target.headers,
        outcome,
        response.status_code,
        response.headers.get("CF-Cache-Status", ""),
        detail,
    )


def verify_manifest(
    plan: PurgePlan,
    manifest: Manifest,
    settings: Settings,
    *,
    connect_to: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
) -> VerifyResult:
    """Fetch every URL of the plan's changes and compare it with `manifest`'s hashes."""
    import httpx

    from mkdocs_cfpurge.http import DeadlineClient

    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError("concurrency", f"{concurrency!r} must be a whole number above 0")
    if not timeout > 0:
        raise ConfigError("timeout", f"{timeout!r} must be above 0 seconds")
    connect = check_connect_to(connect_to) if connect_to is not None else None
    normalize = make_normalizer(settings.ignore_changes)
    todo, unchecked = targets(plan, manifest)
    with (
        DeadlineClient(
            deadline=timeout,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency),
            # A redirect is an answer of its own (Cloudflare caches it under this URL).
            follow_redirects=False,
            # With --connect-to the address is explicit: no proxy from the environment.
            trust_env=connect is None,
            headers={"User-Agent": "mkdocs-cfpurge verify"},
        ) as client,
        ThreadPoolExecutor(max_workers=concurrency) as pool,
    ):
        checks = list(pool.map(lambda t: _check(client, t, connect, normalize), todo))
    return VerifyResult(checks + unchecked)


def lines(result: VerifyResult, *, verbose: bool = False) -> Iterable[str]:
    """One line per URL that is not fresh (every URL when verbose), then the summary."""
    for check in result.checks:
        if verbose or check.outcome in ("stale", "error"):
            yield check.line()
    yield result.summary()
