"""The main job, end to end, with no Cloudflare account: README's first command.

Builds this project's documentation (example-site/) twice with the cfpurge plugin, a page edited
in between, against the bundled Cloudflare-compatible server on 127.0.0.1 with its edge cache in
front of the built site, and shows the plan, the purge and, through the edge, that the changed
page is fresh while unchanged pages stay cached. Works on a temporary copy: the repository is
left as it is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mkdocs_cfpurge.localcf import LocalCloudflare

HERE = Path(__file__).resolve().parent
ZONE_ID = "0123456789abcdef0123456789abcdef"
TOKEN = "demo-token-for-the-local-server"
CHANGED_PAGE = "guide/options.md"
CHANGED_URL = "https://docs.example.com/guide/options/"
UNCHANGED_URL = "https://docs.example.com/how-it-works/"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def build(work: Path, cf: LocalCloudflare) -> None:
    env = {
        **os.environ,
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "CLOUDFLARE_ZONE_ID": ZONE_ID,
        "CLOUDFLARE_API_BASE": cf.api_base,
    }
    env.pop("CFPURGE_DRY_RUN", None)
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-f", str(work / "mkdocs.yml")],
        env=env,
        check=True,
    )


def show(cf: LocalCloudflare, url: str, expect: str | None = None) -> None:
    answer = cf.edge_fetch(url)
    fresh = "" if expect is None else (" fresh" if expect in answer.body.decode() else " STALE")
    print(f"  GET {url} -> {answer.status} CF-Cache-Status: {answer.cache_status}{fresh}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cfpurge-demo-") as tmp:
        work = Path(tmp) / "example-site"
        shutil.copytree(HERE, work, ignore=shutil.ignore_patterns("site", ".cache", "demo.py"))
        # The demo's origin serves the folder the site is built into, so purge right after a
        # build (`mkdocs gh-deploy` users keep the default: purge after the verified push).
        config = work / "mkdocs.yml"
        config.write_text(
            config.read_text().replace("  - cfpurge:\n", "  - cfpurge:\n      purge_on: [build]\n")
        )
        (work / "site").mkdir()
        with LocalCloudflare(
            zone_id=ZONE_ID, zone_name="example.com", api_token=TOKEN, origin=work / "site"
        ) as cf:
            print(f"local Cloudflare API {cf.api_base}, edge {cf.edge_url}")
            say("1. First build: records the baseline, purges nothing")
            build(work, cf)
            say("Visitors fetch pages through the edge: now cached")
            for url in (CHANGED_URL, UNCHANGED_URL):
                show(cf, url)
                show(cf, url)
            say(f"2. Edit {CHANGED_PAGE} and build again: plan and purge")
            page = work / "docs" / CHANGED_PAGE
            page.write_text(page.read_text() + "\nEdited by the demo: this line is new.\n")
            build(work, cf)
            say("What the local Cloudflare API accepted")
            for record in cf.purges:
                print(f"  {record.method} {record.kind}: {len(record.items)} item(s)")
                for item in record.items[:6]:
                    print(f"    {item}")
            say("Through the edge after the purge")
            show(cf, CHANGED_URL, expect="this line is new")
            show(cf, UNCHANGED_URL)
            plan_file = work / ".cache/plugin/cfpurge/plan.json"
            print(f"\nThe plan (exact request bodies) was written to {plan_file.name}:")
            print(plan_file.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
