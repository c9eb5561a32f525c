"""The MkDocs plugin: a thin adapter from MkDocs' events to the pipeline.

Every build hashes the output after every other plugin wrote it, plans and reports. The purge
happens only once the build (strict checks included) has succeeded: at on_shutdown for
`purge_on: [build]`; for `gh-deploy`, after the push was verified and the origin serves the new
build (no MkDocs event fires after the push, so `gh_deploy` itself is wrapped). `mkdocs serve` is
left alone.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.config import CfPurgeConfig
from mkdocs_cfpurge.deploy import ghpages
from mkdocs_cfpurge.deploy.branch import mike_build_version
from mkdocs_cfpurge.deploy.origin import write_marker
from mkdocs_cfpurge.errors import CfPurgeError
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.changes import RESENT
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.settings import Settings


def settings_from_config(
    options: CfPurgeConfig, config: MkDocsConfig, env: Mapping[str, str]
) -> Settings:
    """The pipeline's settings from the plugin's options; paths relative to mkdocs.yml."""
    root = Path(config.config_file_path or ".").resolve().parent
    return Settings.create(
        site_url=config.site_url,
        manifest_path=root / options.manifest,
        plan_path=root / options.plan_file,
        hosts=options.hosts,
        schemes=options.schemes,
        exclude=options.exclude,
        cache_key_headers=options.cache_key_headers,
        extra_urls=options.extra_urls,
        ignore_changes=options.ignore_changes,
        strategy=options.strategy,
        max_files_per_request=options.max_files_per_request,
        max_purge_seconds=options.max_purge_seconds,
        max_collateral=options.max_collateral,
        allow_purge_everything=options.allow_purge_everything,
        zone_id=options.zone_id,
        api_token=options.api_token,
        api_email=options.api_email,
        api_key=options.api_key,
        api_base=options.api_base,
        cloudflare_plan=options.cloudflare_plan,
        method=options.method,
        verify_zone=options.verify_zone,
        dry_run=options.dry_run,
        env=env,
    )


def is_serve_build(config: MkDocsConfig) -> bool:
    """`mkdocs serve` builds into a fresh temp folder named mkdocs_*, even with --clean
    (which reports command 'build')."""
    site_dir = Path(config.site_dir)
    return site_dir.name.startswith("mkdocs_") and site_dir.parent == Path(tempfile.gettempdir())


def _plugin_error(exc: CfPurgeError) -> PluginError:
    return PluginError(f"cfpurge: {exc}")


def install_gh_deploy_hook() -> bool:
    """Make `mkdocs.commands.gh_deploy.gh_deploy` call every cfpurge plugin after a push.

    MkDocs' CLI looks the function up when it calls it, so the wrapper runs after a successful
    push, with MkDocs' logging intact, and never after a rejected one (ghp-import raises).
    Idempotent; False when this MkDocs has no such function.
    """
    try:
        from mkdocs.commands import gh_deploy as module

        original: Callable[..., Any] = module.gh_deploy
    except (ImportError, AttributeError):
        return False
    if getattr(original, "__cfpurge__", False):
        return True

    @functools.wraps(original)
    def gh_deploy(config: MkDocsConfig, *args: Any, **kwargs: Any) -> Any:
        result = original(config, *args, **kwargs)
        for plugin in config.plugins.values():
            if isinstance(plugin, CfPurgePlugin):
                plugin.after_push(config)
        return result

    gh_deploy.__cfpurge__ = True  # type: ignore[attr-defined]
    module.gh_deploy = gh_deploy
    return True


class CfPurgePlugin(BasePlugin[CfPurgeConfig]):
    # Credentials and flags are read from here, so tests pass a mapping instead of patching
    # os.environ.
    env: Mapping[str, str] = os.environ

    def __init__(self) -> None:
        self._command = ""
        self._hooked = False
        self._reset()

    def _reset(self) -> None:
        # MkDocs caches the plugin instance across builds (serve, tests): nothing may carry over.
        self.settings: Settings | None = None
        self.plan: PurgePlan | None = None
        self.manifest: Manifest | None = None
        self.baseline: Manifest | None = None
        self.build_failed = False

    def on_startup(self, *, command: str, dirty: bool) -> None:
        self._command = command
        self._hooked = command == "gh-deploy" and install_gh_deploy_hook()
        if command == "gh-deploy" and not self._hooked:
            log.warning(
                "cfpurge: this MkDocs has no mkdocs.commands.gh_deploy.gh_deploy to follow; the "
                "purge is left pending: run `mkdocs-cfpurge purge` after the push"
            )

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        self._reset()
        if not self.config.enabled or self._command == "serve" or is_serve_build(config):
            return None
        version = mike_build_version(self.env)
        if self._command == "mike" or version is not None:
            # mike builds each version in a subprocess before it commits and pushes: the purge
            # belongs after the push, over the whole branch (`mkdocs-cfpurge purge-branch`).
            if version is not None:
                log.info(
                    "cfpurge: mike is building version %s: nothing is hashed or purged here; "
                    "after `mike deploy --push`, run `mkdocs-cfpurge purge-branch`",
                    version,
                )
            return None
        try:
            settings = settings_from_config(self.config, config, self.env)
            if self.will_purge(settings):
                settings.require_purge_access()
        except CfPurgeError as exc:
            raise _plugin_error(exc) from None
        self.settings = settings
        return None

    def will_purge(self, settings: Settings) -> bool:
        """Whether this command ends with a real purge."""
        return not settings.dry_run and self._command in self.config.purge_on

    # After the search index (priority 0), material's offline plugin (-100) and others wrote.
    @event_priority(-150)
    def on_post_build(self, *, config: MkDocsConfig) -> None:
        settings = self.settings
        if settings is None:
            return
        site_dir = Path(config.site_dir)
        try:
            self.settings = settings = pipeline.with_site_hosts(settings, site_dir)
            self.manifest = pipeline.scan(site_dir, settings)
            if not settings.manifest_path.exists():
                self.baseline = self._deployed_baseline(config, site_dir, self.manifest)
            self.plan = pipeline.preview(settings, self.manifest, self.baseline)
            # This deploy's own changes (not those resent for an earlier one) are what its
            # marker says it owes.
            owed = [
                c.path for c in self.plan.changes if not c.path.endswith("/") and c.reason != RESENT
            ]
            write_marker(site_dir, self.manifest, owed)
            pipeline.report(self.plan, settings, self.env)
        except CfPurgeError as exc:
            raise _plugin_error(exc) from None
        if not self.will_purge(settings):
            log.info("cfpurge: dry run; plan written to %s, nothing sent", settings.plan_path)

    def _deployed_baseline(
        self, config: MkDocsConfig, site_dir: Path, new: Manifest
    ) -> Manifest | None:
        """A fresh CI runner has no manifest: the deployed branch is the baseline.

        gh-deploy fetches it; a plain build (a pull request's dry run) reads the remote-tracking
        ref as it is, so a build on a laptop never reaches out to the remote.
        """
        remote, branch = config.remote_name, config.remote_branch
        fetch = self._command == "gh-deploy"
        try:
            baseline = ghpages.deployed_baseline(
                Path.cwd(), remote, branch, site_dir, new, fetch=fetch
            )
        except CfPurgeError as exc:
            log.warning("cfpurge: cannot read %s/%s as a baseline: %s", remote, branch, exc)
            return None
        if baseline is None and fetch:  # a plain build knows nothing of what was deployed
            log.info(
                "cfpurge: %s/%s does not exist yet: first deploy, nothing to purge", remote, branch
            )
        return baseline

    def on_build_error(self, *, error: Exception) -> None:
        self.build_failed = True

    def on_shutdown(self) -> None:
        # on_post_build can run in a build that strict mode then aborts: purge only here, and
        # only when the build really succeeded.
        settings, manifest = self.settings, self.manifest
        if settings is None or manifest is None or self.build_failed:
            return
        if not self.will_purge(settings):
            return
        try:
            if self._command == "build":
                self._verify(pipeline.deploy(settings, manifest), settings, manifest)
            elif self._command == "gh-deploy" and not self._hooked:
                path = pipeline.save_pending_plan(settings, manifest, self.baseline)
                log.warning("cfpurge: purge left pending in %s", path)
        except CfPurgeError as exc:
            raise _plugin_error(exc) from None

    def after_push(self, config: MkDocsConfig) -> None:
        """Called by the gh_deploy wrapper once ghp-import pushed without error."""
        settings, manifest = self.settings, self.manifest
        if settings is None or manifest is None or self.build_failed:
            return
        if not self.will_purge(settings):
            log.info("cfpurge: dry run: pushed, nothing purged")
            return
        origin = ghpages.OriginWait(
            enabled=self.config.wait_for_origin,
            url=self.config.origin_url or str(settings.site),
            timeout=float(self.config.origin_timeout),
            interval=float(self.config.origin_interval),
        )
        try:
            result = ghpages.purge_after_push(
                settings,
                manifest,
                repo=Path.cwd(),
                remote=config.remote_name,
                branch=config.remote_branch,
                origin=origin,
                baseline=self.baseline,
            )
            self._verify(result, settings, manifest)
        except CfPurgeError as exc:
            raise _plugin_error(exc) from None

    def _verify(self, result: pipeline.PurgeResult, settings: Settings, manifest: Manifest) -> None:
        if not self.config.verify_after_purge or result.requests_sent == 0:
            return
        from mkdocs_cfpurge.verify import verify_manifest

        outcome = verify_manifest(
            result.plan, manifest, settings, connect_to=self.config.verify_connect_to
        )
        outcome.log()
        if not outcome.ok:
            raise CfPurgeError(
                f"{len(outcome.stale)} URL(s) still stale and {len(outcome.errors)} unchecked "
                "after the purge (see above)",
                exit_code=1,
            )
