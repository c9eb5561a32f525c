"""One declaration per option: every front end accepts and refuses a value the same way."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mkdocs_cfpurge.cli import cli, main
from mkdocs_cfpurge.errors import ConfigError, UsageError
from mkdocs_cfpurge.plugin import CfPurgePlugin
from mkdocs_cfpurge.settings import (
    OPTION_NAMES,
    Options,
    check_option,
    option_info,
    options_table,
    parse_options,
)
from tests.helpers import run_build, write_files

ROOT = Path(__file__).resolve().parents[1]

# The values the architecture issue names, each refused by both front ends with one message.
REFUSED: list[tuple[str, Any, str]] = [
    ("origin_timeout", 0, "above 0"),
    ("origin_interval", 0, "above 0"),
    ("max_purge_seconds", 0, "above 0"),
    ("max_files_per_request", 0, "from 1 to 500"),
    ("max_files_per_request", 501, "from 1 to 500"),
    ("max_collateral", -1, "0 or more"),
    ("strategy", "bogus", "'bogus' is not one of"),
]


def plugin_problem(option: str, value: Any) -> str:
    errors, _ = CfPurgePlugin().load_config({option: value})
    assert [key for key, _ in errors] == [option]
    return str(errors[0][1])


def cli_run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


@pytest.mark.parametrize(("option", "value", "problem"), REFUSED)
def test_plugin_and_cli_refuse_the_same_value_with_the_same_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: Any, problem: str
) -> None:
    from_plugin = plugin_problem(option, value)
    assert problem in from_plugin

    site = tmp_path / "site"
    write_files(site, {"index.html": "<p>home</p>"})
    flag = "--" + option.replace("_", "-")
    argv = ["purge", str(site), "--site-url", "https://docs.example.com/", "--dry-run"]
    code, out, err = cli_run(
        [*argv, "--manifest", str(tmp_path / "m.json"), flag, str(value)], capsys
    )
    assert code == 2
    assert err.strip() == f"mkdocs-cfpurge: error: option '{option}': {from_plugin}"
    assert out == ""
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize(("option", "value", "problem"), REFUSED)
def test_mkdocs_build_refuses_it_naming_the_option(
    tmp_path: Path, option: str, value: Any, problem: str
) -> None:
    from mkdocs.exceptions import Abort

    from tests.helpers import make_site

    config_file = make_site(tmp_path, options={option: value})
    with pytest.raises(Abort):
        run_build(config_file, {"CFPURGE_DRY_RUN": "1"})
    assert not (tmp_path / ".cache").exists()


def test_every_option_has_help_a_type_and_a_group() -> None:
    for name in OPTION_NAMES:
        info, extra = option_info(name)
        assert info.description and len(info.description) > 20, name
        assert extra.get("group"), name
    assert check_option("max_files_per_request", 500) == 500


def test_defaults_are_valid_values_of_their_own_options() -> None:
    defaults = Options()
    for name in OPTION_NAMES:
        assert check_option(name, getattr(defaults, name)) == getattr(defaults, name)


def test_variables_fill_unset_options_and_options_win() -> None:
    env = {"CLOUDFLARE_ZONE_ID": "A" * 32, "CLOUDFLARE_API_BASE": "http://127.0.0.1:1/client/v4"}
    options = parse_options({}, env)
    assert options.zone_id == "a" * 32
    assert options.api_base == "http://127.0.0.1:1/client/v4"
    assert parse_options({"zone_id": "b" * 32}, env).zone_id == "b" * 32
    with pytest.raises(ConfigError, match="option 'zone_id'"):
        parse_options({}, {"CLOUDFLARE_ZONE_ID": "not-a-zone"})


@pytest.mark.parametrize("value", ["1", "true", "YES", "on", "y", " True "])
def test_dry_run_variable_truthy_spellings(value: str) -> None:
    assert parse_options({}, {"CFPURGE_DRY_RUN": value}).dry_run is True


@pytest.mark.parametrize("value", ["", "0", "false", "No", "off", "n"])
def test_dry_run_variable_falsy_spellings(value: str) -> None:
    assert parse_options({}, {"CFPURGE_DRY_RUN": value}).dry_run is False
    assert parse_options({"dry_run": True}, {"CFPURGE_DRY_RUN": value}).dry_run is True


@pytest.mark.parametrize("value", ["2", "maybe", "dry"])
def test_a_dry_run_variable_that_is_no_yes_or_no_is_refused(value: str) -> None:
    with pytest.raises(UsageError, match="CFPURGE_DRY_RUN") as caught:
        parse_options({}, {"CFPURGE_DRY_RUN": value})
    assert caught.value.exit_code == 2


def test_every_cli_flag_of_purge_comes_from_the_declaration() -> None:
    result = CliRunner().invoke(cli, ["purge", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for name in OPTION_NAMES:
        group = option_info(name)[1]["group"]
        flag = option_info(name)[1].get("flag") or "--" + name.replace("_", "-")
        shown = re.search(re.escape(str(flag)) + r"\b", result.output) is not None
        assert shown == (group not in ("plugin", "credentials")), name


@pytest.mark.parametrize("document", ["README.md", "example-site/docs/guide/options.md"])
def test_the_option_tables_are_the_declaration(document: str) -> None:
    text = (ROOT / document).read_text(encoding="utf-8")
    start = text.index("<!-- options: generated")
    block = text[text.index("\n", start) + 1 : text.index("<!-- options: end -->")]
    assert block.rstrip("\n") == options_table(), (
        f"{document}'s option table is out of date: run `python -m tests.test_options`"
    )
    listed = re.findall(r"^\| `([a-z_]+)` \|", block, re.M)
    assert listed == list(OPTION_NAMES)


def write_option_tables() -> None:
    """Rewrite the option tables from the declaration: `python -m tests.test_options`."""
    for document in ("README.md", "example-site/docs/guide/options.md"):
        path = ROOT / document
        text = path.read_text(encoding="utf-8")
        start = text.index("\n", text.index("<!-- options: generated")) + 1
        end = text.index("<!-- options: end -->")
        path.write_text(text[:start] + options_table() + "\n" + text[end:], encoding="utf-8")


if __name__ == "__main__":
    write_option_tables()
