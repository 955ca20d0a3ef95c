"""Prometheus metrics (``prometheus-client``) on a registry of presenced's own.

Metrics are per process: one ``presenced serve`` is one process and one scrape target, and
several servers are several targets (Prometheus labels each with its ``instance``). The
per-request counts and latencies (``RequestStats``) are plain integers bound to their labels
once and exported at scrape time: a request costs a dict lookup, two additions and a bisect,
not prometheus-client's per-sample locks.
Values that already live in the server (index sizes, event queues) are read at scrape time by
``ServerCollector`` rather than kept up to date on every change.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import ipaddress
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

logger = logging.getLogger("presenced.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = CONTENT_TYPE_LATEST
LARGEST_REALMS = 10
"""Realms labelled one by one in the index-size metric; the rest only count in the total."""
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LONG_POLL_BUCKETS = (*LATENCY_BUCKETS, 5.0, 10.0, 30.0, 60.0, 120.0)

PRESENCE_REPORTS = Counter(
    "presenced_presence_reports",
    "Presence reports received (POST /users/me/presence).",
    registry=REGISTRY,
)
PRESENCE_WRITES = Counter(
    "presenced_presence_writes",
    "Presence reports that changed stored state (a real write).",
    registry=REGISTRY,
)
COMMIT_BATCH_SIZE = Histogram(
    "presenced_group_commit_batch_size",
    "Presence reports committed together in one transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    registry=REGISTRY,
)
COMMIT_SECONDS = Histogram(
    "presenced_group_commit_duration_seconds",
    "Time to commit one group of presence reports.",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
EVENTS_DELIVERED = Counter(
    "presenced_events_delivered",
    "Events returned to clients by GET /events (heartbeats too).",
    registry=REGISTRY,
)
PARKED_POLLS = Gauge(
    "presenced_parked_long_polls",
    "GET /events calls in progress (parked long-polls, and the few being answered).",
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "presenced_rate_limited_requests",
    "Requests refused by the rate limit (429).",
    registry=REGISTRY,
)
AUTH_FAILURES = Counter(
    "presenced_authentication_failures",
    "Requests refused for their credentials (401).",
    registry=REGISTRY,
)


class _Series:
    __slots__ = ("buckets", "count", "total")

    def __init__(self, size: int) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * size
        """Observations per bucket (not cumulative); the last is above every bound."""


class RequestStats(Collector):
    """``presenced_requests_total`` by endpoint, method and status, and the
    ``presenced_request_duration_seconds`` histogram by endpoint."""

    def __init__(self, buckets: tuple[float, ...] = LONG_POLL_BUCKETS) -> None:
        self.bounds = buckets
        self.series: dict[tuple[str, str, int], _Series] = {}

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = _Series(len(self.bounds) + 1)
        series.count += 1
        series.total += seconds
        series.buckets[bisect.bisect_left(self.bounds, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "presenced_requests",
            "HTTP requests served, by route template, method and status.",
            labels=["endpoint", "method", "status"],
        )
        by_endpoint: dict[str, tuple[list[int], float]] = {}
        for (endpoint, method, status), series in list(self.series.items()):
            requests.add_metric([endpoint, method, str(status)], series.count)
            counts, total = by_endpoint.get(endpoint, ([0] * len(series.buckets), 0.0))
            by_endpoint[endpoint] = (
                [a + b for a, b in zip(counts, series.buckets, strict=True)],
                total + series.total,
            )
        yield requests
        latency = HistogramMetricFamily(
            "presenced_request_duration_seconds",
            "Time from request start to the response written, by route template.",
            labels=["endpoint"],
        )
        for endpoint, (counts, total) in by_endpoint.items():
            cumulative = list(itertools.accumulate(counts))
            bounds = [*(str(b) for b in self.bounds), "+Inf"]
            latency.add_metric([endpoint], list(zip(bounds, cumulative, strict=True)), total)
        yield latency


REQUESTS = RequestStats()
REGISTRY.register(REQUESTS)


def observe_commit(batch_size: int, seconds: float) -> None:
    """The store's group-commit hook."""
    COMMIT_BATCH_SIZE.observe(batch_size)
    COMMIT_SECONDS.observe(seconds)


@dataclass(frozen=True)
class ServerGauges:
    """Where the collector reads a server's state (callables, so nothing is copied)."""

    index_sizes: Callable[[], dict[int, int]]
    """Presence entries per realm id, for the realms this process has indexed."""
    event_queues: Callable[[], int]


class ServerCollector(Collector):
    """Reads the state of the servers running in this process (normally one) at scrape time."""

    def __init__(self, largest: int = LARGEST_REALMS) -> None:
        self.largest = largest
        self.servers: list[ServerGauges] = []

    @contextlib.contextmanager
    def tracking(self, gauges: ServerGauges) -> Iterator[None]:
        self.servers.append(gauges)
        try:
            yield
        finally:
            self.servers.remove(gauges)

    def collect(self) -> Iterator[Metric]:
        sizes: dict[int, int] = {}
        queue_count = 0
        for server in list(self.servers):
            for realm_id, size in server.index_sizes().items():
                sizes[realm_id] = sizes.get(realm_id, 0) + size
            queue_count += server.event_queues()
        total = GaugeMetricFamily(
            "presenced_index_entries_total",
            "Presence entries in this process's in-memory realm indexes, all realms.",
        )
        total.add_metric([], sum(sizes.values()))
        yield total
        realms = GaugeMetricFamily(
            "presenced_index_realms", "Realms indexed in this process's memory."
        )
        realms.add_metric([], len(sizes))
        yield realms
        largest = GaugeMetricFamily(
            "presenced_index_entries",
            f"Presence entries in the index of each of the {self.largest} largest realms.",
            labels=["realm_id"],
        )
        for realm_id, size in sorted(sizes.items(), key=lambda kv: -kv[1])[: self.largest]:
            largest.add_metric([str(realm_id)], size)
        yield largest
        queues = GaugeMetricFamily(
            "presenced_event_queues",
            "Event queues: this process's, or every process's where they live in Redis "
            "(read every 5 s).",
        )
        queues.add_metric([], queue_count)
        yield queues


SERVERS = ServerCollector()
REGISTRY.register(SERVERS)


class MetricsPortError(OSError):
    """No metrics port could be bound (every one of the range is taken)."""


def exposition() -> bytes:
    return generate_latest(REGISTRY)


class AddressAllowList:
    """Client addresses allowed to read the metrics: IPs or networks, comma-separated."""

    def __init__(self, spec: str) -> None:
        self.networks = [
            ipaddress.ip_network(item.strip(), strict=False)
            for item in spec.split(",")
            if item.strip()
        ]

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def parse_allow_list(spec: str) -> AddressAllowList:
    """Raises ``ValueError`` naming the bad entry."""
    return AddressAllowList(spec)


@contextlib.contextmanager
def separate_port(host: str, ports: range) -> Iterator[int]:
    """The metrics on their own HTTP port while the app runs: the first free one of ``ports``
    (``PRESENCED_METRICS_PORT`` and up, one per worker of ``serve --workers N``, so each
    worker is its own scrape target and a replaced worker takes the port its predecessor
    left). Yields the port."""
    for port in ports:
        try:
            server, thread = start_http_server(port, addr=host, registry=REGISTRY)
            break
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or port == ports[-1]:
                span = f"{ports[0]}" if len(ports) == 1 else f"{ports[0]}-{ports[-1]}"
                raise MetricsPortError(
                    f"cannot serve the metrics on {host}:{span}: {exc.strerror}"
                ) from None
    logger.info("metrics on http://%s:%d/metrics", host, port)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
