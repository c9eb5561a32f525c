"""The MkDocs plugin: a thin adapter from MkDocs' events to the pipeline.

build: hash the output after every other plugin wrote it, plan, report. The purge itself happens
only once the build (strict checks included) has succeeded: at on_shutdown for `purge_on: [build]`,
after the push for `gh-deploy` (see deploy.py). `mkdocs serve` is left alone.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.config import CfPurgeConfig
from mkdocs_cfpurge.errors import CfPurgeError
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.manifest import Manifest
from mkdocs_cfpurge.plan import PurgePlan
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
        strategy=options.strategy,
        max_files_per_request=options.max_files_per_request,
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


class CfPurgePlugin(BasePlugin[CfPurgeConfig]):
    # Credentials and flags are read from here, so tests pass a mapping instead of patching
    # os.environ.
    env: Mapping[str, str] = os.environ

    def __init__(self) -> None:
        self._command = ""
        self._reset()

    def _reset(self) -> None:
        # MkDocs caches the plugin instance across builds (serve, tests): nothing may carry over.
        self.settings: Settings | None = None
        self.plan: PurgePlan | None = None
        self.manifest: Manifest | None = None
        self.site_dir: Path | None = None
        self.build_failed = False

    def on_startup(self, *, command: str, dirty: bool) -> None:
        self._command = command

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        self._reset()
        if not self.config.enabled or self._command == "serve" or is_serve_build(config):
            return None
        try:
            settings = settings_from_config(self.config, config, self.env)
            if self.will_purge(settings):
                settings.require_purge_access()
        except CfPurgeError as exc:
            raise PluginError(f"cfpurge: {exc}") from None
        self.settings = settings
        return None

    def will_purge(self, settings: Settings) -> bool:
        """Whether this command ends with a real purge."""
        return (
            not settings.dry_run
            and self._command in self.config.purge_on
            and self._command != "gh-deploy"  # until the push can be verified
        )

    # After the search index (priority 0), material's offline plugin (-100) and others wrote.
    @event_priority(-150)
    def on_post_build(self, *, config: MkDocsConfig) -> None:
        if self.settings is None:
            return
        self.site_dir = Path(config.site_dir)
        try:
            self.plan, self.manifest = pipeline.preview(self.site_dir, self.settings)
            pipeline.report(self.plan, self.settings, self.env)
        except CfPurgeError as exc:
            raise PluginError(f"cfpurge: {exc}") from None
        if not self.will_purge(self.settings):
            log.info("cfpurge: dry run; plan written to %s, nothing sent", self.settings.plan_path)

    def on_build_error(self, *, error: Exception) -> None:
        self.build_failed = True

    def on_shutdown(self) -> None:
        # on_post_build can run in a build that strict mode then aborts: purge only here, and
        # only when the build really succeeded.
        settings = self.settings
        if settings is None or self.build_failed or self.manifest is None:
            return
        if self._command == "build" and self.will_purge(settings):
            self._purge(settings, self.manifest)

    def _purge(self, settings: Settings, manifest: Manifest, **kwargs: Any) -> None:
        try:
            pipeline.deploy(settings, manifest, **kwargs)
        except CfPurgeError as exc:
            raise PluginError(f"cfpurge: {exc}") from None
