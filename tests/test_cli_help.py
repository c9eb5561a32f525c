"""The help a user reads: every option of every command explained with its default (or marked
required), every argument named in its command's help, a command list that is not cut short,
`--version`, and the local server saying where it listens and which token it takes."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

import click
import pytest

import mkdocs_cfpurge
from mkdocs_cfpurge.cli import cli
from tests.helpers import run_main, subprocess_env

COMMANDS = sorted(cli.commands.items())
# Click's own options: they say what they do, and have no default to show.
CLICK_OWN = {"help", "version"}


def option_cases() -> list[tuple[str, click.Option]]:
    cases = []
    for name, command in [("mkdocs-cfpurge", cli), *COMMANDS]:
        for param in command.params:
            if isinstance(param, click.Option) and param.name not in CLICK_OWN:
                cases.append((f"{name} {param.opts[-1]}", param))
    return cases


OPTIONS = option_cases()


def test_the_walk_finds_every_command_and_their_options() -> None:
    assert {name for name, _ in COMMANDS} >= {
        "plan",
        "manifest",
        "mark",
        "purge",
        "purge-branch",
        "watch",
        "verify",
        "local-server",
    }
    assert len(OPTIONS) > 100  # the model's options, on several commands


@pytest.mark.parametrize(("where", "option"), OPTIONS, ids=[where for where, _ in OPTIONS])
def test_every_option_has_help_with_its_default_or_is_marked_required(
    where: str, option: click.Option
) -> None:
    assert option.help and option.help.strip(), f"{where} has no help"
    command = next((c for n, c in COMMANDS if where.startswith(n + " ")), cli)
    record = option.get_help_record(click.Context(command))
    assert record is not None, f"{where} is hidden"
    text = record[1]
    assert "default" in text.lower() or "[required]" in text, f"{where}: {text!r}"
    if option.required:
        assert "[required]" in text


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_argument_is_named_in_its_commands_help(name: str, command: click.Command) -> None:
    for param in command.params:
        if isinstance(param, click.Argument):
            assert param.human_readable_name in (command.help or ""), (name, param.name)


def test_the_command_list_shows_each_short_help_whole(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_main(["--help"], capsys)
    assert code == 0
    listing = out.split("Commands:", 1)[1]
    for name, command in COMMANDS:
        short = command.short_help
        assert short, f"{name} has no short help"
        assert re.search(rf"^  {re.escape(name)} +{re.escape(short)}$", listing, re.M), name
    assert "..." not in listing


def test_required_options_are_marked_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_main(["plan", "--help"], capsys)
    site_url = out[out.index("--site-url") : out.index("--host")]
    assert "[required]" in site_url


def test_version_is_the_packages_single_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["--version"], capsys)
    assert code == 0
    version = importlib.metadata.version("mkdocs-cfpurge")
    assert mkdocs_cfpurge.__version__ == version
    assert out.strip() == f"mkdocs-cfpurge, version {version}"


def first_line_of_local_server(*args: str, **env: str) -> str:
    with subprocess.Popen(
        [sys.executable, "-m", "mkdocs_cfpurge", "local-server", *args],
        env=subprocess_env(**env),
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        assert server.stdout is not None
        try:
            return server.stdout.readline()
        finally:
            server.terminate()
            server.wait(10)


def test_local_server_prints_its_base_url_and_the_token_it_accepts() -> None:
    line = first_line_of_local_server("--token", "tok-shown-on-purpose")
    assert re.search(r"Cloudflare API: http://127\.0\.0\.1:\d+/client/v4 ", line), line
    assert line.rstrip().endswith("API token accepted: 'tok-shown-on-purpose'")


def test_local_server_never_prints_a_token_it_read_from_the_environment() -> None:
    line = first_line_of_local_server(CLOUDFLARE_API_TOKEN="tok-from-env-maybe-real")
    assert "tok-from-env-maybe-real" not in line
    assert line.rstrip().endswith("API token accepted: the value of CLOUDFLARE_API_TOKEN")
