"""`mkdocs build` of a generated site with the cfpurge plugin (dry run) against without it.

The site: `--pages` Markdown pages (headings, paragraphs, lists, a table, code, links) in
sections, the built-in `mkdocs` theme, use_directory_urls. The nav lists the home page and each
section's index only: with every page in the nav, the theme renders all N links into each of the N
pages (quadratic, unlike any real 10k-page site). Both configurations share docs_dir and site_dir:
- baseline: `plugins: [search]`
- cfpurge:  `plugins: [search, cfpurge: {dry_run: true, ignore_changes: [mkdocs-build-date,
  sitemap-lastmod]}]` (the theme writes the build time into every page; without the presets every
  page would change on every build), with a saved manifest in which 1% of the pages differ, so
  every build diffs, plans and reports a real purge (a dry run never commits the manifest).
Each build is a fresh interpreter running `mkdocs build -q` (bytecode cached in the temp folder,
see _common.bytecode_env); after a warm-up build of each (the first one's output seeds the
manifest), they alternate in ABBA order. Reported: median wall time of each, the ratio of the
medians (the target: <= 1.03), the median of the per-pair ratios and the CPU-time ratio. Builds
of one configuration vary by up to 40% on the shared machine, more than the overhead, so two
steadier figures follow: the plugin's share timed inside each of its builds (its import, after
what every build imports, plus its event handlers; ratio = build / (build - share)), and its
work (scan + plan + marker + report) timed again in this process on the built site.

Default 1000 pages (a build takes 5-20 s on the shared 2-core machine; 10k pages would take
minutes per build): `--pages 10000` for the full size.

    python benchmarks/plugin_overhead.py [--pages 1000] [--runs 5] [--quick]
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common
from _common import header, median, parser, table, temp_dir, timed, verdict, write_results

TARGET = 1.03
SITE_URL = "https://docs.example.com/"
WORDS = re.findall(
    r"\w+",
    "cache purge edge origin deploy page build site token zone prefix header request limit "
    "bucket burst rate plan manifest hash folder section theme search index nav link the a of "
    "to and in is it that for on with as by this be are from at or an",
)


def _sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(8, 20))
    return " ".join(words).capitalize() + "."


def make_docs(root: Path, pages: int, seed: int = 7) -> int:
    """Write docs/ with `pages` pages; return the number of sections."""
    rng = random.Random(seed)
    docs = root / "docs"
    sections = max(2, min(40, pages // 50))
    names = [f"section-{s:02}" for s in range(sections)]
    for name in names:
        (docs / name).mkdir(parents=True)
    (docs / "index.md").write_text("# Home\n\n" + " ".join(_sentence(rng) for _ in range(20)))
    for s, name in enumerate(names):
        (docs / name / "index.md").write_text(f"# Section {s}\n\nPages of section {s}.\n")
    for i in range(pages - 1 - sections):
        name = names[i % sections]
        other = f"../{names[(i * 7) % sections]}/page-{(i * 13) % pages:05}.md"
        parts = [f"# Page {i}\n", " ".join(_sentence(rng) for _ in range(6))]
        for h in range(rng.randint(2, 5)):
            parts.append(f"\n## Part {h}\n")
            parts.append(" ".join(_sentence(rng) for _ in range(rng.randint(3, 10))))
            parts.append("\n" + "\n".join(f"- {_sentence(rng)}" for _ in range(3)) + "\n")
        parts.append("\n| option | default | meaning |\n|---|---|---|\n")
        parts += [f"| opt{k} | {k} | {_sentence(rng)} |\n" for k in range(4)]
        parts.append(f"\n```python\nprint({i})\nvalue = {rng.random()!r}\n```\n")
        parts.append(f"\nSee [another page]({other}) and [home](../index.md).\n")
        (docs / name / f"page-{i:05}.md").write_text("\n".join(parts))
    nav = "\n".join(f"  - Section {s}: {name}/index.md" for s, name in enumerate(names))
    common = (
        f"site_name: bench\nsite_url: {SITE_URL}\ntheme: mkdocs\n"
        f"validation:\n  links:\n    not_found: ignore\n    unrecognized_links: ignore\n"
        f"nav:\n  - Home: index.md\n{nav}\n"
    )
    (root / "mkdocs.base.yml").write_text(common + "plugins:\n  - search\n")
    (root / "mkdocs.cfpurge.yml").write_text(
        common
        + "plugins:\n  - search\n  - cfpurge:\n      dry_run: true\n"
        + "      ignore_changes: [mkdocs-build-date, sitemap-lastmod]\n"
    )
    return sections


# Runs one build in this child interpreter. With the cfpurge config it also times, inside the
# build, the plugin's import (after what every build imports anyway) and each of its event
# handlers: the plugin's share of this very build, free of the build-to-build noise.
RUNNER = """
import functools, json, sys, time
start = time.perf_counter()
import mkdocs.commands.build, mkdocs.config.defaults, mkdocs.plugins
from mkdocs.__main__ import cli
config, out = sys.argv[1], sys.argv[2]
spent = {"import_s": 0.0, "hooks_s": 0.0}
if "cfpurge" in config:
    t = time.perf_counter()
    from mkdocs_cfpurge.plugin import CfPurgePlugin
    spent["import_s"] = time.perf_counter() - t

    def timed(method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent["hooks_s"] += time.perf_counter() - t
        return wrapper

    for name in [n for n in vars(CfPurgePlugin) if n.startswith("on_")]:
        setattr(CfPurgePlugin, name, timed(getattr(CfPurgePlugin, name)))
try:
    cli(["build", "-q", "-f", config], standalone_mode=False)
finally:
    spent["total_s"] = time.perf_counter() - start
    with open(out, "w") as handle:
        json.dump(spent, handle)
"""


@dataclass
class Build:
    wall_s: float  # the whole child process, as a user waits for it
    cpu_s: float  # user + system time of the child
    total_s: float  # inside the child, from before the mkdocs imports to the end of the build
    plugin_s: float  # inside the child: the plugin's import and event handlers

    @property
    def attributed_ratio(self) -> float:
        """This build's time over the same build without the plugin's share."""
        return self.total_s / (self.total_s - self.plugin_s)


def build(root: Path, config: str) -> Build:
    out = root / "build-times.json"
    cmd = [sys.executable, "-c", RUNNER, config, str(out)]
    env = {**_common.bytecode_env(root / ".pycache"), "CFPURGE_DRY_RUN": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, done = timed(
        lambda: subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"mkdocs build -f {config} failed:\n{done.stderr[-3000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    spent = json.loads(out.read_text())
    plugin = spent["import_s"] + spent["hooks_s"]
    return Build(float(seconds), cpu, spent["total_s"], plugin)


def seed_baseline(root: Path) -> tuple[Any, Any]:
    """Save a manifest of the built site with 1% of the pages changed; return settings, scan."""
    from mkdocs_cfpurge import pipeline
    from mkdocs_cfpurge.settings import Settings

    settings = Settings.create(
        site_url=SITE_URL,
        manifest_path=root / ".cache/plugin/cfpurge/manifest.json",
        plan_path=root / ".cache/plugin/cfpurge/plan.json",
        ignore_changes=["mkdocs-build-date", "sitemap-lastmod"],
        dry_run=True,
        env={},
    )
    manifest = pipeline.scan(root / "site", settings)
    pages = sorted(p for p in manifest.files if p.endswith(".html"))
    for path in pages[::100]:
        manifest.files[path] = "0" * 64
    manifest.save(settings.manifest_path)
    return settings, manifest


def plugin_work(root: Path, settings: Any) -> tuple[float, Any]:
    """What the plugin's on_post_build does, timed in this process."""
    from mkdocs_cfpurge import pipeline
    from mkdocs_cfpurge.build.marker import write_marker

    site = root / "site"

    def run() -> Any:
        manifest = pipeline.scan(site, settings)
        plan = pipeline.preview(settings, manifest)
        write_marker(site, manifest)
        pipeline.report(plan, settings, {})
        return plan

    return timed(run)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--pages", type=int, default=None, help="pages in the generated site")
    p.add_argument("--runs", type=int, default=None, help="alternating builds of each")
    args = p.parse_args(argv)
    pages = args.pages or (100 if args.quick else 1000)
    runs = args.runs or (2 if args.quick else 5)
    header("plugin_overhead", f"mkdocs build of {pages} pages, with vs without cfpurge (dry run)")
    with temp_dir("plugin", need_bytes=pages * 60_000) as root:
        sections = make_docs(root, pages)
        base_cfg, plug_cfg = "mkdocs.base.yml", "mkdocs.cfpurge.yml"
        # Warm-up builds: OS and bytecode caches; the first one's output seeds the manifest.
        warm = build(root, base_cfg).wall_s
        build(root, plug_cfg)
        settings, _ = seed_baseline(root)
        files = sum(len(f) for _, _, f in os.walk(root / "site"))
        print(
            f"{pages} pages in {sections} sections -> {files} output files under {root.parent}; "
            f"warm-up build {warm:.1f}s; {runs} runs each (ABBA)",
            flush=True,
        )
        base_runs: list[Build] = []
        plug_runs: list[Build] = []
        for i in range(runs):
            order = [(base_cfg, base_runs), (plug_cfg, plug_runs)]
            for cfg, out in order if i % 2 == 0 else order[::-1]:
                out.append(build(root, cfg))
        work = [plugin_work(root, settings) for _ in range(3)]
        work_s = median([w[0] for w in work])
        plan = work[0][1]
    base_s, plug_s = [b.wall_s for b in base_runs], [b.wall_s for b in plug_runs]
    base, plug = median(base_s), median(plug_s)
    ratio = plug / base
    cpu_ratio = median([b.cpu_s for b in plug_runs]) / median([b.cpu_s for b in base_runs])
    pair_ratio = median([b / a for a, b in zip(base_s, plug_s, strict=True)])
    attributed = median([b.attributed_ratio for b in plug_runs])
    share = median([b.plugin_s for b in plug_runs])
    met = ratio <= TARGET
    rows: list[list[Any]] = [
        ["mkdocs build (search)", base, min(base_s), max(base_s), 1.0, ""],
        ["+ cfpurge dry run", plug, min(plug_s), max(plug_s), ratio, verdict(met)],
        ["  median of pair ratios", "", "", "", pair_ratio, ""],
        ["  CPU time (user + system)", "", "", "", cpu_ratio, ""],
        [
            "  plugin's share inside its builds",
            share,
            "",
            "",
            attributed,
            verdict(attributed <= TARGET),
        ],
        ["  plugin work in this process", work_s, "", "", 1 + work_s / base, ""],
    ]
    print(
        table(
            f"\nplugin overhead ({pages} pages; median of {runs} builds each; target: median wall "
            f"ratio <= {TARGET})",
            ["build", "wall s", "min s", "max s", "ratio", "target"],
            rows,
        )
    )
    print(
        "(the builds of one configuration differ by up to "
        f"{(max(base_s) / min(base_s) - 1) * 100:.0f}% here, more than the overhead measured: the "
        "steady figure is the plugin's share inside its own builds, its import after what every "
        "build imports plus its event handlers, ratio = build / (build - share); 'plugin work' = "
        "scan + plan + marker + report timed in this process, ratio = 1 + work / baseline; plan "
        f"of each dry run: {len(plan.changes)} change(s), {len(plan.requests)} request(s))"
    )
    print(
        "runs, wall s: base "
        + " ".join(f"{b.wall_s:.2f}" for b in base_runs)
        + " | cfpurge "
        + " ".join(f"{b.wall_s:.2f} (share {b.plugin_s:.2f})" for b in plug_runs)
    )
    write_results(
        args.json,
        "plugin_overhead",
        {
            "target": f"median build time ratio <= {TARGET} ({pages} pages)",
            "met": met,
            "figure": f"wall {ratio:.3f} (pairs {pair_ratio:.3f}); plugin's share inside its "
            f"builds {attributed:.3f} ({share:.2f}s of {base:.1f}s)",
            "pages": pages,
            "base_s": base_s,
            "plugin_s": plug_s,
            "ratio": ratio,
            "attributed_ratio": attributed,
            "plugin_share_s": share,
            "cpu_ratio": cpu_ratio,
            "pair_ratio": pair_ratio,
            "plugin_work_s": work_s,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
