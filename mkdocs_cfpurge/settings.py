"""Everything the pipeline needs to know, validated once, whichever front end read it.

The MkDocs plugin and the CLI both build a `Settings`; every check lives here so that a bad value
gets the same message, naming the option, from either.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mkdocs_cfpurge.build.manifest import compile_excludes
from mkdocs_cfpurge.build.noise import compile_patterns
from mkdocs_cfpurge.cloudflare.limits import MAX_FILES_PER_REQUEST, PLANS
from mkdocs_cfpurge.errors import config_error
from mkdocs_cfpurge.plan.plan import STRATEGIES
from mkdocs_cfpurge.plan.urls import SiteUrl, UrlMapper, parse_host

DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"
METHODS = ("purge", "invalidate")
SCHEMES = ("https", "http")
_ZONE_ID = re.compile(r"[0-9a-f]{32}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Credentials:
    """An API token, or the legacy email + Global API key. Never printed."""

    api_token: str | None = None
    api_email: str | None = None
    api_key: str | None = None

    def headers(self) -> dict[str, str]:
        if self.api_token:
            return {"Authorization": f"Bearer {self.api_token}"}
        return {"X-Auth-Email": self.api_email or "", "X-Auth-Key": self.api_key or ""}

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.api_token, self.api_key) if s)

    def __repr__(self) -> str:
        kind = "api_token" if self.api_token else "api_email+api_key"
        return f"Credentials({kind}=***)"

    __str__ = __repr__


def _secret(value: str | None, option: str, env_name: str) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    if not stripped:
        raise config_error(option, f"is empty (check the {env_name} variable or secret)")
    if any(ch.isspace() for ch in stripped) or not stripped.isprintable():
        raise config_error(option, "holds spaces or control characters; paste the value alone")
    # A trailing newline from `echo token > file` or a copied secret is stripped, not an error.
    return stripped


def resolve_credentials(
    api_token: str | None,
    api_email: str | None,
    api_key: str | None,
    env: Mapping[str, str],
) -> Credentials | None:
    """Options win over the environment; a half-given pair or both kinds at once is an error."""
    token = _secret(
        api_token if api_token is not None else env.get("CLOUDFLARE_API_TOKEN"),
        "api_token",
        "CLOUDFLARE_API_TOKEN",
    )
    email = api_email if api_email is not None else env.get("CLOUDFLARE_EMAIL")
    key = _secret(
        api_key if api_key is not None else env.get("CLOUDFLARE_API_KEY"),
        "api_key",
        "CLOUDFLARE_API_KEY",
    )
    email = email.strip() if email else None
    if token and (email or key):
        raise config_error(
            "api_token",
            "is set together with api_email/api_key; give one kind of credentials, not both",
        )
    if token:
        return Credentials(api_token=token)
    if email or key:
        if not (email and key):
            missing = "api_key" if email else "api_email"
            raise config_error(missing, "is missing: api_email and api_key go together")
        return Credentials(api_email=email, api_key=key)
    return None


def parse_zone_id(value: str | None, option: str = "zone_id") -> str | None:
    if value is None or value == "":
        return None
    zone = value.strip().lower()
    if not _ZONE_ID.fullmatch(zone):
        raise config_error(
            option,
            f"{value!r} is not a zone id (32 hexadecimal characters, shown on the zone's "
            "Overview page in the Cloudflare dashboard)",
        )
    return zone


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_base(value: str, option: str = "api_base") -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise config_error(option, f"{value!r} is not an http(s) URL")
    if parts.scheme != "https" and not is_loopback(parts.hostname):
        raise config_error(
            option,
            f"{value!r} must use https:// (plain http is allowed only on loopback, for the "
            "local server): credentials would travel in clear",
        )
    return value.strip().rstrip("/")


def check_max_files(value: int, option: str = "max_files_per_request") -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_FILES_PER_REQUEST
    ):
        raise config_error(
            option, f"{value!r} must be a whole number from 1 to {MAX_FILES_PER_REQUEST}"
        )
    return value


def check_choice(value: str, choices: Sequence[str], option: str) -> str:
    if value not in choices:
        raise config_error(option, f"{value!r} is not one of {', '.join(choices)}")
    return value


def check_headers(
    maps: Sequence[Mapping[str, str]], option: str = "cache_key_headers"
) -> tuple[dict[str, str], ...]:
    checked = []
    for number, headers in enumerate(maps, 1):
        if not isinstance(headers, Mapping) or not headers:
            raise config_error(option, f"entry {number} must be a non-empty map of header: value")
        for name, val in headers.items():
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                raise config_error(option, f"entry {number}: {name!r} is not a header name")
            if not isinstance(val, str) or not val.isprintable():
                raise config_error(option, f"entry {number}: header {name} needs a text value")
        checked.append(dict(headers))
    return tuple(checked)


def env_flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in _TRUE


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one run of the pipeline."""

    site: SiteUrl
    manifest_path: Path
    plan_path: Path | None = None
    hosts: tuple[str, ...] = ()
    schemes: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    cache_key_headers: tuple[dict[str, str], ...] = ()
    extra_urls: tuple[str, ...] = ()
    ignore_changes: tuple[str, ...] = ()
    strategy: str = "auto"
    max_files_per_request: int = 30
    max_purge_seconds: float = 60.0
    max_collateral: int = 100
    allow_purge_everything: bool = False
    zone_id: str | None = None
    credentials: Credentials | None = field(default=None, repr=False)
    api_base: str = DEFAULT_API_BASE
    cloudflare_plan: str = "free"
    method: str = "purge"
    verify_zone: bool = True
    dry_run: bool = False

    @classmethod
    def create(
        cls,
        *,
        site_url: str | None,
        manifest_path: Path,
        plan_path: Path | None = None,
        hosts: Sequence[str] = (),
        schemes: Sequence[str] = (),
        exclude: Sequence[str] = (),
        cache_key_headers: Sequence[Mapping[str, str]] = (),
        extra_urls: Sequence[str] = (),
        ignore_changes: Sequence[str] = (),
        strategy: str = "auto",
        max_files_per_request: int = 30,
        max_purge_seconds: float = 60.0,
        max_collateral: int = 100,
        allow_purge_everything: bool = False,
        zone_id: str | None = None,
        api_token: str | None = None,
        api_email: str | None = None,
        api_key: str | None = None,
        api_base: str | None = None,
        cloudflare_plan: str = "free",
        method: str = "purge",
        verify_zone: bool = True,
        dry_run: bool = False,
        env: Mapping[str, str],
    ) -> Settings:
        """Validate raw option values (environment variables fill what options leave unset)."""
        site = SiteUrl.parse(site_url or "")
        compile_excludes(tuple(exclude))
        compile_patterns(tuple(ignore_changes))
        if not max_purge_seconds > 0:
            raise config_error("max_purge_seconds", f"{max_purge_seconds!r} must be above 0")
        if isinstance(max_collateral, bool) or not max_collateral >= 0:
            raise config_error("max_collateral", f"{max_collateral!r} must be 0 or more")
        for scheme in schemes:
            check_choice(scheme, SCHEMES, "schemes")
        for url in extra_urls:
            if urlsplit(url).scheme not in SCHEMES or not urlsplit(url).hostname:
                raise config_error("extra_urls", f"{url!r} is not a full http(s) URL")
        return cls(
            site=site,
            manifest_path=manifest_path,
            plan_path=plan_path,
            hosts=tuple(parse_host(h) for h in hosts),
            schemes=tuple(dict.fromkeys(schemes)),
            exclude=tuple(exclude),
            cache_key_headers=check_headers(cache_key_headers),
            extra_urls=tuple(extra_urls),
            ignore_changes=tuple(ignore_changes),
            strategy=check_choice(strategy, STRATEGIES, "strategy"),
            max_files_per_request=check_max_files(max_files_per_request),
            max_purge_seconds=float(max_purge_seconds),
            max_collateral=int(max_collateral),
            allow_purge_everything=allow_purge_everything,
            zone_id=parse_zone_id(zone_id if zone_id else env.get("CLOUDFLARE_ZONE_ID")),
            credentials=resolve_credentials(api_token, api_email, api_key, env),
            api_base=check_api_base(api_base or env.get("CLOUDFLARE_API_BASE") or DEFAULT_API_BASE),
            cloudflare_plan=check_choice(cloudflare_plan, PLANS, "cloudflare_plan"),
            method=check_choice(method, METHODS, "method"),
            verify_zone=verify_zone,
            dry_run=dry_run or env_flag(env, "CFPURGE_DRY_RUN"),
        )

    def mapper(self) -> UrlMapper:
        return UrlMapper.create(self.site, self.hosts, self.schemes or None, self.cache_key_headers)

    def require_purge_access(self) -> tuple[str, Credentials]:
        """The zone and credentials a purge needs, or an error saying which is missing."""
        if self.zone_id is None:
            raise config_error("zone_id", "is not set (set it, or the CLOUDFLARE_ZONE_ID variable)")
        if self.credentials is None:
            raise config_error(
                "api_token",
                "is not set (set the CLOUDFLARE_API_TOKEN variable, from a CI secret; a token "
                "with the Zone → Cache Purge permission)",
            )
        return self.zone_id, self.credentials
