"""Import cost of the plugin: `python -c "import mkdocs_cfpurge.plugin"` against
`python -c "import mkdocs.plugins"` (what MkDocs imports anyway before loading any plugin).

Fresh interpreters, alternating (ABAB...), `--runs` of each (>= 10); median wall times, and the
ratio plugin / mkdocs.plugins. `python -c pass` is timed too, for the interpreter's own start, and
`import mkdocs.plugins, mkdocs.config.defaults`: what `mkdocs build` has already imported when it
loads a plugin (markdown, jinja2, pathspec...), so plugin minus it is the plugin's own cost.
Then, in one more interpreter: which heavy modules `import mkdocs_cfpurge.plugin` loaded. httpx
must NOT be among them (it loads only when a purge really runs); if it is, the `-X importtime`
tree names the module of this package that imports it at top level. pydantic is loaded: the
options model validates mkdocs.yml's values (one declaration for every front end), and its
import is part of the cost measured here.
Target: httpx not loaded by the plugin import. Bytecode is cached for every child
in a temp folder (see _common.bytecode_env), as it is for an installed package.

    python benchmarks/import_cost.py [--runs 15] [--quick]
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import _common
from _common import header, median, parser, table, temp_dir, timed, verdict, write_results

HEAVY = ("httpx", "httpcore", "anyio", "pydantic", "pydantic_core", "jsonschema", "watchdog")
PLUGIN = "import mkdocs_cfpurge.plugin"
ENV: dict[str, str] = {}  # the children's environment: bytecode cached in a temp folder
MKDOCS = "import mkdocs.plugins"
# What `mkdocs build` has imported by the time it loads a plugin (its config schema).
BUILD = "import mkdocs.plugins, mkdocs.config.defaults"
PROBE = (
    "import sys, json, mkdocs_cfpurge.plugin\n"
    f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))\n"
    "print(json.dumps(sorted(m for m in sys.modules if m.startswith('mkdocs_cfpurge'))))"
)


def run(code: str) -> float:
    seconds, done = timed(
        lambda: subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=ENV
        )
    )
    if done.returncode != 0:
        raise SystemExit(f"python -c {code!r} failed:\n{done.stderr}")
    return float(seconds)


def importers(module: str) -> list[str]:
    """Import chains from `module` up to the first module of this package (-X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PLUGIN],
        capture_output=True,
        text=True,
        env=ENV,
    )
    # Lines: "import time: self | cumulative | <indent>name"; a parent follows its children.
    stack: list[tuple[int, str]] = []
    found: list[str] = []
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("import time:") and "|" in ln]
    for line in reversed(lines):
        name_part = line.split("|")[-1]
        depth = (len(name_part) - len(name_part.lstrip())) // 2
        name = name_part.strip()
        while stack and stack[-1][0] >= depth:
            stack.pop()
        stack.append((depth, name))
        if name == module:
            chain = [n for _, n in reversed(stack)]  # the module first, then its importers
            ours = [i for i, n in enumerate(chain) if n.startswith("mkdocs_cfpurge")]
            if ours:
                found.append(" <- ".join(chain[: ours[0] + 1]))
    return sorted(set(found))


def top_imports(n: int = 8) -> list[tuple[str, float]]:
    """The slowest modules (self time) under `import mkdocs_cfpurge.plugin`, outside mkdocs."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"{MKDOCS}; {PLUGIN}"],
        capture_output=True,
        text=True,
        env=ENV,
    )
    out: list[tuple[str, float]] = []
    seen_plugins = False
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.split("|")
        try:
            self_us = float(parts[0].split(":")[1])
        except ValueError:
            continue
        name = parts[-1].strip()
        if name == "mkdocs.plugins":
            seen_plugins = True
            continue
        if seen_plugins:
            out.append((name, self_us / 1000))
    return sorted(out, key=lambda item: -item[1])[:n]


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=None, help="runs of each command (>= 10)")
    args = p.parse_args(argv)
    with temp_dir("import") as tmp:
        ENV.clear()
        ENV.update(_common.bytecode_env(tmp))
        return measure(args)


def measure(args: Any) -> int:
    runs = args.runs or (5 if args.quick else 15)
    header("import_cost", f"{PLUGIN!r} vs {MKDOCS!r}, {runs} alternating runs each")
    for code in ("pass", MKDOCS, BUILD, PLUGIN):  # warm the OS caches and the bytecode caches
        run(code)
    times: dict[str, list[float]] = {"pass": [], MKDOCS: [], BUILD: [], PLUGIN: []}
    for i in range(runs):
        order = [MKDOCS, PLUGIN] if i % 2 == 0 else [PLUGIN, MKDOCS]
        for code in [*order, BUILD, "pass"]:
            times[code].append(run(code))
    med = {code: median(values) for code, values in times.items()}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=ENV)
    import json

    lines = done.stdout.splitlines()
    loaded: dict[str, bool] = json.loads(lines[0])
    ours: list[str] = json.loads(lines[1])
    bad = [m for m in ("httpx",) if loaded.get(m)]
    met = not bad
    rows: list[list[Any]] = [
        ["python -c pass", med["pass"], min(times["pass"]), med["pass"] / med[MKDOCS], ""],
        [MKDOCS + " (baseline)", med[MKDOCS], min(times[MKDOCS]), 1.0, ""],
        [BUILD, med[BUILD], min(times[BUILD]), med[BUILD] / med[MKDOCS], ""],
        [PLUGIN, med[PLUGIN], min(times[PLUGIN]), med[PLUGIN] / med[MKDOCS], verdict(met)],
    ]
    print(
        table(
            f"\nimport cost (median of {runs} fresh interpreters; ratio = / {MKDOCS}; target: "
            "httpx not loaded)",
            ["command", "median s", "min s", "ratio", "target"],
            rows,
        )
    )
    extra = med[PLUGIN] - med[MKDOCS]
    own = med[PLUGIN] - med[BUILD]
    print(
        f"the plugin adds {extra * 1000:.0f} ms over {MKDOCS}, {own * 1000:.0f} ms over what "
        f"a build has imported anyway ({(med[PLUGIN] - med['pass']) * 1000:.0f} ms over a bare "
        "interpreter)"
    )
    print(
        "sys.modules after the plugin import: "
        + ", ".join(f"{m} {'LOADED' if v else 'not loaded'}" for m, v in loaded.items())
    )
    print(f"{len(ours)} mkdocs_cfpurge modules loaded: {', '.join(ours)}")
    for module in bad:
        chains = importers(module)
        print(f"{module} is imported at top level via: " + ("; ".join(chains) or "(unknown)"))
    slow = top_imports()
    print(
        "slowest imports after mkdocs.plugins (self ms): "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in slow)
    )
    write_results(
        args.json,
        "import_cost",
        {
            "target": "httpx not loaded by `import mkdocs_cfpurge.plugin`",
            "met": met,
            "figure": f"ratio {med[PLUGIN] / med[MKDOCS]:.2f} (+{extra * 1000:.0f} ms; "
            f"+{own * 1000:.0f} ms inside a build); "
            + ", ".join(
                f"{m} {'loaded' if loaded[m] else 'not loaded'}" for m in ("httpx", "pydantic")
            ),
            "median_s": med,
            "loaded": loaded,
            "modules": ours,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
