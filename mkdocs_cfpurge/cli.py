"""`mkdocs-cfpurge`: the pipeline on any built site folder, no MkDocs needed.

Every option flag is generated from its one declaration in `settings.Options` (name, type,
default, range, help), and every value is validated there, as the plugin's are.

Exit codes: 0 done (or nothing to do), 1 purge failed or incomplete (what is owed is kept),
2 usage or configuration error (nothing sent, nothing written).
"""

from __future__ import annotations

import logging
import os
import sys
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.build.atomic import write_atomic
from mkdocs_cfpurge.build.marker import MARKER_NAME
from mkdocs_cfpurge.deploy.branch import BRANCH_MANIFEST
from mkdocs_cfpurge.deploy.origin import OriginWait
from mkdocs_cfpurge.errors import CfPurgeError, ExitCode, UsageError
from mkdocs_cfpurge.freshness import unread_cache_rules
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.plan.report import append_outputs, markdown_summary, text_summary
from mkdocs_cfpurge.settings import (
    OPTION_NAMES,
    PLANS,
    Settings,
    header_maps,
    option_info,
    parse_options,
)
from mkdocs_cfpurge.state import recorded_site_url

F = TypeVar("F", bound=Callable[..., Any])
LOCAL_ZONE_ID = "0123456789abcdef0123456789abcdef"  # localcf's, without importing the server

# Groups of options (see `group` in settings.Options) each command takes. Credentials never come
# from the command line (they would land in shell histories and process lists): only from the
# environment.
PLANNING = ("site", "hashing", "planning", "state")
PURGING = (*PLANNING, "cloudflare", "origin", "verify")
# Defaults the command line sets apart from mkdocs.yml, and why:
CLI_DEFAULTS: dict[str, Any] = {
    # A folder given to the CLI may be served already, or carry no marker: waiting is opt-in.
    "wait_for_origin": False,
    # Printing the plan is the CLI's default output; a file is written when asked for.
    "plan_file": None,
}


def _flag(name: str) -> str:
    flag = option_info(name)[1].get("flag")
    return str(flag) if flag else "--" + name.replace("_", "-")


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def model_option(name: str, defaults: Mapping[str, Any] = CLI_DEFAULTS) -> Callable[[F], F]:
    """The click option of one declared option: its flag, help with its default and variable.

    Values are passed through unconverted (no click.Choice or ranges) so that the options model
    validates them with the same messages as the plugin's.
    """
    info, extra = option_info(name)
    default = defaults.get(name, info.default)
    help_text = f"{info.description} [default: {_shown(default)}"
    if extra.get("env"):
        help_text += f"; variable {extra['env']}"
    help_text += "]"
    annotation = info.annotation
    origin = typing.get_origin(annotation)
    flag = _flag(name)
    if annotation is bool:
        if default:
            bool_flags = f"{flag}/--no-{flag.removeprefix('--')}"
            return click.option(bool_flags, name, default=None, help=help_text)
        return click.option(flag, name, is_flag=True, default=None, help=help_text)
    if origin is list:
        return click.option(flag, name, multiple=True, help=help_text + " (repeatable)")
    kind: Any = click.INT if annotation is int else click.FLOAT if annotation is float else None
    extra_flags = ("--out",) if name == "plan_file" else ()
    return click.option(flag, *extra_flags, name, type=kind, default=None, help=help_text)


def model_options(*groups: str, defaults: Mapping[str, Any] = CLI_DEFAULTS) -> Callable[[F], F]:
    """Every declared option of `groups`, as click options."""
    names = [n for n in OPTION_NAMES if option_info(n)[1].get("group") in groups]

    def decorate(func: F) -> F:
        for name in reversed(names):
            func = model_option(name, defaults)(func)
        return func

    return decorate


def site_url_option(required: bool, default_note: str = "") -> Callable[[F], F]:
    text = "Public base URL of the site (mkdocs.yml's site_url), e.g. https://docs.example.com/."
    return click.option(
        "--site-url", required=required, help=f"{text} {default_note}" if default_note else text
    )


def seconds_option(flag: str, default: float, help_text: str) -> Callable[[F], F]:
    """A number of seconds above 0, for options of one command only."""
    seconds = click.FloatRange(min=0, min_open=True)
    return click.option(flag, type=seconds, default=default, show_default=True, help=help_text)


def make_settings(
    site_url: str | None, defaults: Mapping[str, Any] = CLI_DEFAULTS, **kw: Any
) -> Settings:
    """Settings from the command's flags; unset options from their variables, else defaults.

    Credentials only ever come from the environment here.
    """
    values: dict[str, Any] = {}
    for name in OPTION_NAMES:
        value = kw.pop(name, None)
        if isinstance(value, tuple):
            value = list(value) or None
        if name == "cache_key_headers" and value:
            value = header_maps(value)
        values[name] = value if value is not None else defaults.get(name)
    options = parse_options(values, os.environ)
    return Settings.from_options(options, site_url=site_url, root=Path())


def _site_dir(value: Path) -> Path:
    if not value.is_dir():
        raise UsageError(f"SITE_DIR {str(value)!r} does not exist or is not a folder")
    return value


@click.group()
@click.version_option(package_name="mkdocs-cfpurge")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors. [default: off]")
@click.pass_context
def cli(ctx: click.Context, quiet: bool) -> None:
    """Purge exactly what changed in a built site from Cloudflare's cache."""
    # The logger is shared with the MkDocs plugin: give it a plain handler for this command only.
    saved = (log.handlers[:], log.level, log.propagate)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False

    def restore() -> None:
        log.handlers[:], level, log.propagate = saved
        log.setLevel(level)

    ctx.call_on_close(restore)


@cli.command(short_help="Show what a deploy of SITE_DIR would purge.")
@click.argument("site_dir", type=click.Path(path_type=Path))
@site_url_option(required=True)
@model_options(*PLANNING)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="How the plan is printed: a summary, the plan's JSON, or Markdown.",
)
def plan(site_dir: Path, site_url: str, fmt: str, **kw: Any) -> None:
    """Show what a deploy of SITE_DIR would purge (reads state, changes nothing)."""
    settings = make_settings(site_url, **kw)
    settings, built = pipeline.read_site(_site_dir(site_dir), settings)
    the_plan = pipeline.preview(settings, built, rules=unread_cache_rules(settings))
    if settings.plan_path is not None:
        write_atomic(settings.plan_path, the_plan.to_json())
    if fmt == "json":
        click.echo(the_plan.to_json().decode(), nl=False)
    elif fmt == "markdown":
        click.echo(markdown_summary(the_plan, dry_run=True))
    else:
        click.echo(text_summary(the_plan, dry_run=True))


@cli.command(short_help="Record SITE_DIR as the baseline the origin serves.")
@click.argument("site_dir", type=click.Path(path_type=Path))
@site_url_option(required=True)
@model_options("hashing")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Where to write it.")
def manifest(site_dir: Path, site_url: str, out: Path, **kw: Any) -> None:
    """Record SITE_DIR as the baseline (what the origin serves now)."""
    from mkdocs_cfpurge.build.manifest import load_manifest

    settings = make_settings(site_url, **kw)
    if out.exists():
        load_manifest(out, str(settings.site))  # never overwrite another site's manifest
    built = pipeline.scan(_site_dir(site_dir), settings)
    built.save(out)
    click.echo(f"manifest of {len(built.files)} files written to {out}")


@cli.command(short_help="Write the build marker into SITE_DIR before deploying.")
@click.argument("site_dir", type=click.Path(path_type=Path))
@site_url_option(required=True)
@model_options(*PLANNING)
@model_option("origin_url")
def mark(site_dir: Path, site_url: str, **kw: Any) -> None:
    """Write the build marker into SITE_DIR before deploying it (any generator's output).

    The marker holds the build's digest (what `purge --wait-for-origin` waits for) and the plan
    this deploy owes, made against the local manifest if there is one, else against the marker
    the origin serves now (--origin-url, default --site-url). After the deploy, `purge SITE_DIR`
    sends exactly that plan, from any folder holding the built site.
    """
    settings = make_settings(site_url, **kw)
    build = pipeline.prepare(_site_dir(site_dir), settings, live=True)
    click.echo(
        f"{site_dir / MARKER_NAME} written (digest {build.manifest.digest()[:12]}; "
        f"{len(build.plan.requests)} request(s) owed)"
    )


@cli.command(short_help="Purge what SITE_DIR changed, a saved plan, or what is owed.")
@click.argument("site_dir", type=click.Path(path_type=Path), required=False)
@site_url_option(required=False, default_note="[default: the saved plan's, or pending.json's]")
@model_options(*PURGING)
@click.option(
    "--plan",
    "saved_plan",
    type=click.Path(path_type=Path),
    help="Send this saved plan (the JSON `plan --out` writes) instead of SITE_DIR's changes, once "
    "checked against --site-url, the zone and the options. [default: none]",
)
def purge(site_dir: Path | None, site_url: str | None, saved_plan: Path | None, **kw: Any) -> None:
    """Purge what changed in SITE_DIR (or a saved --plan, or what is pending), then commit."""
    saved = PurgePlan.load(saved_plan) if saved_plan is not None else None
    if saved is not None and site_dir is not None:
        raise UsageError("give SITE_DIR or --plan, not both")
    if kw.get("wait_for_origin") and site_dir is None:
        raise UsageError("--wait-for-origin needs SITE_DIR (its manifest digest is awaited)")
    if site_dir is None and not site_url:
        # Sending what is pending, or a saved plan: the state knows which site it belongs to.
        # A saved plan's own site_url and zone_id are checked against the settings, never taken
        # from it: a plan (a pull request's artifact, say) is input.
        manifest_path = Path(kw.get("manifest") or option_info("manifest")[0].default)
        site_url = recorded_site_url(manifest_path)
        if site_url is None and saved is not None:
            raise UsageError(
                f"--plan {str(saved_plan)!r} needs --site-url (the site it must stay inside; the "
                "plan's own site_url is checked against it, not trusted)"
            )
    settings = make_settings(site_url, **kw)
    source: pipeline.Source = saved
    ready = None
    if site_dir is not None:
        # The plan the build's marker carries (made at build time, against the live site), or
        # a build hashed now for a folder whose marker carries none.
        settings, built = pipeline.read_build(_site_dir(site_dir), settings)
        source = built
        if settings.wait_for_origin:
            manifest = built.manifest if isinstance(built, pipeline.PreparedBuild) else built
            ready = OriginWait.of(settings).until_build(manifest.digest())
    result = pipeline.purge(settings, source, origin_ready=ready)
    plan_path = settings.plan_path if settings.plan_path is not None else ""
    append_outputs({"requests": str(result.requests_sent), "plan": str(plan_path)}, os.environ)
    if result.dry_run:
        click.echo(result.plan.to_json().decode(), nl=False)


@cli.command(short_help="Purge each deploy that lands in SITE_DIR, until stopped.")
@click.argument("site_dir", type=click.Path(path_type=Path))
@site_url_option(required=True)
@model_options(*PLANNING, "cloudflare", "verify")
@seconds_option(
    "--quiet-period", 2.0, "Seconds without writes that end a deploy (one purge per deploy)."
)
def watch(site_dir: Path, site_url: str, quiet_period: float, **kw: Any) -> None:
    """Purge what changed each time a deploy lands in SITE_DIR, until SIGTERM or Ctrl-C."""
    from mkdocs_cfpurge.watch import run_watch

    run_watch(site_dir, make_settings(site_url, **kw), quiet_period=quiet_period)


@cli.command("purge-branch", short_help="Purge what a deployed branch changed (mike, any tool).")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=".",
    show_default=True,
    help="The git repository whose remote holds the deployed branch.",
)
@click.option("--remote", default="origin", show_default=True, help="The remote to fetch from.")
@click.option("--branch", default="gh-pages", show_default=True, help="The deployed branch.")
@click.option(
    "--since",
    help="Baseline when there is no manifest yet: a commit of the branch (e.g. its head before "
    "`mike deploy`). Default: the first run records the head and purges nothing.",
)
@site_url_option(required=True)
@model_options(*PURGING, defaults={**CLI_DEFAULTS, "manifest": BRANCH_MANIFEST})
def purge_branch(
    repo: Path, remote: str, branch: str, since: str | None, site_url: str, **kw: Any
) -> None:
    """Purge what the deployed branch changed (after `mike deploy --push`, or any tool).

    Fetches REMOTE/BRANCH and compares its tree, by git blob id and with symlinks followed, with
    the tree the last purge left behind (the --manifest file): every file added, changed or
    removed anywhere in it (version folders, aliases, versions.json, the root index.html) is
    purged under --site-url, the URL the branch's root is served at.
    """
    from mkdocs_cfpurge.deploy.branch import purge_branch as run

    # purge-branch keeps its own state: a manifest of the branch's tree, and a pending.json of
    # its own beside it.
    defaults = {**CLI_DEFAULTS, "manifest": BRANCH_MANIFEST}
    settings = make_settings(site_url, defaults, **kw)
    done = run(settings, repo=repo, remote=remote, branch=branch, since=since)
    if done.result.dry_run:
        click.echo(done.result.plan.to_json().decode(), nl=False)


@cli.command("local-server", short_help="Run a local Cloudflare-compatible API and edge cache.")
@click.option("--zone-id", default=LOCAL_ZONE_ID, show_default=True, help="The zone's id.")
@click.option("--zone-name", default="example.com", show_default=True, help="The zone's name.")
@click.option(
    "--token",
    envvar="CLOUDFLARE_API_TOKEN",
    default="local-test-token",
    show_default=True,
    help="The API token the server accepts (variable CLOUDFLARE_API_TOKEN; a token from the "
    "variable is not printed).",
)
@click.option(
    "--plan",
    "cf_plan",
    type=click.Choice(PLANS),
    default="free",
    show_default=True,
    help="The Cloudflare plan whose limits the server enforces.",
)
@click.option(
    "--origin",
    help="Folder or http://127.0.0.1 URL the edge caches in front of. [default: none: no edge]",
)
@click.option("--port", type=int, default=0, help="API port (default: any free port).")
@click.option("--edge-port", type=int, default=0, help="Edge port (default: any free port).")
@click.option(
    "--max-files-per-request",
    type=click.IntRange(min=1),
    default=None,
    help="URLs per files purge the server takes (default: the plan's cap).",
)
@click.option(
    "--cache-rules",
    "cache_rules_file",
    type=click.Path(path_type=Path),
    help="The zone's Cache Rules: a JSON file holding the http_request_cache_settings ruleset "
    "as the API returns it. The API serves it; the edge applies it. [default: none]",
)
def local_server(
    token: str, cf_plan: str, origin: str | None, cache_rules_file: Path | None, **kw: Any
) -> None:
    """Run the bundled Cloudflare-compatible API (and edge cache) on 127.0.0.1.

    Prints the API's base URL and the token it accepts, then one line per purge, until Ctrl-C.
    """
    from mkdocs_cfpurge.localcf import run_local_server
    from mkdocs_cfpurge.localcf.rules import UnsupportedRule, read_ruleset

    served = origin if origin is None or origin.startswith("http") else Path(origin)
    if cache_rules_file is not None:
        try:
            kw["cache_rules"] = read_ruleset(cache_rules_file.read_bytes())
        except OSError as exc:
            raise UsageError(f"--cache-rules {str(cache_rules_file)!r}: {exc.strerror}") from None
        except (ValueError, UnsupportedRule) as exc:
            raise UsageError(f"--cache-rules {str(cache_rules_file)!r}: {exc}") from None
    # A token from the environment may be a real one: say where it is, never what it is.
    source = click.get_current_context().get_parameter_source("token")
    from_env = source is click.core.ParameterSource.ENVIRONMENT
    shown = "the value of CLOUDFLARE_API_TOKEN" if from_env else None
    run_local_server(
        click.echo, api_token=token, plan=cf_plan, origin=served, token_shown=shown, **kw
    )


@cli.command(short_help="Check through the CDN that purged URLs serve SITE_DIR.")
@click.argument("site_dir", type=click.Path(path_type=Path), required=False)
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(path_type=Path),
    required=True,
    help="The plan of the purge to check (the JSON `plan --out` or the plugin writes).",
)
@click.option(
    "--manifest",
    "manifest_file",
    type=click.Path(path_type=Path),
    help="Take the expected hashes from this manifest instead of hashing SITE_DIR. [default: none]",
)
@click.option("--site-url", help="Public base URL of the site. [default: the plan's site_url]")
@model_options("hashing")
@click.option(
    "--connect-to",
    help="Send every request to this http(s)://HOST:PORT with the public Host header "
    "(like curl --connect-to). Default: fetch the public URLs.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Requests in flight at once.",
)
@seconds_option("--timeout", 10.0, "Seconds per request, from connect to last byte.")
@click.option(
    "-v", "--verbose", is_flag=True, help="List every URL, not only the stale ones. [default: off]"
)
def verify(
    site_dir: Path | None,
    plan_file: Path,
    manifest_file: Path | None,
    site_url: str | None,
    connect_to: str | None,
    concurrency: int,
    timeout: float,
    verbose: bool,
    **kw: Any,
) -> None:
    """Fetch each URL a purge covered and check that the CDN serves SITE_DIR's bytes.

    Exit 1 when a page is stale (or could not be checked).
    """
    from mkdocs_cfpurge.build.manifest import load_manifest
    from mkdocs_cfpurge.errors import PurgeFailed
    from mkdocs_cfpurge.guard import check_saved_plan, check_source
    from mkdocs_cfpurge.verify import lines, verify_manifest

    if (site_dir is None) == (manifest_file is None):
        raise UsageError("give SITE_DIR or --manifest (where the expected hashes come from)")
    the_plan = PurgePlan.load(plan_file)
    settings = make_settings(site_url or the_plan.site_url, **kw)
    # A plan file is input: only URLs of the site (its hosts, its path) are fetched.
    check_saved_plan(the_plan, settings)
    where = f"plan file {str(plan_file)!r}"
    check_source([{"files": [url]} for c in the_plan.changes for url in c.urls], settings, where)
    if site_dir is not None:
        expected = pipeline.scan(_site_dir(site_dir), settings)
    else:
        assert manifest_file is not None
        loaded = load_manifest(manifest_file, str(settings.site))
        if loaded is None:
            raise UsageError(f"manifest {str(manifest_file)!r} does not exist")
        expected = loaded
    result = verify_manifest(
        the_plan,
        expected,
        settings,
        connect_to=connect_to,
        concurrency=concurrency,
        timeout=timeout,
    )
    for line in lines(result, verbose=verbose):
        click.echo(line)
    if not result.ok:
        raise PurgeFailed(f"{len(result.stale)} stale URL(s), {len(result.errors)} not checked")


def main(argv: list[str] | None = None) -> None:
    """Entry point: map the pipeline's error to its exit code, with a one-line message."""
    try:
        cli.main(args=argv, prog_name="mkdocs-cfpurge", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.USAGE)
    except click.exceptions.Abort:
        sys.exit(ExitCode.PURGE_FAILED)
    except CfPurgeError as exc:
        click.echo(f"mkdocs-cfpurge: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(ExitCode.OK)
