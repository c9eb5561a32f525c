"""Portability: nothing POSIX-only on the plugin's or the CLI's import path, the manifest lock
without `fcntl` (as on Windows), and site paths that are POSIX whatever the OS."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mkdocs_cfpurge.build.manifest import build_manifest
from tests.helpers import (
    TOKEN,
    ZONE_ID,
    MakeCf,
    hold_first_purge,
    package_imports,
    subprocess_env,
    write_files,
)

# Modules that exist on POSIX only (or on Windows only): none may be imported by the package.
PLATFORM_ONLY = {"fcntl", "grp", "pwd", "termios", "tty", "pty", "resource", "posix", "crypt"}
PLATFORM_ONLY |= {"syslog", "nis", "spwd", "msvcrt", "winreg", "winsound", "_winapi"}
SITE = "https://docs.example.com/"

# Runs a command of the CLI with `fcntl` unimportable, as on a platform without it.
WITHOUT_FCNTL = """
import sys
sys.modules["fcntl"] = None
from mkdocs_cfpurge.cli import main
main(sys.argv[1:])
"""


def test_no_module_of_the_package_imports_a_platform_only_module() -> None:
    found = {
        f"{module}: {name}"
        for module, imported in package_imports().items()
        for name in {name.split(".")[0] for name in imported} & PLATFORM_ONLY
    }
    assert found == set()


def test_the_plugin_and_the_cli_import_with_every_posix_only_module_missing() -> None:
    # `posix` stays: the standard library's os and shutil are built on it (Windows: `nt`).
    blocked = sorted(PLATFORM_ONLY - {"posix", "msvcrt", "winreg", "winsound", "_winapi"})
    script = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        "import mkdocs_cfpurge.plugin, mkdocs_cfpurge.cli, mkdocs_cfpurge.pipeline\n"
        "import mkdocs_cfpurge.state, mkdocs_cfpurge.cloudflare.client\n"
        "print('imported')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"


def test_site_paths_are_posix_relative_paths(tmp_path: Path) -> None:
    write_files(tmp_path, {"index.html": "home", "a/b/c.html": "deep", "a/index.html": "a"})
    files = build_manifest(tmp_path, SITE).files
    assert sorted(files) == ["a/b/c.html", "a/index.html", "index.html"]


def run_without_fcntl(
    args: list[str], env: dict[str, str], **popen: object
) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", WITHOUT_FCNTL, *args], env=env, text=True, **popen
    )


@pytest.mark.slow
def test_without_fcntl_a_purge_commits_and_two_concurrent_runs_still_serialise(
    tmp_path: Path, make_cf: MakeCf, request: pytest.FixtureRequest
) -> None:
    """The lock falls back to filelock's soft lock; a second run waits for the first, re-plans
    against the manifest the first committed, and has nothing left to send."""
    server = hold_first_purge(make_cf, request)
    cf, first_purge_held, release = server.cf, server.held, server.release
    site = tmp_path / "site"
    manifest = tmp_path / "state" / "manifest.json"
    write_files(site, {"index.html": "home v1", "guide/index.html": "guide v1"})
    env = subprocess_env(
        CLOUDFLARE_API_TOKEN=TOKEN, CLOUDFLARE_ZONE_ID=ZONE_ID, CLOUDFLARE_API_BASE=cf.api_base
    )
    args = ["purge", str(site), "--site-url", SITE, "--manifest", str(manifest)]
    args += ["--strategy", "files"]

    baseline = run_without_fcntl(args, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = baseline.communicate(timeout=60)
    assert baseline.returncode == 0, err
    assert "only soft file lock is available" in err  # fcntl really was missing
    assert "baseline recorded" in err and cf.purges == []

    write_files(site, {"guide/index.html": "guide v2"})
    first = run_without_fcntl(args, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert first_purge_held.wait(60), "the first run sent no purge"
    second = run_without_fcntl(args, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert second.stderr is not None
    second_err: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = second.stderr.readline()
        if not line:
            break  # the second run ended without waiting for the lock
        second_err.append(line)
        if "another run holds the lock" in line:
            break
    assert any("another run holds the lock" in line for line in second_err), second_err
    assert len(cf.purges) == 1  # the second run, waiting, has sent nothing
    release.set()
    _, first_err = first.communicate(timeout=60)
    _, rest = second.communicate(timeout=60)
    second_err.append(rest)

    assert first.returncode == 0, first_err
    assert second.returncode == 0, "".join(second_err)
    assert "purge complete" in first_err
    assert "nothing to purge" in "".join(second_err)
    purged = [item for record in cf.purges for item in record.items]
    assert sorted(purged) == [SITE + "guide/", SITE + "guide/index.html"]
    committed = json.loads(manifest.read_bytes())["files"]
    assert committed == build_manifest(site, SITE).files
    assert not manifest.with_name("manifest.json.lock").exists()  # a soft lock is removed
