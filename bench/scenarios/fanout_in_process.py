"""events_fanout part A: the event system in this process, no HTTP.

N queues in one realm (a third each modern, slim and legacy): memory per queue, publish() with
idle queues and with every queue long-polling, and one change turned into events for all N.
"""

from __future__ import annotations

import asyncio
import gc
import linecache
import statistics
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.procfs import rss_kib
from harness.stats import NanosSummary, out
from presenced.clock import system_clock
from presenced.events.changes import PresenceChange
from presenced.events.formats import PresenceFormat
from presenced.events.system import EventSettings, InProcessEventSystem

FORMATS = (PresenceFormat.MODERN, PresenceFormat.SLIM, PresenceFormat.LEGACY)
"""Queue i gets FORMATS[i % 3]: a third each."""
REALM_ID = 1
PUBLISH_SIZES = (100, 10_000)
PUBLISH_SAMPLES = 101


def make_change(user_id: int) -> PresenceChange:
    now = time.time()
    return PresenceChange(
        user_id=user_id,
        email=f"user{user_id}@bench.example",
        date_joined=now - 86_400,
        last_active_time=now,
        last_connected_time=now,
        server_timestamp=now,
    )


# Part A: the event system in this process


@dataclass(frozen=True)
class LocalQueue:
    queue_id: str
    user_id: int
    fmt: PresenceFormat


def register_queues(system: InProcessEventSystem, n: int) -> list[LocalQueue]:
    """N queues in one realm, as POST /register makes them (a frozenset per queue)."""
    queues = []
    for i in range(n):
        fmt = FORMATS[i % 3]
        queue = system.register_now(i + 1, REALM_ID, frozenset(["presence"]), fmt, None)
        queues.append(LocalQueue(queue.queue_id, queue.user_id, fmt))
    return queues


def fill(system: InProcessEventSystem, n: int) -> None:
    """Like register_queues, keeping nothing outside the system (for memory measurements)."""
    for i in range(n):
        system.register_now(i + 1, REALM_ID, frozenset(["presence"]), FORMATS[i % 3], None)


def new_system() -> InProcessEventSystem:
    return InProcessEventSystem(EventSettings(), system_clock)


def memory_per_queue(n: int) -> dict[str, Any]:
    """Bytes per queue by tracemalloc (Python allocations) and by RSS (what the OS sees)."""
    fill(new_system(), 300)  # warm up code paths and free lists
    gc.collect()
    rss_before = rss_kib()
    system = new_system()
    fill(system, n)
    gc.collect()
    rss_after = rss_kib()
    del system
    gc.collect()

    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    system = new_system()
    fill(system, n)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    ignore = (tracemalloc.Filter(False, tracemalloc.__file__),)
    stats = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    traced = sum(s.size_diff for s in stats)
    top = [
        {
            "where": f"{Path(s.traceback[0].filename).name}:{s.traceback[0].lineno}",
            "code": linecache.getline(s.traceback[0].filename, s.traceback[0].lineno).strip(),
            "bytes_per_queue": round(s.size_diff / n, 1),
        }
        for s in sorted(stats, key=lambda s: -s.size_diff)[:6]
    ]
    del system
    gc.collect()
    return {
        "queues": n,
        "tracemalloc_bytes_per_queue": round(traced / n, 1),
        "rss_bytes_per_queue": round((rss_after - rss_before) * 1024 / n, 1),
        "rss_delta_kib": rss_after - rss_before,
        "top_allocation_sites": top,
    }


def publish_idle(n: int) -> dict[str, Any]:
    """publish() timed alone, N queues open and nobody polling."""
    system = new_system()
    register_queues(system, n)
    samples = []
    gc.collect()
    for k in range(PUBLISH_SAMPLES):
        change = make_change(n + 1 + k)
        start = time.perf_counter_ns()
        system.publish_now(REALM_ID, change)
        samples.append(time.perf_counter_ns() - start)
    return {"queues": n, **NanosSummary.of(samples).to_json()}


async def collect_all(n: int) -> dict[str, Any]:
    """One change published, then get_events(dont_block=True) for every queue, timed."""
    system = new_system()
    queues = register_queues(system, n)
    by_format = {fmt: [q for q in queues if q.fmt is fmt] for fmt in FORMATS}
    gc.collect()
    start = time.perf_counter_ns()
    system.publish_now(REALM_ID, make_change(n + 1))
    publish_ns = time.perf_counter_ns() - start
    per_format: dict[str, Any] = {}
    problems: Counter[str] = Counter()
    total_ns = 0
    for fmt, group in by_format.items():
        results = []
        start = time.perf_counter_ns()
        for q in group:
            delivery = await system.get_events(q.queue_id, q.user_id, None, True)
            results.append(delivery.events)
        elapsed = time.perf_counter_ns() - start
        total_ns += elapsed
        per_format[fmt.value] = {
            "queues": len(group),
            "total_ms": round(elapsed / 1e6, 2),
            "per_queue_us": round(elapsed / max(len(group), 1) / 1000, 2),
        }
        for events in results:
            if len(events) != 1 or events[0].get("type") != "presence":
                problems[f"{fmt.value}: {len(events)} events"] += 1
    return {
        "queues": n,
        "publish_us": round(publish_ns / 1000, 2),
        "total_ms": round(total_ns / 1e6, 2),
        "per_queue_us": round(total_ns / n / 1000, 2),
        "by_format": per_format,
        "problems": dict(problems),
    }


async def publish_parked(n: int, rounds: int) -> dict[str, Any]:
    """Every queue long-polling (get_events blocking): publish(), then all N woken and served."""
    system = new_system()
    queues = register_queues(system, n)
    publish_samples: list[int] = []
    deliver_samples: list[int] = []
    problems: Counter[str] = Counter()
    for r in range(rounds):
        last = None if r == 0 else r - 1
        tasks = [
            asyncio.create_task(system.get_events(q.queue_id, q.user_id, last, False))
            for q in queues
        ]
        while sum(system.queue(q.queue_id, q.user_id).connected for q in queues) < n:
            await asyncio.sleep(0)
        gc.collect()
        start = time.perf_counter_ns()
        system.publish_now(REALM_ID, make_change(n + 1 + r))
        published = time.perf_counter_ns()
        deliveries = await asyncio.gather(*tasks)
        done = time.perf_counter_ns()
        results = [d.events for d in deliveries]
        publish_samples.append(published - start)
        deliver_samples.append(done - published)
        for events in results:
            if len(events) != 1 or events[0].get("id") != r:
                problems[f"round {r}: {len(events)} events"] += 1
    return {
        "queues": n,
        "publish": NanosSummary.of(publish_samples).to_json(),
        "wake_and_format_all_ms": [round(s / 1e6, 2) for s in deliver_samples],
        "wake_and_format_per_queue_us": round(statistics.median(deliver_samples) / n / 1000, 2),
        "problems": dict(problems),
    }


async def part_a(n: int, rounds: int) -> dict[str, Any]:
    out(f"== Part A: in-process event system, {n:,} queues in one realm (no HTTP) ==")
    out("   formats: 1/3 modern (simplified_presence_events), 1/3 slim, 1/3 legacy")
    memory = memory_per_queue(n)
    out(
        f"memory per queue: {memory['tracemalloc_bytes_per_queue']:.0f} B (tracemalloc), "
        f"{memory['rss_bytes_per_queue']:.0f} B (RSS delta {memory['rss_delta_kib']:,} KiB / N)"
    )
    for site in memory["top_allocation_sites"]:
        out(f"    {site['bytes_per_queue']:>7.1f} B/queue  {site['where']:<22} {site['code'][:60]}")

    sizes = sorted({*PUBLISH_SIZES, n})
    idle = [publish_idle(size) for size in sizes]
    out(f"publish(), queues idle (nobody polling), median of {PUBLISH_SAMPLES} changes:")
    for row in idle:
        out(
            f"    N={row['queues']:>6,}: median {row['median_us']:.2f} us, p90 {row['p90_us']:.2f},"
            f" max {row['max_us']:.2f} us"
        )

    collect = await collect_all(n)
    out(
        f"one change -> events for all {n:,} queues (get_events dont_block): "
        f"{collect['total_ms']:.1f} ms total, {collect['per_queue_us']:.2f} us per queue"
    )
    for fmt, row in collect["by_format"].items():
        out(f"    {fmt:<7} {row['queues']:>6,} queues: {row['per_queue_us']:.2f} us per queue")
    if collect["problems"]:
        out(f"    PROBLEMS: {collect['problems']}")

    parked = [await publish_parked(size, rounds) for size in sizes]
    out(f"publish() with every queue parked in a long-poll ({rounds} rounds):")
    for row in parked:
        out(
            f"    N={row['queues']:>6,}: publish median {row['publish']['median_us']:.1f} us; "
            f"wake + format all: {', '.join(f'{v:.1f}' for v in row['wake_and_format_all_ms'])} ms"
            f" ({row['wake_and_format_per_queue_us']:.2f} us per queue)"
        )
        if row["problems"]:
            out(f"    PROBLEMS: {row['problems']}")
    out()
    return {"memory": memory, "publish_idle": idle, "collect": collect, "publish_parked": parked}
