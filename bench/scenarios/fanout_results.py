"""events_fanout part B's typed results: how the long-polls parked, and one delivery round.
``to_json()`` gives the shape the JSON report has always had."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ParkWait:
    """How waiting for N long-polls to park went (see fanout_rounds.wait_parked)."""

    all_requests_sent_s: float
    confirmed_parked_after_s: float | None
    fired_after_s: float
    parked: bool
    machine_quiet_before_fire: bool
    requests_sent: int
    connections_opened: int
    connections_reused: int
    established_connections: int
    checks: int


@dataclass(frozen=True)
class Parking(ParkWait):
    """ParkWait, and what parking the polls cost."""

    wall_s: float
    server_cpu_s: float
    server_cpu_per_poll_us: float
    client_cpu_s: float


@dataclass(frozen=True)
class DeliveryLatency:
    """Milliseconds from the POST to each long-poll's response read in full."""

    p50: float | None
    p99: float | None
    max: float | None
    min: float | None


@dataclass(frozen=True)
class CpuBreakdown:
    """Seconds over the delivery window: the two processes', and all CPUs' by kind."""

    server_user: float
    server_system: float
    client_user: float
    client_system: float
    all_cpus_user: float
    all_cpus_system: float
    all_cpus_irq_softirq: float
    all_cpus_steal: float
    other_processes_user: float


@dataclass(frozen=True)
class ServerRss:
    before_polls: int
    parked: int
    after: int


@dataclass(frozen=True)
class DeliveryRound:
    round: int
    wall_clock: dict[str, float]
    """Unix times: parking_started, fired, done (to place the server's GC records)."""
    queues: int
    reporter_user_id: int
    delivered: int
    missing_or_wrong: int
    problems: dict[str, int]
    responses_before_the_change: int
    post_status: int
    post_ok: bool
    post_latency_ms: float
    latency_ms: DeliveryLatency
    all_arrived_s: float | None
    delivery_window_s: float
    server_cpu_s: float
    server_cpu_per_delivery_us: float
    server_cpu_share: float
    client_cpu_s: float
    client_cpu_share: float
    cpu_busy: dict[str, float]
    other_cpu_s: float
    cpu_breakdown_s: CpuBreakdown
    noisy: bool
    """Other processes used more than 50 ms + 5 % of the window: repeated, not counted."""
    deliveries_per_s: float | None
    parking: Parking
    server_rss_kib: ServerRss
    server_rss_per_parked_poll_kib: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
