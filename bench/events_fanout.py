"""Benchmark: what one presence change costs when N event queues are open in one realm.

Part A runs the event system in this process (no HTTP): memory per queue, the time publish()
takes (with idle queues and with every queue long-polling), and the time to turn one change into
events for all N queues.

Part B runs ``python -m presenced serve`` on 127.0.0.1 against a fresh SQLite database: N clients
register queues, park long-polls, and one other user's first presence report is delivered to all
of them. It reports delivery latency, server CPU and server memory per queue and per long-poll.

Run: ``.venv/bin/python bench/events_fanout.py [--queues 10000] [--rounds 3] [--json OUT]``.
All traffic stays on 127.0.0.1. See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import hashlib
import json
import linecache
import math
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp

import presenced
from presenced.clock import system_clock
from presenced.events.changes import PresenceChange
from presenced.events.formats import PresenceFormat
from presenced.events.system import EventSettings, InProcessEventSystem
from presenced.keys import PREFIX_LENGTH, generate_api_key, hash_api_key
from presenced.store.base import Role
from presenced.store.factory import open_store

FORMATS = (PresenceFormat.MODERN, PresenceFormat.SLIM, PresenceFormat.LEGACY)
"""Queue i gets FORMATS[i % 3]: a third each."""
REALM_ID = 1
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PUBLISH_SIZES = (100, 10_000)
PUBLISH_SAMPLES = 101
CLIENT_CPU = 0
SERVER_CPU = 1
ALL_CPUS = frozenset(os.sched_getaffinity(0))
"""The CPUs this process may use before it pins itself (the server starts from these)."""
PIN = {CLIENT_CPU, SERVER_CPU} <= ALL_CPUS
"""Pin the load generator and the server to a core each (needs CPUs 0 and 1)."""
REPEATS = 2
"""Rounds disturbed by other processes (see "noisy") are repeated, at most this many times."""
PARK_DEADLINE_S = 30.0
QUIET_DEADLINE_S = 25.0
"""From the first long-poll sent; heartbeats start 45 s after a poll parks."""
GC_PREFIX = "presenced-gc "
GC_TRACE_DIR = Path(__file__).resolve().parent / "server_gc_trace"


# Measuring helpers


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size from /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def process_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, all its threads, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # utime, stime (14, 15)


def cpu_seconds(pid: int) -> float:
    """CPU seconds a process has run, all threads, to the nanosecond (schedstat) where the
    kernel offers it, else in clock ticks (utime + stime)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return sum(process_cpu(pid))
    return total / 1e9


def cpu_jiffies() -> dict[str, list[int]]:
    """Per-CPU jiffies from /proc/stat: user nice system idle iowait irq softirq steal."""
    result = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            result[name] = [int(v) for v in values[:8]]  # guest time is already in user
    return result


def cpu_busy(before: dict[str, list[int]], after: dict[str, list[int]]) -> dict[str, float]:
    """Fraction of each CPU that was busy (not idle or iowait) between two readings."""
    busy = {}
    for name, now in after.items():
        delta = [b - a for a, b in zip(before.get(name, now), now, strict=True)]
        total = sum(delta)
        busy[name] = round((total - delta[3] - delta[4]) / total, 3) if total else 0.0
    return busy


def cpu_kinds(before: dict[str, list[int]], after: dict[str, list[int]]) -> dict[str, float]:
    """Seconds of user, system and irq+softirq time over all CPUs between two readings."""
    delta = [0] * 8
    for name, now in after.items():
        for i, (a, b) in enumerate(zip(before.get(name, now), now, strict=True)):
            delta[i] += b - a
    return {
        "user": (delta[0] + delta[1]) / CLK_TCK,
        "system": delta[2] / CLK_TCK,
        "irq_softirq": (delta[5] + delta[6]) / CLK_TCK,
        "steal": delta[7] / CLK_TCK,
    }


def calibrate() -> float:
    """Milliseconds for a fixed piece of pure-Python work, best of 5: the machine's speed now.
    On a shared VM it drifts with the host's load; compare it across runs before the figures."""
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i * i % 7
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 2)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summarize_ns(samples: Sequence[int]) -> dict[str, float]:
    """Median / p90 / min / max of nanosecond samples, in microseconds."""
    return {
        "median_us": round(statistics.median(samples) / 1000, 2),
        "p90_us": round(percentile(samples, 90) / 1000, 2),
        "min_us": round(min(samples) / 1000, 2),
        "max_us": round(max(samples) / 1000, 2),
        "samples": len(samples),
    }


def raise_nofile_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit (each parked long-poll holds a socket)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def out(text: str = "") -> None:
    print(text, flush=True)


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
    return {"queues": n, **summarize_ns(samples)}


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
        "publish": summarize_ns(publish_samples),
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


# Part B: end to end over HTTP


@dataclass(frozen=True)
class Account:
    user_id: int
    email: str
    auth: str
    """The Authorization header value."""


@dataclass(frozen=True)
class RemoteQueue:
    account: Account
    fmt: PresenceFormat
    queue_id: str


@dataclass
class PollResult:
    status: int | None
    body: bytes
    arrived: float
    """perf_counter() when the whole response had been read."""
    error: str | None = None


@dataclass
class SentCounter:
    """What the long-poll session did, from aiohttp's tracing hooks."""

    count: int = 0
    """Requests whose headers were written."""
    created: int = 0
    """Connections opened."""
    reused: int = 0
    """Requests sent on a kept-alive connection."""

    def reset(self) -> None:
        self.count = self.created = self.reused = 0


def poll_session(sent: SentCounter) -> aiohttp.ClientSession:
    """One session for every long-poll of the run: like real clients, a queue's next poll goes
    out on the connection its last answer came back on (kept alive)."""

    async def on_sent(
        session: aiohttp.ClientSession,
        context: Any,
        params: aiohttp.TraceRequestHeadersSentParams,
    ) -> None:
        sent.count += 1

    async def on_created(
        session: aiohttp.ClientSession,
        context: Any,
        params: aiohttp.TraceConnectionCreateEndParams,
    ) -> None:
        sent.created += 1

    async def on_reused(
        session: aiohttp.ClientSession,
        context: Any,
        params: aiohttp.TraceConnectionReuseconnParams,
    ) -> None:
        sent.reused += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(on_sent)
    trace.on_connection_create_end.append(on_created)
    trace.on_connection_reuseconn.append(on_reused)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=60, sock_read=120),
        trace_configs=[trace],
    )


async def create_accounts(database_url: str, count: int) -> list[Account]:
    """The root realm, ``count`` users and one API key each, written through the store API."""
    store = open_store(database_url)
    await store.open()
    try:
        await store.migrate()
        now = time.time()
        realm = await store.create_realm("", "Bench", now)
        accounts: list[Account] = []
        chunk = 500
        started = time.perf_counter()
        for first in range(0, count, chunk):
            emails = [f"bench{i}@example.com" for i in range(first, min(first + chunk, count))]
            users = await asyncio.gather(
                *(
                    store.create_user(realm.id, e, e, f"Bench {e}", Role.MEMBER, None, None, now)
                    for e in emails
                )
            )
            keys = [generate_api_key() for _ in users]
            await asyncio.gather(
                *(
                    store.create_api_key(u.id, hash_api_key(k), k[:PREFIX_LENGTH], "bench", now)
                    for u, k in zip(users, keys, strict=True)
                )
            )
            for user, key in zip(users, keys, strict=True):
                credentials = f"{user.delivery_email}:{key}".encode()
                header = "Basic " + base64.b64encode(credentials).decode("ascii")
                accounts.append(Account(user.id, user.email, header))
            done = len(accounts)
            if done % 2000 < chunk or done == count:
                out(f"    {done:,}/{count:,} users ({time.perf_counter() - started:.1f} s)")
        return accounts
    finally:
        await store.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_argv(port: int, log_level: str) -> list[str]:
    argv = [sys.executable, "-m", "presenced", "serve", "--host", HOST, "--port", str(port)]
    argv += ["--log-level", log_level]
    if PIN and shutil.which("taskset"):
        argv = ["taskset", "-c", str(SERVER_CPU), *argv]
    return argv


def prepare_server_process() -> None:
    """In the child before exec: the file limit raised, and not the client's core (taskset, if
    used, then narrows this to SERVER_CPU)."""
    raise_nofile_limit()
    os.sched_setaffinity(0, ALL_CPUS)


def start_server(
    argv: list[str], workdir: Path, database_url: str, log: IO[bytes], trace_gc: bool
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    env["PRESENCED_DATABASE_URL"] = database_url
    env["PRESENCED_RATE_LIMIT_REQUESTS"] = "0"
    if trace_gc:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(GC_TRACE_DIR), env.get("PYTHONPATH", "")) if p
        )
    return subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=prepare_server_process,
    )


def stop_server(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is not None:
        return f"had already exited with status {proc.returncode}"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "killed: still running 10 s after SIGTERM"
    if proc.returncode == -signal.SIGTERM:
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        return "stopped on SIGTERM (status -15: uvicorn re-raises it after shutting down)"
    return f"exited with status {proc.returncode} after SIGTERM"


async def wait_ready(
    session: aiohttp.ClientSession, base: str, proc: subprocess.Popen[bytes]
) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < 60:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(base + "/api/v1/server_settings") as resp:
                if resp.status == 200:
                    await resp.read()
                    return time.perf_counter() - started
        await asyncio.sleep(0.1)
    raise RuntimeError("the server did not answer /api/v1/server_settings within 60 s")


def register_form(fmt: PresenceFormat) -> dict[str, str]:
    form = {"event_types": '["presence"]'}
    if fmt is PresenceFormat.MODERN:
        # Zulip requires notification_settings_null whenever client_capabilities is sent.
        form["client_capabilities"] = json.dumps(
            {"notification_settings_null": False, "simplified_presence_events": True}
        )
    elif fmt is PresenceFormat.SLIM:
        form["slim_presence"] = "true"
    return form


async def register_one(
    session: aiohttp.ClientSession, base: str, account: Account, fmt: PresenceFormat
) -> RemoteQueue:
    headers = {"Authorization": account.auth}
    async with session.post(
        base + "/api/v1/register", data=register_form(fmt), headers=headers
    ) as resp:
        body = await resp.read()
    data = json.loads(body)
    if resp.status != 200 or data.get("result") != "success":
        raise RuntimeError(f"register: HTTP {resp.status} {body[:200]!r}")
    if data.get("last_event_id") != -1:
        raise RuntimeError(f"register: last_event_id {data.get('last_event_id')}, expected -1")
    return RemoteQueue(account, fmt, data["queue_id"])


async def register_all(
    base: str, accounts: Sequence[Account], concurrency: int
) -> tuple[list[RemoteQueue], Counter[str]]:
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=0)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def bounded(i: int, account: Account) -> RemoteQueue:
            async with semaphore:
                return await register_one(session, base, account, FORMATS[i % 3])

        results = await asyncio.gather(
            *(bounded(i, a) for i, a in enumerate(accounts)), return_exceptions=True
        )
    queues = [r for r in results if isinstance(r, RemoteQueue)]
    errors = Counter(
        f"{type(r).__name__}: {r}"[:200] for r in results if isinstance(r, BaseException)
    )
    return queues, errors


def tcp_server_state(port: int) -> tuple[int, int]:
    """(accept-queue length of the listening socket, ESTABLISHED sockets on the server port)."""
    backlog = established = 0
    with open("/proc/net/tcp") as fh:
        next(fh)
        for line in fh:
            parts = line.split()
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            if local_port != port:
                continue
            if parts[3] == "0A":  # LISTEN: rx_queue is the accept backlog
                backlog += int(parts[4].split(":")[1], 16)
            elif parts[3] == "01":
                established += 1
    return backlog, established


async def long_poll(
    session: aiohttp.ClientSession, base: str, queue: RemoteQueue, last_event_id: int
) -> PollResult:
    url = f"{base}/api/v1/events?queue_id={queue.queue_id}&last_event_id={last_event_id}"
    try:
        async with session.get(url, headers={"Authorization": queue.account.auth}) as resp:
            body = await resp.read()
            return PollResult(resp.status, body, time.perf_counter())
    except (aiohttp.ClientError, TimeoutError) as exc:
        return PollResult(None, b"", time.perf_counter(), f"{type(exc).__name__}: {exc}"[:200])


async def wait_parked(
    pid: int, port: int, n: int, sent: SentCounter, tasks: Sequence[asyncio.Task[PollResult]]
) -> dict[str, Any]:
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
        server0, client0, jiffies0 = cpu_seconds(pid), cpu_seconds(os.getpid()), cpu_jiffies()
        await asyncio.sleep(0.5)
        server = cpu_seconds(pid) - server0
        client = cpu_seconds(os.getpid()) - client0
        kinds = cpu_kinds(jiffies0, cpu_jiffies())
        others = kinds["user"] + kinds["system"] + kinds["irq_softirq"] - server - client
        backlog, established = tcp_server_state(port)
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
    return {
        "all_requests_sent_s": round(all_sent, 3),
        "confirmed_parked_after_s": None if parked_after is None else round(parked_after, 3),
        "fired_after_s": round(time.perf_counter() - started, 3),
        "parked": parked,
        "machine_quiet_before_fire": quiet,
        "requests_sent": sent.count,
        "connections_opened": sent.created,
        "connections_reused": sent.reused,
        "established_connections": established,
        "checks": checks,
    }


def check_event(
    result: PollResult, queue: RemoteQueue, reporter: Account, expected_id: int
) -> str | None:
    """None if the response holds exactly the expected presence event; else what is wrong."""
    if result.error is not None:
        return result.error
    if result.status != 200:
        return f"HTTP {result.status}: {result.body[:120]!r}"
    data = json.loads(result.body)
    events = data.get("events")
    if data.get("result") != "success" or not isinstance(events, list):
        return f"not a success: {result.body[:120]!r}"
    if len(events) != 1:
        return f"{len(events)} events ({[e.get('type') for e in events][:3]})"
    event = events[0]
    if event.get("type") != "presence":
        return f"a {event.get('type')} event"
    if event.get("id") != expected_id:
        return f"event id {event.get('id')}, expected {expected_id}"
    if queue.fmt is PresenceFormat.MODERN:
        if list(event.get("presences", {})) != [str(reporter.user_id)]:
            return f"modern event for {list(event.get('presences', {}))}"
        return None
    if event.get("user_id") != reporter.user_id:
        return f"{queue.fmt.value} event for user {event.get('user_id')}"
    if queue.fmt is PresenceFormat.LEGACY and event.get("email") != reporter.email:
        return f"legacy event with email {event.get('email')!r}"
    if queue.fmt is PresenceFormat.SLIM and "email" in event:
        return "slim event with an email"
    if event.get("presence", {}).get("website", {}).get("status") != "active":
        return f"status not active: {event.get('presence')}"
    return None


async def delivery_round(
    base: str,
    pid: int,
    port: int,
    queues: Sequence[RemoteQueue],
    reporter: Account,
    round_index: int,
    session: aiohttp.ClientSession,
    sent: SentCounter,
) -> dict[str, Any]:
    """Park a long-poll on every queue, let ``reporter`` report, time every delivery."""
    n = len(queues)
    last_event_id = round_index - 1  # every queue got exactly one event per earlier round
    sent.reset()
    fire_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        gc.collect()
        rss_before = rss_kib(pid)
        server_cpu0 = cpu_seconds(pid)
        client_cpu0 = cpu_seconds(os.getpid())
        park_started = time.perf_counter()
        wall = {"parking_started": time.time()}
        tasks = [asyncio.create_task(long_poll(session, base, q, last_event_id)) for q in queues]
        parked = await wait_parked(pid, port, n, sent, tasks)
        early = sum(t.done() for t in tasks)
        rss_parked = rss_kib(pid)
        server_cpu_parked = cpu_seconds(pid) - server_cpu0
        client_cpu_parked = cpu_seconds(os.getpid()) - client_cpu0
        park_wall = time.perf_counter() - park_started

        async with fire_session.get(base + "/api/v1/server_settings") as resp:
            await resp.read()  # open the reporter's connection before the clock starts
        gc.collect()
        gc.disable()  # no collection pause in the load generator while it times arrivals
        jiffies0 = cpu_jiffies()
        server0, client0 = process_cpu(pid), os.times()
        server_cpu0, client_cpu0 = cpu_seconds(pid), cpu_seconds(os.getpid())
        fired = time.perf_counter()
        wall["fired"] = time.time()
        async with fire_session.post(
            base + "/api/v1/users/me/presence",
            data={"status": "active"},
            headers={"Authorization": reporter.auth},
        ) as resp:
            post_body = await resp.read()
            post_status = resp.status
        post_done = time.perf_counter()
        finished, _pending = await asyncio.wait(tasks, timeout=40)
        waited = time.perf_counter()
        wall["done"] = time.time()
        server_cpu = cpu_seconds(pid) - server_cpu0
        client_cpu = cpu_seconds(os.getpid()) - client_cpu0
        server1, client1 = process_cpu(pid), os.times()
        jiffies1 = cpu_jiffies()
        gc.enable()
        server_user, server_sys = server1[0] - server0[0], server1[1] - server0[1]
        client_user, client_sys = client1.user - client0.user, client1.system - client0.system
        busy = cpu_busy(jiffies0, jiffies1)
        kinds = cpu_kinds(jiffies0, jiffies1)
        rss_after = rss_kib(pid)
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
    return {
        "round": round_index,
        "wall_clock": wall,
        "queues": n,
        "reporter_user_id": reporter.user_id,
        "delivered": delivered,
        "missing_or_wrong": n - delivered,
        "problems": dict(problems),
        "responses_before_the_change": early,
        "post_status": post_status,
        "post_ok": post_status == 200 and json.loads(post_body).get("result") == "success",
        "post_latency_ms": round((post_done - fired) * 1000, 2),
        "latency_ms": {
            "p50": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
            "p99": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
            "max": round(last_arrival * 1000, 1) if latencies else None,
            "min": round(min(latencies) * 1000, 1) if latencies else None,
        },
        "all_arrived_s": round(last_arrival, 3) if delivered == n else None,
        "delivery_window_s": round(window, 3),
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_per_delivery_us": round(server_cpu / max(delivered, 1) * 1e6, 1),
        "server_cpu_share": round(server_cpu / window, 3),
        "client_cpu_s": round(client_cpu, 3),
        "client_cpu_share": round(client_cpu / window, 3),
        "cpu_busy": busy,
        "other_cpu_s": round(sum(busy.values()) * window - server_cpu - client_cpu, 3),
        "cpu_breakdown_s": {
            "server_user": round(server_user, 2),
            "server_system": round(server_sys, 2),
            "client_user": round(client_user, 2),
            "client_system": round(client_sys, 2),
            "all_cpus_user": round(kinds["user"], 2),
            "all_cpus_system": round(kinds["system"], 2),
            "all_cpus_irq_softirq": round(kinds["irq_softirq"], 2),
            "all_cpus_steal": round(kinds["steal"], 2),
            "other_processes_user": round(kinds["user"] - server_user - client_user, 2),
        },
        "noisy": kinds["user"] - server_user - client_user + kinds["steal"] > 0.05 + 0.05 * window,
        "deliveries_per_s": round(delivered / last_arrival, 1) if latencies else None,
        "parking": {
            **parked,
            "wall_s": round(park_wall, 3),
            "server_cpu_s": round(server_cpu_parked, 3),
            "server_cpu_per_poll_us": round(server_cpu_parked / n * 1e6, 1),
            "client_cpu_s": round(client_cpu_parked, 3),
        },
        "server_rss_kib": {"before_polls": rss_before, "parked": rss_parked, "after": rss_after},
        "server_rss_per_parked_poll_kib": round((rss_parked - rss_before) / n, 2),
    }


def print_round(row: dict[str, Any]) -> None:
    lat = row["latency_ms"]
    park = row["parking"]
    rss = row["server_rss_kib"]
    cpu = row["server_cpu_s"]
    out(
        f"  round {row['round']}: delivered {row['delivered']:,}/{row['queues']:,}"
        + (f"  PROBLEMS {row['problems']}" if row["problems"] else "")
        + (
            f"  ({row['responses_before_the_change']} answered before the change)"
            if row["responses_before_the_change"]
            else ""
        )
    )
    out(
        f"    long-polls all sent after {park['all_requests_sent_s']:.2f} s"
        f" ({park['connections_opened']:,} new connections, {park['connections_reused']:,} kept"
        f" alive), confirmed parked after"
        f" {park['confirmed_parked_after_s']} s, change fired after {park['fired_after_s']:.1f} s"
        + ("" if park["machine_quiet_before_fire"] else " (machine NOT quiet)")
    )
    out(
        f"    parking cost the server {park['server_cpu_s']:.2f} s CPU"
        f" ({park['server_cpu_per_poll_us']:.0f} us per poll) and"
        f" +{(rss['parked'] - rss['before_polls']) / 1024:.1f} MiB RSS"
        f" = {row['server_rss_per_parked_poll_kib']:.2f} KiB per parked long-poll"
    )
    out(
        f"    POST /users/me/presence answered in {row['post_latency_ms']:.1f} ms"
        f" (HTTP {row['post_status']})"
    )
    out(
        f"    latency from the POST: p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms"
        f" (first {lat['min']} ms); all {row['queues']:,} arrived after "
        + (f"{row['all_arrived_s'] * 1000:.0f} ms" if row["all_arrived_s"] is not None else "never")
    )
    out(
        f"    server CPU {cpu:.2f} s ({row['server_cpu_per_delivery_us']:.0f} us per delivery,"
        f" {row['server_cpu_share']:.0%} of the {row['delivery_window_s']:.2f} s window);"
        f" client CPU {row['client_cpu_s']:.2f} s ({row['client_cpu_share']:.0%});"
        f" cores busy: {', '.join(f'{k} {v:.0%}' for k, v in row['cpu_busy'].items())}"
    )
    if row["noisy"]:
        other = row["cpu_breakdown_s"]["other_processes_user"]
        out(f"    NOTE: other processes ran {other:.2f} s of user CPU during this delivery")


def scan_server_log(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Lines that look like trouble, and the GC records of --trace-server-gc."""
    collections = []
    other = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(GC_PREFIX):
            collections.append(json.loads(line[len(GC_PREFIX) :]))
        else:
            other.append(line)
    keywords = ("Traceback", "ERROR", "Error", "Exception", "WARNING", "CRITICAL")
    flagged = [line for line in other if any(k in line for k in keywords)]
    summary = {"lines": len(other), "flagged_lines": len(flagged), "flagged_sample": flagged[:20]}
    return summary, collections


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


def bottleneck_verdict(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Whether delivery measured the server or the load generator.

    Server and client run on a core each, in parallel. If the server process ran for a share s
    of the delivery window (its CPU time to the nanosecond, from schedstat), its own work took
    at least s of the window, so a faster client could have shortened delivery by at most
    (1 - s) of it. The per-core figures from /proc/stat also hold the kernel's loopback TCP work,
    which neither process is charged for, but they count in 10 ms ticks.
    """

    def core(row: dict[str, Any], cpu: int) -> float | None:
        share = row["cpu_busy"].get(f"cpu{cpu}") if PIN else None
        return None if share is None else float(share)

    def span(values: Sequence[float | None]) -> str:
        present = [v for v in values if v is not None]
        return f"{min(present):.0%}-{max(present):.0%}" if present else "n/a"

    server = [r["server_cpu_share"] for r in rounds]
    client = [r["client_cpu_share"] for r in rounds]
    server_core = [core(r, SERVER_CPU) for r in rounds]
    client_core = [core(r, CLIENT_CPU) for r in rounds]
    outside = [r["other_cpu_s"] for r in rounds]
    lag_ms = 1000 * max(
        r["delivery_window_s"] * (1 - min(r["server_cpu_share"], 1.0)) for r in rounds
    )
    noisy = [r["round"] for r in rounds if r["noisy"]]
    detail = (
        f"during delivery the server process ran {span(server)} of the window, the client process"
        f" {span(client)}; cores busy, kernel work included: server's {span(server_core)},"
        f" client's {span(client_core)}; CPU outside both processes"
        f" {min(outside):.2f}-{max(outside):.2f} s"
    )
    if min(r["delivery_window_s"] for r in rounds) < 0.3:
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


async def part_b(args: argparse.Namespace) -> dict[str, Any]:
    n, rounds, keep = args.queues, args.rounds, args.keep
    out(f"== Part B: end to end over HTTP, {n:,} queues, {rounds} round(s) ==")
    workdir = Path(tempfile.mkdtemp(prefix="presenced-bench-"))
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    result: dict[str, Any] = {"workdir": str(workdir) if keep else None}
    try:
        # Queue owners, a reporter per round (and per repeat of a disturbed round), a warm-up user.
        count = n + rounds + REPEATS + 1
        out(f"creating the realm and {count:,} users with one API key each (store API) ...")
        started = time.perf_counter()
        accounts = await create_accounts(database_url, count)
        result["create_users_s"] = round(time.perf_counter() - started, 2)
        owners, reporters, warmup = accounts[:n], accounts[n:-1], accounts[-1]

        port = free_port()
        argv = server_argv(port, args.server_log_level)
        result["server_argv"] = argv
        out(f"starting: {' '.join(argv)}")
        log_path = workdir / "server.log"
        with open(log_path, "wb") as log:
            proc = start_server(argv, workdir, database_url, log, args.trace_server_gc)
        base = f"http://{HOST}:{port}"
        try:
            result.update(
                await serve_and_measure(
                    base, proc, port, owners, reporters, warmup, args.concurrency, rounds
                )
            )
        finally:
            result["server_exit"] = stop_server(proc)
            result["server_log"], collections = scan_server_log(log_path)
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
    base: str,
    proc: subprocess.Popen[bytes],
    port: int,
    owners: Sequence[Account],
    reporters: Sequence[Account],
    warmup: Account,
    concurrency: int,
    rounds: int,
) -> dict[str, Any]:
    pid = proc.pid
    result: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        result["server_startup_s"] = round(await wait_ready(session, base, proc), 2)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        result["server_pid_cmdline"] = cmdline.strip()
        result["server_affinity"] = sorted(os.sched_getaffinity(pid))
        # Warm the server's code paths once: register, delete, report.
        queue = await register_one(session, base, warmup, PresenceFormat.MODERN)
        headers = {"Authorization": warmup.auth}
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
    rss0 = rss_kib(pid)
    cpu0 = cpu_seconds(pid)
    started = time.perf_counter()
    queues, errors = await register_all(base, owners, concurrency)
    reg_wall = time.perf_counter() - started
    reg_cpu = cpu_seconds(pid) - cpu0
    await asyncio.sleep(0.5)
    gc.collect()
    rss1 = rss_kib(pid)
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

    round_rows = []
    sent = SentCounter()
    async with poll_session(sent) as session:
        for r, reporter in enumerate(reporters):
            row = await delivery_round(base, pid, port, queues, reporter, r, session, sent)
            print_round(row)
            round_rows.append(row)
            if sum(not done["noisy"] for done in round_rows) == rounds:
                break
            if row["noisy"] and r + 1 < len(reporters):
                out("    (another process disturbed this round: it is repeated, not counted)")
    result["rounds"] = round_rows
    counted = [row for row in round_rows if not row["noisy"]] or round_rows
    result["summary"] = summarize_rounds(counted, round_rows[0])
    result["bottleneck"] = bottleneck_verdict(counted)
    out(f"  load generator check: {result['bottleneck']['detail']}")
    out(f"    -> {result['bottleneck']['verdict']}")
    return result


def summarize_rounds(rows: Sequence[dict[str, Any]], first: dict[str, Any]) -> dict[str, Any]:
    """Medians over the counted rounds; memory from the first round (the only one that grows
    the server: later rounds reuse what it freed)."""

    def median_of(key: str, sub: str | None = None) -> float | None:
        values = [r[key][sub] if sub else r[key] for r in rows]
        present = [v for v in values if v is not None]
        return round(statistics.median(present), 3) if present else None

    return {
        "counted_rounds": [r["round"] for r in rows],
        "all_rounds_disturbed": all(r["noisy"] for r in rows),
        "delivered_all_rounds": all(r["delivered"] == r["queues"] for r in rows),
        "median_p50_ms": median_of("latency_ms", "p50"),
        "median_p99_ms": median_of("latency_ms", "p99"),
        "median_max_ms": median_of("latency_ms", "max"),
        "median_post_latency_ms": median_of("post_latency_ms"),
        "median_server_cpu_s": median_of("server_cpu_s"),
        "median_server_cpu_per_delivery_us": median_of("server_cpu_per_delivery_us"),
        "first_round_rss_per_parked_poll_kib": first["server_rss_per_parked_poll_kib"],
    }


# Main


@contextlib.contextmanager
def pinned_to_client_cpu() -> Iterator[list[int]]:
    before = os.sched_getaffinity(0)
    if PIN:
        os.sched_setaffinity(0, {CLIENT_CPU})
    try:
        yield sorted(os.sched_getaffinity(0))
    finally:
        os.sched_setaffinity(0, before)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "benchmark": "events_fanout",
        "queues": args.queues,
        "rounds": args.rounds,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "presenced_source": source_identity(),
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
    report["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    print_summary(report)
    return report


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


def source_identity() -> dict[str, Any]:
    """Which presenced was measured: the commit, uncommitted changes, a digest of the sources."""
    package = Path(presenced.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())

    def git(*argv: str) -> str:
        try:
            done = subprocess.run(
                ["git", *argv], cwd=package, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "path": str(package),
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted_files": len(git("status", "--porcelain", "--", ".").splitlines()),
        "sources_sha256": digest.hexdigest()[:16],
    }


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
