"""The layers, as the README draws them, held by the imports themselves.

Data flows one way: built files → manifest (build/) → changes, URLs, plan (plan/) → Cloudflare
client (cloudflare/) → commit (state); one use case (pipeline) runs it, and the front ends (the
MkDocs plugin, the CLI, the watcher, the Sphinx extension) only gather inputs and call it.
"""

from __future__ import annotations

import pytest

from tests.helpers import package_imports

FRONT_ENDS = {"cli", "plugin", "config", "sphinx", "watch", "__main__"}
MKDOCS_ADAPTERS = {"plugin", "config"}  # MkDocs 2.0 drops plugins: nothing else may need it
MODULES = package_imports()


def ours(imported: set[str]) -> set[str]:
    """The package's modules among `imported`, as names below the package."""
    return {
        name.removeprefix("mkdocs_cfpurge.")
        for name in imported
        if name.startswith("mkdocs_cfpurge.")
    }


def reaches(imported: set[str], layer: str) -> bool:
    return any(name == layer or name.startswith(layer + ".") for name in ours(imported))


def test_the_scan_sees_the_package() -> None:
    assert {"pipeline", "plugin", "cli", "build.manifest", "plan.planner"} <= MODULES.keys()
    assert reaches(MODULES["plugin"], "pipeline")  # the check below can fail


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_mkdocs_adapters_import_mkdocs(module: str) -> None:
    uses = {name for name in MODULES[module] if name == "mkdocs" or name.startswith("mkdocs.")}
    assert not uses or module in MKDOCS_ADAPTERS, f"{module} imports {sorted(uses)}"


@pytest.mark.parametrize("module", sorted(set(MODULES) - FRONT_ENDS))
def test_nothing_below_the_front_ends_imports_one(module: str) -> None:
    wrong = {front for front in FRONT_ENDS if reaches(MODULES[module], front)}
    assert not wrong, f"{module} imports the front end(s) {sorted(wrong)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("build")))
def test_the_build_layer_knows_nothing_later(module: str) -> None:
    later = ["plan", "cloudflare", "deploy", "pipeline", "state", "guard", "freshness"]
    wrong = [layer for layer in later if reaches(MODULES[module], layer)]
    assert not wrong, f"{module} imports {wrong}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("plan")))
def test_planning_sends_nothing_and_commits_nothing(module: str) -> None:
    later = ["cloudflare.client", "deploy", "pipeline", "state", "guard", "http"]
    wrong = [layer for layer in later if reaches(MODULES[module], layer)]
    assert not wrong, f"{module} imports {wrong}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("cloudflare")))
def test_the_client_knows_nothing_of_deploys_or_state(module: str) -> None:
    later = ["deploy", "pipeline", "state", "guard", "baselines", "freshness"]
    wrong = [layer for layer in later if reaches(MODULES[module], layer)]
    assert not wrong, f"{module} imports {wrong}"
