"""Load benchmark: presenced (one process, embedded SQLite) driven by simulated clients.

Run (from the repository root)::

    .venv/bin/python bench/load.py --json out.json --markdown out.md  # all, full size (~7 min)
    .venv/bin/python bench/load.py --quick              # smoke run, small sizes (< 1 min)
    .venv/bin/python bench/load.py --scenarios S1,S5    # some scenarios only

The --markdown section (machine, command, figures, targets) is what docs/performance.md records.

For each scenario: a fresh SQLite database in a temporary directory; realms, users and one API
key per user created through the store API; ``python -m presenced serve`` started on 127.0.0.1
(pinned to CPU 1 with taskset, access log off, rate limit off); then ``--procs`` load-generator
processes (bench/loadgen.py, pinned to CPU 0, asyncio + aiohttp), each with its own slice of the
users. Every user first calls with ``last_update_id=-1`` (the warm-up, so everyone is online),
then follows the cursor it is given. User i of a realm is, by i % 20: active (80 %: status active,
new_user_input=true, cursor), idle (10 %: status idle, cursor), ping_only (5 %: ping_only=true
after its first call) or legacy (5 %: slim_presence=false, never a cursor). The measured phases
are open-loop (sends at fixed slots, latency from the slot) or closed-loop (N connections back to
back). Server CPU (utime + stime) and RSS are read from /proc/<server pid> at the window's edges.
After each scenario, a full fetch per realm is compared with the rows in the SQLite file, and each
auditor user's view (built only from the deltas it received) is compared with the store.

Other processes on the machine share both CPUs: each phase reports the CPU time neither the
server nor the generators used ("other processes"); figures taken while that is high are noisy.

All traffic stays on 127.0.0.1; every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import queue
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp

from presenced.keys import PREFIX_LENGTH, generate_api_key, hash_api_key
from presenced.store.base import Role
from presenced.store.factory import open_store

HOST = "127.0.0.1"
EXTERNAL_HOST = "presenced.bench"
CLIENT_CPU = 0
SERVER_CPU = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
LOADGEN = BENCH_DIR / "loadgen.py"
ALL_CPUS = frozenset(os.sched_getaffinity(0))
PIN = {CLIENT_CPU, SERVER_CPU} <= ALL_CPUS
GENERATOR_BOUND = 0.85
"""A generator process above this fraction of a core (or CPU 0 this busy) may be the limit."""
BEHAVIOURS = ["active"] * 16 + ["idle"] * 2 + ["ping_only"] + ["legacy"]
"""User i of a realm behaves as BEHAVIOURS[i % 20]: 80 % active, 10 % idle, 5 % / 5 %."""
HISTORY_DAYS_CHECK = 365


def out(text: str = "") -> None:
    print(text, flush=True)


# Scenarios


@dataclass(frozen=True)
class RealmSpec:
    subdomain: str
    users: int
    group: str
    """Users' group (phases select users by group); "+N:name" splits the first N off."""
    behaviours: bool = True
    """False: users have behaviour "other" (never auditors; the phases say what they send)."""


@dataclass(frozen=True)
class Phase:
    name: str
    mode: str  # each | closed | open
    request: str  # a loadgen kind: auto, first_fetch, legacy_get, ping_only, empty_delta
    concurrency: int = 16
    """Total over all generator processes (each, closed)."""
    duration: float = 30.0
    """The window (closed, open); the upper bound on the phase (each)."""
    period: float = 60.0
    """Open loop: each user sends once per period."""
    max_requests: int | None = None
    """Closed loop: stop after this many requests in total."""
    groups: tuple[str, ...] | None = None
    auditors_only: bool = False
    grace: float = 30.0
    """After the window: how long in-flight requests may still take before they are cancelled."""
    measured: bool = True
    shown: bool = True
    """False: left out of the printed tables (still in the JSON)."""
    label: str = ""


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    realms: tuple[RealmSpec, ...]
    phases: tuple[Phase, ...]
    connections: int = 64
    """Total HTTP connections over all generator processes."""
    memory_phase: str | None = None
    """After this phase every user has presence: server RSS growth per user is taken there."""

    def with_memory_phase(self, name: str) -> Scenario:
        return dataclasses.replace(self, memory_phase=name)


def scenarios(quick: bool) -> dict[str, Scenario]:
    q = quick
    n1 = 200 if q else 1_000
    n2 = 1_000 if q else 10_000
    p2 = 4.0 if q else 60.0
    d2 = 8.0 if q else 120.0
    r3, n3 = (20, 20) if q else (1_000, 100)
    n4 = 1_000 if q else 10_000
    k4 = 30 if q else 1_000
    n5 = 1_000 if q else 10_000
    sat = 3.0 if q else 30.0
    d5 = 3.0 if q else 20.0
    warm_bound = 120.0 if q else 900.0
    audit = (
        Phase(
            "audit sync 1",
            "each",
            "empty_delta",
            8,
            60.0,
            auditors_only=True,
            measured=False,
            shown=False,
        ),
        Phase(
            "audit sync 2",
            "each",
            "empty_delta",
            8,
            60.0,
            auditors_only=True,
            measured=False,
            shown=False,
        ),
    )
    table = {
        "S1": Scenario(
            "S1",
            f"one realm of {n1:,} users, all online",
            (RealmSpec("s1", n1, "all"),),
            (
                Phase(
                    "warm-up",
                    "each",
                    "auto",
                    32,
                    warm_bound,
                    measured=False,
                    label="every user's first call (last_update_id=-1)",
                ),
                Phase(
                    "saturation",
                    "closed",
                    "auto",
                    64,
                    sat,
                    label="closed loop, 64 connections, the behaviour mix",
                ),
                Phase(
                    f"open {n1:,}/s",
                    "open",
                    "auto",
                    duration=sat,
                    period=1.0,
                    label=f"open loop, each user once a second ({n1:,} req/s)",
                ),
                *audit,
            ),
        ),
        "S2": Scenario(
            "S2",
            f"one realm of {n2:,} users, all online, each pinging every {p2:g} s"
            + (" (quick: time-compressed)" if q else ""),
            (RealmSpec("s2", n2, "all"),),
            (
                Phase(
                    "warm-up",
                    "each",
                    "auto",
                    16,
                    warm_bound,
                    measured=False,
                    label="every user's first call (last_update_id=-1)",
                ),
                Phase(
                    f"open {n2 / p2:,.0f}/s",
                    "open",
                    "auto",
                    duration=d2,
                    period=p2,
                    label=f"open loop, each user every {p2:g} s for {d2:g} s",
                ),
                *audit,
            ),
            connections=256,
        ),
        "S3": Scenario(
            "S3",
            f"{r3:,} realms of {n3:,} users each",
            tuple(RealmSpec(f"r{i:04d}", n3, "all") for i in range(1, r3 + 1)),
            (
                Phase(
                    "warm-up",
                    "each",
                    "auto",
                    64,
                    warm_bound,
                    measured=False,
                    label="every user's first call (last_update_id=-1)",
                ),
                Phase(
                    "saturation",
                    "closed",
                    "auto",
                    64,
                    sat,
                    label="closed loop, 64 connections, the behaviour mix",
                ),
                *audit,
            ),
        ),
        "S4": Scenario(
            "S4",
            f"first fetch in a realm of {n4:,} users, all with presence",
            (RealmSpec("s4", n4, "all"),),
            (
                Phase(
                    "prime",
                    "each",
                    "ping_only",
                    32,
                    warm_bound,
                    measured=False,
                    label="every user once with ping_only=true",
                ),
                Phase(
                    "POST last_update_id=-1",
                    "closed",
                    "first_fetch",
                    1,
                    300.0,
                    max_requests=k4,
                    label=f"{k4} in a row, one connection",
                ),
                Phase(
                    "GET /realm/presence",
                    "closed",
                    "legacy_get",
                    1,
                    300.0,
                    max_requests=k4,
                    label=f"{k4} in a row, one connection",
                ),
                Phase(
                    "POST first fetch x4",
                    "closed",
                    "first_fetch",
                    4,
                    300.0,
                    max_requests=k4,
                    label=f"{k4}, four connections",
                ),
                *audit,
            ),
        ),
        "S5": Scenario(
            "S5",
            f"empty-delta ping in realms of 100 and of {n5:,} users",
            (
                RealmSpec("small", 100, "small"),
                RealmSpec("big", n5, "+100:bigm:bigo"),
            ),
            (
                Phase(
                    "prime big",
                    "each",
                    "ping_only",
                    32,
                    warm_bound,
                    groups=("bigo",),
                    measured=False,
                    label="the big realm's other users: ping_only",
                ),
                Phase(
                    "first small",
                    "each",
                    "first_fetch",
                    16,
                    warm_bound,
                    groups=("small",),
                    measured=False,
                ),
                Phase(
                    "sync small",
                    "each",
                    "empty_delta",
                    16,
                    warm_bound,
                    groups=("small",),
                    measured=False,
                ),
                Phase(
                    "empty delta, 100 users",
                    "closed",
                    "empty_delta",
                    32,
                    d5,
                    groups=("small",),
                    label="100 users, 32 connections",
                ),
                Phase(
                    "first big",
                    "each",
                    "first_fetch",
                    4,
                    warm_bound,
                    groups=("bigm",),
                    measured=False,
                ),
                Phase(
                    "sync big",
                    "each",
                    "empty_delta",
                    16,
                    warm_bound,
                    groups=("bigm",),
                    measured=False,
                ),
                Phase(
                    f"empty delta, {n5:,} users",
                    "closed",
                    "empty_delta",
                    32,
                    d5,
                    groups=("bigm",),
                    label=f"100 of the {n5:,} users, 32 connections",
                ),
                *audit,
            ),
        ),
    }
    for key in ("S1", "S2", "S3"):
        table[key] = table[key].with_memory_phase("warm-up")
    table["S4"] = table["S4"].with_memory_phase("prime")
    return table


# Measuring the server


@dataclass(frozen=True)
class Snapshot:
    at: float
    cpu_s: float
    rss_kib: int
    hwm_kib: int
    cpus: dict[str, list[int]]


def proc_cpu_s(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def allowed_cpus(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return "?"


def proc_memory_kib(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


def cpu_jiffies() -> dict[str, list[int]]:
    result = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            result[name] = [int(v) for v in values[:8]]
    return result


def snapshot(pid: int) -> Snapshot:
    rss, hwm = proc_memory_kib(pid)
    return Snapshot(time.monotonic(), proc_cpu_s(pid), rss, hwm, cpu_jiffies())


def cpu_busy(a: Snapshot, b: Snapshot) -> dict[str, float]:
    busy = {}
    for name, now in b.cpus.items():
        delta = [y - x for x, y in zip(a.cpus.get(name, now), now, strict=True)]
        total = sum(delta)
        busy[name] = round((total - delta[3] - delta[4]) / total, 3) if total else 0.0
    return busy


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def percentile(ordered: Sequence[float], p: float) -> float:
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# Setting up a scenario


@dataclass
class Setup:
    workdir: Path
    database: Path
    credentials: Path
    users: int
    realms: dict[str, int]
    """Subdomain -> realm id."""
    checkers: dict[str, str]
    """Subdomain -> the credentials line (JSON) of the user who does the final full fetch."""
    create_s: float


def groups_of(spec: RealmSpec) -> list[str]:
    if not spec.group.startswith("+"):
        return [spec.group] * spec.users
    head, first, rest = spec.group[1:].split(":")
    n = int(head)
    return [first] * min(n, spec.users) + [rest] * max(0, spec.users - n)


async def create_accounts(scenario: Scenario, workdir: Path) -> Setup:
    """Realms, users and one key each, through the store API; a credentials file (JSON lines)."""
    database = workdir / "presenced.db"
    credentials = workdir / "credentials.jsonl"
    store = open_store(f"sqlite:///{database}")
    await store.open()
    started = time.perf_counter()
    try:
        await store.migrate()
        now = time.time()
        realms: dict[str, int] = {}
        for i in range(0, len(scenario.realms), 200):
            chunk = scenario.realms[i : i + 200]
            made = await asyncio.gather(
                *(store.create_realm(r.subdomain, f"Bench {r.subdomain}", now) for r in chunk)
            )
            realms.update((r.subdomain, realm.id) for r, realm in zip(chunk, made, strict=True))
        wanted: list[tuple[RealmSpec, int, str]] = [
            (spec, i, group) for spec in scenario.realms for i, group in enumerate(groups_of(spec))
        ]
        total = len(wanted)
        checkers: dict[str, str] = {}
        chunk_size = 1_000
        next_report = 10_000
        with credentials.open("w", encoding="utf-8") as fh:
            for first in range(0, total, chunk_size):
                part = wanted[first : first + chunk_size]
                emails = [f"u{i}@{spec.subdomain}.bench.example" for spec, i, _ in part]
                users = await asyncio.gather(
                    *(
                        store.create_user(
                            realms[spec.subdomain],
                            e,
                            e,
                            f"User {i} of {spec.subdomain}",
                            Role.MEMBER,
                            None,
                            None,
                            now,
                        )
                        for (spec, i, _), e in zip(part, emails, strict=True)
                    )
                )
                keys = [generate_api_key() for _ in users]
                await asyncio.gather(
                    *(
                        store.create_api_key(u.id, hash_api_key(k), k[:PREFIX_LENGTH], "bench", now)
                        for u, k in zip(users, keys, strict=True)
                    )
                )
                for (spec, i, group), user, key in zip(part, users, keys, strict=True):
                    line = json.dumps(
                        {
                            "user_id": user.id,
                            "email": user.delivery_email,
                            "key": key,
                            "realm": spec.subdomain,
                            "host": f"{spec.subdomain}.{EXTERNAL_HOST}",
                            "group": group,
                            "behavior": BEHAVIOURS[i % 20] if spec.behaviours else "other",
                        }
                    )
                    fh.write(line + "\n")
                    if i == 0:
                        checkers[spec.subdomain] = line
                done = first + len(part)
                if done >= next_report or done == total:
                    out(f"    {done:,}/{total:,} users ({time.perf_counter() - started:.1f} s)")
                    next_report += 10_000
    finally:
        await store.close()
    return Setup(
        workdir, database, credentials, total, realms, checkers, time.perf_counter() - started
    )


# The server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    env["PRESENCED_DATABASE_URL"] = f"sqlite:///{database}"
    env["PRESENCED_RATE_LIMIT_REQUESTS"] = "0"
    env["PRESENCED_EXTERNAL_HOST"] = EXTERNAL_HOST
    return env


def pinned(argv: list[str], cpu: int) -> list[str]:
    if PIN and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu), *argv]
    return argv


def reset_affinity() -> None:
    """In a child before exec: undo this process's own pinning (taskset then narrows it)."""
    os.sched_setaffinity(0, ALL_CPUS)


def start_server(setup: Setup, port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "presenced", "serve", "--host", HOST, "--port", str(port)]
    argv += ["--log-level", "warning"]
    return subprocess.Popen(
        pinned(argv, SERVER_CPU),
        cwd=setup.workdir,
        env=server_env(setup.database),
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=reset_affinity,
    )


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


async def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> float:
    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while time.perf_counter() - started < 60:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with status {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(base + "/api/v1/server_settings") as resp:
                    if resp.status == 200:
                        await resp.read()
                        return time.perf_counter() - started
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not answer /api/v1/server_settings within 60 s")


def wait_idle(pid: int, limit: float = 60.0) -> float:
    """Until the server's CPU time stops moving (stragglers of cancelled requests are done)."""
    started = time.monotonic()
    last = proc_cpu_s(pid)
    quiet = 0
    while time.monotonic() - started < limit and quiet < 2:
        time.sleep(0.5)
        now = proc_cpu_s(pid)
        quiet = quiet + 1 if now - last <= 0.02 else 0
        last = now
    return time.monotonic() - started


# The generator processes


class Generators:
    """The loadgen processes, and a reader thread per process turning its stdout into a queue."""

    def __init__(self, setup: Setup, scenario: Scenario, base: str, procs: int) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.lines: queue.Queue[tuple[int, str]] = queue.Queue()
        self.logs: list[Path] = []
        self.backlog: list[list[str]] = [[] for _ in range(procs)]
        per_proc_conns = max(1, scenario.connections // procs)
        for p in range(procs):
            phases = [phase_spec(ph, p, procs, setup.users) for ph in scenario.phases]
            spec = {
                "base_url": base,
                "credentials": str(setup.credentials),
                "proc": p,
                "procs": procs,
                "auditors": 2,
                "connections": per_proc_conns,
                "request_timeout": 120.0,
                "phases": phases,
                "out": str(setup.workdir / f"loadgen-{p}.json"),
            }
            spec_path = setup.workdir / f"loadgen-{p}-spec.json"
            spec_path.write_text(json.dumps(spec))
            log_path = setup.workdir / f"loadgen-{p}.log"
            self.logs.append(log_path)
            argv = pinned([sys.executable, str(LOADGEN), str(spec_path)], CLIENT_CPU)
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    cwd=REPO,
                )
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(p, proc), daemon=True).start()

    def _read(self, p: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.put((p, line.rstrip("\n")))
        self.lines.put((p, "EOF"))

    def expect(self, word: str, timeout: float) -> list[str]:
        """The next line of every process, which must start with ``word``, within ``timeout``
        seconds (a process's later lines wait in its backlog for the next call)."""
        deadline = time.monotonic() + timeout
        got: dict[int, str] = {}
        while len(got) < len(self.procs):
            for p, backlog in enumerate(self.backlog):
                if p in got or not backlog:
                    continue
                line = backlog.pop(0)
                if not line.startswith(word):
                    tail = self.logs[p].read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"generator {p}: {line!r} instead of {word}:\n{tail}")
                got[p] = line
            if len(got) == len(self.procs):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"generators: no {word} within {timeout:.0f} s")
            with contextlib.suppress(queue.Empty):
                p, line = self.lines.get(timeout=left)
                self.backlog[p].append(line)
        return [got[p] for p in sorted(got)]

    def go(self, t0: float) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(f"GO {t0!r}\n")
            proc.stdin.flush()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    if proc.stdin is not None:
                        proc.stdin.close()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


def share(total: int, p: int, procs: int) -> int:
    return total // procs + (1 if p < total % procs else 0)


def phase_spec(phase: Phase, p: int, procs: int, n_users: int) -> dict[str, Any]:
    active = min(procs, phase.concurrency)
    concurrency = share(phase.concurrency, p, procs)
    max_requests = None
    if phase.max_requests is not None:
        max_requests = share(phase.max_requests, p, active) if p < active else 0
        if max_requests == 0:
            concurrency = 0
    return {
        "name": phase.name,
        "mode": phase.mode,
        "request": phase.request,
        "concurrency": concurrency if phase.mode != "open" else 1,
        "duration": phase.duration,
        "period": phase.period,
        "max_requests": max_requests,
        "groups": None if phase.groups is None else list(phase.groups),
        "auditors_only": phase.auditors_only,
        "grace": phase.grace,
        "n_total": n_users,
    }


def counted(phase: Phase) -> bool:
    """Whether the phase ends when its requests are done (not at the end of a time window)."""
    return phase.mode == "each" or phase.max_requests is not None


# Running a scenario


def presence_sequence_total(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        row = conn.execute("SELECT COALESCE(SUM(last_update_id), 0) FROM presence_sequences")
        return int(row.fetchone()[0])


def users_with_presence(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM user_presence").fetchone()[0])


def summarize_phase(
    phase: Phase,
    parts: list[dict[str, Any]],
    before: Snapshot,
    after: Snapshot,
    end: Snapshot,
    writes: int,
    n_users: int,
) -> dict[str, Any]:
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
    if counted(phase):
        t0 = min(part["t0"] for part in parts)
        ends = [part["last_done"] for part in parts if part["last_done"] is not None]
        window = (max(ends) - t0) if ends else 0.0
        in_window = ok
    else:
        window = phase.duration
        in_window = sum(part["completed_in_window"] for part in parts)
    cpu = after.cpu_s - before.cpu_s
    busy = cpu_busy(before, after)
    lags = sorted(v for part in parts for v in part["send_lag_ms"])
    gen_load = [
        round(part["cpu_s"] / part["wall_s"], 3) if part["wall_s"] else 0.0 for part in parts
    ]
    replies = sum(part["presence_replies"] for part in parts)
    result: dict[str, Any] = {
        "phase": phase.name,
        "label": phase.label,
        "mode": phase.mode,
        "measured": phase.measured,
        "shown": phase.shown,
        "requests_ok": ok,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "error_samples": samples[:5],
        "window_s": round(window, 3),
        "req_per_s": round(in_window / window, 1) if window > 0 else None,
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(latencies[-1], 2) if latencies else math.nan,
        },
        "latency_by_request": {
            label: {
                "n": len(values),
                "p50": round(percentile(sorted(values), 50), 2),
                "p99": round(percentile(sorted(values), 99), 2),
            }
            for label, values in sorted(by_label.items())
        },
        "server_cpu_s": round(cpu, 2),
        "server_cpu_util": round(cpu / window, 3) if window > 0 else None,
        "server_cpu_s_per_1k": round(cpu / in_window * 1000, 3) if in_window else None,
        "bytes_per_request": round(sum(p["body_bytes"] for p in parts) / ok) if ok else None,
        "entries_per_reply": round(sum(p["entries"] for p in parts) / replies, 1)
        if replies
        else None,
        "nonempty_replies": sum(p["nonempty"] for p in parts),
        "presence_replies": replies,
        "presence_writes": writes,
        "cursor_regressions": sum(p["cursor_regressions"] for p in parts),
        "server_rss_mib": round(end.rss_kib / 1024, 1),
        "server_rss_peak_mib": round(end.hwm_kib / 1024, 1),
        "cpu_busy": busy,
        "generator_cpu_per_process": gen_load,
        "generator_cpu_total": round(sum(p["cpu_s"] for p in parts) / window, 3)
        if window > 0
        else None,
        "other_cpu_util": round(
            max(0.0, sum(busy.values()) - (cpu + sum(p["cpu_s"] for p in parts)) / window), 2
        )
        if window > 0
        else None,
    }
    seconds: dict[int, list[float]] = {}
    for part in parts:
        for key, (n, slowest, slow) in part["seconds"].items():
            acc = seconds.setdefault(int(key), [0, 0.0, 0])
            acc[0] += n
            acc[1] = max(acc[1], slowest)
            acc[2] += slow
    slow_total = sum(v[2] for v in seconds.values())
    worst = sorted(seconds.items(), key=lambda kv: -kv[1][2])[:3]
    result["slow_requests"] = {
        "over_ms": 25,
        "count": int(slow_total),
        "worst_seconds": [
            {"second": k, "requests": int(v[0]), "over": int(v[2]), "max_ms": round(v[1], 1)}
            for k, v in worst
            if v[2] > 0
        ],
    }
    if lags:
        result["send_lag_ms"] = {
            "p50": round(percentile(lags, 50), 2),
            "p99": round(percentile(lags, 99), 2),
            "max": round(lags[-1], 2),
        }
    if phase.mode == "open":
        result["offered_req_per_s"] = round(n_users / phase.period, 1)
    return result


async def run_scenario(scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    out(f"== {scenario.key}: {scenario.title} ==")
    result: dict[str, Any] = {"scenario": scenario.key, "title": scenario.title}
    workdir = Path(tempfile.mkdtemp(prefix=f"presenced-load-{scenario.key}-"))
    started = time.perf_counter()
    server: subprocess.Popen[bytes] | None = None
    gens: Generators | None = None
    try:
        out(
            f"  creating {sum(r.users for r in scenario.realms):,} users in "
            f"{len(scenario.realms):,} realm(s) through the store API"
        )
        setup = await create_accounts(scenario, workdir)
        result["users"] = setup.users
        result["realms"] = len(setup.realms)
        result["create_s"] = round(setup.create_s, 1)
        result["create_users_per_s"] = round(setup.users / setup.create_s)
        port = free_port()
        base = f"http://{HOST}:{port}"
        with (workdir / "server.log").open("wb") as log:
            server = start_server(setup, port, log)
        result["server_ready_s"] = round(await wait_ready(base, server), 2)
        ready = snapshot(server.pid)
        result["server_rss_ready_mib"] = round(ready.rss_kib / 1024, 1)
        gens = Generators(setup, scenario, base, args.procs)
        gens.expect("READY", 120)
        result["cpus_allowed"] = {
            "server": allowed_cpus(server.pid),
            "generators": sorted({allowed_cpus(p.pid) for p in gens.procs}),
        }
        phases: list[dict[str, Any]] = []
        for index, phase in enumerate(scenario.phases):
            writes0 = presence_sequence_total(setup.database)
            t0 = time.monotonic() + 0.3
            gens.go(t0)
            time.sleep(max(0.0, t0 - time.monotonic()))
            before = snapshot(server.pid)
            if counted(phase):
                gens.expect("DONE", phase.duration + phase.grace + 60)
                after = snapshot(server.pid)
            else:
                time.sleep(max(0.0, t0 + phase.duration - time.monotonic()))
                after = snapshot(server.pid)
                gens.expect("DONE", phase.grace + 60)
            end = snapshot(server.pid)
            writes = presence_sequence_total(setup.database) - writes0
            phases.append(
                {"index": index, "before": before, "after": after, "end": end, "writes": writes}
            )
            out(f"  {phase.name}: done ({after.at - before.at:.1f} s)")
        gens.expect("RESULT", 120)
        gens.close()
        parts = [
            json.loads((workdir / f"loadgen-{p}.json").read_bytes()) for p in range(args.procs)
        ]
        idle_s = wait_idle(server.pid)
        summaries = []
        for info in phases:
            phase = scenario.phases[info["index"]]
            per_proc = [part["phases"][info["index"]] for part in parts]
            summaries.append(
                summarize_phase(
                    phase,
                    per_proc,
                    info["before"],
                    info["after"],
                    info["end"],
                    info["writes"],
                    setup.users,
                )
            )
        result["phases"] = summaries
        result["generator_max_rss_mib"] = round(max(p["max_rss_kib"] for p in parts) / 1024, 1)
        result["idle_wait_s"] = round(idle_s, 1)
        with_presence = users_with_presence(setup.database)
        result["users_with_presence"] = with_presence
        warm = next(
            (i for i in phases if scenario.phases[i["index"]].name == scenario.memory_phase),
            None,
        )
        if warm is not None and with_presence:
            grown = warm["end"].rss_kib - ready.rss_kib
            result["rss_growth_per_user_with_presence_bytes"] = round(grown * 1024 / with_presence)
        result["consistency"] = await check_consistency(setup, base, parts)
        final = snapshot(server.pid)
        result["server_rss_final_mib"] = round(final.rss_kib / 1024, 1)
        result["server_rss_peak_mib"] = round(final.hwm_kib / 1024, 1)
    finally:
        if gens is not None:
            gens.close()
        if server is not None:
            stop_server(server)
            result["server_log"] = scan_log(workdir / "server.log")
        if args.keep:
            out(f"  kept {workdir}")
        else:
            remove_workdir(workdir)
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    print_scenario(result)
    return result


def remove_workdir(path: Path) -> None:
    """Remove a scenario's temporary directory; retried, and said out loud if it stays."""
    errors: list[str] = []

    def note(func: Any, name: str, exc_info: Any) -> None:
        errors.append(f"{name}: {exc_info[1]}")

    for _attempt in range(3):
        shutil.rmtree(path, onerror=note)
        if not path.exists():
            return
        time.sleep(1.0)
    out(f"  could not remove {path}: {errors[:3]}")


def scan_log(path: Path) -> dict[str, Any]:
    """The server's log lines (warning level and up, so normally none), and any tracebacks."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {"lines": 0, "tracebacks": 0, "first": []}
    noteworthy = [ln for ln in lines if "Traceback" in ln or "ERROR" in ln or "WARNING" in ln]
    return {
        "lines": len(lines),
        "tracebacks": sum("Traceback" in ln for ln in lines),
        "first": noteworthy[:5] or lines[:5],
    }


# The consistency check


def store_rows(database: Path) -> tuple[dict[int, dict[str, tuple[int, int, int]]], dict[int, int]]:
    """Per realm id: user id -> (active_timestamp, idle_timestamp, last_update_id) as a full
    fetch should show them; and each realm's presence sequence."""
    since = time.time() - HISTORY_DAYS_CHECK * 86400
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        rows = conn.execute(
            "SELECT p.realm_id, p.user_id, p.last_active_time, p.last_connected_time, "
            "p.last_update_id, u.date_joined FROM user_presence p JOIN users u "
            "ON u.id = p.user_id WHERE u.is_active = 1 AND u.bot_type IS NULL "
            "AND p.last_connected_time >= ?",
            (since,),
        ).fetchall()
        sequences = dict(conn.execute("SELECT realm_id, last_update_id FROM presence_sequences"))
    realms: dict[int, dict[str, tuple[int, int, int]]] = {}
    for realm_id, user_id, active, connected, update_id, joined in rows:
        realms.setdefault(realm_id, {})[str(user_id)] = (
            int(joined if active is None else active),
            int(joined if connected is None else connected),
            update_id,
        )
    return realms, {int(k): int(v) for k, v in sequences.items()}


async def full_fetch(
    session: aiohttp.ClientSession, base: str, checker: dict[str, Any]
) -> dict[str, Any]:
    token = base64.b64encode(f"{checker['email']}:{checker['key']}".encode()).decode()
    form = {
        "status": "active",
        "new_user_input": "false",
        "slim_presence": "true",
        "last_update_id": "-1",
        "history_limit_days": str(HISTORY_DAYS_CHECK),
    }
    headers = {"Authorization": "Basic " + token, "Host": checker["host"]}
    async with session.post(base + "/api/v1/users/me/presence", data=form, headers=headers) as resp:
        body: dict[str, Any] = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"full fetch as {checker['email']}: {resp.status} {body}")
        return body


async def check_consistency(setup: Setup, base: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """A full fetch per realm (last_update_id=-1, 365 days) against the SQLite rows; the
    auditors' delta-built views against the same rows."""
    checkers = {sub: json.loads(line) for sub, line in setup.checkers.items()}
    fetched: dict[str, dict[str, Any]] = {}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        gate = asyncio.Semaphore(8)

        async def one(sub: str) -> None:
            async with gate:
                fetched[sub] = await full_fetch(session, base, checkers[sub])

        await asyncio.gather(*(one(sub) for sub in checkers))
    realms, sequences = store_rows(setup.database)
    bad_realms: list[str] = []
    for sub, body in fetched.items():
        realm_id = setup.realms[sub]
        expected = {uid: (a, i) for uid, (a, i, _) in realms.get(realm_id, {}).items()}
        got = {
            uid: (e["active_timestamp"], e["idle_timestamp"])
            for uid, e in body["presences"].items()
        }
        problems = []
        if got != expected:
            missing = len(expected.keys() - got.keys())
            extra = len(got.keys() - expected.keys())
            differ = sum(1 for uid in got.keys() & expected.keys() if got[uid] != expected[uid])
            problems.append(f"{missing} missing, {extra} extra, {differ} differ")
        if body["presence_last_update_id"] != sequences.get(realm_id):
            problems.append(
                f"presence_last_update_id {body['presence_last_update_id']} != sequence "
                f"{sequences.get(realm_id)}"
            )
        if problems:
            bad_realms.append(f"{sub}: " + "; ".join(problems))
    # Auditors: rows written after an auditor's last sync may be newer than its view, but only
    # rows of users who pinged after the generators stopped (the auditors and the checkers).
    late_writers = {str(c["user_id"]) for c in checkers.values()}
    for part in parts:
        late_writers.update(str(a["user_id"]) for a in part["auditors"])
    audited = 0
    bad_auditors: list[str] = []
    for part in parts:
        for auditor in part["auditors"]:
            audited += 1
            rows = realms.get(setup.realms[auditor["realm"]], {})
            view = {uid: tuple(v) for uid, v in (auditor["view"] or {}).items()}
            cursor = auditor["cursor"] if auditor["cursor"] is not None else -1
            wrong = []
            for uid, (active, idle, update_id) in rows.items():
                if view.get(uid) == (active, idle):
                    continue
                if update_id > cursor and uid in late_writers:
                    continue
                wrong.append(uid)
            unknown = [uid for uid in view if uid not in rows]
            if wrong or unknown:
                bad_auditors.append(
                    f"user {auditor['user_id']} ({auditor['realm']}): {len(wrong)} rows differ"
                    f" or missing (e.g. {wrong[:3]}), {len(unknown)} extra"
                )
    regressions = sum(ph["cursor_regressions"] for part in parts for ph in part["phases"])
    return {
        "realms_checked": len(fetched),
        "realms_disagreeing": len(bad_realms),
        "realm_problems": bad_realms[:10],
        "auditors_checked": audited,
        "auditors_disagreeing": len(bad_auditors),
        "auditor_problems": bad_auditors[:10],
        "cursor_regressions": regressions,
        "ok": not bad_realms and not bad_auditors and regressions == 0 and audited > 0,
    }


# Reporting


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


TABLE_HEADER = (
    "| phase | req/s | p50 ms | p99 ms | max ms | server CPU s / 1k req | server CPU util "
    "| bytes / req | entries / reply | writes | server RSS MiB | errors | generators' CPU "
    "| CPU0 / CPU1 busy |"
)


def phase_row(ph: dict[str, Any]) -> str:
    lat = ph["latency_ms"]
    busy = ph["cpu_busy"]
    cells = [
        ph["phase"] + ("" if ph["measured"] else " (not measured)"),
        fmt(ph["req_per_s"]),
        fmt(lat["p50"], 2),
        fmt(lat["p99"], 2),
        fmt(lat["max"], 1),
        fmt(ph["server_cpu_s_per_1k"], 3),
        fmt(ph["server_cpu_util"], 2),
        fmt(ph["bytes_per_request"]),
        fmt(ph["entries_per_reply"]),
        fmt(ph["presence_writes"]),
        fmt(ph["server_rss_mib"]),
        fmt(ph["errors"]),
        fmt(ph["generator_cpu_total"], 2),
        f"{busy.get('cpu0', 0):.2f} / {busy.get('cpu1', 0):.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def slow_text(ph: dict[str, Any]) -> str:
    slow = ph["slow_requests"]
    worst = ", ".join(
        f"s{w['second']}: {w['over']}/{w['requests']} (max {w['max_ms']} ms)"
        for w in slow["worst_seconds"]
    )
    text = f"{slow['count']:,} requests over {slow['over_ms']} ms"
    return text + (f", worst seconds of the phase: {worst}" if worst else "")


def print_scenario(result: dict[str, Any]) -> None:
    out()
    out(f"{result['scenario']}: {result['title']}")
    if "cpus_allowed" in result:
        cpus = result["cpus_allowed"]
        out(f"  CPUs allowed: server {cpus['server']}, generators {', '.join(cpus['generators'])}")
    out(
        f"  {result.get('users', 0):,} users in {result.get('realms', 0):,} realm(s); created in "
        f"{result.get('create_s')} s ({result.get('create_users_per_s')} users/s through the "
        f"store API); elapsed {result.get('elapsed_s')} s"
    )
    out("  " + TABLE_HEADER)
    for ph in result.get("phases", []):
        if ph["shown"]:
            out("  " + phase_row(ph))
    for ph in result.get("phases", []):
        if not ph["shown"]:
            continue
        extra = []
        if ph["error_kinds"]:
            extra.append(f"errors {ph['error_kinds']} e.g. {ph['error_samples'][:2]}")
        if "send_lag_ms" in ph:
            extra.append(f"generator send lag p99 {ph['send_lag_ms']['p99']} ms")
        if "offered_req_per_s" in ph:
            extra.append(f"offered {ph['offered_req_per_s']} req/s")
        extra.append(slow_text(ph))
        by = ", ".join(
            f"{k} {v['n']:,} (p50 {v['p50']} / p99 {v['p99']} ms)"
            for k, v in ph["latency_by_request"].items()
        )
        extra.append(f"by request: {by}")
        extra.append(f"non-empty replies {ph['nonempty_replies']:,}/{ph['presence_replies']:,}")
        out(f"    {ph['phase']}: " + "; ".join(extra))
    if "rss_growth_per_user_with_presence_bytes" in result:
        out(
            f"  server RSS: {result['server_rss_ready_mib']} MiB when ready, "
            f"+{result['rss_growth_per_user_with_presence_bytes']:,} B per user with presence "
            f"after warm-up ({result['users_with_presence']:,} users); peak "
            f"{result.get('server_rss_peak_mib')} MiB"
        )
    log = result.get("server_log")
    if log:
        out(
            f"  server log: {log['lines']} lines, {log['tracebacks']} tracebacks"
            + (f"; first: {log['first']}" if log["lines"] else "")
        )
    c = result.get("consistency")
    if c:
        verdict = "OK" if c["ok"] else "FAILED"
        out(
            f"  consistency {verdict}: {c['realms_checked']:,} realm full fetches, "
            f"{c['realms_disagreeing']} disagree; {c['auditors_checked']} auditors, "
            f"{c['auditors_disagreeing']} disagree; {c['cursor_regressions']} cursor regressions"
        )
        for problem in c["realm_problems"] + c["auditor_problems"]:
            out(f"    {problem}")
    out()


def find_phase(results: dict[str, Any], key: str, prefix: str) -> dict[str, Any] | None:
    scenario = results.get(key)
    if not scenario:
        return None
    phases: list[dict[str, Any]] = scenario.get("phases", [])
    for ph in phases:
        if ph["phase"].startswith(prefix) and ph["measured"]:
            return ph
    return None


def targets(results: dict[str, Any], quick: bool) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) rows."""
    rows: list[tuple[str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    sat = find_phase(results, "S1", "saturation")
    if sat:
        rows.append(
            (
                "S1 ≥ 3,000 req/s at saturation",
                f"{fmt(sat['req_per_s'])} req/s ({sat['errors']} errors)",
                verdict((sat["req_per_s"] or 0) >= 3000),
            )
        )
    open1 = find_phase(results, "S1", "open")
    if open1:
        rate = open1["req_per_s"] or 0
        rows.append(
            (
                "S1 p99 < 25 ms at open-loop 1,000 req/s",
                f"p99 {fmt(open1['latency_ms']['p99'], 2)} ms at {fmt(rate)} req/s",
                verdict(open1["latency_ms"]["p99"] < 25 and open1["errors"] == 0)
                + (" (quick: lower rate)" if quick else ""),
            )
        )
    s2 = find_phase(results, "S2", "open")
    if s2:
        util = s2["server_cpu_util"] or 0
        offered = s2.get("offered_req_per_s") or 0
        sustained = s2["errors"] == 0 and (s2["req_per_s"] or 0) >= 0.95 * offered
        rows.append(
            (
                "S2 sustained, p99 < 100 ms, server < 0.5 core",
                f"{fmt(s2['req_per_s'])} of {fmt(offered)} req/s, p99 "
                f"{fmt(s2['latency_ms']['p99'], 1)} ms, {util:.2f} core, {s2['errors']} errors",
                verdict(sustained and s2["latency_ms"]["p99"] < 100 and util < 0.5)
                + (" (quick: time-compressed)" if quick else ""),
            )
        )
    small = find_phase(results, "S5", "empty delta, 100")
    big = next(
        (
            ph
            for ph in results.get("S5", {}).get("phases", [])
            if ph["phase"].startswith("empty delta") and ph is not small and ph["measured"]
        ),
        None,
    )
    if small and big and small["server_cpu_s_per_1k"] and big["server_cpu_s_per_1k"]:
        ratio = big["server_cpu_s_per_1k"] / small["server_cpu_s_per_1k"]
        rows.append(
            (
                "S5 CPU per empty-delta request, large realm within 1.5x of 100 users",
                f"{fmt(small['server_cpu_s_per_1k'], 3)} vs {fmt(big['server_cpu_s_per_1k'], 3)} "
                f"s/1k req: {ratio:.2f}x",
                verdict(ratio <= 1.5),
            )
        )
    for key in ("S2", "S4"):
        growth = results.get(key, {}).get("rss_growth_per_user_with_presence_bytes")
        if growth is not None:
            rows.append(
                (
                    f"memory < 2 KB per user with presence ({key}: server RSS growth, an upper "
                    "bound on the index)",
                    f"{growth:,} B per user",
                    verdict(growth < 2048),
                )
            )
    checks = [(k, r["consistency"]) for k, r in results.items() if "consistency" in r]
    if checks:
        good = all(c["ok"] for _, c in checks)
        rows.append(
            (
                "no lost or reordered change (final full fetch and auditors agree with the store)",
                ", ".join(f"{k} {'ok' if c['ok'] else 'FAILED'}" for k, c in checks),
                verdict(good),
            )
        )
    return rows


def generator_check(results: dict[str, Any]) -> list[str]:
    """Per measured phase, which side was the limit: the server if its process used >= 95 % of
    its core; else the generators if they used >= 85 % of theirs (all processes together) or
    open-loop sends left > 10 ms late at p99; else neither (an open loop below capacity, or one
    request at a time). CPU busy time not used by the server or the generators is shown too
    (other processes on the machine)."""
    lines = []
    for key, scenario in results.items():
        for ph in scenario.get("phases", []):
            if not ph["measured"]:
                continue
            total = ph["generator_cpu_total"] or 0.0
            server = ph["server_cpu_util"] or 0.0
            cpu0 = ph["cpu_busy"].get("cpu0", 0.0)
            cpu1 = ph["cpu_busy"].get("cpu1", 0.0)
            other = ph["other_cpu_util"] or 0.0
            lag = ph.get("send_lag_ms", {}).get("p99")
            if server >= 0.95:
                verdict = "server-bound (its core is full)"
                if total >= GENERATOR_BOUND:
                    verdict += "; the generators were close to their limit too"
            elif total >= GENERATOR_BOUND or (lag is not None and lag > 10):
                verdict = "GENERATOR-BOUND: the figure understates the server"
            elif other >= 0.2:
                verdict = "neither saturated; other processes competed for the CPUs"
            else:
                verdict = "neither saturated (below capacity, or one request at a time)"
            lag_text = f", send lag p99 {lag} ms" if lag is not None else ""
            lines.append(
                f"{key} {ph['phase']}: generators {total:.2f} core (all processes){lag_text}; "
                f"server {server:.2f} core; CPU0 {cpu0:.2f} / CPU1 {cpu1:.2f} busy, other "
                f"processes ~{other:.2f} core: {verdict}"
            )
    return lines


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    free = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        text = subprocess.run(["free", "-h"], capture_output=True, text=True, timeout=10).stdout
        free = next((ln for ln in text.splitlines() if ln.startswith("Mem:")), "")
        free = " ".join(free.split())
    nproc = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, timeout=10).stdout
    return {
        "nproc": nproc.strip() or str(os.cpu_count()),
        "cpu_model": model,
        "memory": free,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "pinning": "server on CPU 1, generators on CPU 0 (taskset)" if PIN else "not pinned",
    }


def source_identity() -> dict[str, Any]:
    digest = hashlib.sha256()
    for path in sorted((REPO / "src" / "presenced").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".yaml"):
            digest.update(str(path.relative_to(REPO)).encode())
            digest.update(path.read_bytes())
    head = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    return {"git_head": head, "src_sha256": digest.hexdigest()[:16]}


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"## Load benchmark run, {report['started']}" + (" (quick)" if report["quick"] else ""),
        "",
        f"- Machine: {m['nproc']} CPUs ({m['cpu_model']}), memory `{m['memory']}`, Python "
        f"{m['python']}, Linux {m['kernel']}; {m['pinning']}.",
        f"- Command: `{report['command']}`",
        f"- presenced: git {report['source']['git_head']} plus working tree, src sha256 "
        f"{report['source']['src_sha256']}; `presenced serve --log-level warning` (no access "
        "log), `PRESENCED_RATE_LIMIT_REQUESTS=0`, uvicorn with uvloop/httptools.",
        f"- Generators: {report['procs']} processes (bench/loadgen.py, asyncio + aiohttp).",
        f"- Load average before / after: {report['loadavg_before']} / "
        f"{report['loadavg_after']}; total time {report['elapsed_s']:.0f} s.",
        "",
        "### Targets",
        "",
        "| target | measured | verdict |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in report["targets"]]
    for key, result in report["results"].items():
        lines += [
            "",
            f"### {key}: {result['title']}",
            "",
            f"{result.get('users', 0):,} users in {result.get('realms', 0):,} realm(s), created "
            f"through the store API in {result.get('create_s')} s "
            f"({result.get('create_users_per_s')} users/s). Server RSS "
            f"{result.get('server_rss_ready_mib')} MiB when ready, peak "
            f"{result.get('server_rss_peak_mib')} MiB.",
            "",
            TABLE_HEADER,
            "|" + " --- |" * 14,
        ]
        lines += [phase_row(ph) for ph in result.get("phases", []) if ph["shown"]]
        lines.append("")
        for ph in result.get("phases", []):
            if not ph["shown"]:
                continue
            notes = [ph["label"]] if ph["label"] else []
            if "offered_req_per_s" in ph:
                notes.append(f"offered {fmt(ph['offered_req_per_s'])} req/s")
            if "send_lag_ms" in ph:
                notes.append(f"generator send lag p99 {ph['send_lag_ms']['p99']} ms")
            notes.append(slow_text(ph))
            by = ", ".join(
                f"{k} {v['n']:,} (p50 {v['p50']} / p99 {v['p99']} ms)"
                for k, v in ph["latency_by_request"].items()
            )
            notes.append(f"by request: {by}")
            if ph["error_kinds"]:
                notes.append(f"errors: {ph['error_kinds']}")
            lines.append(f"- {ph['phase']}: " + "; ".join(notes))
        if "rss_growth_per_user_with_presence_bytes" in result:
            lines.append(
                f"- Server RSS growth over the warm-up: "
                f"{result['rss_growth_per_user_with_presence_bytes']:,} B per user with presence"
            )
        log = result.get("server_log")
        if log:
            lines.append(
                f"- Server log (warning level): {log['lines']} lines, {log['tracebacks']} "
                "tracebacks."
            )
        c = result.get("consistency")
        if c:
            lines.append(
                f"- Consistency {'OK' if c['ok'] else 'FAILED'}: {c['realms_checked']:,} full "
                f"fetches (last_update_id=-1, history_limit_days=365) vs the SQLite rows, "
                f"{c['realms_disagreeing']} disagree; {c['auditors_checked']} auditor views "
                f"built from deltas, {c['auditors_disagreeing']} disagree; "
                f"{c['cursor_regressions']} cursor regressions."
            )
    lines += ["", "### Is the generator the bottleneck?", ""]
    lines += [f"- {line}" for line in report["generator_check"]]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def pinned_to_client_cpu() -> Iterator[None]:
    before = os.sched_getaffinity(0)
    if PIN:
        os.sched_setaffinity(0, {CLIENT_CPU})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    table = scenarios(args.quick)
    keys = [k.strip().upper() for k in args.scenarios.split(",") if k.strip()]
    unknown = [k for k in keys if k not in table]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {sorted(table)}")
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": args.quick,
        "procs": args.procs,
        "machine": machine(),
        "source": source_identity(),
        "loadavg_before": loadavg(),
    }
    out(f"load average before: {report['loadavg_before']}")
    started = time.perf_counter()
    results: dict[str, Any] = {}
    with pinned_to_client_cpu():
        for key in keys:
            results[key] = await run_scenario(table[key], args)
    report["results"] = results
    report["elapsed_s"] = time.perf_counter() - started
    report["loadavg_after"] = loadavg()
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
    """SIGTERM: unwind like Ctrl-C, so the server and generators are stopped and the temporary
    directory is removed."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, terminate)
    parser = argparse.ArgumentParser(description="presenced load benchmark (see the docstring)")
    parser.add_argument("--scenarios", default="S1,S2,S3,S4,S5")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--procs", type=int, default=4, help="load-generator processes")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--markdown", type=Path, help="write a markdown section here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args(argv)
    if not 1 <= args.procs <= 16:
        parser.error("--procs must be 1..16")
    report = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    if args.markdown:
        args.markdown.write_text(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
