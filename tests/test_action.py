"""Issue 11: the GitHub Action (action.yml), run by the tests' local runner (action_runner.py).

The contract: a composite action whose steps install the package with pip from
`${{ github.action_path }}` and run the CLI, with exactly the inputs and outputs the issue names
and only the expressions it lists. Then the `actions/deploy-pages` recipe as two jobs: the build
job (`mkdocs build` with the plugin, in a fresh copy) uploads `site/`; the deploy job downloads
it into an empty workspace, the static host publishes it a second later, and the Action purges
exactly what changed on the served site, writing the plan to the job summary.

The install step really runs: pip builds and installs mkdocs-cfpurge from the repository into a
virtualenv of its own, offline (`--no-index --no-deps --no-build-isolation` through pip's
variables), the dependencies taken from the test environment (see `action_python`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mkdocs_cfpurge.localcf.origin import FolderPublisher
from tests.action_runner import (
    ALLOWED,
    ActionError,
    ActionRun,
    ActionRunner,
    action_python,
    expressions,
    load_action,
    offline_pip_env,
)
from tests.deploys import EDIT, FOLDER, MARKER, PAGES, SITE, World, write_mkdocs_project
from tests.helpers import BIN, TOKEN, ZONE_ID, MakeCf, subprocess_env, write_files

ROOT = Path(__file__).resolve().parent.parent
INPUTS = {
    "site-dir",
    "site-url",
    "origin-url",
    "zone-id",
    "api-token",
    "api-base",
    "dry-run",
    "wait-for-origin",
    "origin-timeout",
}


def test_the_action_declares_exactly_the_inputs_outputs_and_expressions_of_the_issue() -> None:
    action = load_action(ROOT / "action.yml")
    assert set(action["inputs"]) == INPUTS
    assert action["inputs"]["wait-for-origin"]["default"] == "true"
    assert {name for name, spec in action["inputs"].items() if spec.get("required")} == {
        "site-url",
        "zone-id",
        "api-token",
    }
    assert set(action["outputs"]) == {"requests", "plan"}
    found = expressions(action)
    assert found and all(ALLOWED.fullmatch(text) for text in found), found
    install, purge = action["runs"]["steps"]
    assert "pip install" in install["run"] and install["env"] == {
        "ACTION_PATH": "${{ github.action_path }}"
    }
    # Every input reaches the purge step through its environment, none pasted into the script.
    assert "${{" not in purge["run"]
    assert {text.removeprefix("inputs.") for text in found if text.startswith("inputs.")} == INPUTS


def test_the_runner_refuses_what_the_action_may_not_use(tmp_path: Path) -> None:
    """Control for the test above and the runs below: the runner is strict."""
    action = {
        "name": "x",
        "runs": {
            "using": "composite",
            "steps": [{"shell": "bash", "run": "echo ${{ secrets.CLOUDFLARE_API_TOKEN }}"}],
        },
    }
    write_files(tmp_path / "action", {"action.yml": yaml.safe_dump(action)})
    runner = ActionRunner(tmp_path / "action", workspace=tmp_path, temp=tmp_path, env={})
    with pytest.raises(ActionError, match="expression not allowed"):
        runner.run({})
    with pytest.raises(ActionError, match="not declared"):
        runner.run({"api-key": "x"})


@pytest.fixture(scope="module")
def action_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return action_python(tmp_path_factory.mktemp("action") / "venv", BIN.parent)


@pytest.fixture
def world(tmp_path: Path, make_cf: MakeCf) -> Iterator[World]:
    upload = tmp_path / "upload"
    write_files(upload, {f"{FOLDER}/index.html": "<h1>Before this tool</h1>\n"})
    with FolderPublisher(upload, tmp_path / "exports", delay=1.0) as origin:
        world = World(tmp_path, make_cf(origin=origin.url), origin, tmp_path / "sources")
        write_mkdocs_project(world.sources, PAGES, plugin={"origin_url": world.origin_url})
        yield world


def build_job(world: World, name: str) -> Path:
    """The build job: a fresh checkout, `mkdocs build` with the plugin; `site/` is uploaded."""
    work = world.fresh_copy(name)
    result = world.mkdocs_build(work)
    assert result.returncode == 0, result.stdout
    artifact = world.tmp / f"{name}-artifact"
    shutil.copytree(work / "site", artifact)
    return artifact


def deploy_job(
    world: World, artifact: Path, action_bin: Path, name: str, **inputs: str
) -> ActionRun:
    """The deploy job: an empty workspace, the artifact downloaded into `site/`, deployed, then
    the Action."""
    workspace = world.tmp / name
    shutil.copytree(artifact, workspace / "site")
    world.runs.append(workspace)
    world.deploy(workspace / "site")
    env = subprocess_env(**offline_pip_env())
    env["PATH"] = f"{action_bin}:{env['PATH']}"
    temp = world.tmp / f"{name}-temp"
    temp.mkdir()
    runner = ActionRunner(ROOT, workspace=workspace, temp=temp, env=env)
    given = {
        "site-url": SITE,
        "origin-url": world.origin_url,
        "zone-id": ZONE_ID,
        "api-token": TOKEN,
        "api-base": world.cf.api_base,
        **inputs,
    }
    return runner.run(given)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_action_purges_exactly_what_the_deploy_changed(world: World, action_bin: Path) -> None:
    first = deploy_job(world, build_job(world, "build-1"), action_bin, "deploy-1")
    assert first.ok, first.log
    assert first.outputs["requests"] == "0"
    assert world.cf.purges == []
    assert "first deploy" in first.log

    installed = subprocess.run(
        [
            str(action_bin / "python3"),
            "-c",
            "import mkdocs_cfpurge; print(mkdocs_cfpurge.__file__)",
        ],
        cwd=world.tmp,  # not this repository, whose package `python -c` would import first
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert installed.startswith(str(action_bin.parent)), installed  # pip installed it there

    world.edit(EDIT)
    artifact = build_job(world, "build-2")
    before, start = world.served(), len(world.cf.purges)
    world.warm(artifact)
    second = deploy_job(world, artifact, action_bin, "deploy-2")
    assert second.ok, second.log
    assert world.origin.published is not None
    check = world.check_purge(before, world.origin.published, start)
    assert not check.collateral
    assert second.outputs["requests"] == str(check.requests) == "1"
    plan = json.loads(Path(second.outputs["plan"]).read_bytes())
    assert plan["baseline"]["source"] == "live-marker"
    assert "### Cloudflare purge plan" in second.summary
    assert SITE + "guide/install/" in second.summary
    assert world.leaks(first.log, second.log, first.summary, second.summary) == []


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_action_in_a_dry_run_writes_the_summary_and_sends_nothing(
    world: World, action_bin: Path
) -> None:
    assert deploy_job(world, build_job(world, "build-1"), action_bin, "deploy-1").ok
    world.edit(EDIT)
    artifact = build_job(world, "build-2")
    requests = len(world.cf.requests)
    run = deploy_job(world, artifact, action_bin, "review", **{"dry-run": "true"})
    assert run.ok, run.log
    assert run.outputs["requests"] == "0"
    assert len(world.cf.requests) == requests
    assert "### Cloudflare purge plan (dry run)" in run.summary
    assert SITE + "guide/install/" in run.summary
    assert (artifact / MARKER).is_file()


@pytest.mark.slow
def test_a_bad_wait_for_origin_value_fails_the_step(world: World, action_bin: Path) -> None:
    run = deploy_job(
        world, build_job(world, "build-1"), action_bin, "deploy-1", **{"wait-for-origin": "yes"}
    )
    assert not run.ok
    assert run.steps[-1].returncode == 2
    assert "wait-for-origin must be true or false" in run.log
    assert world.cf.requests == []
