"""The plugin's options in mkdocs.yml. Every option is documented right below it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mkdocs.config import base
from mkdocs.config import config_options as c

from mkdocs_cfpurge.build.manifest import compile_excludes
from mkdocs_cfpurge.build.noise import compile_patterns
from mkdocs_cfpurge.cloudflare.limits import PLANS
from mkdocs_cfpurge.errors import ConfigError, config_error
from mkdocs_cfpurge.plan.plan import STRATEGIES
from mkdocs_cfpurge.plan.urls import SiteUrl, parse_host
from mkdocs_cfpurge.settings import (
    METHODS,
    SCHEMES,
    check_api_base,
    check_headers,
    check_max_files,
    parse_zone_id,
)
from mkdocs_cfpurge.verify import check_connect_to


class Checked(base.BaseConfigOption[Any]):
    """Wrap an option with one of the pipeline's own checks, so MkDocs reports the same message."""

    def __init__(self, inner: base.BaseConfigOption[Any], check: Callable[[Any], object]) -> None:
        super().__init__()
        self.inner = inner
        self.check = check
        self.default = inner.default

    def run_validation(self, value: object) -> Any:
        value = self.inner.validate(value)
        if value is not None:
            try:
                self.check(value)
            except ConfigError as exc:
                raise base.ValidationError(exc.problem) from None
        return value


def _seconds(option: str, *, zero_ok: bool = False) -> Callable[[float], None]:
    """A number of seconds: above 0 (or 0 too). A 0 or negative poll interval would hammer the
    origin or crash time.sleep."""

    def check(value: float) -> None:
        if isinstance(value, bool) or not (value >= 0 if zero_ok else value > 0):
            bound = "0 or more" if zero_ok else "above 0"
            raise config_error(option, f"{value!r} must be a number of seconds, {bound}")

    return check


def _count(option: str) -> Callable[[int], None]:
    def check(value: int) -> None:
        if isinstance(value, bool) or value < 0:
            raise config_error(option, f"{value!r} must be a whole number, 0 or more")

    return check


def _each(check: Callable[[str], object]) -> Callable[[list[str]], None]:
    def run(values: list[str]) -> None:
        for value in values:
            check(value)

    return run


class CfPurgeConfig(base.Config):
    enabled = c.Type(bool, default=True)
    """Turn the plugin off without removing it (e.g. `enabled: !ENV [CFPURGE, true]`)."""

    zone_id = Checked(c.Optional(c.Type(str)), parse_zone_id)
    """Cloudflare zone id (32 hex characters). Default: the CLOUDFLARE_ZONE_ID variable."""

    api_token = c.Optional(c.Type(str))
    """API token with Zone → Cache Purge. Default: CLOUDFLARE_API_TOKEN. Keep it out of
    mkdocs.yml: use the variable, or `!ENV`."""

    api_email = c.Optional(c.Type(str))
    """Legacy auth: account email, with `api_key`. Default: CLOUDFLARE_EMAIL."""

    api_key = c.Optional(c.Type(str))
    """Legacy auth: Global API key, with `api_email`. Default: CLOUDFLARE_API_KEY."""

    api_base = Checked(c.Optional(c.Type(str)), check_api_base)
    """API address. Default: CLOUDFLARE_API_BASE, else https://api.cloudflare.com/client/v4.
    Plain http is accepted only for a loopback address (the bundled local server)."""

    hosts = Checked(c.ListOfItems(c.Type(str), default=[]), _each(parse_host))
    """More host names that serve the site (e.g. www. and apex); site_url's host is always in."""

    schemes = c.ListOfItems(c.Choice(SCHEMES), default=[])
    """Schemes whose cache keys to purge. Default: site_url's scheme. Add `http` for zones that
    cache http and https apart."""

    dry_run = c.Type(bool, default=False)
    """Only write the plan and report: send nothing, change no state. CFPURGE_DRY_RUN=1 forces
    it on."""

    manifest = c.Type(str, default=".cache/plugin/cfpurge/manifest.json")
    """Manifest of the last deploy, relative to mkdocs.yml's folder. `pending.json` and a lock
    file live beside it."""

    plan_file = c.Type(str, default=".cache/plugin/cfpurge/plan.json")
    """Where the plan (the exact request bodies) is written, relative to mkdocs.yml's folder."""

    purge_on = c.ListOfItems(c.Choice(("gh-deploy", "build")), default=["gh-deploy"])
    """Commands that purge. `build` suits sites built straight into the folder their origin
    serves. `mkdocs serve` never purges."""

    max_files_per_request = Checked(c.Type(int, default=30), check_max_files)
    """URLs per `files` request (1 to 500). 30 works on every plan; Enterprise takes 500."""

    strategy = c.Choice(STRATEGIES, default="auto")
    """`auto`: exact URLs while the purge fits `max_purge_seconds`, else folder prefixes (and
    purge_everything only if `allow_purge_everything`); `files`: every URL; `prefixes`: each
    changed folder as a prefix; `everything`: the whole zone."""

    max_purge_seconds = Checked(c.Type((int, float), default=60), _seconds("max_purge_seconds"))
    """`auto`: the longest the purge may take under your plan's rate limits."""

    max_collateral = Checked(c.Type(int, default=100), _count("max_collateral"))
    """`auto`: the most unchanged URLs one prefix may purge along with the changed ones."""

    allow_purge_everything = c.Type(bool, default=False)
    """`auto`: may fall back to purge_everything when nothing else fits the budget (else the
    deploy stops with the numbers and the options that would let it through)."""

    ignore_changes = Checked(c.ListOfItems(c.Type(str), default=[]), compile_patterns)
    """Regular expressions (or presets `mkdocs-build-date`, `sitemap-lastmod`) removed from
    HTML, XML and JSON outputs before hashing, so build-date noise purges nothing."""

    exclude = Checked(c.ListOfItems(c.Type(str), default=[]), compile_excludes)
    """Gitignore-style patterns of output files never hashed nor purged."""

    cache_key_headers = Checked(c.ListOfItems(c.Type(dict), default=[]), check_headers)
    """Header maps of custom cache keys, e.g. `{CF-Device-Type: mobile}`: each URL is also
    purged once per map, as `{url, headers}`."""

    extra_urls = c.ListOfItems(c.Type(str), default=[])
    """Full URLs purged on every deploy that changes something (feeds, status pages)."""

    cloudflare_plan = c.Choice(PLANS, default="free")
    """Your Cloudflare plan: sets the pace of requests to stay within its rate limits."""

    method = c.Choice(METHODS, default="purge")
    """`purge` deletes cached copies; `invalidate` marks them stale (revalidated with the
    origin)."""

    verify_zone = c.Type(bool, default=True)
    """Before purging, check that the zone owns every host (needs Zone → Zone Read)."""

    wait_for_origin = c.Type(bool, default=True)
    """After `gh-deploy` pushed, wait until the origin serves this build before purging (else the
    purge re-caches the old pages). The build publishes its digest in `cfpurge-build.json`."""

    origin_url = Checked(c.Optional(c.Type(str)), lambda v: SiteUrl.parse(v, "origin_url"))
    """Where to poll for `cfpurge-build.json`. Default: site_url. Behind Cloudflare, point it at
    the origin itself (e.g. https://USER.github.io/REPO/)."""

    origin_timeout = Checked(
        c.Type((int, float), default=600), _seconds("origin_timeout", zero_ok=True)
    )
    """Seconds to wait for the origin. On timeout the deploy fails and the purge stays pending."""

    origin_interval = Checked(c.Type((int, float), default=10), _seconds("origin_interval"))
    """Seconds between two polls of the origin."""

    verify_after_purge = c.Type(bool, default=False)
    """After a purge, fetch every purged URL through its public host and compare the body with
    the build; stale pages fail the command (a 200 from the API only means "accepted")."""

    verify_connect_to = Checked(c.Optional(c.Type(str)), check_connect_to)
    """For `verify_after_purge`: connect to this address (e.g. a local edge) instead of the public
    hosts, sending the public Host header, like curl's --connect-to."""
