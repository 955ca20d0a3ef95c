"""Side by side: two or more ``bench/load.py --json`` reports, phase by phase.

For each measured phase present in every report: requests/s, p99, server CPU per 1,000
requests (summed over every server process, and with the PostgreSQL backends' CPU added where
the report has it), and each report's ratio to the first. This is how issue 8's targets are
read: CPU per request on PostgreSQL + Redis within 1.5x of the embedded store's (compare the
SQLite report with the PostgreSQL one), and 2 processes at least 1.6x the throughput of one
(compare the 1-process report with the 2-process one, where the generators had headroom: see
each report's generator check).

Run::

    .venv/bin/python bench/compare_runs.py /tmp/load-sqlite.json /tmp/load-pg1.json \
        /tmp/load-pg2.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.stats import fmt, out


@dataclass(frozen=True)
class PhaseFigures:
    req_per_s: float | None
    p99_ms: float | None
    server_cpu_s_per_1k: float | None
    store_cpu_s_per_1k: float | None
    """Server CPU plus the PostgreSQL backends' (the whole cost of the store's work)."""
    wire_bytes_per_request: int | None
    generator_check: str


def describe(report: dict[str, Any]) -> str:
    return (
        f"{report.get('backend', 'embedded SQLite')}, {report.get('workers', 1)} process(es)"
        f" ({report.get('workers_mode', 'single')}), Accept-Encoding "
        f"{report.get('accept_encoding', 'identity')}"
    )


def phases(report: dict[str, Any]) -> dict[str, PhaseFigures]:
    checks = {line.split(":", 1)[0]: line for line in report.get("generator_check", [])}
    found: dict[str, PhaseFigures] = {}
    for key, scenario in report.get("results", {}).items():
        for ph in scenario.get("phases", []):
            if not ph["measured"]:
                continue
            name = f"{key} {ph['phase']}"
            server = ph.get("server_cpu_s_per_1k")
            postgres = ph.get("postgres_cpu_s_per_1k")
            found[name] = PhaseFigures(
                ph.get("req_per_s"),
                ph.get("latency_ms", {}).get("p99"),
                server,
                None if server is None else server + (postgres or 0.0),
                ph.get("wire_bytes_per_request", ph.get("bytes_per_request")),
                checks.get(name, "").rsplit(": ", 1)[-1],
            )
    return found


def ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}x"


def compare(paths: Sequence[Path]) -> None:
    reports = [json.loads(path.read_text()) for path in paths]
    for i, (path, report) in enumerate(zip(paths, reports, strict=True)):
        out(f"[{i}] {path}: {describe(report)}; started {report.get('started')}")
    tables = [phases(report) for report in reports]
    common = [name for name in tables[0] if all(name in t for t in tables[1:])]
    for name in common:
        base = tables[0][name]
        out()
        out(f"{name}")
        out(
            "  run | req/s | p99 ms | server CPU s/1k req | + PostgreSQL s/1k req "
            "| wire bytes/req | generators"
        )
        for i, table in enumerate(tables):
            f = table[name]
            out(
                f"  [{i}] | {fmt(f.req_per_s)} ({ratio(f.req_per_s, base.req_per_s)}) | "
                f"{fmt(f.p99_ms, 2)} | {fmt(f.server_cpu_s_per_1k, 3)} "
                f"({ratio(f.server_cpu_s_per_1k, base.server_cpu_s_per_1k)}) | "
                f"{fmt(f.store_cpu_s_per_1k, 3)} "
                f"({ratio(f.store_cpu_s_per_1k, base.store_cpu_s_per_1k)}) | "
                f"{fmt(f.wire_bytes_per_request)} "
                f"({ratio(f.wire_bytes_per_request, base.wire_bytes_per_request)}) | "
                f"{f.generator_check}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="load.py --json files; first = base")
    args = parser.parse_args(argv)
    if len(args.reports) < 2:
        parser.error("give at least two reports")
    compare(args.reports)
    return 0


if __name__ == "__main__":
    sys.exit(main())
