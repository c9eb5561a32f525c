"""Options with a variable: the plugin reads the variable when mkdocs.yml leaves the option out,
as the CLI does (CLOUDFLARE_API_BASE points a deploy at the local server)."""

from __future__ import annotations

from pathlib import Path

from mkdocs_cfpurge.plugin import settings_from_config
from mkdocs_cfpurge.settings import Options
from tests.helpers import load, make_site, plugin_of

LOCAL = "http://127.0.0.1:9/client/v4"


def settings_of(root: Path, env: dict[str, str], **options: str) -> str:
    config = load(make_site(root, options=options or None))
    return settings_from_config(plugin_of(config).config, config, env).api_base


def test_the_variable_applies_when_mkdocs_yml_leaves_the_option_out(tmp_path: Path) -> None:
    assert settings_of(tmp_path, {"CLOUDFLARE_API_BASE": LOCAL}) == LOCAL


def test_without_the_variable_the_declared_default_applies(tmp_path: Path) -> None:
    assert settings_of(tmp_path, {}) == Options.model_fields["api_base"].default


def test_mkdocs_yml_comes_before_the_variable(tmp_path: Path) -> None:
    other = "http://127.0.0.1:10/client/v4"
    assert settings_of(tmp_path, {"CLOUDFLARE_API_BASE": LOCAL}, api_base=other) == other
