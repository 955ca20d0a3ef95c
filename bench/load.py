"""Load benchmark: presenced driven by simulated clients, on either store.

Run (from the repository root)::

    .venv/bin/python bench/load.py --json out.json --markdown out.md  # all, full size (~7 min)
    .venv/bin/python bench/load.py --quick              # smoke run, small sizes (< 1 min)
    .venv/bin/python bench/load.py --scenarios S1,S5    # some scenarios only
    .venv/bin/python bench/load.py --store postgres --redis --workers 2 --scenarios S1,S2

The --markdown section (machine, command, figures, targets) is what docs/performance.md records.

For each scenario: a fresh store (``--store sqlite``: a SQLite file in a temporary directory;
``--store postgres``: a database of its own on 127.0.0.1:5432, dropped afterwards; ``--redis``:
Redis on 127.0.0.1:6379 under a key prefix of its own, deleted afterwards); realms, users and
one API key per user created through the store API; ``python -m presenced serve`` started on
127.0.0.1 (pinned to CPU 1 with taskset, access log off, rate limit off; ``--workers N``: with
``serve --workers N`` if this presenced has it, else N processes on N ports with the load
generators sending each request to the next one); then ``--procs`` load-generator processes
(bench/loadgen.py, pinned to CPU 0, asyncio + aiohttp), each with its own slice of the users.
Every user first calls with ``last_update_id=-1`` (the warm-up, so everyone is online), then
follows the cursor it is given. User i of a realm is, by i % 20: active (80 %: status active,
new_user_input=true, cursor), idle (10 %: status idle, cursor), ping_only (5 %: ping_only=true
after its first call) or legacy (5 %: slim_presence=false, never a cursor). The measured phases
are open-loop (sends at fixed slots, latency from the slot) or closed-loop (N connections back to
back). Server CPU (utime + stime, summed over every server process) and RSS are read from /proc
at the window's edges. After each scenario, a full fetch per realm is compared with the rows in
the store (read through its API), and each auditor user's view (built only from the deltas it
received) is compared with the store.

The scenarios are in bench/scenarios/ (s1_saturation.py ... s5_empty_delta.py), the shared
helpers in bench/harness/.

Other processes on the machine share both CPUs: each phase reports the CPU time neither the
server nor the generators used ("other processes"); figures taken while that is high are noisy.

All traffic stays on 127.0.0.1; every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.backends import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL, STORES, BackendChoice
from harness.machine import SERVER_CPU, machine, pinned_to_client_cpu, source_identity
from harness.procfs import loadavg
from harness.servers import WORKERS_MODES, ServerOptions
from harness.stats import out
from presenced.store.base import StoreError
from scenarios.catalogue import load_scenarios
from scenarios.load_report import generator_check, markdown, targets
from scenarios.load_runner import RunOptions, run_scenario


async def run(args: argparse.Namespace) -> dict[str, Any]:
    table = load_scenarios(args.quick)
    keys = [k.strip().upper() for k in args.scenarios.split(",") if k.strip()]
    unknown = [k for k in keys if k not in table]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {sorted(table)}")
    backend = BackendChoice(args.store, args.redis, args.postgres_url, args.redis_url)
    server_cpus = None if args.server_cpus == "none" else args.server_cpus
    options = RunOptions(
        args.procs,
        backend,
        args.workers,
        args.workers_mode,
        server_cpus,
        args.keep,
        "gzip" if args.gzip else "identity",
    )
    source = source_identity()
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": args.quick,
        "procs": args.procs,
        "backend": backend.describe(),
        "store": args.store,
        "redis": args.redis,
        "workers": args.workers,
        "accept_encoding": options.accept_encoding,
        "workers_mode": ServerOptions(
            args.workers,
            args.workers_mode,
            env={"PRESENCED_REDIS_URL": args.redis_url} if args.redis else {},
        ).resolved_mode(),
        "server_cpus": server_cpus,
        "machine": machine().to_json(),
        "source": {
            "git_head": source.commit or "",
            "src_sha256": source.sources_sha256,
            **source.to_json(),
        },
        "loadavg_before": " ".join(loadavg()),
    }
    out(f"load average before: {report['loadavg_before']}")
    out(
        f"store: {backend.describe()}; {args.workers} server process(es) ({report['workers_mode']})"
    )
    started = time.perf_counter()
    results: dict[str, Any] = {}
    with pinned_to_client_cpu():
        for key in keys:
            results[key] = await run_scenario(table[key], options)
    report["results"] = results
    report["elapsed_s"] = time.perf_counter() - started
    report["loadavg_after"] = " ".join(loadavg())
    report["targets"] = targets(results, args.quick)
    report["generator_check"] = generator_check(results)
    out("== Targets ==")
    for target, measured, verdict in report["targets"]:
        out(f"  {verdict:8} {target}: {measured}")
    out("== Is the generator the bottleneck? ==")
    for line in report["generator_check"]:
        out(f"  {line}")
    out(f"load average after: {report['loadavg_after']}; total {report['elapsed_s']:.0f} s")
    return report


def terminate(signum: int, frame: object) -> None:
    """SIGTERM: unwind like Ctrl-C, so the servers and generators are stopped, the temporary
    directory is removed and the PostgreSQL database and Redis keys are dropped."""
    raise KeyboardInterrupt


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="presenced load benchmark (see the docstring)")
    parser.add_argument("--scenarios", default="S1,S2,S3,S4,S5")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--procs", type=int, default=4, help="load-generator processes")
    parser.add_argument("--store", choices=STORES, default="sqlite")
    parser.add_argument(
        "--redis", action="store_true", help="also Redis (a key prefix of its own, deleted after)"
    )
    parser.add_argument(
        "--gzip",
        action="store_true",
        help="clients send Accept-Encoding: gzip (default identity); see wire bytes / req",
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument(
        "--workers-mode",
        choices=WORKERS_MODES,
        default="auto",
        help="flag: presenced serve --workers N; processes: N serve processes on N ports, "
        "round robin in the generators; auto (default): flag if serve has it and --redis is "
        "given, else processes",
    )
    parser.add_argument(
        "--server-cpus",
        default=str(SERVER_CPU),
        help=f"taskset CPU list for the servers, or 'none' (default {SERVER_CPU})",
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="where --store postgres creates (and drops) its database",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--markdown", type=Path, help="write a markdown section here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args(argv)
    if not 1 <= args.procs <= 16:
        parser.error("--procs must be 1..16")
    if not 1 <= args.workers <= 64:
        parser.error("--workers must be 1..64")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, terminate)
    args = parse_args(argv)
    try:
        report = asyncio.run(run(args))
    except KeyboardInterrupt:
        print("load.py: interrupted; servers stopped, temporary data removed", file=sys.stderr)
        return 130
    except StoreError as exc:
        print(f"load.py: the store refused: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    if args.markdown:
        args.markdown.write_text(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
