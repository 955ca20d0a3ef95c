"""Benchmark: what one presence change costs when N event queues are open in one realm.

Part A runs the event system in this process (no HTTP): memory per queue, the time publish()
takes (with idle queues and with every queue long-polling), and the time to turn one change into
events for all N queues.

Part B runs ``python -m presenced serve`` on 127.0.0.1 against a fresh SQLite database (or, with
``--store postgres`` and ``--redis``, a PostgreSQL database and a Redis key prefix of its own,
removed afterwards): N clients
register queues, park long-polls, and one other user's first presence report is delivered to all
of them. It reports delivery latency, server CPU and server memory per queue and per long-poll.

Run: ``.venv/bin/python bench/events_fanout.py [--queues 10000] [--rounds 3] [--json OUT]``.
All traffic stays on 127.0.0.1. See bench/README.md for what each number means; the parts are
in bench/scenarios/fanout_*.py, the shared helpers in bench/harness/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.backends import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL, STORES
from harness.machine import calibrate, pinned_to_client_cpu, raise_nofile_limit, source_identity
from harness.procfs import loadavg
from harness.stats import out
from scenarios.fanout_in_process import part_a
from scenarios.fanout_report import print_summary
from scenarios.fanout_rounds import part_b


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "benchmark": "events_fanout",
        "queues": args.queues,
        "rounds": args.rounds,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg_at_start": loadavg(),
        "presenced_source": source_identity().to_json(),
    }
    started = time.perf_counter()
    with pinned_to_client_cpu() as cpus:
        report["client_affinity"] = cpus
        report["calibration_ms"] = {"start": calibrate()}
        out(f"load generator pinned to CPUs {cpus}; RLIMIT_NOFILE {report['nofile_limit']}")
        out(
            f"calibration (fixed pure-Python work, lower = faster machine right now):"
            f" {report['calibration_ms']['start']} ms"
        )
        out()
        if not args.skip_in_process:
            report["in_process"] = await part_a(args.queues, args.rounds)
        if not args.skip_http:
            report["calibration_ms"]["before_http"] = calibrate()
            report["http"] = await part_b(args)
        report["calibration_ms"]["end"] = calibrate()
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    report["loadavg_at_end"] = loadavg()
    print_summary(report)
    return report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--queues", type=int, default=10_000, help="open queues (default 10000)")
    parser.add_argument("--rounds", type=int, default=3, help="delivery rounds (default 3)")
    parser.add_argument("--json", type=Path, help="also write the JSON report to this file")
    parser.add_argument(
        "--concurrency", type=int, default=200, help="registrations in flight (default 200)"
    )
    parser.add_argument(
        "--server-log-level",
        default="warning",
        help="presenced serve --log-level (default warning: no per-request access log)",
    )
    parser.add_argument("--skip-in-process", action="store_true", help="skip part A")
    parser.add_argument("--skip-http", action="store_true", help="skip part B")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (db, server log)")
    parser.add_argument("--store", choices=STORES, default="sqlite", help="part B's store")
    parser.add_argument(
        "--redis", action="store_true", help="part B's server with Redis (its own key prefix)"
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument(
        "--no-trace-server-gc",
        dest="trace_server_gc",
        action="store_false",
        help="do not log the server's garbage collections (bench/server_gc_trace)",
    )
    args = parser.parse_args(argv)
    if args.queues < 3 or args.rounds < 1:
        parser.error("--queues must be at least 3 and --rounds at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile_limit()
    report = asyncio.run(run(args))
    text = json.dumps(report, indent=2)
    if args.json is not None:
        args.json.write_text(text + "\n")
    out("== JSON ==")
    out(text)
    ok = all(r["delivered"] == r["queues"] for r in report.get("http", {}).get("rounds", []))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
