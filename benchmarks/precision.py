"""Purge precision (issue 5): what each strategy misses, takes down for nothing, and costs.

A 2,000-page MkDocs-like site (use_directory_urls): `index.html`, `404.html`, nine flat sections
(`guide-N/page-M/index.html`) and a nested one (`reference/group-G/page-M/index.html`), section
index pages, assets (css, js, img, fonts, search scripts), `search/search_index.json`,
`sitemap.xml` and `sitemap.xml.gz`. Each page holds the top navigation (section titles), its
section's page titles (Material with navigation.tabs + navigation.prune), previous/next links, its
body, and the mkdocs theme's build-date comment; the sitemap carries a <lastmod> per page. Every
build has a new build date: the manifests are hashed through `noise.make_normalizer(
["mkdocs-build-date", "sitemap-lastmod"])`, as `ignore_changes` does, so only real changes count.

History of deploys, each against the previous one: one page edited; a typo in ten pages; a nav
title change (a section renamed: every page changes); pages added and removed; a CSS change;
noise only (a new build date, absorbed by the presets); and, to show what the presets save, the
same noise with `ignore_changes` off.

Strategies: `auto`, `files`, `prefixes`, `everything` (pipeline.make_plan, default options,
cloudflare_plan free; auto is planned again with cloudflare_plan pro when that changes its
choice), and the CloudFront deployers' rule, implemented here as bep/s3deploy does it (the
deployer Hugo documents): the changed paths (a `.../index.html` becomes its folder `.../`); if
more than 8, cut the deepest ones to folder wildcards (`/a/*`) level by level until at most 8
remain, else invalidate `/*`. In Cloudflare terms: an exact path is a `files` URL, `/a/*` a prefix
`host/a/`, `/*` purge_everything.

For each deploy and strategy: missed URLs (URLs of changed files, plus the slashless `/folder` of
each folder that appeared or disappeared, that no files entry, prefix or purge_everything
covers; must be 0 for this project's strategies), collateral (URLs of unchanged files the plan
covers; purge_everything covers them all), requests, and the purge time on the Free and Pro plans
from `strategy.estimate_seconds` (token buckets of limits.PLAN_LIMITS, 30 URLs per request, 0.1 s
per request, one request at a time). URLs are computed here independently of urls.py: a page
`x/index.html` is served as `/x/` and `/x/index.html`, the home as `/` and `/index.html`.

    python benchmarks/precision.py [--pages 2000] [--quick]
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import posixpath
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import header, md_table, parser, table, verdict, write_results

from mkdocs_cfpurge import pipeline
from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.build.noise import make_normalizer
from mkdocs_cfpurge.cloudflare.limits import PLAN_LIMITS
from mkdocs_cfpurge.errors import CfPurgeError
from mkdocs_cfpurge.plan.auto import estimate_seconds
from mkdocs_cfpurge.plan.plan import PurgePlan
from mkdocs_cfpurge.settings import Settings

HOST = "docs.example.com"
SITE_URL = f"https://{HOST}/"
PRESETS = ["mkdocs-build-date", "sitemap-lastmod"]
STRATEGIES = ("auto", "files", "prefixes", "everything")
CLOUDFRONT = "cloudfront-8 (s3deploy rule)"
MAX_FILES = 30
ASSETS = [
    "css/base.css",
    "css/theme.css",
    "css/extra.css",
    "js/base.js",
    "js/bootstrap.min.js",
    "js/jquery.min.js",
    "img/favicon.ico",
    "img/grid.png",
    "fonts/fontawesome-webfont.woff2",
    "fonts/roboto.woff2",
    "search/main.js",
    "search/worker.js",
    "search/lunr.js",
]

# --- the site -----------------------------------------------------------------------------------


@dataclass
class Site:
    """What a build renders from: section titles, pages per section, page bodies, css, date."""

    titles: dict[str, str] = field(default_factory=dict)  # section folder -> title
    pages: dict[str, list[str]] = field(default_factory=dict)  # section folder -> page folders
    bodies: dict[str, int] = field(default_factory=dict)  # page folder -> body version
    css: int = 0
    build: int = 0

    @classmethod
    def create(cls, n_pages: int) -> Site:
        site = cls()
        flat = 9
        per_section = n_pages // (flat + 1)
        for s in range(flat):
            folder = f"guide-{s}"
            site.titles[folder] = f"Guide {s}"
            site.pages[folder] = [f"{folder}/page-{p:03}" for p in range(per_section)]
        site.titles["reference"] = "Reference"
        rest = n_pages - flat * per_section
        groups = 10
        site.pages["reference"] = [
            f"reference/group-{g}/page-{p:03}"
            for g in range(groups)
            for p in range(rest // groups + (1 if g < rest % groups else 0))
        ]
        for pages in site.pages.values():
            for page in pages:
                site.bodies[page] = 0
        return site

    def order(self) -> list[str]:
        return [page for section in self.titles for page in self.pages[section]]

    def render(self) -> dict[str, bytes]:
        date = f"2026-11-{1 + self.build % 28:02} 12:{self.build % 60:02}:00.000000"
        stamp = f"\n<!--\nMkDocs version : 1.6.1\nBuild Date UTC : {date}\n-->\n"
        tabs = "".join(f"<a href='/{s}/'>{t}</a>" for s, t in self.titles.items())
        files: dict[str, bytes] = {}

        def page(path: str, main: str, side: str = "") -> None:
            html = f"<html><nav>{tabs}</nav><aside>{side}</aside><main>{main}</main>{stamp}</html>"
            files[path] = html.encode()

        page("index.html", "Welcome")
        page("404.html", "Not found")
        order = self.order()
        position = {p: i for i, p in enumerate(order)}
        for section, pages in self.pages.items():
            side = "".join(f"<a href='/{p}/'>{title(p)}</a>" for p in pages)
            page(f"{section}/index.html", f"{self.titles[section]}", side)
            for p in pages:
                i = position[p]
                prev = title(order[i - 1]) if i else ""
                nxt = title(order[i + 1]) if i + 1 < len(order) else ""
                page(f"{p}/index.html", f"{title(p)} v{self.bodies[p]} {prev} {nxt}", side)
        index = [
            {"location": f"{p}/", "title": title(p), "text": f"body v{self.bodies[p]}"}
            for p in order
        ]
        files["search/search_index.json"] = json.dumps({"docs": index}).encode()
        urls = ["", *(f"{s}/" for s in self.pages), *(f"{p}/" for p in order)]
        sitemap = (
            "<urlset>"
            + "".join(
                f"<url><loc>{SITE_URL}{u}</loc><lastmod>{date[:10]}</lastmod></url>" for u in urls
            )
            + "</urlset>"
        )
        files["sitemap.xml"] = sitemap.encode()
        files["sitemap.xml.gz"] = gzip.compress(sitemap.encode(), mtime=1_700_000_000 + self.build)
        for asset in ASSETS:
            version = self.css if asset == "css/theme.css" else 0
            files[asset] = f"/* {asset} v{version} */".encode()
        return files

    def manifest(self, presets: bool = True) -> Manifest:
        normalize = make_normalizer(PRESETS if presets else [])
        files = {}
        for path, data in sorted(self.render().items()):
            if normalize is not None and normalize.applies(path):
                data = normalize(path, data)
            files[path] = hashlib.sha256(data).hexdigest()
        return Manifest(SITE_URL, files)


def title(page: str) -> str:
    return (
        "Page "
        + page.rsplit("-", 1)[-1]
        + (" (" + page.split("/")[1] + ")" if page.startswith("reference/") else "")
    )


# --- the history ----------------------------------------------------------------------------


def edit_one(site: Site) -> None:
    site.bodies["guide-2/page-017"] += 1


def typo_ten(site: Site) -> None:
    for i, page in enumerate(site.order()[37::193][:10]):
        site.bodies[page] += 1 + i % 2


def nav_title(site: Site) -> None:
    site.titles["guide-4"] = "Guide Four"


def add_remove(site: Site) -> None:
    for p in range(5):
        page = f"guide-3/new-{p}"
        site.pages["guide-3"].append(page)
        site.bodies[page] = 0
    for page in site.pages["reference"][::50][:4]:
        site.pages["reference"].remove(page)
        del site.bodies[page]


def css_change(site: Site) -> None:
    site.css += 1


def noise_only(site: Site) -> None:
    pass


HISTORY: list[tuple[str, Callable[[Site], None], bool]] = [
    ("one page edited", edit_one, True),
    ("typo in ten pages", typo_ten, True),
    ("nav title change", nav_title, True),
    ("pages added and removed", add_remove, True),
    ("CSS change", css_change, True),
    ("noise only (presets on)", noise_only, True),
    ("noise only (presets off)", noise_only, False),
]

# --- URLs, coverage and cost ------------------------------------------------------------------


def served_urls(path: str) -> list[str]:
    """Every URL a visitor can request for a file (ASCII names: no encoding variants)."""
    if path == "index.html":
        return [SITE_URL, SITE_URL + "index.html"]
    if path.endswith("/index.html"):
        return [SITE_URL + path[: -len("index.html")], SITE_URL + path]
    return [SITE_URL + path]


def folders(paths: Any) -> set[str]:
    out: set[str] = set()
    for path in paths:
        folder = posixpath.dirname(path)
        while folder:
            out.add(folder)
            folder = posixpath.dirname(folder)
    return out


def changed_urls(old: dict[str, str], new: dict[str, str]) -> set[str]:
    paths = {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)}
    urls = {u for p in paths for u in served_urls(p)}
    urls |= {SITE_URL + f for f in folders(old) ^ folders(new)}  # the slashless /folder
    return urls


def unchanged_urls(old: dict[str, str], new: dict[str, str]) -> set[str]:
    return {u for p in old.keys() & new.keys() if old[p] == new[p] for u in served_urls(p)}


@dataclass
class Cover:
    everything: bool = False
    files: set[str] = field(default_factory=set)
    prefixes: list[str] = field(default_factory=list)
    requests: int = 0

    @classmethod
    def of(cls, requests: list[dict[str, Any]]) -> Cover:
        cover = cls(requests=len(requests))
        for body in requests:
            if body.get("purge_everything"):
                cover.everything = True
            for item in body.get("files", []):
                cover.files.add(item["url"] if isinstance(item, dict) else item)
            cover.prefixes += body.get("prefixes", [])
        return cover

    def covers(self, url: str) -> bool:
        if self.everything or url in self.files:
            return True
        bare = url.split("://", 1)[1]
        return any(bare.startswith(prefix) for prefix in self.prefixes)

    def seconds(self, plan: str) -> float:
        return estimate_seconds(
            len(self.files), len(self.prefixes), PLAN_LIMITS[plan], MAX_FILES, self.everything
        )


def cloudfront_rule(old: dict[str, str], new: dict[str, str], threshold: int = 8) -> Cover:
    """bep/s3deploy's CloudFront invalidation paths, translated to Cloudflare purge bodies."""
    changed = sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))
    if not changed:
        return Cover()
    paths = ["/" + p for p in changed]
    max_levels = max(p.count("/") for p in paths)
    normalized = list(
        dict.fromkeys(
            posixpath.dirname(p).rstrip("/") + "/" if p.endswith("index.html") else p for p in paths
        )
    )
    normalized.sort()
    if len(normalized) > threshold:
        for level in range(max_levels, 0, -1):
            cut = []
            for p in normalized:
                if p.count("/") > level:
                    parts = posixpath.dirname(p).strip("/").split("/")
                    if len(parts) > 1:
                        parts = parts[:-1]
                    p = "/" + "/".join(parts) + "/*"
                cut.append(p)
            normalized = list(dict.fromkeys(cut))
            if len(normalized) <= threshold:
                break
        if len(normalized) > threshold:
            normalized = ["/*"]
    if "/*" in normalized:
        return Cover(everything=True, requests=1)
    files = {SITE_URL + p[1:] for p in normalized if not p.endswith("/*")}
    prefixes = [HOST + p[:-1] for p in normalized if p.endswith("/*")]
    requests = -(-len(files) // MAX_FILES) + -(-len(prefixes) // 100)
    return Cover(files=files, prefixes=prefixes, requests=requests)


def make_plan(old: Manifest, new: Manifest, strategy: str, plan: str) -> PurgePlan:
    with tempfile.TemporaryDirectory(prefix="cfpurge-bench-precision-") as tmp:
        settings = Settings.create(
            site_url=SITE_URL,
            manifest_path=Path(tmp) / "manifest.json",
            strategy=strategy,
            cloudflare_plan=plan,
            ignore_changes=PRESETS,
            env={},
        )
        return pipeline.make_plan(old, new, settings)


def evaluate(name: str, cover: Cover, changed: set[str], unchanged: set[str]) -> dict[str, Any]:
    missed = sorted(u for u in changed if not cover.covers(u))
    collateral = len(unchanged) if cover.everything else sum(cover.covers(u) for u in unchanged)
    return {
        "strategy": name,
        "missed": len(missed),
        "missed_examples": missed[:3],
        "collateral": collateral,
        "requests": cover.requests,
        "free_s": cover.seconds("free") if cover.requests else 0.0,
        "pro_s": cover.seconds("pro") if cover.requests else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--pages", type=int, default=None, help="pages of the generated site")
    args = p.parse_args(argv)
    pages = args.pages or (500 if args.quick else 2000)
    header("precision", f"purge precision over a deploy history of a {pages}-page site")
    site = Site.create(pages)
    old = site.manifest()
    print(f"{len(old.files)} files, {len(unchanged_urls(old.files, old.files))} URLs")
    rows: list[dict[str, Any]] = []
    elapsed = 0.0
    for deploy, change, presets in HISTORY:
        before = copy.deepcopy(site)
        change(site)
        site.build += 1
        if not presets:  # the same two builds, hashed without ignore_changes
            old = before.manifest(presets=False)
        new = site.manifest(presets=presets)
        changed = changed_urls(old.files, new.files)
        unchanged = unchanged_urls(old.files, new.files)
        n_files = sum(old.files.get(p) != new.files.get(p) for p in old.files.keys() | new.files)
        for strategy in STRATEGIES:
            results = []
            for plan in ("free", "pro") if strategy == "auto" else ("free",):
                try:
                    started = time.perf_counter()
                    made = make_plan(old, new, strategy, plan)
                    elapsed += time.perf_counter() - started
                    r = evaluate(strategy, Cover.of(made.requests), changed, unchanged)
                except CfPurgeError as exc:
                    r = {"strategy": strategy, "error": str(exc)[:80]}
                results.append((plan, r))
            if len(results) == 2 and results[0][1] == results[1][1]:
                results = results[:1]  # auto chose the same plan under both budgets
            elif len(results) == 2:
                for plan, r in results:
                    r["strategy"] = f"auto ({plan} budget)"
                    r["only"] = plan
            rows += [
                {"deploy": deploy, "changed": (n_files, len(changed)), **r} for _, r in results
            ]
        base = evaluate(CLOUDFRONT, cloudfront_rule(old.files, new.files), changed, unchanged)
        rows.append({"deploy": deploy, "changed": (n_files, len(changed)), **base})
        for r in rows:
            if r["deploy"] == deploy and "error" not in r:
                r["ratio"] = r["free_s"] / base["free_s"] if base["free_s"] else None
        old = new
    headers = [
        "deploy",
        "changed files/URLs",
        "strategy",
        "missed",
        "collateral",
        "requests",
        "free s",
        "pro s",
        "free s / cloudfront",
    ]

    def cells(r: dict[str, Any]) -> list[Any]:
        changed = "{}/{}".format(*r["changed"])
        if "error" in r:
            return [r["deploy"], changed, r["strategy"], "error", r["error"], "", "", "", ""]
        free = "" if r.get("only") == "pro" else r["free_s"]
        pro = "" if r.get("only") == "free" else r["pro_s"]
        ratio = "" if r.get("ratio") is None or r.get("only") == "pro" else r["ratio"]
        return [
            r["deploy"],
            changed,
            r["strategy"],
            r["missed"],
            r["collateral"],
            r["requests"],
            free,
            pro,
            ratio,
        ]

    ours = [r for r in rows if r["strategy"] != CLOUDFRONT]
    met = all(r.get("missed", 1) == 0 for r in ours)
    print(
        table(
            f"\nprecision ({pages} pages; missed must be 0 for auto/files/prefixes/everything; "
            "collateral = URLs of unchanged files purged; seconds from strategy.estimate_seconds; "
            "last column: Free-plan time / the CloudFront rule's)",
            headers,
            [cells(r) for r in rows],
        )
    )
    for r in rows:
        if r.get("missed"):
            print(
                f"  {r['strategy']} misses {r['missed']} URL(s) in '{r['deploy']}', e.g. "
                + ", ".join(r["missed_examples"])
            )
    print("\nMarkdown:\n")
    print(md_table(headers, [cells(r) for r in rows]))
    print(
        f"\n(planning time, all strategies and deploys: {elapsed:.2f}s; "
        f"missed URLs of this project's strategies: {sum(r.get('missed', 0) for r in ours)} "
        f"-> {verdict(met)})"
    )
    write_results(
        args.json,
        "precision",
        {
            "target": "0 missed URLs for auto, files, prefixes, everything on every deploy",
            "met": met,
            "figure": f"{sum(r.get('missed', 0) for r in ours)} missed (ours); CloudFront rule "
            f"missed {sum(r['missed'] for r in rows if r['strategy'] == CLOUDFRONT)}",
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
