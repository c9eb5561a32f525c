"""Run every benchmark, print every table, then one summary (figure, target, met or not).

Each benchmark runs in its own interpreter (peak-memory figures stay its own), with this
interpreter. 3-4 minutes on the shared 2-core machine (up to ~8 under heavy load); `--quick`
under a minute.

    python benchmarks/run.py [--quick] [--only hashing,pacing] [--readme]

`--readme` rewrites the figures section of benchmarks/README.md with this run's output.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import BENCH_DIR, ROOT, machine, md_table, parser, table

BENCHMARKS = ["hashing", "plugin_overhead", "planning", "pacing", "import_cost", "precision"]
START, END = "<!-- figures:start -->", "<!-- figures:end -->"


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--only", default=None, help="comma-separated benchmark names")
    p.add_argument("--readme", action="store_true", help="write the figures into README.md")
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else BENCHMARKS
    info = machine()
    print(
        f"machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, {info['platform']}"
    )
    outputs: dict[str, str] = {}
    summary: list[dict[str, object]] = []
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cfpurge-bench-run-") as tmp:
        for name in names:
            result_file = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(BENCH_DIR / f"{name}.py"), "--json", str(result_file)]
            if args.quick:
                cmd.append("--quick")
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=BENCH_DIR.parent)
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:  # stream it: some benchmarks take minutes
                sys.stdout.write(line)
                sys.stdout.flush()
                lines.append(line)
            code = proc.wait()
            seconds = time.perf_counter() - t0
            outputs[name] = "".join(lines)
            if code != 0 or not result_file.exists():
                summary.append(
                    {
                        "benchmark": name,
                        "figure": f"FAILED (exit {code})",
                        "target": "",
                        "met": False,
                        "seconds": seconds,
                    }
                )
                continue
            data = json.loads(result_file.read_text())
            summary.append({**data, "benchmark": name, "seconds": seconds})
    total = time.perf_counter() - started
    load = (load_before, os.getloadavg()[0])
    rows = [
        [s["benchmark"], s["figure"], s["target"], "MET" if s["met"] else "MISSED", s["seconds"]]
        for s in summary
    ]
    headers = ["benchmark", "figure", "target", "met", "run s"]
    print(table(f"\n=== summary ({total:.0f} s{', quick' if args.quick else ''})", headers, rows))
    print(f"(1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end)")
    if args.quick:
        print(
            "(--quick: sizes too small for the targets, which are set for the default sizes; "
            "the verdicts above are only indicative)"
        )
    if args.readme:
        write_readme(info, outputs, total, load, args.quick, headers, rows)
    if args.quick:  # a smoke run: it fails only when a benchmark could not run
        return 0 if all("FAILED" not in str(s["figure"]) for s in summary) else 1
    return 0 if all(s["met"] for s in summary) else 1


def code_state() -> str:
    """The commit measured, and which package files differed from it (read-only git calls)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "mkdocs_cfpurge"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return "an unknown commit"
    changed = sorted(line[3:] for line in dirty if line.strip())
    if not head:
        return "an unknown commit"
    if not changed:
        return f"commit {head}"
    return f"commit {head} with uncommitted changes to {', '.join(changed)}"


def write_readme(
    info: dict[str, str],
    outputs: dict[str, str],
    total: float,
    load: tuple[float, float],
    quick: bool,
    headers: list[str],
    rows: list[list[object]],
) -> None:
    readme = BENCH_DIR / "README.md"
    text = readme.read_text()
    today = datetime.date.today().isoformat()
    parts = [
        START,
        f"Measured {today} with `python benchmarks/run.py{' --quick' if quick else ''}` "
        f"({total:.0f} s), code at {code_state()}, on: {info['nproc']} CPUs (`nproc`), "
        f"{info['cpu']} "
        f"(/proc/cpuinfo), Python {info['python']}, {info['platform']}. The machine is shared "
        f"with other jobs (1-minute load average {load[0]:.1f} at the start of the run, "
        f"{load[1]:.1f} at the end; 1 to 8 while the benchmarks were written): absolute times "
        "drift between runs, the ratios much less.",
        "",
        md_table(headers, rows),
        "",
    ]
    for name, out in outputs.items():
        parts += [f"#### {name}", "", "```", out.strip("\n"), "```", ""]
    parts.append(END)
    start, end = text.index(START), text.index(END) + len(END)
    readme.write_text(text[:start] + "\n".join(parts) + text[end:])
    print(f"figures written to {readme}")


if __name__ == "__main__":
    sys.exit(main())
