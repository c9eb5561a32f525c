"""The MkDocs plugin: a thin adapter from MkDocs' events to the pipeline.

Every build prepares the deploy after every other plugin wrote its output (hash, plan, marker,
report). The purge happens only once the build (strict checks included) has succeeded: at
on_shutdown for `purge_on: [build]`; for `gh-deploy`, after the push (no MkDocs event fires after
it, so `gh_deploy` itself is wrapped). `mkdocs serve` and mike's own builds are left alone.
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
from mkdocs_cfpurge.deploy.mike import mike_build_version
from mkdocs_cfpurge.errors import CfPurgeError, PurgeFailed
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.baseline import Baseline, BaselineSource
from mkdocs_cfpurge.settings import Settings, parse_options


def settings_from_config(
    options: Mapping[str, Any], config: MkDocsConfig, env: Mapping[str, str]
) -> Settings:
    """The pipeline's settings from the plugin's options; paths relative to mkdocs.yml."""
    root = Path(config.config_file_path or ".").resolve().parent
    parsed = parse_options(dict(options), env)
    settings = Settings.from_options(parsed, site_url=config.site_url, root=root)
    return settings.model_copy(update={"query_links": query_links_of(config)})


# Material for MkDocs features that link the site's pages with query strings: search results as
# `page/?h=term`, a shared search as `page/?q=term`.
QUERY_FEATURES = ("search.highlight", "search.share")


def query_links_of(config: MkDocsConfig) -> tuple[str, ...]:
    """The theme features (Material's `theme.features`) that make pages reachable with query
    strings: the pipeline purges those variants of changed pages (`query_strings: auto`)."""
    features = config.theme.get("features") or []
    return tuple(f for f in QUERY_FEATURES if isinstance(features, list) and f in features)


def is_serve_build(config: MkDocsConfig) -> bool:
    """`mkdocs serve` builds into a fresh temp folder named mkdocs_*, even with --clean
    (which reports command 'build')."""
    site_dir = Path(config.site_dir)
    return site_dir.name.startswith("mkdocs_") and site_dir.parent == Path(tempfile.gettempdir())


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
        self.build: pipeline.PreparedBuild | None = None
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
        if not self.config["enabled"] or self._command == "serve" or is_serve_build(config):
            return None
        version = mike_build_version(self.env)
        if self._command == "mike" or version is not None:
            if version is not None:
                log.info(
                    "cfpurge: mike is building version %s: nothing is hashed or purged here; "
                    "after `mike deploy --push`, run `mkdocs-cfpurge purge-branch`",
                    version,
                )
            return None
        try:
            settings = settings_from_config(self.config, config, self.env)
            if self._purges(settings):
                settings.require_purge_access()
        except CfPurgeError as exc:
            raise PluginError(f"cfpurge: {exc}") from None
        self.settings = settings
        return None

    def _purges(self, settings: Settings) -> bool:
        """Whether this command ends with a purge (a dry run reports it instead)."""
        return not settings.dry_run and self._command in self.config["purge_on"]

    # After the search index (priority 0), material's offline plugin (-100) and others wrote.
    @event_priority(-150)
    def on_post_build(self, *, config: MkDocsConfig) -> None:
        if self.settings is None:
            return
        site_dir = Path(config.site_dir)
        try:
            self.build = pipeline.prepare(
                site_dir,
                self.settings,
                baseline=lambda new: self._deployed_baseline(config, site_dir, new),
                env=self.env,
            )
        except CfPurgeError as exc:
            raise PluginError(f"cfpurge: {exc}") from None
        if self._command not in self.config["purge_on"]:
            log.info(
                "cfpurge: plan written to %s; `mkdocs %s` sends nothing (purge_on: %s)",
                self.settings.plan_path,
                self._command,
                ", ".join(self.config["purge_on"]),
            )

    def _deployed_baseline(
        self, config: MkDocsConfig, site_dir: Path, new: Manifest
    ) -> Baseline | None:
        """A fresh CI runner has no manifest: the deployed branch is the baseline.

        gh-deploy fetches it; a plain build (a pull request's dry run) reads the remote-tracking
        ref as it is, so a build on a laptop never reaches out to the remote. A gh-deploy that
        cannot read it stops before the push: taken for a first deploy, it would push a marker
        that owes nothing, and no later deploy would purge what this one changed.
        """
        remote, branch = config.remote_name, config.remote_branch
        fetch = self._command == "gh-deploy"
        try:
            found = ghpages.deployed_baseline(
                Path.cwd(), remote, branch, site_dir, new, fetch=fetch
            )
        except CfPurgeError as exc:
            if fetch:
                raise PurgeFailed(
                    f"cannot read {remote}/{branch}, the baseline of this deploy ({exc}); nothing "
                    "was pushed: run gh-deploy again once the remote can be read"
                ) from None
            log.warning("cfpurge: cannot read %s/%s as a baseline: %s", remote, branch, exc)
            return None
        if found is None:
            return None
        return Baseline(BaselineSource.DEPLOYED_BRANCH, f"{remote}/{branch}", manifest=found)

    def on_build_error(self, *, error: Exception) -> None:
        self.build_failed = True

    def on_shutdown(self) -> None:
        # on_post_build can run in a build that strict mode then aborts: purge only here, and
        # only when the build really succeeded.
        build = self.build
        if build is None or self.build_failed or self._command not in self.config["purge_on"]:
            return
        try:
            if self._command == "build":
                pipeline.purge(build.settings, build, env=self.env)
            elif self._command == "gh-deploy" and not self._hooked:
                pipeline.defer(build.settings, build.manifest, build.baseline)
        except CfPurgeError as exc:
            raise PluginError(f"cfpurge: {exc}") from None

    def after_push(self, config: MkDocsConfig) -> None:
        """Called by the gh_deploy wrapper once ghp-import pushed without error."""
        build = self.build
        if build is None or self.build_failed or "gh-deploy" not in self.config["purge_on"]:
            return
        try:
            ghpages.purge_after_push(
                build, repo=Path.cwd(), remote=config.remote_name, branch=config.remote_branch
            )
        except CfPurgeError as exc:
            raise PluginError(f"cfpurge: {exc}") from None
