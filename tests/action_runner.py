"""A small local runner for this repository's composite action (action.yml), for the tests.

It does what GitHub's runner does for the parts the action uses, and refuses the rest: each step
is a `run:` script with `shell: bash`, run as GitHub runs it (`bash --noprofile --norc -eo
pipefail`), after substituting exactly these expressions: `${{ inputs.NAME }}`,
`${{ github.action_path }}`, `${{ github.workspace }}`, `${{ runner.temp }}`, `${{ env.NAME }}`
and `${{ steps.ID.outputs.NAME }}`. Any other expression, key or shell is an error, so the
action cannot come to depend on something only GitHub provides. Step outputs are read from
`$GITHUB_OUTPUT` (`name=value` and `name<<DELIMITER` forms), the job summary is the file
`$GITHUB_STEP_SUMMARY` names, and the action's outputs are resolved from the steps' outputs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
ALLOWED = re.compile(
    r"inputs\.(?P<input>[A-Za-z0-9_-]+)"
    r"|github\.(?P<github>action_path|workspace)"
    r"|runner\.(?P<runner>temp)"
    r"|env\.(?P<env>[A-Za-z_][A-Za-z0-9_]*)"
    r"|steps\.(?P<step>[A-Za-z0-9_-]+)\.outputs\.(?P<output>[A-Za-z0-9_-]+)"
)
STEP_KEYS = frozenset({"name", "id", "shell", "run", "env", "working-directory"})
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


class ActionError(AssertionError):
    """The action uses something this runner (and the contract of issue 11) does not allow."""


@dataclass
class StepRun:
    name: str
    returncode: int
    output: str  # stdout and stderr, interleaved


@dataclass
class ActionRun:
    steps: list[StepRun] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""

    @property
    def ok(self) -> bool:
        return all(step.returncode == 0 for step in self.steps)

    @property
    def log(self) -> str:
        return "\n".join(f"## {step.name}\n{step.output}" for step in self.steps)


def load_action(path: Path) -> dict[str, Any]:
    action: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if action.get("runs", {}).get("using") != "composite":
        raise ActionError(f"{path}: not a composite action")
    return action


def expressions(action: Mapping[str, Any]) -> list[str]:
    """Every `${{ ... }}` expression in the action, as written inside the braces."""
    return EXPRESSION.findall(yaml.safe_dump(dict(action), width=10**6))


def parse_outputs(text: str) -> dict[str, str]:
    """`$GITHUB_OUTPUT`'s content: `name=value` lines and `name<<DELIMITER` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            else:
                raise ActionError(f"output {name}: no closing {delimiter!r}")
            outputs[name] = "\n".join(block)
        elif line:
            name, sep, value = line.partition("=")
            if not sep:
                raise ActionError(f"not an output line: {line!r}")
            outputs[name] = value
    return outputs


class ActionRunner:
    """Runs the composite action at `action_path` (its action.yml) in `workspace`.

    `env` is the job's environment (what `${{ env.* }}` reads, and the base every step's
    process starts from); `temp` is `runner.temp`.
    """

    def __init__(
        self, action_path: Path, *, workspace: Path, temp: Path, env: Mapping[str, str]
    ) -> None:
        self.action_path = action_path
        self.action = load_action(action_path / "action.yml")
        self.workspace = workspace
        self.temp = temp
        self.env = dict(env)

    def run(self, inputs: Mapping[str, str], *, timeout: float = 120.0) -> ActionRun:
        declared: dict[str, Any] = self.action.get("inputs", {})
        unknown = set(inputs) - set(declared)
        if unknown:
            raise ActionError(f"inputs not declared by the action: {sorted(unknown)}")
        values = {}
        for name, spec in declared.items():
            if name in inputs:
                values[name] = inputs[name]
            elif spec.get("required"):
                raise ActionError(f"required input {name!r} not given")
            else:
                values[name] = str(spec.get("default", ""))
        result = ActionRun()
        step_outputs: dict[str, dict[str, str]] = {}
        for number, step in enumerate(self.action["runs"]["steps"], 1):
            name = str(step.get("name", f"step {number}"))
            extra = set(step) - STEP_KEYS
            if extra or step.get("shell") != "bash" or "run" not in step:
                raise ActionError(f"step {name!r}: only `run:` steps with `shell: bash` ({extra})")
            scope = {"inputs": values, "steps": step_outputs}
            done = self._step(step, name, number, scope, timeout, result)
            result.steps.append(done)
            if done.returncode != 0:
                return result
        for name, spec in self.action.get("outputs", {}).items():
            result.outputs[name] = self.substitute(str(spec["value"]), values, step_outputs)
        return result

    def _step(
        self,
        step: Mapping[str, Any],
        name: str,
        number: int,
        scope: Mapping[str, Any],
        timeout: float,
        result: ActionRun,
    ) -> StepRun:
        inputs, outputs = scope["inputs"], scope["steps"]
        files = self.temp / "_runner" / str(number)
        files.mkdir(parents=True)
        output_file, summary_file, script = (files / n for n in ("output", "summary", "run.sh"))
        output_file.touch()
        summary_file.touch()
        script.write_text(self.substitute(str(step["run"]), inputs, outputs), encoding="utf-8")
        env = {
            **self.env,
            "GITHUB_ACTION_PATH": str(self.action_path),
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_STEP_SUMMARY": str(summary_file),
        }
        for key, value in (step.get("env") or {}).items():
            env[str(key)] = self.substitute(str(value), inputs, outputs)
        cwd = self.substitute(str(step.get("working-directory", self.workspace)), inputs, outputs)
        done = subprocess.run(
            [*BASH, str(script)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        if "id" in step:
            outputs[str(step["id"])] = parse_outputs(output_file.read_text(encoding="utf-8"))
        result.summary += summary_file.read_text(encoding="utf-8")
        return StepRun(name, done.returncode, done.stdout)

    def substitute(
        self, text: str, inputs: Mapping[str, str], steps: Mapping[str, Mapping[str, str]]
    ) -> str:
        """`text` with every expression replaced by its value; any other expression is an
        error, and so is an input the action does not declare."""

        def value(match: re.Match[str]) -> str:
            found = ALLOWED.fullmatch(match.group(1))
            if found is None:
                raise ActionError(f"expression not allowed: {match.group(0)}")
            if found["input"]:
                if found["input"] not in inputs:
                    raise ActionError(f"undeclared input in {match.group(0)}")
                return inputs[found["input"]]
            if found["github"]:
                where = self.action_path if found["github"] == "action_path" else self.workspace
                return str(where)
            if found["runner"]:
                return str(self.temp)
            if found["env"]:
                return self.env.get(found["env"], "")
            return steps.get(found["step"], {}).get(found["output"], "")

        return EXPRESSION.sub(value, text)


def action_python(root: Path, deps_from: Path) -> Path:
    """A virtualenv at `root` whose own site-packages is empty but which sees the packages of
    the one at `deps_from` (pip, hatchling, mkdocs-cfpurge's dependencies) through a .pth file:
    the action's `pip install` then really builds and installs mkdocs-cfpurge from the action's
    folder into it, offline, without touching the test environment. Returns its bin folder."""
    venv = [sys.executable, "-m", "venv", "--without-pip", str(root)]
    subprocess.run(venv, check=True, timeout=60)
    python = root / "bin" / "python3"
    query = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    own = subprocess.run(
        [str(python), "-c", query], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    theirs = subprocess.run(
        [str(deps_from / "bin" / "python3"), "-c", query],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    (Path(own) / "_test_dependencies.pth").write_text(theirs + "\n", encoding="utf-8")
    return root / "bin"


def offline_pip_env() -> dict[str, str]:
    """pip settings for the action's install step in the tests: the dependencies are there
    already (see `action_python`), and nothing is fetched."""
    return {
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip's inverted spelling: build without isolation
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
