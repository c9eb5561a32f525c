"""Helpers shared by the benchmark scripts: tables, timing, temp dirs, machine facts, results.

Every benchmark prints its figures next to a baseline measured in the same run (the machine is
shared and noisy: absolute times drift, ratios much less). No benchmark asserts on wall-clock
time; each one reports whether its target was met.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
TMP_PREFIX = "cfpurge-bench-"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run of seconds")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    return p


def temp_base(need_bytes: int = 0) -> str | None:
    """Where generated data goes: $CFPURGE_BENCH_TMP, else /dev/shm (RAM: creating and deleting
    tens of thousands of files on the VM's disk takes minutes), else the system temp dir."""
    chosen = os.environ.get("CFPURGE_BENCH_TMP")
    if chosen:
        return chosen
    shm = "/dev/shm"
    try:
        if os.access(shm, os.W_OK):
            stats = os.statvfs(shm)
            if stats.f_bavail * stats.f_frsize > need_bytes * 2 + (512 << 20):
                return shm
    except OSError:
        pass
    return None


@contextmanager
def temp_dir(name: str, need_bytes: int = 0) -> Iterator[Path]:
    """A fresh temp folder (see `temp_base`), removed afterwards (also on Ctrl-C)."""
    path = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{name}-", dir=temp_base(need_bytes)))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bytecode_env(cache_dir: Path) -> dict[str, str]:
    """The environment for child interpreters, with bytecode cached under `cache_dir`.

    This environment sets PYTHONDONTWRITEBYTECODE=1: every child would compile this package's
    modules again, while mkdocs' were compiled at install, as an installed mkdocs-cfpurge's
    would be. A cache prefix in the benchmark's temp folder puts both on the same footing and
    leaves no __pycache__ in the project.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    return env


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.{digits}f}" if abs(value) >= 0.01 else f"{value:.2g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with right-aligned numbers."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [
        max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
        for i, h in enumerate(headers)
    ]

    def line(values: Sequence[str], numeric: Sequence[bool]) -> str:
        return "  ".join(
            v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)
        ).rstrip()

    numeric = [
        all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows)
        for i in range(len(headers))
    ]
    out = [title, line([str(h) for h in headers], numeric)]
    out.append("  ".join("-" * w for w in widths))
    out += [line(r, numeric) for r in cells]
    return "\n".join(out)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for raw in Path("/proc/cpuinfo").read_text().splitlines():
            if raw.startswith("model name"):
                model = raw.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def write_results(path: Path | None, name: str, results: dict[str, Any]) -> None:
    """Each script's summary, for run.py's final table (and the README)."""
    if path is not None:
        path.write_text(json.dumps({"benchmark": name, **results}, indent=1, default=str))


def header(name: str, description: str) -> None:
    print(f"\n=== {name}: {description}")
    sys.stdout.flush()
