"""What every test shares: git identities, no stray state, the logger as it was, `cf`, and the
pages origin a deploy pushes to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.localcf.origin import BranchOrigin
from mkdocs_cfpurge.log import log
from mkdocs_cfpurge.redact import forget_all
from tests.cfschema import load_purge_body_validator
from tests.helpers import TOKEN, ZONE_ID, MakeCf, bare_repository


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Real git runs in tests (gh-deploy into bare repositories): give it an identity and keep the
    # developer's own git and Cloudflare settings out.
    for name in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(name, "cfpurge tests")
    for name in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(name, "tests@localhost")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path_factory.getbasetemp() / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in (
        "CLOUDFLARE_API_TOKEN",
        "CLOUDFLARE_ZONE_ID",
        "CLOUDFLARE_EMAIL",
        "CLOUDFLARE_API_KEY",
        "CLOUDFLARE_API_BASE",
        "CFPURGE_DRY_RUN",
        "GITHUB_STEP_SUMMARY",
    ):
        monkeypatch.delenv(name, raising=False)
    # The CLI's default state and plan files are relative to where it runs: never in the tree.
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _restore_logger() -> Iterator[None]:
    # The CLI gives the pipeline's logger a handler on the stderr of the moment: put the old
    # ones back so later tests (and MkDocs builds) log as before.
    saved = (list(log.handlers), log.level, log.propagate)
    yield
    log.handlers[:], log.level, log.propagate = saved[0], saved[1], saved[2]


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    """An empty bare repository: the remote a test's docs project pushes to."""
    return bare_repository(tmp_path / "remote.git")


@pytest.fixture
def pages(bare: Path, tmp_path: Path) -> Iterator[BranchOrigin]:
    """GitHub Pages in front of `bare`: serves its gh-pages branch a moment after each push."""
    with BranchOrigin(bare, tmp_path / "published") as origin:
        yield origin


@pytest.fixture
def make_cf() -> Iterator[MakeCf]:
    """Start a LocalCloudflare: zone ZONE_ID (example.com), token TOKEN, no rate limits, unless
    the keyword arguments say otherwise. Each one stops after the test; then every purge body it
    received must satisfy Cloudflare's schema (strict), unless made with `check_bodies=False`."""
    started: list[tuple[LocalCloudflare, bool]] = []

    def make(*, check_bodies: bool = True, **options: Any) -> LocalCloudflare:
        server = LocalCloudflare(
            **{"zone_id": ZONE_ID, "api_token": TOKEN, "rate_limit": False, **options}
        )
        started.append((server.start(), check_bodies))
        return server

    yield make
    for server, _ in started:
        server.stop()
    validate_body = load_purge_body_validator()
    for server, check_bodies in started:
        for request in server.requests if check_bodies else ():
            if request["method"] == "POST":
                validate_body(request["body"])


@pytest.fixture
def cf_options() -> dict[str, Any]:
    """`make_cf` options for `cf`. A module overrides this fixture for a server of its own kind
    (an origin, its own token), and may depend on other fixtures to do it."""
    return {}


@pytest.fixture
def cf(make_cf: MakeCf, cf_options: dict[str, Any]) -> LocalCloudflare:
    """The local Cloudflare API (and edge, given an origin) most tests purge through."""
    return make_cf(**cf_options)


@pytest.fixture
def cf_env(cf: LocalCloudflare, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the CLI's environment at `cf`: its token, its zone and its API base."""
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_ZONE_ID", ZONE_ID)
    monkeypatch.setenv("CLOUDFLARE_API_BASE", cf.api_base)


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    # Credentials register their secrets for redaction process-wide; a secret of one test (say a
    # key sharing six characters with the zone id) must not mask the text another test checks.
    yield
    forget_all()
