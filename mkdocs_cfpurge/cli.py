"""`mkdocs-cfpurge`: the pipeline on any built site folder, no MkDocs needed.

Exit codes: 0 done (or nothing to do), 1 purge failed or incomplete (what is owed is kept),
2 usage or configuration error (nothing sent, nothing written).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.deploy.origin import MARKER_NAME, write_marker
from mkdocs_cfpurge.deploy.origin import wait_for_origin as wait_for
from mkdocs_cfpurge.errors import EXIT_PURGE_FAILED, EXIT_USAGE, CfPurgeError
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.plan import STRATEGIES, PurgePlan
from mkdocs_cfpurge.plan.report import markdown_summary, text_summary
from mkdocs_cfpurge.settings import METHODS, Settings
from mkdocs_cfpurge.state import pending_site_url

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_MANIFEST = ".cache/plugin/cfpurge/manifest.json"


def site_options(func: F) -> F:
    """Options shared by every command that maps files to URLs."""
    for option in reversed(
        [
            click.option("--site-url", help="Public base URL of the site (like site_url)."),
            click.option("--host", "hosts", multiple=True, help="Another host serving the site."),
            click.option(
                "--scheme", "schemes", multiple=True, type=click.Choice(["https", "http"])
            ),
            click.option("--exclude", multiple=True, help="Gitignore-style pattern to skip."),
            click.option(
                "--strategy", type=click.Choice(STRATEGIES), default="auto", show_default=True
            ),
            click.option("--max-files-per-request", type=int, default=30, show_default=True),
            click.option("--max-purge-seconds", type=float, default=60.0, show_default=True),
            click.option("--max-collateral", type=int, default=100, show_default=True),
            click.option("--allow-purge-everything", is_flag=True),
            click.option(
                "--ignore-changes",
                multiple=True,
                help="Regex (or preset mkdocs-build-date, sitemap-lastmod) ignored when hashing.",
            ),
            click.option(
                "--cache-key-header",
                "cache_key_headers",
                multiple=True,
                help='A JSON header map of a custom cache key: \'{"CF-Device-Type": "mobile"}\'.',
            ),
            click.option("--extra-url", "extra_urls", multiple=True),
            click.option(
                "--manifest",
                type=click.Path(path_type=Path),
                default=DEFAULT_MANIFEST,
                show_default=True,
                help="Manifest of the last deploy (pending.json lives beside it).",
            ),
        ]
    ):
        func = option(func)
    return func


def purge_options(func: F) -> F:
    for option in reversed(
        [
            click.option("--zone-id", help="Default: CLOUDFLARE_ZONE_ID."),
            click.option("--api-base", help="Default: CLOUDFLARE_API_BASE or Cloudflare's API."),
            click.option(
                "--cloudflare-plan",
                type=click.Choice(["free", "pro", "business", "enterprise"]),
                default="free",
                show_default=True,
            ),
            click.option("--method", type=click.Choice(METHODS), default="purge"),
            click.option("--verify-zone/--no-verify-zone", default=True),
            click.option("--dry-run", is_flag=True, help="Show the plan; send and change nothing."),
        ]
    ):
        func = option(func)
    return func


def origin_timing_options(func: F) -> F:
    """How long and how often to poll the origin before purging."""
    seconds = click.FloatRange(min=0, min_open=True)
    func = click.option("--origin-interval", type=seconds, default=10.0, show_default=True)(func)
    return click.option("--origin-timeout", type=seconds, default=600.0, show_default=True)(func)


def _headers(values: tuple[str, ...]) -> list[dict[str, str]]:
    maps = []
    for value in values:
        try:
            parsed = json.loads(value)
        except ValueError:
            raise CfPurgeError(
                f"option 'cache_key_headers': {value!r} is not a JSON object"
            ) from None
        maps.append(parsed)
    return maps


def make_settings(**kw: Any) -> Settings:
    """Settings from CLI flags; credentials only ever come from the environment here."""
    return Settings.create(
        site_url=kw.get("site_url"),
        manifest_path=kw["manifest"],
        plan_path=kw.get("out"),
        hosts=kw.get("hosts", ()),
        schemes=kw.get("schemes", ()),
        exclude=kw.get("exclude", ()),
        cache_key_headers=_headers(kw.get("cache_key_headers", ())),
        extra_urls=kw.get("extra_urls", ()),
        ignore_changes=kw.get("ignore_changes", ()),
        strategy=kw.get("strategy", "auto"),
        max_files_per_request=kw.get("max_files_per_request", 30),
        max_purge_seconds=kw.get("max_purge_seconds", 60.0),
        max_collateral=kw.get("max_collateral", 100),
        allow_purge_everything=kw.get("allow_purge_everything", False),
        zone_id=kw.get("zone_id"),
        api_base=kw.get("api_base"),
        cloudflare_plan=kw.get("cloudflare_plan", "free"),
        method=kw.get("method", "purge"),
        verify_zone=kw.get("verify_zone", True),
        dry_run=kw.get("dry_run", False),
        env=os.environ,
    )


def _site_dir(value: Path) -> Path:
    if not value.is_dir():
        raise CfPurgeError(f"SITE_DIR {str(value)!r} does not exist or is not a folder")
    return value


@click.group()
@click.version_option(package_name="mkdocs-cfpurge")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
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


@cli.command()
@click.argument("site_dir", type=click.Path(path_type=Path))
@site_options
@click.option("--out", type=click.Path(path_type=Path), help="Also write the plan JSON here.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text")
def plan(site_dir: Path, fmt: str, **kw: Any) -> None:
    """Show what a deploy of SITE_DIR would purge (reads state, changes nothing)."""
    settings = pipeline.with_site_hosts(make_settings(**kw, dry_run=True), _site_dir(site_dir))
    the_plan = pipeline.preview(settings, pipeline.scan(site_dir, settings))
    if settings.plan_path is not None:
        from mkdocs_cfpurge.build.atomic import write_atomic

        write_atomic(settings.plan_path, the_plan.to_json())
    if fmt == "json":
        click.echo(the_plan.to_json().decode(), nl=False)
    elif fmt == "markdown":
        click.echo(markdown_summary(the_plan, dry_run=True))
    else:
        click.echo(text_summary(the_plan, dry_run=True))


@cli.command()
@click.argument("site_dir", type=click.Path(path_type=Path))
@click.option("--site-url", required=True)
@click.option("--exclude", multiple=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def manifest(site_dir: Path, site_url: str, exclude: tuple[str, ...], out: Path) -> None:
    """Record SITE_DIR as the baseline (what the origin serves now)."""
    settings = make_settings(site_url=site_url, exclude=exclude, manifest=out)
    if out.exists():
        from mkdocs_cfpurge.build.manifest import load_manifest

        load_manifest(out, str(settings.site))  # never overwrite another site's manifest
    built = pipeline.scan(_site_dir(site_dir), settings)
    built.save(out)
    click.echo(f"manifest of {len(built.files)} files written to {out}")


@cli.command()
@click.argument("site_dir", type=click.Path(path_type=Path))
@click.option("--site-url", required=True)
@click.option("--exclude", multiple=True)
@click.option("--ignore-changes", multiple=True)
def mark(
    site_dir: Path, site_url: str, exclude: tuple[str, ...], ignore_changes: tuple[str, ...]
) -> None:
    """Write the build marker into SITE_DIR before deploying it (for --wait-for-origin)."""
    settings = make_settings(
        site_url=site_url,
        exclude=exclude,
        ignore_changes=ignore_changes,
        manifest=Path(DEFAULT_MANIFEST),
    )
    built = pipeline.scan(_site_dir(site_dir), settings)
    path = write_marker(site_dir, built)
    click.echo(f"{path} written (digest {built.digest()[:12]})")


@cli.command()
@click.argument("site_dir", type=click.Path(path_type=Path), required=False)
@site_options
@purge_options
@click.option("--plan", "plan_file", type=click.Path(path_type=Path), help="Send this saved plan.")
@click.option(
    "--wait-for-origin",
    is_flag=True,
    help=f"Before purging, wait until the origin serves SITE_DIR's {MARKER_NAME} (see `mark`).",
)
@click.option("--origin-url", help="Where to poll for the marker. Default: --site-url.")
@origin_timing_options
def purge(
    site_dir: Path | None,
    plan_file: Path | None,
    wait_for_origin: bool,
    origin_url: str | None,
    origin_timeout: float,
    origin_interval: float,
    **kw: Any,
) -> None:
    """Purge what changed in SITE_DIR (or a saved --plan, or what is pending), then commit."""
    saved = PurgePlan.load(plan_file) if plan_file is not None else None
    if saved is not None and site_dir is not None:
        raise CfPurgeError("give SITE_DIR or --plan, not both")
    if wait_for_origin and site_dir is None:
        raise CfPurgeError("--wait-for-origin needs SITE_DIR (its manifest digest is awaited)")
    if saved is not None:
        kw["site_url"] = kw.get("site_url") or saved.site_url
        kw["zone_id"] = kw.get("zone_id") or saved.zone_id
    elif site_dir is None and not kw.get("site_url"):
        # Sending what is pending: the pending file knows which site it belongs to.
        kw["site_url"] = pending_site_url(kw["manifest"])
    settings = make_settings(**kw)
    new = None
    if site_dir is not None:
        settings = pipeline.with_site_hosts(settings, _site_dir(site_dir))
        new = pipeline.scan(site_dir, settings)
    if saved is None and new is None:
        saved = PurgePlan(str(settings.site), settings.zone_id, [], [], settings.strategy)
    if settings.dry_run:
        the_plan = pipeline.preview(settings, new) if new is not None else saved
        assert the_plan is not None  # one of them is set just above
        pipeline.report(the_plan, settings)
        click.echo(the_plan.to_json().decode(), nl=False)
        return
    if wait_for_origin and new is not None:
        settings.require_purge_access()
        try:
            wait_for(
                origin_url or str(settings.site),
                new.digest(),
                timeout=origin_timeout,
                interval=origin_interval,
            )
        except CfPurgeError:
            path = pipeline.save_pending_plan(settings, new)
            log.error("cfpurge: the purge is kept as pending in %s", path)
            raise
    result = pipeline.deploy(settings, new, saved_plan=saved)
    if result.requests_sent == 0:
        for note in result.plan.notes:
            log.info("cfpurge: %s", note)
        log.info("cfpurge: nothing to purge")


@cli.command("local-server")
@click.option("--zone-id", default="0123456789abcdef0123456789abcdef", show_default=True)
@click.option("--zone-name", default="example.com", show_default=True)
@click.option("--token", envvar="CLOUDFLARE_API_TOKEN", default="local-test-token")
@click.option(
    "--plan",
    "cf_plan",
    type=click.Choice(["free", "pro", "business", "enterprise"]),
    default="free",
)
@click.option("--origin", help="Folder or http://127.0.0.1 URL the edge caches in front of.")
@click.option("--port", type=int, default=0)
@click.option("--edge-port", type=int, default=0)
@click.option("--max-files-per-request", type=int, default=30)
def local_server(**kw: Any) -> None:
    """Run the bundled Cloudflare-compatible API (and edge cache) on 127.0.0.1."""
    from mkdocs_cfpurge.localcf import run_local_server

    origin = kw["origin"]
    run_local_server(
        zone_id=kw["zone_id"],
        zone_name=kw["zone_name"],
        api_token=kw["token"],
        plan=kw["cf_plan"],
        origin=(origin if origin is None or origin.startswith("http") else Path(origin)),
        port=kw["port"],
        edge_port=kw["edge_port"],
        max_files_per_request=kw["max_files_per_request"],
        echo=click.echo,
    )


@cli.command()
@click.argument("site_dir", type=click.Path(path_type=Path))
@site_options
@purge_options
@click.option(
    "--quiet-period",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    help="Seconds without writes that end a deploy (one purge per deploy, not per file).",
)
def watch(site_dir: Path, quiet_period: float, **kw: Any) -> None:
    """Purge what changed each time a deploy lands in SITE_DIR, until SIGTERM or Ctrl-C."""
    from mkdocs_cfpurge.watch import run_watch

    run_watch(site_dir, make_settings(**kw), quiet_period=quiet_period)


BRANCH_MANIFEST = ".cache/plugin/cfpurge/branch/manifest.json"


@cli.command("purge-branch")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=".",
    show_default=True,
    help="The git repository whose remote holds the deployed branch.",
)
@click.option("--remote", default="origin", show_default=True)
@click.option("--branch", default="gh-pages", show_default=True)
@click.option(
    "--since",
    help="Baseline when there is no manifest yet: a commit of the branch (e.g. its head before "
    "`mike deploy`). Default: the first run records the head and purges nothing.",
)
@site_options
@purge_options
@click.option("--out", type=click.Path(path_type=Path), help="Also write the plan JSON here.")
@click.option(
    "--wait-for-origin",
    is_flag=True,
    help="Before purging, wait until the origin serves a file this push changed as the branch "
    "head has it.",
)
@click.option("--origin-url", help="Where the branch's root is served. Default: --site-url.")
@origin_timing_options
def purge_branch(
    repo: Path,
    remote: str,
    branch: str,
    since: str | None,
    wait_for_origin: bool,
    origin_url: str | None,
    origin_timeout: float,
    origin_interval: float,
    **kw: Any,
) -> None:
    """Purge what the deployed branch changed (after `mike deploy --push`, or any tool).

    Fetches REMOTE/BRANCH and compares its tree, by git blob id and with symlinks followed, with
    the tree the last purge left behind (the --manifest file): every file added, changed or
    removed anywhere in it (version folders, aliases, versions.json, the root index.html) is
    purged under --site-url, the URL the branch's root is served at.
    """
    from mkdocs_cfpurge.deploy import branch as branchdiff

    settings = make_settings(**kw)
    origin = None
    if wait_for_origin:
        origin = branchdiff.OriginWait(
            origin_url or str(settings.site), timeout=origin_timeout, interval=origin_interval
        )
    done = branchdiff.purge_branch(
        settings, repo=repo, remote=remote, branch=branch, since=since, origin=origin
    )
    if settings.dry_run:
        click.echo(done.plan.to_json().decode(), nl=False)


# purge-branch keeps its own state: a manifest of the branch's tree, and a pending.json of its own
# beside it (the state store puts pending.json in the manifest's folder).
for _param in purge_branch.params:
    if _param.name == "manifest":
        _param.default = BRANCH_MANIFEST


@cli.command()
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
    help="Take the expected hashes from this manifest instead of hashing SITE_DIR.",
)
@click.option("--site-url", help="Default: the plan's site_url.")
@click.option(
    "--ignore-changes",
    multiple=True,
    help="As given to the purge: bodies are hashed the way the manifest hashed the files.",
)
@click.option(
    "--connect-to",
    help="Send every request to this http(s)://HOST:PORT with the public Host header "
    "(like curl --connect-to). Default: fetch the public URLs.",
)
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds per request.",
)
@click.option("-v", "--verbose", is_flag=True, help="List every URL, not only the stale ones.")
def verify(
    site_dir: Path | None,
    plan_file: Path,
    manifest_file: Path | None,
    site_url: str | None,
    ignore_changes: tuple[str, ...],
    connect_to: str | None,
    concurrency: int,
    timeout: float,
    verbose: bool,
) -> None:
    """Fetch each URL a purge covered and check that the CDN serves SITE_DIR's bytes.

    Exit 1 when a page is stale (or could not be checked).
    """
    from mkdocs_cfpurge.build.manifest import load_manifest
    from mkdocs_cfpurge.verify import lines, verify_manifest

    if (site_dir is None) == (manifest_file is None):
        raise CfPurgeError("give SITE_DIR or --manifest (where the expected hashes come from)")
    the_plan = PurgePlan.load(plan_file)
    settings = make_settings(
        site_url=site_url or the_plan.site_url,
        manifest=manifest_file or Path(DEFAULT_MANIFEST),
        ignore_changes=ignore_changes,
    )
    if site_dir is not None:
        expected = pipeline.scan(_site_dir(site_dir), settings)
    else:
        assert manifest_file is not None
        loaded = load_manifest(manifest_file, str(settings.site))
        if loaded is None:
            raise CfPurgeError(f"manifest {str(manifest_file)!r} does not exist")
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
        raise CfPurgeError(
            f"{len(result.stale)} stale URL(s), {len(result.errors)} not checked",
            exit_code=EXIT_PURGE_FAILED,
        )


def main(argv: list[str] | None = None) -> None:
    """Entry point: map the pipeline's error to its exit code, with a one-line message."""
    try:
        cli.main(args=argv, prog_name="mkdocs-cfpurge", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        sys.exit(EXIT_PURGE_FAILED)
    except CfPurgeError as exc:
        click.echo(f"mkdocs-cfpurge: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(0)
