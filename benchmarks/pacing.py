"""Purging N URLs through CloudflareClient against LocalCloudflare with the plan's limits enforced.

For each plan (free: 800 URLs/s, burst 800; pro: 1500/s, burst 1500; from limits.PLAN_LIMITS) a
fresh LocalCloudflare(plan=..., rate_limit=True) on 127.0.0.1 receives `files` bodies of 30 URLs
from `CloudflareClient.purge_all`. The ideal time is max(0, (N - burst) / rate): what the token
bucket allows, burst included; the allowed rate is N / ideal. Efficiency = ideal / actual time =
achieved URLs/s / allowed URLs/s; target >= 90%, with every request accepted in the end (no error
reaches the caller) and the retries counted from the server's request log (429s and others).

Baseline, same run: the same client and bodies against a server without limits, the client's
URL bucket opened wide: the most this machine's client + server can push (the ceiling).

    python benchmarks/pacing.py [--urls 20000] [--plans free,pro] [--quick]
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from _common import header, parser, table, timed, verdict, write_results

from mkdocs_cfpurge.cloudflare.client import CloudflareClient
from mkdocs_cfpurge.cloudflare.limits import PLAN_LIMITS, TokenBucket
from mkdocs_cfpurge.localcf import LocalCloudflare
from mkdocs_cfpurge.settings import Credentials

TARGET = 0.90
ZONE_ID = "0123456789abcdef0123456789abcdef"
TOKEN = "bench-token"
PER_BODY = 30


class Counter(logging.Handler):
    """Counts the client's retry warnings (a cross-check of the server's log)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.retries = 0
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "retrying" in message:
            self.retries += 1
        self.messages.append(message)


def bodies(n: int) -> list[dict[str, Any]]:
    urls = [f"https://docs.example.com/section-{i % 97:02}/page-{i:06}/" for i in range(n)]
    return [{"files": urls[i : i + PER_BODY]} for i in range(0, n, PER_BODY)]


def run(plan: str, n: int, *, limited: bool) -> dict[str, Any]:
    counter = Counter()
    logger = logging.getLogger("mkdocs.plugins.cfpurge")
    logger.addHandler(counter)
    logger.propagate = False  # keep retry warnings off the table; they are counted instead
    try:
        with LocalCloudflare(
            zone_id=ZONE_ID,
            zone_name="example.com",
            api_token=TOKEN,
            plan=plan,
            rate_limit=limited,
        ) as cf:
            client = CloudflareClient(
                Credentials(api_token=TOKEN),
                ZONE_ID,
                api_base=cf.api_base,
                plan=plan,
                max_files_per_request=PER_BODY,
            )
            if not limited:  # the ceiling: no bucket on either side
                client._url_bucket = TokenBucket(1e12, 1e12)
            work = bodies(n)
            with client:
                seconds, sent = timed(lambda: client.purge_all(work))
            log = cf.requests
            purged = sum(len(p.items) for p in cf.purges)
    finally:
        logger.removeHandler(counter)
        logger.propagate = True
    statuses: dict[int, int] = {}
    for entry in log:
        statuses[entry["status"]] = statuses.get(entry["status"], 0) + 1
    limits = PLAN_LIMITS[plan]
    ideal = max(0.0, (n - limits.url_burst) / limits.url_rate)
    return {
        "plan": plan,
        "limited": limited,
        "urls": n,
        "seconds": seconds,
        "ideal_s": ideal,
        "achieved": n / seconds,
        "allowed": n / ideal if ideal else float("inf"),
        "efficiency": ideal / seconds,
        "requests": sent,
        "server_requests": len(log),
        "retried": len(log) - sent,
        "status_429": statuses.get(429, 0),
        "other_errors": sum(v for k, v in statuses.items() if k not in (200, 429)),
        "client_retry_warnings": counter.retries,
        "purged_urls": purged,
        "ok": purged == n and sent == len(work),
    }


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--urls", type=int, default=None, help="URLs to purge per plan")
    p.add_argument("--plans", default="free,pro")
    args = p.parse_args(argv)
    n = args.urls or (4000 if args.quick else 20000)
    plans = args.plans.split(",")
    header(
        "pacing", f"{n:,} URLs in bodies of {PER_BODY} through CloudflareClient -> LocalCloudflare"
    )
    ceiling = run(plans[-1], n, limited=False)
    print(f"  ceiling (no limits): {ceiling['achieved']:.0f} URLs/s", flush=True)
    results = []
    for plan in plans:
        r = run(plan, n, limited=True)
        results.append(r)
        print(f"  {plan}: {r['seconds']:.1f}s", flush=True)
    rows = [
        [
            "ceiling (no limits)",
            ceiling["seconds"],
            "",
            ceiling["achieved"],
            "",
            "",
            ceiling["achieved"] / ceiling["achieved"],
            ceiling["requests"],
            ceiling["retried"],
            ceiling["status_429"],
            ceiling["purged_urls"],
            "",
        ]
    ]
    for r in results:
        met = r["efficiency"] >= TARGET and r["ok"]
        rows.append(
            [
                f"{r['plan']} (limits enforced)",
                r["seconds"],
                r["ideal_s"],
                r["achieved"],
                r["allowed"],
                r["efficiency"],
                r["achieved"] / ceiling["achieved"],
                r["requests"],
                r["retried"],
                r["status_429"],
                r["purged_urls"],
                verdict(met),
            ]
        )
    print(
        table(
            f"\npacing ({n:,} URLs; efficiency = ideal / actual time = achieved / allowed rate; "
            f"target >= {TARGET:.0%}, no failed request)",
            [
                "run",
                "s",
                "ideal s",
                "URLs/s",
                "allowed URLs/s",
                "efficiency",
                "x ceiling",
                "requests",
                "retries",
                "429s",
                "URLs purged",
                "target",
            ],
            rows,
        )
    )
    for r in results:
        print(
            f"{r['plan']}: {r['server_requests']} requests reached the server for "
            f"{r['requests']} bodies ({r['status_429']} answered 429, {r['other_errors']} other "
            f"errors; the client logged {r['client_retry_warnings']} retries); "
            f"{'all URLs purged, no error reached the caller' if r['ok'] else 'INCOMPLETE'}"
        )
    met = all(r["efficiency"] >= TARGET and r["ok"] for r in results)
    write_results(
        args.json,
        "pacing",
        {
            "target": f"achieved >= {TARGET:.0%} of the allowed URL rate, no failed request "
            f"({n:,} URLs)",
            "met": met,
            "figure": ", ".join(
                f"{r['plan']} {r['efficiency']:.0%} ({r['achieved']:.0f}/{r['allowed']:.0f} "
                f"URLs/s, {r['status_429']} 429s)"
                for r in results
            )
            + f"; ceiling {ceiling['achieved']:.0f} URLs/s",
            "results": results,
            "ceiling": ceiling,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
