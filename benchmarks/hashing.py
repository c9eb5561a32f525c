"""build_manifest (sha256) against `sha256sum` over the same files, in the same run.

Generated docs-like sites (use_directory_urls layout): about 99.7% HTML pages of 5-50 KB
(log-uniform) and 0.3% assets of 100 KB-5 MB (log-uniform), so 50k files are about 1.2 GB.
Every file is read once first (warm page cache), then, per repetition and alternating:
`xargs -0 sha256sum < list` (one process at a time, GNU coreutils), `build_manifest(site)`
(walk + hash) and, for information, `build_manifest(site, workers=1)` (no pool thread).
Reported: median wall time, MB/s, files/s, and sha256sum time / build_manifest time.
Target: >= 1.5x sha256sum's single-process throughput.

    python benchmarks/hashing.py [--sizes 1000,10000,50000] [--reps 3] [--quick]
"""

from __future__ import annotations

import math
import os
import random
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import header, median, parser, table, temp_dir, timed, verdict, write_results

from mkdocs_cfpurge.build.manifest import BIG_FILE, build_manifest, default_workers, iter_site_files

TARGET = 1.5
SITE_URL = "https://docs.example.com/"
ASSET_SHARE = 0.003
POOL = os.urandom(8 << 20)  # file bodies are slices of this pool, with a unique first line
KB = 1024


def _log_uniform(rng: random.Random, low: float, high: float) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def make_site(root: Path, n_files: int, seed: int = 1) -> tuple[list[str], int]:
    """Write a docs-like site of `n_files` files; return the relative paths and total bytes."""
    rng = random.Random(seed)
    n_assets = max(3, round(n_files * ASSET_SHARE))
    n_pages = n_files - n_assets
    sections = max(1, round(math.sqrt(n_pages) / 2))
    paths: list[tuple[str, int]] = []
    for i in range(n_pages):
        rel = "index.html" if i == 0 else f"section-{i % sections:03}/page-{i:06}/index.html"
        paths.append((rel, _log_uniform(rng, 5 * KB, 50 * KB)))
    for i in range(n_assets):
        ext = ("js", "css", "png", "woff2", "json")[i % 5]
        paths.append((f"assets/{ext}/asset-{i:05}.{ext}", _log_uniform(rng, 100 * KB, 5000 * KB)))
    total = 0
    made: set[str] = set()
    for rel, size in paths:
        folder = os.path.dirname(rel)
        if folder and folder not in made:
            os.makedirs(root / folder, exist_ok=True)
            made.add(folder)
        head = f"<!-- {rel} -->\n".encode()
        body = bytearray(head)
        while len(body) < size:
            start = rng.randrange(0, len(POOL) - 1)
            body += POOL[start : start + size - len(body)]
        with open(root / rel, "wb") as handle:
            handle.write(body)
        total += len(body)
    return [rel for rel, _ in paths], total


def warm(root: Path, rels: list[str]) -> None:
    """Read every file once so both contenders start from a warm page cache."""
    for rel in rels:
        with open(root / rel, "rb") as handle:
            while handle.read(1 << 20):
                pass


def run_sha256sum(root: Path, list_file: Path, out: Path) -> float:
    with open(list_file, "rb") as stdin, open(out, "wb") as stdout:
        seconds, _ = timed(
            lambda: subprocess.run(
                ["xargs", "-0", "sha256sum"], stdin=stdin, stdout=stdout, cwd=root, check=True
            )
        )
    return seconds


def check_same(out: Path, files: dict[str, str]) -> None:
    theirs = {}
    for line in out.read_text().splitlines():
        digest, name = line.split("  ", 1)
        theirs[name] = digest
    if theirs != files:
        raise SystemExit("build_manifest and sha256sum disagree: the benchmark is wrong")


def bench_size(n_files: int, reps: int) -> dict[str, Any]:
    with temp_dir("hashing", need_bytes=n_files * 25_000) as tmp:
        site = tmp / "site"
        site.mkdir()
        gen_s, (rels, total) = timed(lambda: make_site(site, n_files))
        where = str(tmp.parent)
        list_file = tmp / "files.list"
        list_file.write_bytes(b"".join(os.fsencode(r) + b"\0" for r in rels))
        warm(site, rels)
        walk_s, _ = timed(lambda: list(iter_site_files(site)))
        ref_s, ours_s, one_s = [], [], []
        for rep in range(reps):
            ref_s.append(run_sha256sum(site, list_file, tmp / "sums.txt"))
            seconds, manifest = timed(lambda: build_manifest(site, SITE_URL))
            ours_s.append(seconds)
            if rep == 0:
                check_same(tmp / "sums.txt", manifest.files)
            # No pool thread at all: what the threads for big files add (information only).
            one_s.append(timed(lambda: build_manifest(site, SITE_URL, workers=1))[0])
        ref, ours, one = median(ref_s), median(ours_s), median(one_s)
        return {
            "files": n_files,
            "mb": total / 1e6,
            "gen_s": gen_s,
            "walk_s": walk_s,
            "sha256sum_s": ref,
            "manifest_s": ours,
            "manifest_1w_s": one,
            "sha256sum_mbps": total / 1e6 / ref,
            "manifest_mbps": total / 1e6 / ours,
            "sha256sum_fps": n_files / ref,
            "manifest_fps": n_files / ours,
            "ratio": ref / ours,
            "ratio_1w": ref / one,
            "runs": reps,
            "where": where,
        }


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default=None, help="comma-separated file counts")
    p.add_argument("--reps", type=int, default=None, help="alternating runs of each contender")
    args = p.parse_args(argv)
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([1000, 5000] if args.quick else [1000, 10000, 50000])
    )
    reps = args.reps or (2 if args.quick else 3)
    header("hashing", "build_manifest vs sha256sum (single process), warm page cache")
    print(
        f"sizes {sizes}, {reps} alternating runs each, {os.cpu_count()} CPUs; build_manifest "
        f"hashes files of {BIG_FILE >> 10} KB and more on {default_workers()} threads, the "
        "others in the calling thread"
    )
    results = []
    for n in sizes:
        r = bench_size(n, reps)
        results.append(r)
        print(
            f"  {n:>6} files, {r['mb']:.0f} MB: generated in {r['gen_s']:.1f}s under {r['where']}",
            flush=True,
        )
    rows = [
        [
            r["files"],
            r["mb"],
            r["sha256sum_s"],
            r["manifest_s"],
            r["sha256sum_mbps"],
            r["manifest_mbps"],
            r["sha256sum_fps"],
            r["manifest_fps"],
            r["ratio"],
            r["ratio_1w"],
            r["walk_s"],
            verdict(r["ratio"] >= TARGET),
        ]
        for r in results
    ]
    print(
        table(
            f"\nhashing (median of {reps}; ratio = sha256sum time / build_manifest time, "
            f"target >= {TARGET})",
            [
                "files",
                "MB",
                "sha256sum s",
                "manifest s",
                "sha256sum MB/s",
                "manifest MB/s",
                "sha256sum files/s",
                "manifest files/s",
                "ratio",
                "ratio 1 worker",
                "walk s",
                "target",
            ],
            rows,
        )
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"(peak RSS of this process {rss:.0f} MB; 'walk s' = iter_site_files alone, "
        "included in 'manifest s')"
    )
    met = all(r["ratio"] >= TARGET for r in results)
    write_results(
        args.json,
        "hashing",
        {
            "target": f"build_manifest >= {TARGET}x sha256sum throughput",
            "met": met,
            "figure": ", ".join(f"{r['files']}: {r['ratio']:.2f}x" for r in results),
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
