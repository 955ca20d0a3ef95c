"""events_fanout part B, the rounds: a server, N queues registered, then per round N parked
long-polls and one presence report delivered to all of them, timed and checked."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp

from harness.accounts import Account, NewUser, create_accounts, create_realms
from harness.backends import BackendChoice, bench_backend
from harness.logs import GC_TRACE_DIR, scan_logs
from harness.procfs import cpu_busy, cpu_jiffies, cpu_kinds, cpu_seconds, tcp_server_state
from harness.servers import ServerGroup, ServerOptions
from harness.stats import out, percentile_of
from presenced.events.formats import PresenceFormat
from presenced.store.base import Store
from scenarios.fanout_http import (
    PollResult,
    RemoteQueue,
    SentCounter,
    check_event,
    long_poll,
    poll_session,
    register_all,
    register_one,
)
from scenarios.fanout_report import bottleneck_verdict, gc_report, print_gc, print_round
from scenarios.fanout_results import (
    CpuBreakdown,
    DeliveryLatency,
    DeliveryRound,
    Parking,
    ParkWait,
    ServerRss,
)

REPEATS = 2
"""Rounds disturbed by other processes (see "noisy") are repeated, at most this many times."""
PARK_DEADLINE_S = 30.0
QUIET_DEADLINE_S = 25.0
"""From the first long-poll sent; heartbeats start 45 s after a poll parks."""


async def wait_parked(
    servers: ServerGroup,
    n: int,
    sent: SentCounter,
    tasks: Sequence[asyncio.Task[PollResult]],
) -> ParkWait:
    """Until every request is written, then >= 2 s, then until, over 0.5 s: the accept queue is
    empty, N connections are established on the server port and the server is idle (<= 10 ms
    CPU). Then, if other processes are using the CPUs, a few more seconds for them to stop."""
    started = time.perf_counter()
    while sent.count < n and time.perf_counter() < started + PARK_DEADLINE_S:
        if all(t.done() for t in tasks):
            break
        await asyncio.sleep(0.05)
    all_sent = time.perf_counter() - started
    await asyncio.sleep(2.0)
    checks = 0
    parked = quiet = False
    parked_after = None
    while True:
        checks += 1
        server0, client0, jiffies0 = servers.cpu_seconds(), cpu_seconds(os.getpid()), cpu_jiffies()
        await asyncio.sleep(0.5)
        server = servers.cpu_seconds() - server0
        client = cpu_seconds(os.getpid()) - client0
        kinds = cpu_kinds(jiffies0, cpu_jiffies())
        others = kinds.user + kinds.system + kinds.irq_softirq - server - client
        backlog, established = tcp_server_state(servers.ports)
        elapsed = time.perf_counter() - started
        parked = server <= 0.01 and backlog == 0 and established >= n
        if parked and parked_after is None:
            parked_after = elapsed
        quiet = others <= 0.05
        if parked and quiet:
            break
        if not parked and elapsed > PARK_DEADLINE_S:
            out(
                f"    WARNING: not confirmed parked after {elapsed:.0f} s (server CPU"
                f" {server:.2f} s in 0.5 s, accept backlog {backlog},"
                f" established {established}/{n})"
            )
            break
        if parked and elapsed > QUIET_DEADLINE_S:
            break  # other processes still busy: the round goes ahead, marked noisy if need be
    return ParkWait(
        all_requests_sent_s=round(all_sent, 3),
        confirmed_parked_after_s=None if parked_after is None else round(parked_after, 3),
        fired_after_s=round(time.perf_counter() - started, 3),
        parked=parked,
        machine_quiet_before_fire=quiet,
        requests_sent=sent.count,
        connections_opened=sent.created,
        connections_reused=sent.reused,
        established_connections=established,
        checks=checks,
    )


async def delivery_round(
    base: str,
    servers: ServerGroup,
    queues: Sequence[RemoteQueue],
    reporter: Account,
    round_index: int,
    session: aiohttp.ClientSession,
    sent: SentCounter,
) -> DeliveryRound:
    """Park a long-poll on every queue, let ``reporter`` report, time every delivery."""
    n = len(queues)
    last_event_id = round_index - 1  # every queue got exactly one event per earlier round
    sent.reset()
    fire_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        gc.collect()
        rss_before = servers.rss_kib()
        server_cpu0 = servers.cpu_seconds()
        client_cpu0 = cpu_seconds(os.getpid())
        park_started = time.perf_counter()
        wall = {"parking_started": time.time()}
        tasks = [asyncio.create_task(long_poll(session, base, q, last_event_id)) for q in queues]
        parked = await wait_parked(servers, n, sent, tasks)
        early = sum(t.done() for t in tasks)
        rss_parked = servers.rss_kib()
        server_cpu_parked = servers.cpu_seconds() - server_cpu0
        client_cpu_parked = cpu_seconds(os.getpid()) - client_cpu0
        park_wall = time.perf_counter() - park_started

        async with fire_session.get(base + "/api/v1/server_settings") as resp:
            await resp.read()  # open the reporter's connection before the clock starts
        gc.collect()
        gc.disable()  # no collection pause in the load generator while it times arrivals
        jiffies0 = cpu_jiffies()
        server0, client0 = servers.process_cpu(), os.times()
        server_cpu0, client_cpu0 = servers.cpu_seconds(), cpu_seconds(os.getpid())
        fired = time.perf_counter()
        wall["fired"] = time.time()
        async with fire_session.post(
            base + "/api/v1/users/me/presence",
            data={"status": "active"},
            headers={"Authorization": reporter.authorization},
        ) as resp:
            post_body = await resp.read()
            post_status = resp.status
        post_done = time.perf_counter()
        finished, _pending = await asyncio.wait(tasks, timeout=40)
        waited = time.perf_counter()
        wall["done"] = time.time()
        server_cpu = servers.cpu_seconds() - server_cpu0
        client_cpu = cpu_seconds(os.getpid()) - client_cpu0
        server1, client1 = servers.process_cpu(), os.times()
        jiffies1 = cpu_jiffies()
        gc.enable()
        server_user, server_sys = server1[0] - server0[0], server1[1] - server0[1]
        client_user, client_sys = client1.user - client0.user, client1.system - client0.system
        busy = cpu_busy(jiffies0, jiffies1)
        kinds = cpu_kinds(jiffies0, jiffies1)
        rss_after = servers.rss_kib()
        for task in tasks:
            task.cancel()
    finally:
        await fire_session.close()

    problems: Counter[str] = Counter()
    latencies: list[float] = []
    for queue, task in zip(queues, tasks, strict=True):
        if task not in finished or task.cancelled():
            problems["no response within 40 s"] += 1
            continue
        result = task.result()
        problem = check_event(result, queue, reporter, round_index)
        if problem is not None:
            problems[problem] += 1
        else:
            latencies.append(result.arrived - fired)
    delivered = len(latencies)
    window = waited - fired
    last_arrival = max(latencies, default=float("nan"))
    return DeliveryRound(
        round=round_index,
        wall_clock=wall,
        queues=n,
        reporter_user_id=reporter.user_id,
        delivered=delivered,
        missing_or_wrong=n - delivered,
        problems=dict(problems),
        responses_before_the_change=early,
        post_status=post_status,
        post_ok=post_status == 200 and json.loads(post_body).get("result") == "success",
        post_latency_ms=round((post_done - fired) * 1000, 2),
        latency_ms=DeliveryLatency(
            p50=round(percentile_of(latencies, 50) * 1000, 1) if latencies else None,
            p99=round(percentile_of(latencies, 99) * 1000, 1) if latencies else None,
            max=round(last_arrival * 1000, 1) if latencies else None,
            min=round(min(latencies) * 1000, 1) if latencies else None,
        ),
        all_arrived_s=round(last_arrival, 3) if delivered == n else None,
        delivery_window_s=round(window, 3),
        server_cpu_s=round(server_cpu, 3),
        server_cpu_per_delivery_us=round(server_cpu / max(delivered, 1) * 1e6, 1),
        server_cpu_share=round(server_cpu / window, 3),
        client_cpu_s=round(client_cpu, 3),
        client_cpu_share=round(client_cpu / window, 3),
        cpu_busy=busy,
        other_cpu_s=round(sum(busy.values()) * window - server_cpu - client_cpu, 3),
        cpu_breakdown_s=CpuBreakdown(
            server_user=round(server_user, 2),
            server_system=round(server_sys, 2),
            client_user=round(client_user, 2),
            client_system=round(client_sys, 2),
            all_cpus_user=round(kinds.user, 2),
            all_cpus_system=round(kinds.system, 2),
            all_cpus_irq_softirq=round(kinds.irq_softirq, 2),
            all_cpus_steal=round(kinds.steal, 2),
            other_processes_user=round(kinds.user - server_user - client_user, 2),
        ),
        noisy=kinds.user - server_user - client_user + kinds.steal > 0.05 + 0.05 * window,
        deliveries_per_s=round(delivered / last_arrival, 1) if latencies else None,
        parking=Parking(
            **asdict(parked),
            wall_s=round(park_wall, 3),
            server_cpu_s=round(server_cpu_parked, 3),
            server_cpu_per_poll_us=round(server_cpu_parked / n * 1e6, 1),
            client_cpu_s=round(client_cpu_parked, 3),
        ),
        server_rss_kib=ServerRss(rss_before, rss_parked, rss_after),
        server_rss_per_parked_poll_kib=round((rss_parked - rss_before) / n, 2),
    )


async def create_fanout_accounts(store: Store, count: int) -> list[Account]:
    """The root realm, ``count`` users and one API key each, written through the store API."""
    await store.migrate()
    now = time.time()
    realms = await create_realms(store, [""], now)
    started = time.perf_counter()

    def progress(done: int) -> None:
        if done % 2000 < 500 or done == count:
            out(f"    {done:,}/{count:,} users ({time.perf_counter() - started:.1f} s)")

    wanted = [
        NewUser(realms[""], f"bench{i}@example.com", f"Bench bench{i}@example.com")
        for i in range(count)
    ]
    return await create_accounts(store, wanted, now, chunk_size=500, progress=progress)


async def part_b(args: argparse.Namespace) -> dict[str, Any]:
    n, rounds, keep = args.queues, args.rounds, args.keep
    out(f"== Part B: end to end over HTTP, {n:,} queues, {rounds} round(s) ==")
    workdir = Path(tempfile.mkdtemp(prefix="presenced-bench-"))
    result: dict[str, Any] = {"workdir": str(workdir) if keep else None}
    try:
        choice = BackendChoice(args.store, args.redis, args.postgres_url, args.redis_url)
        result["backend"] = choice.describe()
        async with bench_backend(choice, workdir) as backend:
            # Queue owners, a reporter per round (and per repeat of a disturbed round), a
            # warm-up user.
            count = n + rounds + REPEATS + 1
            out(f"creating the realm and {count:,} users with one API key each (store API) ...")
            started = time.perf_counter()
            store = await backend.open_store()
            try:
                accounts = await create_fanout_accounts(store, count)
            finally:
                await store.close()
            result["create_users_s"] = round(time.perf_counter() - started, 2)
            owners, reporters, warmup = accounts[:n], accounts[n:-1], accounts[-1]
            options = ServerOptions(
                log_level=args.server_log_level,
                env={**backend.server_env(), "PRESENCED_RATE_LIMIT_REQUESTS": "0"},
                pythonpath=(str(GC_TRACE_DIR),) if args.trace_server_gc else (),
                raise_nofile=True,
            )
            servers = ServerGroup(options, workdir)
            result["server_argv"] = servers.argvs[0]
            out(f"starting: {' '.join(servers.argvs[0])}")
            try:
                result.update(
                    await serve_and_measure(
                        servers, owners, reporters, warmup, args.concurrency, rounds
                    )
                )
            finally:
                result["server_exit"] = servers.stop()[0]
                scan, collections = scan_logs(servers.logs)
                result["server_log"] = {
                    "lines": scan.lines,
                    "flagged_lines": scan.flagged_lines,
                    "flagged_sample": scan.first if scan.flagged_lines else [],
                }
        if args.trace_server_gc:
            result["server_gc"] = gc_report(collections, result["rounds"])
            print_gc(result["server_gc"])
        out(
            f"server {result['server_exit']}; log: {result['server_log']['lines']} lines, "
            f"{result['server_log']['flagged_lines']} flagged"
        )
        for line in result["server_log"]["flagged_sample"]:
            out(f"    | {line}")
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


async def serve_and_measure(
    servers: ServerGroup,
    owners: Sequence[Account],
    reporters: Sequence[Account],
    warmup: Account,
    concurrency: int,
    rounds: int,
) -> dict[str, Any]:
    base = servers.base_url
    pid = servers.procs[0].pid
    result: dict[str, Any] = {}
    result["server_startup_s"] = round(await servers.wait_ready(), 2)
    async with aiohttp.ClientSession() as session:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        result["server_pid_cmdline"] = cmdline.strip()
        result["server_affinity"] = sorted(os.sched_getaffinity(pid))
        # Warm the server's code paths once: register, delete, report.
        queue = await register_one(session, base, warmup, PresenceFormat.MODERN)
        headers = {"Authorization": warmup.authorization}
        async with session.delete(
            base + "/api/v1/events", params={"queue_id": queue.queue_id}, headers=headers
        ) as resp:
            await resp.read()
        async with session.post(
            base + "/api/v1/users/me/presence", data={"status": "active"}, headers=headers
        ) as resp:
            await resp.read()
    up = result["server_startup_s"]
    out(f"server up after {up} s (pid {pid}, CPUs {result['server_affinity']})")

    await asyncio.sleep(0.5)
    rss0 = servers.rss_kib()
    cpu0 = servers.cpu_seconds()
    started = time.perf_counter()
    queues, errors = await register_all(base, owners, concurrency)
    reg_wall = time.perf_counter() - started
    reg_cpu = servers.cpu_seconds() - cpu0
    await asyncio.sleep(0.5)
    gc.collect()
    rss1 = servers.rss_kib()
    result["registration"] = {
        "queues": len(queues),
        "errors": dict(errors),
        "wall_s": round(reg_wall, 2),
        "per_s": round(len(queues) / reg_wall, 1),
        "concurrency": concurrency,
        "server_cpu_s": round(reg_cpu, 2),
        "server_cpu_per_register_us": round(reg_cpu / max(len(queues), 1) * 1e6, 1),
        "server_rss_kib_before": rss0,
        "server_rss_kib_after": rss1,
        "server_rss_per_queue_kib": round((rss1 - rss0) / max(len(queues), 1), 2),
    }
    reg = result["registration"]
    out(
        f"server RSS before any queue: {rss0 / 1024:.1f} MiB; after {len(queues):,} registrations:"
        f" {rss1 / 1024:.1f} MiB -> {reg['server_rss_per_queue_kib']:.2f} KiB per queue"
    )
    out(
        f"registered {len(queues):,} queues in {reg_wall:.1f} s ({reg['per_s']:.0f}/s,"
        f" {concurrency} at a time), server CPU {reg_cpu:.1f} s"
        f" ({reg['server_cpu_per_register_us']:.0f} us per register)"
    )
    if errors:
        out(f"    REGISTRATION ERRORS: {dict(errors)}")
    if not queues:
        raise RuntimeError("no queue could be registered")

    round_rows: list[DeliveryRound] = []
    sent = SentCounter()
    async with poll_session(sent) as session:
        for r, reporter in enumerate(reporters):
            row = await delivery_round(base, servers, queues, reporter, r, session, sent)
            print_round(row)
            round_rows.append(row)
            if sum(not done.noisy for done in round_rows) == rounds:
                break
            if row.noisy and r + 1 < len(reporters):
                out("    (another process disturbed this round: it is repeated, not counted)")
    result["rounds"] = [row.to_json() for row in round_rows]
    counted = [row for row in round_rows if not row.noisy] or round_rows
    result["summary"] = summarize_rounds(counted, round_rows[0])
    result["bottleneck"] = bottleneck_verdict(counted)
    out(f"  load generator check: {result['bottleneck']['detail']}")
    out(f"    -> {result['bottleneck']['verdict']}")
    return result


def summarize_rounds(rows: Sequence[DeliveryRound], first: DeliveryRound) -> dict[str, Any]:
    """Medians over the counted rounds; memory from the first round (the only one that grows
    the server: later rounds reuse what it freed)."""

    def median_of(values: Sequence[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return round(statistics.median(present), 3) if present else None

    return {
        "counted_rounds": [r.round for r in rows],
        "all_rounds_disturbed": all(r.noisy for r in rows),
        "delivered_all_rounds": all(r.delivered == r.queues for r in rows),
        "median_p50_ms": median_of([r.latency_ms.p50 for r in rows]),
        "median_p99_ms": median_of([r.latency_ms.p99 for r in rows]),
        "median_max_ms": median_of([r.latency_ms.max for r in rows]),
        "median_post_latency_ms": median_of([r.post_latency_ms for r in rows]),
        "median_server_cpu_s": median_of([r.server_cpu_s for r in rows]),
        "median_server_cpu_per_delivery_us": median_of(
            [r.server_cpu_per_delivery_us for r in rows]
        ),
        "first_round_rss_per_parked_poll_kib": first.server_rss_per_parked_poll_kib,
    }
