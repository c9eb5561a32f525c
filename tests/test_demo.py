"""The README's first command, `example-site/demo.py`: it runs end to end on this checkout,
colours only a terminal (never with NO_COLOR), and keeps nothing it says it deletes."""

from __future__ import annotations

import importlib.util
import io
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import subprocess_env

DEMO = Path(__file__).resolve().parent.parent / "example-site" / "demo.py"


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cfpurge_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "env", "coloured"),
    [
        (Terminal(), {}, True),
        (Terminal(), {"NO_COLOR": ""}, True),  # set but empty: no-color.org says colour
        (Terminal(), {"NO_COLOR": "1"}, False),
        (io.StringIO(), {}, False),  # a pipe or a file
    ],
)
def test_colour_only_on_a_terminal_without_no_color(
    stream: io.StringIO, env: dict[str, str], coloured: bool
) -> None:
    assert load_demo().use_colour(stream, env) is coloured


@pytest.mark.slow
def test_the_demo_proves_the_changed_page_fresh_and_leaves_nothing_behind() -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO)],
        env=subprocess_env(NO_COLOR=None),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "\x1b" not in output  # piped: no escape codes
    assert re.search(r"guide/options/ -> 200 CF-Cache-Status: MISS fresh", output), output
    assert "how-it-works/ -> 200 CF-Cache-Status: HIT" in output.rsplit("after the purge", 1)[1]
    assert "deleted when the demo ends" in output
    work = re.search(r"Building documentation to directory: (\S+)/site", output)
    assert work, output
    assert not Path(work.group(1)).exists()  # the temporary copy is gone, as the demo says
