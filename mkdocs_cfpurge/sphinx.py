"""The Sphinx extension: a thin adapter from Sphinx's events to the pipeline.

`extensions = ["mkdocs_cfpurge.sphinx"]` in conf.py. Every option of `settings.Options` is a
config value `cfpurge_<name>`, validated by the options model with the same environment
fallbacks and messages as the MkDocs plugin and the CLI; the site URL is `html_baseurl`.

After an HTML build succeeded (`build-finished`, after every other extension wrote), the output
folder is hashed, the marker written, the plan made and reported, as the MkDocs plugin does on
`mkdocs build`; it is purged only when `cfpurge_purge_on` includes `build`. Sphinx has no deploy
command: by default the purge is left to `mkdocs-cfpurge purge` (or the Action) after the deploy.
Nothing here imports MkDocs.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shlex
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError as SphinxConfigError
from sphinx.errors import SphinxError
from sphinx.util import logging as sphinx_logging

from mkdocs_cfpurge import __version__, pipeline
from mkdocs_cfpurge.errors import CfPurgeError, ConfigError
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.plan.urls import SiteUrl
from mkdocs_cfpurge.settings import OPTION_NAMES, Options, Settings, option_info, parse_options

PREFIX = "cfpurge_"
# The builders whose output is a web site, one page per file at the URL the mapper derives:
# `html` (page.html, index.html also as its folder), `dirhtml` (page/index.html as page/) and
# `singlehtml`. epub, htmlhelp, qthelp... also write HTML, but nobody serves them as the site.
HTML_BUILDERS = frozenset({"html", "dirhtml", "singlehtml"})
# Sphinx runs handlers in increasing priority (default 500): hash only after every other
# extension's build-finished wrote its files (sitemaps, redirects, search indexes).
BUILD_FINISHED_PRIORITY = 900
# The options (by group) that decide what a purge of the output folder covers and how it is
# sent: the CLI command a deploy runs afterwards needs the same values to send the same purge.
# Credentials only ever come from the environment; the manifest is given apart.
PURGE_GROUPS = ("site", "hashing", "planning", "cloudflare", "origin", "verify")
NOT_PASSED = frozenset({"dry_run", "wait_for_origin"})

if TYPE_CHECKING:
    from sphinx.environment import BuildEnvironment

logger = sphinx_logging.getLogger(__name__)


class CfPurgeSphinxError(SphinxError):
    """A pipeline failure (a purge that failed, an unreadable manifest...), as Sphinx shows it."""

    category = "mkdocs-cfpurge error"


def config_name(option: str) -> str:
    """conf.py's name of an option (`strategy` → `cfpurge_strategy`)."""
    return PREFIX + option if option in OPTION_NAMES else option


def sphinx_message(exc: CfPurgeError) -> str:
    """The pipeline's message, naming conf.py's config value instead of the option."""
    if isinstance(exc, ConfigError):
        return f"config value '{config_name(exc.option)}': {exc.problem}"
    return exc.message


def options_from_config(config: Config, env: Mapping[str, str]) -> Options:
    """The options conf.py (or `-D`) set, validated; unset ones from their variables.

    Sphinx fills every unset value with its default, so a value equal to the declared default
    counts as unset: its environment variable (CLOUDFLARE_ZONE_ID...) still fills it.
    """
    given = {}
    for name in OPTION_NAMES:
        value = config[PREFIX + name]
        if value != Options.model_fields[name].default:
            given[name] = value
    try:
        return parse_options(given, env)
    except CfPurgeError as exc:
        raise SphinxConfigError(sphinx_message(exc)) from None


def settings_from_config(config: Config, confdir: Path, env: Mapping[str, str]) -> Settings:
    """The pipeline's settings: the site is `html_baseurl`, paths relative to conf.py's folder."""
    options = options_from_config(config, env)
    base = str(config.html_baseurl or "").strip()
    if not base:
        raise SphinxConfigError(
            "html_baseurl is not set: mkdocs_cfpurge.sphinx purges the URLs of the pages under "
            "it; set html_baseurl in conf.py to the public address of the site, e.g. "
            "https://docs.example.com/"
        )
    try:
        SiteUrl.parse(base, "html_baseurl")
        return Settings.from_options(options, site_url=base, root=confdir)
    except CfPurgeError as exc:
        raise SphinxConfigError(sphinx_message(exc)) from None


def gitignore_escape(path: str) -> str:
    """A literal path as a gitignore pattern (its special characters escaped)."""
    return "".join("\\" + ch if ch in "\\[]*?!#" else ch for ch in path)


def internal_excludes(outdir: Path, doctreedir: Path) -> list[str]:
    """Sphinx's own state inside the output folder, never hashed nor purged.

    `sphinx-build -b html SRC OUT` keeps its doctrees (pickles rewritten on every build, not
    pages) in OUT/.doctrees; `-M html` and `-d` keep them elsewhere.
    """
    try:
        inside = doctreedir.resolve().relative_to(outdir.resolve())
    except ValueError:
        return []
    return [f"/{gitignore_escape(inside.as_posix())}/"] if inside.parts else []


def purge_command(outdir: Path, settings: Settings) -> str:
    """The CLI command that sends this build's purge after the deploy, with the options that
    shape it (the credentials come from the environment)."""
    words = ["mkdocs-cfpurge", "purge", str(outdir), "--site-url", str(settings.site)]
    words += ["--manifest", str(settings.manifest_path)]
    for name in OPTION_NAMES:
        info, extra = option_info(name)
        value = getattr(settings, name)
        if extra.get("group") not in PURGE_GROUPS or name in NOT_PASSED or value == info.default:
            continue
        flag = str(extra.get("flag") or "--" + name.replace("_", "-"))
        if isinstance(value, bool):
            words.append(flag if value else f"--no-{flag.removeprefix('--')}")
        elif isinstance(value, list):
            for item in value:
                words += [
                    flag,
                    item if isinstance(item, str) else json.dumps(item, separators=(",", ":")),
                ]
        else:
            words += [flag, str(value)]
    if settings.wait_for_origin:
        words.append("--wait-for-origin")
    return shlex.join(words)


class _ToSphinx(logging.Handler):
    """Hands the pipeline's records to Sphinx's logging: shown as Sphinx shows its own, and
    warnings counted (and fatal under -W) like Sphinx's."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            logger.error(message)
        elif record.levelno >= logging.WARNING:
            logger.warning(message, type="cfpurge")
        else:
            logger.info(message)


@contextmanager
def sphinx_logging_for_pipeline() -> Iterator[None]:
    saved = (log.handlers[:], log.level, log.propagate)
    log.handlers[:] = [_ToSphinx()]
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield
    finally:
        log.handlers[:], level, log.propagate = saved
        log.setLevel(level)


def build_failing(app: Sphinx) -> bool:
    """Whether Sphinx will report this build as failed although it raised nothing: warnings
    under -W (counted, then turned into exit 1 after build-finished), or a status already set."""
    if getattr(app, "statuscode", 0):
        return True
    strict = getattr(app, "_fail_on_warnings", getattr(app, "warningiserror", False))
    return bool(strict) and getattr(app, "_warncount", 0) > 0


class CfPurgeExtension:
    """The extension's state for one Sphinx application (one build)."""

    # Credentials and flags are read from here: tests give a mapping instead of patching
    # os.environ.
    env: Mapping[str, str] = os.environ

    def __init__(self) -> None:
        self.options: Options | None = None
        self.settings: Settings | None = None
        self.removed: set[str] = set()  # documents whose source is gone since the last build

    def config_inited(self, app: Sphinx, config: Config) -> None:
        # A bad value stops the build before any source is read, whatever the builder.
        self.options = options_from_config(config, self.env)

    def builder_inited(self, app: Sphinx) -> None:
        if self.options is None or not self.options.enabled:
            return
        name = app.builder.name
        if name not in HTML_BUILDERS:
            logger.info(
                "cfpurge: the %s builder writes no web site: nothing is hashed or purged", name
            )
            return
        confdir = Path(app.confdir or app.srcdir)
        settings = settings_from_config(app.config, confdir, self.env)
        excludes = internal_excludes(Path(app.outdir), Path(app.doctreedir))
        if excludes:
            settings = settings.model_copy(update={"exclude": [*settings.exclude, *excludes]})
        try:
            if self.purges(settings):
                settings.require_purge_access()  # missing credentials fail before the build
        except CfPurgeError as exc:
            raise SphinxConfigError(sphinx_message(exc)) from None
        if app.config.html_last_updated_fmt is not None and not any(
            "last-updated" in entry for entry in settings.ignore_changes
        ):
            logger.info(
                "cfpurge: html_last_updated_fmt stamps the build time into every page: add "
                '"sphinx-last-updated" to cfpurge_ignore_changes, or every build purges them all'
            )
        self.settings = settings

    def env_get_outdated(
        self,
        app: Sphinx,
        env: BuildEnvironment,
        added: AbstractSet[str],
        changed: AbstractSet[str],
        removed: AbstractSet[str],
    ) -> list[str]:
        self.removed = set(removed)
        return []

    def warn_of_stale_pages(self, app: Sphinx) -> None:
        """Sphinx never deletes the page of a removed document from the output folder: it is
        still there, so it stays served and is neither deleted from the manifest nor purged."""
        outfile = getattr(app.builder, "get_outfilename", None)
        if outfile is None:
            return
        stale = sorted(name for name in self.removed if Path(outfile(name)).is_file())
        if stale:
            logger.warning(
                "cfpurge: %d removed document(s) left their page in %s (Sphinx never deletes "
                "output): %s; deployed as it is, it stays served and is not purged. Build into "
                "an empty folder to have it purged.",
                len(stale),
                app.outdir,
                ", ".join(stale),
                type="cfpurge",
                subtype="stale-page",
            )

    @staticmethod
    def purges(settings: Settings) -> bool:
        """Whether the build itself sends the purge (a dry run reports it instead)."""
        return not settings.dry_run and "build" in settings.purge_on

    def build_finished(self, app: Sphinx, exception: BaseException | None) -> None:
        settings = self.settings
        # Sphinx emits build-finished a second time, with the error, if a handler raised.
        if settings is None or exception is not None:
            return
        outdir = Path(app.outdir)
        self.warn_of_stale_pages(app)  # first: under -W, it fails the build
        if build_failing(app):
            logger.info("cfpurge: the build failed (warnings as errors): nothing planned or sent")
            return
        try:
            with sphinx_logging_for_pipeline():
                build = pipeline.prepare(outdir, settings, env=self.env)
                if "build" not in settings.purge_on:
                    logger.info(
                        "cfpurge: sphinx-build sends nothing (cfpurge_purge_on: %s). After the "
                        "deploy, send it with: %s",
                        ", ".join(settings.purge_on),
                        purge_command(outdir, build.settings),
                    )
                elif build_failing(app):
                    logger.info("cfpurge: warnings treated as errors: nothing sent")
                else:
                    pipeline.purge(build.settings, build, env=self.env)
        except CfPurgeError as exc:
            raise CfPurgeSphinxError(sphinx_message(exc)) from None


def setup(app: Sphinx) -> dict[str, Any]:
    """Sphinx's entry point: declare every option as a config value and follow the build."""
    for name in OPTION_NAMES:
        info = Options.model_fields[name]
        # Any type: the options model checks the values, with its own messages.
        app.add_config_value(PREFIX + name, copy.deepcopy(info.default), "", types=Any)
    extension = CfPurgeExtension()
    app.connect("config-inited", extension.config_inited)
    app.connect("builder-inited", extension.builder_inited)
    app.connect("env-get-outdated", extension.env_get_outdated)
    app.connect("build-finished", extension.build_finished, priority=BUILD_FINISHED_PRIORITY)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
