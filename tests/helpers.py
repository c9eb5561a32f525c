"""Shared test helpers: a small MkDocs site in a temp folder, real builds, a network trap, the
zone and token every local Cloudflare uses, settings, git, the CLI in this process or another.

A plain module (not conftest.py) so that any test imports exactly what it uses:
`from tests.helpers import ...`.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import yaml
from mkdocs.commands.build import build
from mkdocs.config import load_config
from mkdocs.config.defaults import MkDocsConfig

from mkdocs_cfpurge.cli import main
from mkdocs_cfpurge.localcf import LocalCloudflare, PurgeRecord
from mkdocs_cfpurge.plugin import CfPurgePlugin
from mkdocs_cfpurge.settings import Settings

ZONE_ID = "0123456789abcdef0123456789abcdef"
# Distinctive: tests search every output and file for it to prove it never leaks.
TOKEN = "tok-TESTS-c0ffee-5eb4c7a1"
SITE = "https://docs.example.com/"  # in the local Cloudflare's zone, example.com
BIN = Path(sys.executable).parent  # this virtualenv's scripts (mkdocs, mike)

MakeCf = Callable[..., LocalCloudflare]  # the `make_cf` fixture (conftest.py)
# Any fixed time: with SOURCE_DATE_EPOCH set, two builds of the same sources are byte-identical.
EPOCH = "1700000000"

DEFAULT_PAGES: dict[str, str] = {
    "index.md": "# Home\n\nWelcome.\n",
    "guide/index.md": "# Guide\n\nThe first version of the guide.\n",
    "about.md": "# About\n\nWho we are.\n",
    "assets/site.css": "body { color: black; }\n",
}

# Where the plugin writes by default, relative to mkdocs.yml's folder.
PLAN_FILE = Path(".cache/plugin/cfpurge/plan.json")
MANIFEST_FILE = Path(".cache/plugin/cfpurge/manifest.json")


def write_files(root: Path, files: Mapping[str, str | bytes]) -> None:
    """Write `files` (relative POSIX path → text or bytes) under `root`."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def make_site(
    root: Path,
    *,
    site_url: str | None = "https://example.com/",
    options: Mapping[str, Any] | None = None,
    pages: Mapping[str, str] | None = None,
    theme: str = "mkdocs",
    use_directory_urls: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """A small MkDocs project in `root` with `plugins: [search, cfpurge]`; returns mkdocs.yml."""
    root.mkdir(parents=True, exist_ok=True)
    write_files(root / "docs", pages if pages is not None else DEFAULT_PAGES)
    # No live marker unless a test asks for one: these site_urls are not served on this machine,
    # and a build with no local manifest would otherwise read them (deploy/live.py).
    plugin: Any = {"cfpurge": {"live_baseline": False, **(options or {})}}
    config: dict[str, Any] = {
        "site_name": "Test site",
        "theme": {"name": theme},
        "use_directory_urls": use_directory_urls,
        "plugins": ["search", plugin],
    }
    if site_url is not None:
        config["site_url"] = site_url
    config.update(extra or {})
    config_file = root / "mkdocs.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return config_file


def settings_for(state: Path, cf: LocalCloudflare | None = None, **options: Any) -> Settings:
    """Settings as most tests want them, each default overridden by `options`: exact URLs of
    SITE, the manifest in the folder `state`, zone ZONE_ID through the API of `cf` (if given),
    and TOKEN read from the environment the settings are given."""
    defaults: dict[str, Any] = {
        "site_url": SITE,
        "manifest_path": state / "manifest.json",
        "strategy": "files",
        "zone_id": ZONE_ID,
        "api_base": None if cf is None else cf.api_base,
        "env": {"CLOUDFLARE_API_TOKEN": TOKEN},
    }
    return Settings.create(**{**defaults, **options})


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`mkdocs-cfpurge ARGV` in this process: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    code = exited.value.code
    captured = capsys.readouterr()
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def subprocess_env(**extra: str | None) -> dict[str, str]:
    """The environment of a command under test: this one without Cloudflare or cfpurge settings
    and proxies (loopback is never proxied), this virtualenv's scripts first (mike runs `mkdocs`
    by name), reproducible builds, unbuffered UTF-8 output; then `extra` (None removes)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CLOUDFLARE_", "CFPURGE_")) and "proxy" not in name.lower()
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        SOURCE_DATE_EPOCH=EPOCH,
        NO_PROXY="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
        PYTHONIOENCODING="utf-8",
    )
    merged = {**env, **extra}
    return {name: value for name, value in merged.items() if value is not None}


def git(cwd: Path, *args: str) -> str:
    """`git ARGS` in `cwd` (with the identity conftest gives every test); stdout, stripped."""
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def bare_repository(path: Path, branch: str = "main") -> Path:
    """A new bare repository at `path` (a remote on this machine)."""
    git(path.parent, "init", "-q", "--bare", "-b", branch, str(path))
    return path


def make_pushed_site(root: Path, bare: Path, **site: Any) -> None:
    """`make_site(root, **site)`, in a repository whose `origin` is `bare`: the sources (site/
    and .cache/ ignored) committed on main and pushed."""
    make_site(root, **site)
    write_files(root, {".gitignore": "site/\n.cache/\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "remote", "add", "origin", str(bare))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "docs")
    git(root, "push", "-q", "origin", "main")


def load(config_file: Path, **overrides: Any) -> MkDocsConfig:
    return load_config(config_file=str(config_file), **overrides)


def plugin_of(config: MkDocsConfig) -> CfPurgePlugin:
    plugin = config.plugins["cfpurge"]
    assert isinstance(plugin, CfPurgePlugin)
    return plugin


def run_build(
    config_file: Path,
    env: Mapping[str, str],
    *,
    command: Literal["build", "gh-deploy", "serve"] = "build",
    **overrides: Any,
) -> MkDocsConfig:
    """What `mkdocs build` does: load the config, startup, build, shutdown (always).

    MkDocs caches the plugin instance across load_config calls in one process, so `env` is set
    on every run.
    """
    config = load(config_file, **overrides)
    plugin_of(config).env = dict(env)
    config.plugins.on_startup(command=command, dirty=False)
    try:
        build(config)
    finally:
        config.plugins.on_shutdown()
    return config


def read_plan(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / PLAN_FILE).read_bytes())
    return data


def plan_urls(plan: Mapping[str, Any]) -> set[str]:
    """Every URL string in the plan's `files` bodies."""
    urls: set[str] = set()
    for body in plan["requests"]:
        for item in body.get("files", []):
            urls.add(item if isinstance(item, str) else item["url"])
    return urls


class NetworkForbidden(AssertionError):
    """Raised by the network trap: nothing in a dry run may send a request."""


class NetworkTrap:
    """Every httpx request (sync or async, any transport) is recorded, then refused."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def refuse(self, request: httpx.Request) -> None:
        self.calls.append(f"{request.method} {request.url}")
        raise NetworkForbidden(f"network use in a test: {request.method} {request.url}")


def forbid_network(monkeypatch: pytest.MonkeyPatch) -> NetworkTrap:
    trap = NetworkTrap()

    def send(self: Any, request: httpx.Request, *args: Any, **kwargs: Any) -> Any:
        trap.refuse(request)

    async def async_send(self: Any, request: httpx.Request, *args: Any, **kwargs: Any) -> Any:
        trap.refuse(request)

    def handle(self: Any, request: httpx.Request) -> Any:
        trap.refuse(request)

    monkeypatch.setattr(httpx.Client, "send", send)
    monkeypatch.setattr(httpx.AsyncClient, "send", async_send)
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", handle)
    return trap


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative POSIX path → bytes), to prove nothing changed."""
    if not root.exists():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def unprivileged() -> list[str]:
    """A command prefix under which file permissions apply, as they do to a normal user.

    Root reads every file whatever its mode; `setpriv` takes that power (CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH) away from the command, which still runs as root. Skips the test when
    running as root without setpriv.
    """
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop root's power to read any file")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


@dataclass
class HeldPurge:
    """A local server that holds the first purge request until `release` is set: a run caught
    in the middle of its purge, so that a second run can be started beside it."""

    cf: LocalCloudflare
    held: threading.Event  # set once the first purge has arrived
    release: threading.Event


def hold_first_purge(
    make_cf: MakeCf, request: pytest.FixtureRequest, *, longest: float = 60.0
) -> HeldPurge:
    held, release = threading.Event(), threading.Event()

    def hold(record: PurgeRecord) -> None:
        if not held.is_set():
            held.set()
            release.wait(longest)

    cf = make_cf(on_purge=hold)
    request.addfinalizer(release.set)  # runs before make_cf stops the server
    return HeldPurge(cf, held, release)


PACKAGE = Path(__file__).resolve().parents[1] / "mkdocs_cfpurge"


def package_imports() -> dict[str, set[str]]:
    """Every module of the package (`build.manifest`, `pipeline`, ...) and what it imports, at
    top level or inside a function (lazy imports count): `a.b` and, for `from a.b import c`,
    `a.b.c` too."""
    modules: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = found
    return modules
