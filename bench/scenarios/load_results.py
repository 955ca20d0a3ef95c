"""One measured phase of a load scenario as a typed result, built from the generators' raw
figures and the servers' /proc readings at the window's edges; ``to_json()`` is the shape the
JSON report, the tables and the targets read."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from harness.procfs import Snapshot, cpu_busy
from harness.stats import Latency, percentile
from scenarios.model import Phase

SLOW_MS = 25
"""A request slower than this counts as slow (loadgen.py's SLOW_MS)."""


@dataclass(frozen=True)
class LabelLatency:
    """Latency of one kind of request (first, active, idle, legacy, ...)."""

    n: int
    p50: float
    p99: float


@dataclass(frozen=True)
class SlowSecond:
    """One second of the phase (by send slot) with slow requests in it."""

    second: int
    requests: int
    over: int
    max_ms: float


@dataclass(frozen=True)
class SlowRequests:
    over_ms: int
    count: int
    worst_seconds: list[SlowSecond]


@dataclass(frozen=True)
class PhaseResult:
    phase: str
    label: str
    mode: str
    measured: bool
    shown: bool
    requests_ok: int
    errors: int
    error_kinds: dict[str, int]
    error_samples: list[str]
    window_s: float
    req_per_s: float | None
    latency_ms: Latency
    latency_by_request: dict[str, LabelLatency]
    server_processes: int
    server_cpu_s: float
    server_cpu_util: float | None
    server_cpu_s_per_1k: float | None
    """Server CPU seconds per 1,000 requests, summed over every server process."""
    service_cpu_s_per_1k: dict[str, float | None]
    """The same for the backend's own processes (postgres, redis), if any."""
    bytes_per_request: int | None
    """Decoded body bytes."""
    wire_bytes_per_request: int | None
    """Body bytes as received (compressed, if the server compressed them)."""
    gzip_replies: int
    entries_per_reply: float | None
    nonempty_replies: int
    presence_replies: int
    presence_writes: int
    cursor_regressions: int
    server_rss_mib: float
    server_rss_peak_mib: float
    cpu_busy: dict[str, float]
    generator_cpu_per_process: list[float]
    generator_cpu_total: float | None
    other_cpu_util: float | None
    slow_requests: SlowRequests
    send_lag_ms: Latency | None
    """Open loop: how late the generators sent, against their schedule."""
    offered_req_per_s: float | None
    """Open loop: the rate the schedule asked for."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        services = data.pop("service_cpu_s_per_1k")
        data.update({f"{name}_cpu_s_per_1k": value for name, value in services.items()})
        for optional in ("send_lag_ms", "offered_req_per_s"):
            if data[optional] is None:
                del data[optional]
        return data


def _slow_requests(parts: list[dict[str, Any]]) -> SlowRequests:
    seconds: dict[int, list[float]] = {}
    for part in parts:
        for key, (n, slowest, slow) in part["seconds"].items():
            acc = seconds.setdefault(int(key), [0, 0.0, 0])
            acc[0] += n
            acc[1] = max(acc[1], slowest)
            acc[2] += slow
    worst = sorted(seconds.items(), key=lambda kv: -kv[1][2])[:3]
    return SlowRequests(
        over_ms=SLOW_MS,
        count=int(sum(v[2] for v in seconds.values())),
        worst_seconds=[
            SlowSecond(k, int(v[0]), int(v[2]), round(v[1], 1)) for k, v in worst if v[2] > 0
        ],
    )


def summarize_phase(
    phase: Phase,
    parts: list[dict[str, Any]],
    before: Snapshot,
    after: Snapshot,
    end: Snapshot,
    writes: int,
    n_users: int,
    services_cpu: dict[str, float],
) -> PhaseResult:
    """``parts``: each generator process's figures for the phase; ``before``/``after``: the
    servers at the window's edges; ``end``: once every request is done."""
    latencies: list[float] = []
    by_label: dict[str, list[float]] = {}
    for part in parts:
        for label, values in part["latencies_ms"].items():
            by_label.setdefault(label, []).extend(values)
            latencies.extend(values)
    latencies.sort()
    ok = sum(part["ok"] for part in parts)
    errors: Counter[str] = Counter()
    samples: list[str] = []
    for part in parts:
        errors.update(part["errors"])
        samples.extend(part["error_samples"])
    unfinished = sum(part["unfinished"] for part in parts)
    if unfinished:
        errors["unfinished (cancelled after the grace period)"] += unfinished
    if phase.counted:
        t0 = min(part["t0"] for part in parts)
        ends = [part["last_done"] for part in parts if part["last_done"] is not None]
        window = (max(ends) - t0) if ends else 0.0
        in_window = ok
    else:
        window = phase.duration
        in_window = sum(part["completed_in_window"] for part in parts)
    cpu = after.cpu_s - before.cpu_s
    busy = cpu_busy(before.cpus, after.cpus)
    lags = sorted(v for part in parts for v in part["send_lag_ms"])
    replies = sum(part["presence_replies"] for part in parts)
    generator_cpu = sum(p["cpu_s"] for p in parts)

    def per_1k(seconds: float) -> float | None:
        return round(seconds / in_window * 1000, 3) if in_window else None

    def per_window(value: float, digits: int) -> float | None:
        return round(value / window, digits) if window > 0 else None

    return PhaseResult(
        phase=phase.name,
        label=phase.label,
        mode=phase.mode,
        measured=phase.measured,
        shown=phase.shown,
        requests_ok=ok,
        errors=sum(errors.values()),
        error_kinds=dict(errors),
        error_samples=samples[:5],
        window_s=round(window, 3),
        req_per_s=per_window(in_window, 1),
        latency_ms=Latency.of(latencies),
        latency_by_request={
            label: LabelLatency(
                len(values),
                round(percentile(sorted(values), 50), 2),
                round(percentile(sorted(values), 99), 2),
            )
            for label, values in sorted(by_label.items())
        },
        server_processes=after.processes,
        server_cpu_s=round(cpu, 2),
        server_cpu_util=per_window(cpu, 3),
        server_cpu_s_per_1k=per_1k(cpu),
        service_cpu_s_per_1k={name: per_1k(used) for name, used in services_cpu.items()},
        bytes_per_request=round(sum(p["body_bytes"] for p in parts) / ok) if ok else None,
        wire_bytes_per_request=round(sum(p.get("wire_bytes", 0) for p in parts) / ok)
        if ok
        else None,
        gzip_replies=sum(p.get("gzip_replies", 0) for p in parts),
        entries_per_reply=round(sum(p["entries"] for p in parts) / replies, 1) if replies else None,
        nonempty_replies=sum(p["nonempty"] for p in parts),
        presence_replies=replies,
        presence_writes=writes,
        cursor_regressions=sum(p["cursor_regressions"] for p in parts),
        server_rss_mib=round(end.rss_kib / 1024, 1),
        server_rss_peak_mib=round(end.hwm_kib / 1024, 1),
        cpu_busy=busy,
        generator_cpu_per_process=[
            round(part["cpu_s"] / part["wall_s"], 3) if part["wall_s"] else 0.0 for part in parts
        ],
        generator_cpu_total=per_window(generator_cpu, 3),
        other_cpu_util=round(max(0.0, sum(busy.values()) - (cpu + generator_cpu) / window), 2)
        if window > 0
        else None,
        slow_requests=_slow_requests(parts),
        send_lag_ms=Latency.of(lags) if lags else None,
        offered_req_per_s=round(n_users / phase.period, 1) if phase.mode == "open" else None,
    )
