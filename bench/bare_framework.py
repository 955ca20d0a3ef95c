"""presenced against a bare Starlette app under the same wrk load, side by side in one run.

The load is issue 12's: wrk with 16 connections and 10 users taking turns, each request
``POST /api/v1/users/me/presence`` with ``status=active&last_update_id=-1``, rate limit off.
presenced runs as ``presenced serve`` runs by default (``--log-level info``, so with the access
log); the bare app (bench/bare_app.py) runs under uvicorn's defaults (access log too). Rounds
alternate between the two, so a change in the machine's load hits both; the report gives each
one's requests/s per round, the medians and their ratio, and server CPU per 1,000 requests.

``--gzip`` measures presenced alone, alternating rounds without and with
``Accept-Encoding: gzip``, and reports bytes on the wire per request (status line, headers and
body, as wrk reads them) for each and their ratio. ``--realm-users N`` makes the realm N users
who all have presence, so that a full fetch is large (``--realm-users 10000`` for the S2 size).

Run (from the repository root)::

    .venv/bin/python bench/bare_framework.py                       # 3 rounds of 10 s each
    .venv/bin/python bench/bare_framework.py --gzip --realm-users 10000
    .venv/bin/python bench/bare_framework.py --rounds 5 --duration 20 --json out.json

wrk (/usr/bin/wrk) is pinned to CPU 0, the servers to CPU 1. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from harness.accounts import Account, NewUser, create_accounts, create_realms
from harness.backends import (
    DEFAULT_POSTGRES_URL,
    DEFAULT_REDIS_URL,
    STORES,
    Backend,
    BackendChoice,
    bench_backend,
)
from harness.machine import SERVER_CPU, machine, pinned, reset_affinity, source_identity
from harness.procfs import loadavg, proc_cpu_s
from harness.servers import HOST, ServerGroup, ServerOptions, free_port, stop_process
from harness.stats import fmt, out
from harness.wrk import WrkResult, available, run_wrk, write_script
from presenced.store.base import StoreError

BENCH_DIR = Path(__file__).resolve().parent
PATH = "/api/v1/users/me/presence"
FORM = "application/x-www-form-urlencoded"
BODY = "status=active&last_update_id=-1"


@dataclass
class Target:
    """One thing wrk is pointed at: a server (its pids) and the request headers it sends."""

    name: str
    url: str
    pids: list[int]
    script: Path
    rounds: list[dict[str, Any]]


def header_sets(accounts: Sequence[Account], gzip: bool) -> list[dict[str, str]]:
    sets = []
    for account in accounts:
        headers = {
            "Authorization": account.authorization,
            "Content-Type": FORM,
        }
        if gzip:
            headers["Accept-Encoding"] = "gzip"
        sets.append(headers)
    return sets


async def make_accounts(store_backend: Backend, count: int) -> list[Account]:
    store = await store_backend.open_store()
    try:
        await store.migrate()
        now = time.time()
        realms = await create_realms(store, [""], now)
        wanted = [NewUser(realms[""], f"bare{i}@example.com", f"Bare {i}") for i in range(count)]
        return await create_accounts(store, wanted, now)
    finally:
        await store.close()


async def give_everyone_presence(base: str, accounts: Sequence[Account]) -> None:
    """One ping_only report per user, so every user appears in a full fetch."""
    gate = asyncio.Semaphore(32)
    async with aiohttp.ClientSession() as session:

        async def one(account: Account) -> None:
            async with (
                gate,
                session.post(
                    base + PATH,
                    data={"status": "active", "ping_only": "true"},
                    headers={"Authorization": account.authorization},
                ) as resp,
            ):
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"priming {account.email}: HTTP {resp.status}")

        await asyncio.gather(*(one(a) for a in accounts))


async def probe_encoding(url: str, account: Account) -> dict[str, Any]:
    """One request with ``Accept-Encoding: gzip``: how the server encoded the answer, its size
    on the wire and decoded, and whether it decodes to a success (so the bytes wrk counts are
    those of a valid response)."""
    headers = {"Authorization": account.authorization, "Accept-Encoding": "gzip"}
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.post(url, data=BODY, headers={**headers, "Content-Type": FORM}) as resp,
    ):
        raw = await resp.read()
        encoding = resp.headers.get("Content-Encoding", "identity")
    body = gzip.decompress(raw) if encoding == "gzip" else raw
    decoded = json.loads(body)
    return {
        "content_encoding": encoding,
        "body_bytes_on_the_wire": len(raw),
        "body_bytes_decoded": len(body),
        "decodes_to_success": decoded.get("result") == "success",
    }


def start_bare_app(
    port: int, log_level: str, cpus: str | None, log: Path
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH_DIR), "bare_app:app"]
    argv += ["--host", HOST, "--port", str(port), "--log-level", log_level]
    with log.open("wb") as fh:
        return subprocess.Popen(
            pinned(argv, cpus), stdout=fh, stderr=subprocess.STDOUT, preexec_fn=reset_affinity
        )


async def wait_answers(url: str, limit: float = 60.0) -> None:
    """Until the URL answers an (unauthenticated) POST at all."""
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while time.monotonic() - started < limit:
            try:
                async with session.post(url, data={"status": "active"}) as resp:
                    await resp.read()
                    return
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {limit} s")


def cpu_of(pids: Sequence[int]) -> float:
    return sum(proc_cpu_s(pid) for pid in pids)


def measure(target: Target, args: argparse.Namespace, index: int) -> dict[str, Any]:
    cpu0 = cpu_of(target.pids)
    result: WrkResult = run_wrk(
        target.url, target.script, args.connections, args.threads, args.duration
    )
    cpu = cpu_of(target.pids) - cpu0
    row = {
        "round": index,
        **result.to_json(),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_s_per_1k": round(cpu / result.requests * 1000, 3) if result.requests else None,
    }
    target.rounds.append(row)
    out(
        f"  round {index} {target.name:<22} {row['requests_per_s']:>9,.0f} req/s  p50 "
        f"{result.p50_ms:.2f} / p99 {result.p99_ms:.2f} ms  {row['bytes_per_request']:,.0f} B/req"
        f"  server CPU {fmt(row['server_cpu_s_per_1k'], 3)} s/1k  errors {result.errors}"
    )
    return row


def median_of(target: Target, key: str) -> float:
    return float(statistics.median(r[key] for r in target.rounds if r[key] is not None))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if not available():
        raise SystemExit("wrk is not installed (/usr/bin/wrk; apt-get install wrk)")
    report: dict[str, Any] = {
        "benchmark": "bare_framework",
        "mode": "gzip" if args.gzip else "compare-bare",
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "load": {
            "tool": "wrk",
            "connections": args.connections,
            "threads": args.threads,
            "users": args.users,
            "realm_users": max(args.users, args.realm_users),
            "request": f"POST {PATH} {BODY}",
            "duration_s": args.duration,
            "rounds": args.rounds,
        },
        "machine": machine().to_json(),
        "source": source_identity().to_json(),
        "loadavg_before": loadavg(),
    }
    server_cpus = None if args.server_cpus == "none" else args.server_cpus
    workdir = Path(tempfile.mkdtemp(prefix="presenced-bare-"))
    bare: subprocess.Popen[bytes] | None = None
    try:
        choice = BackendChoice(args.store, args.redis, args.postgres_url, args.redis_url)
        async with bench_backend(choice, workdir) as backend:
            realm_users = max(args.users, args.realm_users)
            out(f"creating {realm_users:,} users through the store API ({choice.describe()})")
            accounts = await make_accounts(backend, realm_users)
            users = accounts[: args.users]
            options = ServerOptions(
                log_level=None,
                cpus=server_cpus,
                env={**backend.server_env(), "PRESENCED_RATE_LIMIT_REQUESTS": "0"},
            )
            servers = ServerGroup(options, workdir)
            try:
                await servers.wait_ready()
                out(f"presenced: {' '.join(servers.argvs[0])}")
                if realm_users > args.users:
                    out(f"giving all {realm_users:,} users presence (ping_only)")
                    await give_everyone_presence(servers.base_url, accounts)
                url = servers.base_url + PATH
                plain = make_target("presenced", url, servers.pids(), workdir, users, gzip=False)
                if args.gzip:
                    report["gzip_probe"] = await probe_encoding(url, users[0])
                    print_probe(report["gzip_probe"])
                    other = make_target(
                        "presenced, gzip", url, servers.pids(), workdir, users, gzip=True
                    )
                else:
                    port = free_port()
                    bare = start_bare_app(
                        port, args.bare_log_level, server_cpus, workdir / "bare.log"
                    )
                    bare_url = f"http://{HOST}:{port}{PATH}"
                    await wait_answers(bare_url)
                    out(
                        "bare Starlette app: uvicorn bare_app:app --log-level "
                        + args.bare_log_level
                    )
                    other = make_target(
                        "bare Starlette", bare_url, [bare.pid], workdir, users, gzip=False
                    )
                targets = [plain, other]
                run_rounds(targets, args)
            finally:
                servers.stop()
                if bare is not None:
                    stop_process(bare)
    finally:
        if args.keep:
            out(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report["targets"] = {t.name: t.rounds for t in targets}
    report["summary"] = summarize(targets, args.gzip)
    report["loadavg_after"] = loadavg()
    return report


def make_target(
    name: str, url: str, pids: list[int], workdir: Path, users: Sequence[Account], *, gzip: bool
) -> Target:
    script = workdir / (name.replace(" ", "-").replace(",", "") + ".lua")
    write_script(script, "POST", PATH, BODY, header_sets(users, gzip))
    return Target(name, url, pids, script, [])


def print_probe(probe: dict[str, Any]) -> None:
    out(
        f"with Accept-Encoding: gzip the server answers {probe['content_encoding']}: "
        f"{probe['body_bytes_on_the_wire']:,} body bytes on the wire for "
        f"{probe['body_bytes_decoded']:,} decoded"
        + ("" if probe["decodes_to_success"] else " (NOT a success response)")
    )


def run_rounds(targets: Sequence[Target], args: argparse.Namespace) -> None:
    """An unmeasured warm-up of each target, then the rounds, the order alternating so that a
    change in the machine's load falls on both alike."""
    for target in targets:
        run_wrk(target.url, target.script, args.connections, args.threads, args.warmup)
    for index in range(args.rounds):
        for target in targets if index % 2 == 0 else reversed(targets):
            measure(target, args, index)


def summarize(targets: Sequence[Target], gzip: bool) -> dict[str, Any]:
    first, second = targets
    summary: dict[str, Any] = {
        t.name: {
            "median_requests_per_s": round(median_of(t, "requests_per_s"), 1),
            "median_bytes_per_request": round(median_of(t, "bytes_per_request"), 1),
            "median_server_cpu_s_per_1k": round(median_of(t, "server_cpu_s_per_1k"), 3),
            "errors": sum(r["errors"] for r in t.rounds),
        }
        for t in targets
    }
    a, b = summary[first.name], summary[second.name]
    out()
    out("== Summary (medians over the rounds) ==")
    for name, row in summary.items():
        out(
            f"  {name:<22} {row['median_requests_per_s']:>9,.0f} req/s, "
            f"{row['median_bytes_per_request']:,.0f} B/req, server CPU "
            f"{row['median_server_cpu_s_per_1k']:.3f} s per 1k req, {row['errors']} errors"
        )
    if gzip:
        ratio = a["median_bytes_per_request"] / b["median_bytes_per_request"]
        summary["bytes_ratio_identity_to_gzip"] = round(ratio, 2)
        summary["cpu_ratio_gzip_to_identity"] = round(
            b["median_server_cpu_s_per_1k"] / a["median_server_cpu_s_per_1k"], 2
        )
        out(f"  bytes on the wire per request, without / with gzip: {ratio:.2f}x fewer with gzip")
        out(f"  server CPU per request, gzip / identity: {summary['cpu_ratio_gzip_to_identity']}x")
    else:
        ratio = a["median_requests_per_s"] / b["median_requests_per_s"]
        summary["ratio_presenced_to_bare"] = round(ratio, 3)
        out(f"  presenced / bare Starlette: {ratio:.2f}x the requests/s")
    return summary


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--gzip", action="store_true", help="presenced without and with gzip")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per target")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of an unmeasured run first")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--users", type=int, default=10, help="users taking turns")
    parser.add_argument(
        "--realm-users", type=int, default=0, help="realm size, all with presence (default --users)"
    )
    parser.add_argument("--bare-log-level", default="info", help="uvicorn --log-level (bare app)")
    parser.add_argument("--server-cpus", default=str(SERVER_CPU), help="taskset list, or 'none'")
    parser.add_argument("--store", choices=STORES, default="sqlite")
    parser.add_argument("--redis", action="store_true")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--json", type=Path, help="also write the JSON report here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if min(args.rounds, args.duration, args.warmup, args.users) < 1:
        parser.error("--rounds, --duration, --warmup and --users must be at least 1")
    if args.connections < args.threads:
        parser.error("wrk needs at least one connection per thread")
    return args


def terminate(signum: int, frame: object) -> None:
    """SIGTERM: unwind like Ctrl-C, so the servers are stopped and the data removed."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, terminate)
    args = parse_args(argv)
    try:
        report = asyncio.run(run(args))
    except KeyboardInterrupt:
        print("bare_framework.py: interrupted; servers stopped, data removed", file=sys.stderr)
        return 130
    except StoreError as exc:
        print(f"bare_framework.py: the store refused: {exc}", file=sys.stderr)
        return 2
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
