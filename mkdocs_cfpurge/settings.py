"""Every option, declared once; the validated settings of one run.

`Options` declares each option a single time: its name, type, default, range and help (and the
environment variable that fills it when unset). The MkDocs config class, the CLI's flags and the
Sphinx config values are generated from it, and every value any front end reads is validated by
it, so a value is accepted or refused the same way, with the same message naming the option.

`Settings` is what the pipeline runs with: the options, the site URL and the paths resolved.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, ValidationError
from pydantic.fields import FieldInfo

from mkdocs_cfpurge.build.manifest import compile_excludes
from mkdocs_cfpurge.build.noise import compile_patterns
from mkdocs_cfpurge.build.safejson import parse_json
from mkdocs_cfpurge.cloudflare.limits import DEFAULT_FILES_PER_REQUEST, MAX_FILES_PER_REQUEST
from mkdocs_cfpurge.errors import ConfigError, UsageError
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.urls import SiteUrl, UrlMapper, dns_host, parse_host
from mkdocs_cfpurge.redact import register

DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"
DEFAULT_MANIFEST = ".cache/plugin/cfpurge/manifest.json"
DEFAULT_PLAN_FILE = ".cache/plugin/cfpurge/plan.json"
DRY_RUN_VAR = "CFPURGE_DRY_RUN"
SECRET_OPTIONS = frozenset({"api_token", "api_key"})

Strategy = Literal["auto", "files", "prefixes", "everything"]
CloudflarePlan = Literal["free", "pro", "business", "enterprise"]
Method = Literal["purge", "invalidate"]
Scheme = Literal["https", "http"]
PurgeOn = Literal["gh-deploy", "build"]
QueryStrings = Literal["auto", "on", "off"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
PLANS: tuple[str, ...] = get_args(CloudflarePlan)
METHODS: tuple[str, ...] = get_args(Method)
SCHEMES: tuple[str, ...] = get_args(Scheme)

_ZONE_ID = re.compile(r"[0-9a-f]{32}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_TRUE = frozenset({"1", "true", "yes", "on", "y"})
_FALSE = frozenset({"", "0", "false", "no", "off", "n"})


# --- checks of single values (each raises ConfigError naming the option) ----------------------


def parse_zone_id(value: str | None, option: str = "zone_id") -> str | None:
    if value is None or value == "":
        return None
    zone = value.strip().lower()
    if not _ZONE_ID.fullmatch(zone):
        raise ConfigError(
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
        raise ConfigError(option, f"{value!r} is not an http(s) URL")
    if parts.scheme != "https" and not is_loopback(parts.hostname):
        raise ConfigError(
            option,
            f"{value!r} must use https:// (plain http is allowed only on loopback, for the "
            "local server): credentials would travel in clear",
        )
    return value.strip().rstrip("/")


def check_headers(
    maps: Sequence[Mapping[str, str]], option: str = "cache_key_headers"
) -> tuple[dict[str, str], ...]:
    checked = []
    for number, headers in enumerate(maps, 1):
        if not isinstance(headers, Mapping) or not headers:
            raise ConfigError(option, f"entry {number} must be a non-empty map of header: value")
        for name, val in headers.items():
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                raise ConfigError(option, f"entry {number}: {name!r} is not a header name")
            if not isinstance(val, str) or not val.isprintable():
                raise ConfigError(option, f"entry {number}: header {name} needs a text value")
        checked.append(dict(headers))
    return tuple(checked)


def check_full_url(value: str, option: str = "extra_urls") -> str:
    """A full http(s) URL, its host as a cache key holds it (lower case, IDNA ASCII)."""
    parts = urlsplit(value)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ConfigError(option, f"{value!r} is not a full http(s) URL")
    if "@" in parts.netloc:
        raise ConfigError(option, f"{value!r} must not carry credentials")
    try:
        host = dns_host(parts.netloc)
    except ValueError as exc:
        raise ConfigError(option, f"{value!r}: {exc}") from None
    return urlunsplit(parts._replace(netloc=host))


def check_base_url(value: str, option: str) -> str:
    """A site's base URL (scheme, host, path ending in /), as site_url is checked."""
    return str(SiteUrl.parse(value, option))


def check_connect_to(value: str, option: str = "verify_connect_to") -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(option, f"{value!r} must be http(s)://HOST[:PORT]")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ConfigError(option, f"{value!r} must name a server only (no path, query or user)")
    return f"{parts.scheme}://{parts.netloc}"


def check_secret(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    if not stripped:
        variable = option_info(option)[1].get("env")
        raise ConfigError(option, f"is empty (check the {variable} variable or secret)")
    if any(ch.isspace() for ch in stripped) or not stripped.isprintable():
        raise ConfigError(option, "holds spaces or control characters; paste the value alone")
    # A trailing newline from `echo token > file` or a copied secret is stripped, not an error.
    return stripped


def env_flag(env: Mapping[str, str], name: str) -> bool:
    """A yes/no environment variable; anything else is refused rather than read as "no"."""
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(
        f"variable {name}={env[name]!r} is not a yes/no value (use 1, true, yes or on; "
        "0, false, no or off)"
    )


def _checked(check: Callable[[Any, str], object], *, each: bool = False) -> AfterValidator:
    """Run one of the checks above inside the model; its problem becomes pydantic's message."""

    def run(value: Any, info: Any) -> Any:
        if value is None:
            return None
        try:
            if each:
                return [check(item, info.field_name) for item in value]
            result = check(value, info.field_name)
        except ConfigError as exc:
            raise ValueError(exc.problem) from None
        return value if result is None else result

    return AfterValidator(run)


def _keep(check: Callable[[Any, str], object]) -> AfterValidator:
    """Like `_checked`, for checks whose result is not the value (compiled patterns)."""

    def run(value: Any, info: Any) -> Any:
        try:
            check(value, info.field_name)
        except ConfigError as exc:
            raise ValueError(exc.problem) from None
        return value

    return AfterValidator(run)


def _option(
    default: Any,
    help: str,
    *,
    env: str | None = None,
    group: str,
    flag: str | None = None,
    unit: str | None = None,
    **constraints: Any,
) -> Any:
    """Declare one option: its default, help, range and where it applies.

    `group` says which commands take it (see cli.py); `flag` names its CLI flag when that is not
    `--` + the name (a list option's flag is singular: `--host` adds one of `hosts`); `env` is
    the variable that fills it when left unset.
    """
    extra: dict[str, JsonValue] = {"group": group, "env": env, "flag": flag, "unit": unit}
    # Credentials never show in a repr (logs, tracebacks, test failures).
    shown = group != "credentials"
    return Field(default, description=help, json_schema_extra=extra, repr=shown, **constraints)


Seconds = Annotated[float, Field(strict=True, gt=0)]
Flag = Annotated[bool, Field(strict=True)]


class Options(BaseModel):
    """The options of mkdocs-cfpurge, as mkdocs.yml, the CLI and conf.py take them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: Flag = _option(
        True,
        "Turn the plugin off without removing it (e.g. `!ENV [CFPURGE, true]`).",
        group="plugin",
    )
    zone_id: Annotated[str | None, _checked(parse_zone_id)] = _option(
        None,
        "Cloudflare zone id (32 hex characters, on the zone's Overview page).",
        env="CLOUDFLARE_ZONE_ID",
        group="cloudflare",
    )
    api_token: Annotated[str | None, _checked(check_secret)] = _option(
        None,
        "API token with Zone → Cache Purge. Keep it out of mkdocs.yml (use the variable "
        "or `!ENV`); a trailing newline is stripped.",
        env="CLOUDFLARE_API_TOKEN",
        group="credentials",
    )
    api_email: str | None = _option(
        None,
        "Legacy auth: the account's email, together with `api_key`.",
        env="CLOUDFLARE_EMAIL",
        group="credentials",
    )
    api_key: Annotated[str | None, _checked(check_secret)] = _option(
        None,
        "Legacy auth: the Global API key, together with `api_email`.",
        env="CLOUDFLARE_API_KEY",
        group="credentials",
    )
    api_base: Annotated[str, _checked(check_api_base)] = _option(
        DEFAULT_API_BASE,
        "Cloudflare's API address. Must be https, except on loopback (the bundled local server).",
        env="CLOUDFLARE_API_BASE",
        group="cloudflare",
    )
    hosts: Annotated[list[str], _checked(parse_host, each=True)] = _option(
        [],
        "More host names serving the site; site_url's host (and `CNAME`'s) is always in.",
        group="site",
        flag="--host",
    )
    schemes: list[Scheme] = _option(
        [],
        "Schemes whose cache keys to purge (default: site_url's). Add `http` for zones "
        "that cache http and https apart.",
        group="site",
        flag="--scheme",
    )
    dry_run: Flag = _option(
        False,
        f"Only write the plan and report: send nothing, change no state. "
        f"{DRY_RUN_VAR}=1 (or true, yes, on) forces it on.",
        env=DRY_RUN_VAR,
        group="cloudflare",
    )
    manifest: str = _option(
        DEFAULT_MANIFEST,
        "The last deploy's manifest (relative to mkdocs.yml's folder). "
        "`pending.json` and a lock file live beside it.",
        group="state",
    )
    plan_file: str | None = _option(
        DEFAULT_PLAN_FILE,
        "Where the plan (the exact request bodies) is written, with a "
        "Markdown summary beside it (`plan.md`).",
        group="state",
        flag="--plan-file",
    )
    purge_on: list[PurgeOn] = _option(
        ["gh-deploy"],
        "Commands that purge. `build` suits sites built straight into the folder "
        "the origin serves. `mkdocs serve` never purges.",
        group="plugin",
    )
    max_files_per_request: Annotated[int, Field(strict=True, ge=1, le=MAX_FILES_PER_REQUEST)] = (
        _option(
            DEFAULT_FILES_PER_REQUEST,
            "URLs per `files` request. 30 works on every plan; a batch "
            "the API refuses as too large is split and the smaller size kept.",
            group="planning",
        )
    )
    strategy: Strategy = _option(
        "auto",
        "`auto`: exact URLs while the purge fits `max_purge_seconds`, else folder "
        "prefixes; `files`: every URL; `prefixes`: each changed folder; `everything`: the zone.",
        group="planning",
    )
    max_purge_seconds: Seconds = _option(
        60.0,
        "`auto`: the longest the purge may take under your plan's rate limits.",
        group="planning",
        unit="seconds",
    )
    max_collateral: Annotated[int, Field(strict=True, ge=0)] = _option(
        100,
        "`auto`: the most unchanged URLs one prefix may purge with the changed ones.",
        group="planning",
    )
    allow_purge_everything: Flag = _option(
        False,
        "`auto`: may fall back to purge_everything when nothing else fits; otherwise the "
        "deploy stops and says which numbers and options would let it through.",
        group="planning",
    )
    cloudflare_plan: CloudflarePlan = _option(
        "free",
        "Your Cloudflare plan: the rate limits to pace by (and `auto`'s estimates).",
        group="planning",
    )
    ignore_changes: Annotated[list[str], _keep(compile_patterns)] = _option(
        [],
        "Regular expressions (or presets `mkdocs-build-date`, `sitemap-lastmod`, "
        "`git-revision-date-localized`, `rss-build-date`) removed from HTML, XML and JSON "
        "outputs before hashing. Only the matched text is ignored: a real edit still purges. "
        "The manifest records them: keep them the same for every command.",
        group="hashing",
    )
    exclude: Annotated[list[str], _keep(compile_excludes)] = _option(
        [],
        "Gitignore-style patterns of output files never hashed nor purged.",
        group="hashing",
    )
    cache_key_headers: Annotated[list[dict[str, str]], _keep(check_headers)] = _option(
        [],
        "Header maps of custom cache keys (`{CF-Device-Type: mobile}`): each URL also goes "
        "out as `{url, headers}` per map.",
        group="site",
        flag="--cache-key-header",
    )
    extra_urls: Annotated[list[str], _checked(check_full_url, each=True)] = _option(
        [],
        "Full URLs purged on every deploy that changes something (feeds, status pages).",
        group="site",
        flag="--extra-url",
    )
    method: Method = _option(
        "purge",
        "`purge` deletes cached copies; `invalidate` marks them stale (revalidated "
        "with the origin).",
        group="cloudflare",
    )
    purge_timeout: Seconds = _option(
        900.0,
        "The longest one purge may run, rate-limit waits and retries included (each request "
        "has 30 s from connect to last byte); what is not sent by then stays pending (exit 1).",
        group="cloudflare",
        unit="seconds",
    )
    verify_zone: Flag = _option(
        True,
        "Before the first purge, check that the zone owns every host (needs Zone → Zone Read).",
        group="cloudflare",
    )
    wait_for_origin: Flag = _option(
        True,
        "Before purging, wait until the origin serves this build's marker "
        "(`cfpurge-build.json`): purging earlier re-caches the old pages.",
        group="origin",
    )
    origin_url: Annotated[str | None, _checked(check_base_url)] = _option(
        None,
        "Where the origin serves the site (default: site_url). Behind Cloudflare, the "
        "origin's own URL, e.g. https://USER.github.io/REPO/.",
        group="origin",
    )
    origin_timeout: Seconds = _option(
        600.0,
        "How long to wait for the origin; on timeout the deploy fails and the purge stays pending.",
        group="origin",
        unit="seconds",
    )
    origin_interval: Seconds = _option(
        2.0,
        "The longest pause between two polls of the origin: polls start 0.25 s apart and back "
        "off to it, so the purge follows the publication within seconds, in about "
        "origin_timeout / origin_interval requests at most.",
        group="origin",
        unit="seconds",
    )
    live_baseline: Flag = _option(
        True,
        "With no local manifest and no deployed branch (a fresh runner), plan against the "
        "marker the origin serves now (`origin_url`, else site_url, + `cfpurge-build.json`). "
        "Off: such a build is taken for a first deploy and purges nothing.",
        group="plugin",
    )
    query_strings: QueryStrings = _option(
        "auto",
        "Purge every query-string variant of a changed page (`page/?h=term`) with a prefix at "
        "the page's own path. `auto`: when the site links its pages with query strings "
        "(Material's `search.highlight` or `search.share`) or a cache rule keys on query "
        "parameters; `on`: always (analytics links); `off`: never. Nothing extra goes out "
        "where the zone's cache key leaves query strings out.",
        group="planning",
    )
    check_cache_rules: Flag = _option(
        True,
        "Before the first purge, read the zone's Cache Rules (needs Zone → Cache Rules Read) "
        "and cover what they make a URL purge miss: GET-only rules, custom cache keys. A dry "
        "run sends no request, so its plan says they were not read.",
        group="planning",
    )
    verify_after_purge: Flag = _option(
        False,
        "After a purge, fetch every purged URL through its public host and fail on "
        'stale pages (a 200 from the API only means "accepted").',
        group="verify",
    )
    verify_connect_to: Annotated[str | None, _checked(check_connect_to)] = _option(
        None,
        "For `verify_after_purge`: connect to this http(s)://HOST:PORT instead of the "
        "public hosts, sending the public Host header (like curl --connect-to).",
        group="verify",
    )


OPTION_NAMES: tuple[str, ...] = tuple(Options.model_fields)


def option_info(name: str) -> tuple[FieldInfo, dict[str, Any]]:
    """An option's declaration and its extras (group, env, flag, unit)."""
    info = Options.model_fields[name]
    extra = info.json_schema_extra
    return info, dict(extra) if isinstance(extra, dict) else {}


def _bounds(name: str) -> tuple[Any, Any, Any]:
    """An option's declared range: (gt, ge, le), each None when not declared."""
    gt = ge = le = None
    for constraint in _metadata(name):
        gt = getattr(constraint, "gt", gt)
        ge = getattr(constraint, "ge", ge)
        le = getattr(constraint, "le", le)
    return gt, ge, le


def _metadata(name: str) -> list[Any]:
    info = Options.model_fields[name]
    found = list(info.metadata)
    for arg in get_args(info.annotation)[1:]:  # constraints inside Annotated[...]
        found += list(getattr(arg, "metadata", [arg]))
    return found


def _problem(name: str, error: Mapping[str, Any]) -> str:
    """Pydantic's complaint about one value, in the words of the other option messages."""
    value, kind, ctx = error.get("input"), error["type"], error.get("ctx") or {}
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 0 typed on a command line reaches here as 0.0: say it as typed
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        return f"{value!r} is not one of {ctx.get('expected', '').replace(' or ', ', ')}"
    if kind == "extra_forbidden":
        return "is not an option of mkdocs-cfpurge"
    unit = option_info(name)[1].get("unit") if name in Options.model_fields else None
    annotation = Options.model_fields[name].annotation if name in Options.model_fields else None
    if kind.startswith("int") or annotation is int:
        what = "a whole number"
    elif kind.startswith("bool"):
        what = "true or false"
    else:
        what = f"a number of {unit}" if unit else "a number"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal"):
        gt, ge, le = _bounds(name)
        if ge is not None and le is not None:
            return f"{value!r} must be {what} from {ge} to {le}"
        if gt is not None:
            return f"{value!r} must be {what}, above {gt}"
        if ge is not None:
            return f"{value!r} must be {what}, {ge} or more"
        return f"{value!r} must be {what}, at most {le}"
    if kind.startswith(("int", "float", "bool")):
        return f"{value!r} must be {what}"
    if kind.startswith("string"):
        return f"{value!r} must be a text"
    if kind.startswith("list"):
        return f"{value!r} must be a list"
    if kind.startswith("dict"):
        return f"{value!r} must be a map"
    return str(error["msg"])


def _config_error(exc: ValidationError) -> ConfigError:
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "options"
    return ConfigError(name, _problem(name, error))


def check_option(name: str, value: Any) -> Any:
    """One option's value validated (as MkDocs validates each option on its own)."""
    try:
        return Options.model_validate({name: value}).__dict__[name]
    except ValidationError as exc:
        raise _config_error(exc) from None


def parse_options(values: Mapping[str, Any], env: Mapping[str, str]) -> Options:
    """All options from what a front end read; unset ones from their variable, else defaults.

    `values` leaves out (or sets to None) what the user did not give.
    """
    given = {name: value for name, value in values.items() if value is not None}
    forced_dry_run = env_flag(env, DRY_RUN_VAR)  # read (and checked) even when the option is on
    for name in OPTION_NAMES:
        variable = option_info(name)[1].get("env")
        if variable is None or name in given or name == "dry_run":
            continue
        # An empty secret variable is worth an error (a CI secret that is not set), not "unset".
        if env.get(variable) or (variable in env and name in SECRET_OPTIONS):
            given[name] = env[variable]
    if forced_dry_run:
        given["dry_run"] = True
    try:
        return Options.model_validate(given)
    except ValidationError as exc:
        raise _config_error(exc) from None


# --- the settings of one run ---------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """An API token, or the legacy email + Global API key. Never printed."""

    api_token: str | None = None
    api_email: str | None = None
    api_key: str | None = None

    def __post_init__(self) -> None:
        # From now on every error message and log record masks them (redact.py).
        register(self.api_token, self.api_key)

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


def credentials_of(options: Options) -> Credentials | None:
    """A token, or an email and key; a half-given pair or both kinds at once is an error."""
    token, key = options.api_token, options.api_key
    email = options.api_email.strip() if options.api_email else None
    if token and (email or key):
        raise ConfigError(
            "api_token",
            "is set together with api_email/api_key; give one kind of credentials, not both",
        )
    if token:
        return Credentials(api_token=token)
    if email or key:
        if not (email and key):
            missing = "api_key" if email else "api_email"
            raise ConfigError(missing, "is missing: api_email and api_key go together")
        return Credentials(api_email=email, api_key=key)
    return None


class Settings(Options):
    """The validated configuration of one run of the pipeline: every option, and what follows
    from them for this site (its URL, the state's paths, the credentials)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    site: SiteUrl
    manifest_path: Path
    plan_path: Path | None = None
    credentials: Credentials | None = Field(default=None, repr=False)
    # What links the site's pages with query strings (Material's `search.highlight`), as the
    # front end found it in the site's own configuration: `query_strings: auto` goes by it.
    query_links: tuple[str, ...] = ()

    @classmethod
    def from_options(
        cls, options: Options, *, site_url: str | None, root: Path = Path(".")
    ) -> Settings:
        """The settings `options` describe for the site at `site_url`; paths relative to
        `root` (mkdocs.yml's folder, conf.py's, or the working folder)."""
        return cls.model_construct(
            **dict(options),
            site=SiteUrl.parse(site_url or ""),
            manifest_path=root / options.manifest,
            plan_path=root / options.plan_file if options.plan_file else None,
            credentials=credentials_of(options),
        )

    @classmethod
    def create(
        cls,
        *,
        site_url: str | None,
        manifest_path: Path,
        plan_path: Path | None = None,
        env: Mapping[str, str],
        **options: Any,
    ) -> Settings:
        """Settings from option values by name (what a test or a script has at hand)."""
        values = {**options, "manifest": str(manifest_path), "plan_file": None}
        settings = cls.from_options(parse_options(values, env), site_url=site_url, root=Path())
        return settings.model_copy(update={"manifest_path": manifest_path, "plan_path": plan_path})

    def mapper(self) -> UrlMapper:
        return UrlMapper.create(
            self.site,
            tuple(self.hosts),
            tuple(self.schemes) or None,
            tuple(self.cache_key_headers),
        )

    @property
    def origin_base(self) -> str:
        """Where the origin serves the site: `origin_url`, else site_url."""
        return self.origin_url or str(self.site)

    def with_cname(self, raw: bytes | None, where: str) -> Settings:
        """Add the custom domain a GitHub Pages `CNAME` file (its first word) announces.

        A CNAME file that names no host is an error naming it: GitHub Pages would not serve
        the domain either, and its pages would never be purged under it.
        """
        try:
            words = (raw or b"").decode("utf-8").split()
        except UnicodeDecodeError:
            raise UsageError(f"{where} is not UTF-8 text: it names no host") from None
        if not words:
            return self
        try:
            host = dns_host(words[0])
        except ValueError as exc:
            raise UsageError(f"{where} names no host name: {exc}") from None
        if host in self.mapper().hosts:
            return self
        log.info("cfpurge: %s names %s: its URLs are purged too", where, host)
        return self.model_copy(update={"hosts": [*self.hosts, host]})

    def require_purge_access(self) -> tuple[str, Credentials]:
        """The zone and credentials a purge needs, or an error saying which is missing."""
        if self.zone_id is None:
            raise ConfigError("zone_id", "is not set (set it, or the CLOUDFLARE_ZONE_ID variable)")
        if self.credentials is None:
            raise ConfigError(
                "api_token",
                "is not set (set the CLOUDFLARE_API_TOKEN variable, from a CI secret; a token "
                "with the Zone → Cache Purge permission)",
            )
        return self.zone_id, self.credentials


def header_maps(values: Sequence[str], option: str = "cache_key_headers") -> list[Any]:
    """Header maps given as JSON text (a CLI flag, an environment variable)."""
    maps = []
    for value in values:
        try:
            maps.append(parse_json(value))
        except ValueError:
            raise ConfigError(option, f"{value!r} is not a JSON object") from None
    return maps


def _yaml(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, list):
        return f"`[{', '.join(map(str, value))}]`"
    return f"`{value}`"


def options_table() -> str:
    """The Markdown table of every option (the README and the docs site carry it verbatim)."""
    rows = ["| option | default | what it does |", "|---|---|---|"]
    for name in OPTION_NAMES:
        info, extra = option_info(name)
        default = _yaml(info.default)
        if extra.get("env"):
            default += f", variable `{extra['env']}`"
        help_text = str(info.description).replace("|", "\\|")
        rows.append(f"| `{name}` | {default} | {help_text} |")
    return "\n".join(rows)
