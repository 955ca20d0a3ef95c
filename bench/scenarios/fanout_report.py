"""events_fanout: how the rounds, the server's garbage collections, the load-generator
verdict and the summary are printed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.machine import CLIENT_CPU, PIN, SERVER_CPU
from harness.stats import out
from scenarios.fanout_results import DeliveryRound


def print_round(row: DeliveryRound) -> None:
    lat = row.latency_ms
    park = row.parking
    rss = row.server_rss_kib
    cpu = row.server_cpu_s
    out(
        f"  round {row.round}: delivered {row.delivered:,}/{row.queues:,}"
        + (f"  PROBLEMS {row.problems}" if row.problems else "")
        + (
            f"  ({row.responses_before_the_change} answered before the change)"
            if row.responses_before_the_change
            else ""
        )
    )
    out(
        f"    long-polls all sent after {park.all_requests_sent_s:.2f} s"
        f" ({park.connections_opened:,} new connections, {park.connections_reused:,} kept"
        f" alive), confirmed parked after"
        f" {park.confirmed_parked_after_s} s, change fired after {park.fired_after_s:.1f} s"
        + ("" if park.machine_quiet_before_fire else " (machine NOT quiet)")
    )
    out(
        f"    parking cost the server {park.server_cpu_s:.2f} s CPU"
        f" ({park.server_cpu_per_poll_us:.0f} us per poll) and"
        f" +{(rss.parked - rss.before_polls) / 1024:.1f} MiB RSS"
        f" = {row.server_rss_per_parked_poll_kib:.2f} KiB per parked long-poll"
    )
    out(
        f"    POST /users/me/presence answered in {row.post_latency_ms:.1f} ms"
        f" (HTTP {row.post_status})"
    )
    out(
        f"    latency from the POST: p50 {lat.p50} ms, p99 {lat.p99} ms, max {lat.max} ms"
        f" (first {lat.min} ms); all {row.queues:,} arrived after "
        + (f"{row.all_arrived_s * 1000:.0f} ms" if row.all_arrived_s is not None else "never")
    )
    out(
        f"    server CPU {cpu:.2f} s ({row.server_cpu_per_delivery_us:.0f} us per delivery,"
        f" {row.server_cpu_share:.0%} of the {row.delivery_window_s:.2f} s window);"
        f" client CPU {row.client_cpu_s:.2f} s ({row.client_cpu_share:.0%});"
        f" cores busy: {', '.join(f'{k} {v:.0%}' for k, v in row.cpu_busy.items())}"
    )
    if row.noisy:
        other = row.cpu_breakdown_s.other_processes_user
        out(f"    NOTE: other processes ran {other:.2f} s of user CPU during this delivery")


def gc_between(collections: Sequence[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """Collections that ended in [start, end]: count and milliseconds per generation."""
    picked = [c for c in collections if start <= c["t"] <= end]
    result: dict[str, Any] = {}
    for gen in (0, 1, 2):
        ms = [c["ms"] for c in picked if c["gen"] == gen]
        result[f"gen{gen}"] = {
            "count": len(ms),
            "total_ms": round(sum(ms), 1),
            "max_ms": round(max(ms, default=0.0), 1),
        }
    return result


def gc_report(
    collections: Sequence[dict[str, Any]], rounds: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    report: dict[str, Any] = {"whole_run": gc_between(collections, 0, math.inf), "rounds": []}
    for row in rounds:
        wall = row["wall_clock"]
        report["rounds"].append(
            {
                "round": row["round"],
                "parking": gc_between(collections, wall["parking_started"], wall["fired"]),
                "delivery": gc_between(collections, wall["fired"], wall["done"]),
            }
        )
    return report


def print_gc(report: dict[str, Any]) -> None:
    def text(part: dict[str, Any]) -> str:
        return (
            ", ".join(
                f"{gen} {v['count']}x {v['total_ms']:.0f} ms (max {v['max_ms']:.0f})"
                for gen, v in part.items()
                if v["count"]
            )
            or "none"
        )

    out(f"server garbage collections (gen0 only if >= 1 ms): {text(report['whole_run'])}")
    for row in report["rounds"]:
        out(f"    round {row['round']}: while parking: {text(row['parking'])}")
        out(f"             during delivery: {text(row['delivery'])}")


def bottleneck_verdict(rounds: Sequence[DeliveryRound]) -> dict[str, Any]:
    """Whether delivery measured the server or the load generator.

    Server and client run on a core each, in parallel. If the server process ran for a share s
    of the delivery window (its CPU time to the nanosecond, from schedstat), its own work took
    at least s of the window, so a faster client could have shortened delivery by at most
    (1 - s) of it. The per-core figures from /proc/stat also hold the kernel's loopback TCP work,
    which neither process is charged for, but they count in 10 ms ticks.
    """

    def core(row: DeliveryRound, cpu: int) -> float | None:
        share = row.cpu_busy.get(f"cpu{cpu}") if PIN else None
        return None if share is None else float(share)

    def span(values: Sequence[float | None]) -> str:
        present = [v for v in values if v is not None]
        return f"{min(present):.0%}-{max(present):.0%}" if present else "n/a"

    server = [r.server_cpu_share for r in rounds]
    client = [r.client_cpu_share for r in rounds]
    server_core = [core(r, SERVER_CPU) for r in rounds]
    client_core = [core(r, CLIENT_CPU) for r in rounds]
    outside = [r.other_cpu_s for r in rounds]
    lag_ms = 1000 * max(r.delivery_window_s * (1 - min(r.server_cpu_share, 1.0)) for r in rounds)
    noisy = [r.round for r in rounds if r.noisy]
    detail = (
        f"during delivery the server process ran {span(server)} of the window, the client process"
        f" {span(client)}; cores busy, kernel work included: server's {span(server_core)},"
        f" client's {span(client_core)}; CPU outside both processes"
        f" {min(outside):.2f}-{max(outside):.2f} s"
    )
    if min(r.delivery_window_s for r in rounds) < 0.3:
        detail += " (windows under 0.3 s: core figures are coarse)"
    if noisy:
        detail += f"; other processes ran during round(s) {noisy} (see cpu_breakdown_s)"
    both_cores = [c for c in (*server_core, *client_core) if c is not None]
    if min(server) >= 0.9:
        verdict = (
            f"server-bound: the server process ran for at least {min(server):.0%} of every"
            f" delivery window, so a faster load generator could have shortened delivery by at"
            f" most {lag_ms:.0f} ms"
        )
        if max(client) >= 0.9:
            verdict += "; the client was nearly saturated too: it kept pace, barely"
    elif max(client) >= 0.9:
        verdict = (
            "client-bound: the load generator saturated its core while the server had idle time;"
            " delivery times are upper bounds"
        )
    elif both_cores and min(both_cores) >= 0.9:
        verdict = (
            "machine-bound: neither process filled its core, but both cores were busy, the rest"
            " being kernel loopback TCP work; delivery time is what 2 cores do with client and"
            f" server on them (a faster client could save at most {lag_ms:.0f} ms)"
        )
    else:
        verdict = "neither side saturated: delivery time is latency, not a throughput limit"
    return {
        "server_cpu_share": server,
        "client_cpu_share": client,
        "server_core_busy": server_core,
        "client_core_busy": client_core,
        "max_client_lag_ms": round(lag_ms, 1),
        "noisy_rounds": noisy,
        "detail": detail,
        "verdict": verdict,
    }


def print_summary(report: dict[str, Any]) -> None:
    n = report["queues"]
    out()
    out(f"== Summary: {n:,} queues in one realm ({report['elapsed_s']} s) ==")
    local = report.get("in_process")
    if local is not None:
        memory = local["memory"]
        idle = {row["queues"]: row["median_us"] for row in local["publish_idle"]}
        parked = {row["queues"]: row for row in local["publish_parked"]}
        out(
            f"in-process memory per queue: {memory['tracemalloc_bytes_per_queue']:.0f} B"
            f" (tracemalloc), {memory['rss_bytes_per_queue']:.0f} B (RSS)"
        )
        out(
            "publish(), queues idle: "
            + ", ".join(f"{v:.2f} us at N={k:,}" for k, v in sorted(idle.items()))
        )
        out(
            "publish(), every queue long-polling: "
            + ", ".join(
                f"{row['publish']['median_us']:.0f} us at N={k:,}"
                for k, row in sorted(parked.items())
            )
        )
        collect = local["collect"]
        out(
            f"one change -> events for all {n:,} queues: {collect['total_ms']:.1f} ms"
            f" ({collect['per_queue_us']:.2f} us per queue); woken from long-polls:"
            f" {parked[n]['wake_and_format_per_queue_us']:.2f} us per queue"
        )
    http = report.get("http")
    if http is not None and "rounds" in http:
        reg = http["registration"]
        out(
            f"server memory per queue: {reg['server_rss_per_queue_kib']:.2f} KiB (RSS after"
            f" {reg['queues']:,} registrations); per parked long-poll:"
            f" {http['summary']['first_round_rss_per_parked_poll_kib']:.2f} KiB (first round)"
        )
        counted = http["summary"]["counted_rounds"]
        for row in http["rounds"]:
            lat = row["latency_ms"]
            arrived = row["all_arrived_s"]
            out(
                f"round {row['round']}: {row['delivered']:,}/{row['queues']:,} delivered;"
                f" p50 {lat['p50']} / p99 {lat['p99']} / max {lat['max']} ms;"
                f" all in {'-' if arrived is None else f'{arrived * 1000:.0f} ms'};"
                f" POST {row['post_latency_ms']:.1f} ms; server CPU {row['server_cpu_s']:.2f} s"
                + (" (disturbed: not counted)" if row["round"] not in counted else "")
            )
        out(f"load generator: {http['bottleneck']['verdict']}")
        if http["summary"]["all_rounds_disturbed"]:
            out("WARNING: other processes disturbed every round: figures are not representative")
    out(f"load average at start {report['loadavg_at_start']}, at end {report['loadavg_at_end']}")
    out(f"calibration: {report['calibration_ms']} (ms, lower = faster machine at that moment)")
