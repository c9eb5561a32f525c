"""Changes, URLs and plan for a synthetic 100k-file manifest with 10% of it changed.

The manifest models a big MkDocs site (use_directory_urls): `--files` paths spread over 40
sections x 25 sub-sections, each page `section/sub/page/index.html`, plus assets, sitemap and
search index. 10% differ in the new build: 8% modified (half of them in five whole sub-sections
that were rewritten, half scattered), 1% added, 1% deleted.

Each run of a step is a forked child (timed; its ru_maxrss is the whole process's peak while the
step runs, both manifests included), median of `--reps` (steps over 5 s run once), plus one run
under tracemalloc (peak of the step's own allocations). Steps:
- baseline: `load_manifest` of the old manifest (json.loads of the saved file and its checks);
- `diff` of the two manifests;
- `build_plan` with strategy `files` and `auto` (free plan, default budget, purge_everything
  allowed), and with `--prefixes` strategy `prefixes` (slow: quadratic);
- diff + build_plan, what a deploy runs (`pipeline.make_plan`), summed.
Target: diff + build_plan under 1 s and under 300 MB, for files and for auto.

    python benchmarks/planning.py [--files 100000] [--changed 0.10] [--reps 3] [--quick]
"""

from __future__ import annotations

import gc
import os
import pickle
import random
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import header, median, parser, table, temp_dir, timed, verdict, write_results

from mkdocs_cfpurge.build.manifest import Manifest, load_manifest
from mkdocs_cfpurge.plan.auto import Budget
from mkdocs_cfpurge.plan.changes import diff
from mkdocs_cfpurge.plan.planner import build_plan
from mkdocs_cfpurge.settings import Settings

TARGET_S = 1.0
TARGET_MB = 300.0
SITE_URL = "https://docs.example.com/"


def _hash(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def make_manifests(n_files: int, share: float, seed: int = 3) -> tuple[Manifest, Manifest]:
    rng = random.Random(seed)
    paths = ["index.html", "404.html", "sitemap.xml", "sitemap.xml.gz", "search/search_index.json"]
    paths += [
        f"assets/{kind}/file-{i:04}.{kind}"
        for kind in ("css", "js", "png")
        for i in range(min(300, n_files // 300))
    ]
    sections, subs = 40, 25
    folders = [f"guide-{s:02}/topic-{u:02}" for s in range(sections) for u in range(subs)]
    paths += [f"{folder}/index.html" for folder in folders]
    for i in range(max(0, n_files - len(paths))):
        paths.append(f"{folders[i % len(folders)]}/page-{i // len(folders):03}/index.html")
    paths = paths[:n_files]
    old = {p: _hash(rng) for p in paths}
    new = dict(old)
    n_changed = int(n_files * share)
    n_mod, n_add, n_del = n_changed * 8 // 10, n_changed // 10, n_changed // 10
    pages = [p for p in paths if p.endswith("/index.html")]
    rewritten = {folders[i] + "/" for i in (28, 175, 309, 504, 842)}
    clustered = [p for p in pages if p[:18] in rewritten][: n_mod // 2]
    rest = [p for p in pages if p[:18] not in rewritten]
    scattered = rng.sample(rest, n_mod - len(clustered))
    for p in clustered + scattered:
        new[p] = _hash(rng)
    touched = set(scattered)
    for p in rng.sample([p for p in rest if p not in touched], n_del):
        del new[p]
    for i in range(n_add):
        new[f"guide-{i % sections:02}/new-{i:05}/index.html"] = _hash(rng)
    for p in ("sitemap.xml", "sitemap.xml.gz", "search/search_index.json"):
        new[p] = _hash(rng)
    return Manifest(SITE_URL, old), Manifest(SITE_URL, new)


def settings_for(tmp: Path, strategy: str) -> Settings:
    return Settings.create(
        site_url=SITE_URL,
        manifest_path=tmp / "manifest.json",
        strategy=strategy,
        allow_purge_everything=True,
        env={},
    )


def in_child(fn: Callable[[], Any], trace: bool = False) -> dict[str, Any]:
    """Run `fn` in a forked child; return its time, ru_maxrss (MB) and tracemalloc peak (MB).

    The child's ru_maxrss counts the whole process (both manifests are in it): what a deploy
    would peak at. The parent froze its objects out of the GC first, so the child does not
    copy every page when its collector runs.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        out: dict[str, Any] = {}
        try:
            if trace:
                tracemalloc.start()
            start = time.perf_counter()
            result = fn()
            out["s"] = time.perf_counter() - start
            if trace:
                out["traced_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
                tracemalloc.stop()
            out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            out["result"] = describe(result)
        except BaseException as exc:
            out["error"] = float("nan")
            print(f"step failed in the child: {exc!r}", file=sys.stderr)
        os.write(write, pickle.dumps(out))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    answer: dict[str, Any] = pickle.loads(data)
    if "error" in answer:
        raise SystemExit("a step failed; see above")
    return answer


def describe(out: Any) -> str:
    if hasattr(out, "requests"):
        kinds: dict[str, int] = {}
        for body in out.requests:
            kind = next(iter(body))
            kinds[kind] = kinds.get(kind, 0) + 1
        return f"{len(out.changes)} changes; " + ", ".join(
            f"{v} {k}" for k, v in sorted(kinds.items())
        )
    if isinstance(out, list):
        return f"{len(out)} changes"
    if isinstance(out, Manifest):
        return f"{len(out.files)} files"
    return ""


SLOW = 5.0  # a step slower than this is timed once: its distance to the target dwarfs the noise


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=None, help="files in the manifest")
    p.add_argument("--changed", type=float, default=0.10, help="share of files that changed")
    p.add_argument("--reps", type=int, default=None)
    p.add_argument(
        "--prefixes",
        action="store_true",
        help="also time strategy prefixes (quadratic in the changed folders: minutes at 100k)",
    )
    args = p.parse_args(argv)
    n = args.files or (20_000 if args.quick else 100_000)
    reps = args.reps or (2 if args.quick else 3)
    header("planning", f"diff + plan of a {n:,}-file manifest, {args.changed:.0%} changed")
    gen_s, (old, new) = timed(lambda: make_manifests(n, args.changed))
    with temp_dir("planning") as tmp:
        old.save(tmp / "manifest.json")
        size_mb = (tmp / "manifest.json").stat().st_size / 1e6
        changes = diff(old.files, new.files)
        mapper = settings_for(tmp, "auto").mapper()
        budget = Budget("free", 60.0, 100, True)

        def plan(strategy: str) -> Callable[[], Any]:
            return lambda: build_plan(
                changes,
                mapper,
                strategy=strategy,
                old_files=old.files.keys(),
                new_files=new.files.keys(),
                budget=budget,
            )

        steps: list[tuple[str, Callable[[], Any]]] = [
            ("baseline: load_manifest (json)", lambda: load_manifest(tmp / "manifest.json")),
            ("diff", lambda: diff(old.files, new.files)),
            ("build_plan files", plan("files")),
            ("build_plan auto", plan("auto")),
        ]
        if args.prefixes:
            steps.append(("build_plan prefixes", plan("prefixes")))
        gc.collect()
        gc.freeze()
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        summary: dict[str, dict[str, Any]] = {}
        for name, fn in steps:
            runs = [in_child(fn)]
            fast = runs[0]["s"] < SLOW
            if fast:
                runs += [in_child(fn) for _ in range(reps - 1)]
            # tracemalloc slows a step down several times: a slow step keeps its maxrss only.
            traced = in_child(fn, trace=True)["traced_mb"] if fast else "(slow: skipped)"
            summary[name] = {
                "s": median([r["s"] for r in runs]),
                "runs": len(runs),
                "maxrss_mb": max(r["maxrss_mb"] for r in runs),
                "traced_mb": traced,
                "result": runs[0]["result"],
            }
            print(f"  {name}: {summary[name]['s']:.2f}s", flush=True)
    base = summary[steps[0][0]]["s"]
    for name in ("files", "auto"):
        one, two = summary["diff"], summary[f"build_plan {name}"]
        summary[f"diff + build_plan {name}"] = {
            "s": one["s"] + two["s"],
            "runs": "",
            "maxrss_mb": max(one["maxrss_mb"], two["maxrss_mb"]),
            "traced_mb": two["traced_mb"],
            "result": "the target",
        }
    rows = []
    for name, r in summary.items():
        target = ""
        if name.startswith("diff + "):
            target = verdict(r["s"] < TARGET_S and r["maxrss_mb"] < TARGET_MB)
        rows.append(
            [
                name,
                r["s"],
                r["s"] / base,
                r["runs"],
                r["traced_mb"],
                r["maxrss_mb"],
                r["result"],
                target,
            ]
        )
    print(
        f"manifest of {n:,} files ({size_mb:.1f} MB JSON, generated in {gen_s:.1f}s); "
        f"{len(changes):,} changes; process RSS before the steps {base_rss:.0f} MB"
    )
    print(
        table(
            f"\nplanning (median of up to {reps} runs; x load = step time / load_manifest time; "
            f"target: diff + build_plan < {TARGET_S:.0f} s and < {TARGET_MB:.0f} MB)",
            [
                "step",
                "s",
                "x load",
                "runs",
                "traced peak MB",
                "process maxrss MB",
                "result",
                "target",
            ],
            rows,
        )
    )
    print(
        "(each run in a forked child; 'traced peak' = tracemalloc peak of the step's own "
        "allocations; 'process maxrss' = the child's ru_maxrss, both manifests included; steps "
        f"over {SLOW:.0f}s run once)"
    )
    met = all(
        summary[f"diff + build_plan {k}"]["s"] < TARGET_S
        and summary[f"diff + build_plan {k}"]["maxrss_mb"] < TARGET_MB
        for k in ("files", "auto")
    )
    auto, files = summary["diff + build_plan auto"], summary["diff + build_plan files"]
    write_results(
        args.json,
        "planning",
        {
            "target": f"diff + build_plan < {TARGET_S:.0f} s and < {TARGET_MB:.0f} MB "
            f"({n:,} files, {args.changed:.0%} changed)",
            "met": met,
            "figure": f"files {files['s']:.2f}s ({files['s'] / base:.1f}x load), auto "
            f"{auto['s']:.2f}s ({auto['s'] / base:.1f}x load); maxrss "
            f"{max(files['maxrss_mb'], auto['maxrss_mb']):.0f} MB",
            "steps": summary,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
