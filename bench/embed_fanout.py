"""Benchmark: the embeddable directory's live feed with N open pages on an M-person realm.

Runs ``python -m presenced serve`` on 127.0.0.1 against a fresh SQLite database, opens N pages'
streams (``/embed/stream``), waits until each has its snapshot, then has C people come online
one after another (each a first presence report, so each is announced). Reports:

- server memory per open page (RSS growth from opening the N streams, divided by N);
- server CPU while the pages sit idle (the once-a-second token re-check of every page);
- server CPU per delivered update (CPU during the changes, less the idle rate, divided by the
  number of (page, person) updates the pages received).

Run: ``.venv/bin/python bench/embed_fanout.py [--pages 1000] [--users 10000] [--changes 20]``.
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from presenced.keys import PREFIX_LENGTH, generate_api_key, hash_api_key
from presenced.store.base import Role
from presenced.store.factory import open_store
from presenced.web.embed.tokens import new_token, token_hash

HOST = "127.0.0.1"
IDLE_SECS = 5.0
READ_BUFSIZE = 8 * 2**20


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all threads (/proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


async def populate(database_url: str, users: int, changes: int) -> tuple[str, list[str]]:
    """A realm of ``users`` people and a whole-organization token; the credentials (HTTP
    Basic headers) of the first ``changes`` people, who will come online."""
    store = open_store(database_url)
    await store.open()
    try:
        await store.migrate()
        now = time.time()
        realm = await store.create_realm("", "Bench", now)
        auth = []
        for i in range(users):
            email = f"person{i}@bench.test"
            user = await store.create_user(
                realm.id, email, email, f"Person {i:05d}", Role.MEMBER, None, None, now
            )
            if i < changes:
                key = generate_api_key()
                await store.create_api_key(
                    user.id, hash_api_key(key), key[:PREFIX_LENGTH], "bench", now
                )
                auth.append("Basic " + base64.b64encode(f"{email}:{key}".encode()).decode())
        token = new_token()
        await store.create_embed_token(
            realm.id, token_hash(token), token[:PREFIX_LENGTH], "bench", None, (), now
        )
        return token, auth
    finally:
        await store.close()


@contextlib.contextmanager
def server(workdir: Path, database_url: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PRESENCED_DATABASE_URL": database_url,
        "PRESENCED_RATE_LIMIT_REQUESTS": "0",
    }
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "presenced",
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class Page:
    """One open directory page's stream: counts the (person) updates it receives."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.updates = 0

    async def run(self, session: aiohttp.ClientSession, url: str) -> None:
        async with session.get(url) as response:
            assert response.status == 200, await response.text()
            event = ""
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "snapshot":
                    self.ready.set()
                elif line.startswith("data: ") and event == "presence":
                    self.updates += len(json.loads(line[6:])["presences"])


async def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="embed-bench-") as tmp:
        workdir = Path(tmp)
        database_url = f"sqlite:///{workdir / 'bench.db'}"
        token, auth = await populate(database_url, args.users, args.changes)
        port = free_port()
        base = f"http://{HOST}:{port}"
        with server(workdir, database_url, port) as process:
            connector = aiohttp.TCPConnector(limit=0)
            # A snapshot of 10,000 people is one line of about 1 MB.
            async with aiohttp.ClientSession(
                connector=connector, read_bufsize=READ_BUFSIZE
            ) as session:
                await wait_until_serving(session, base)
                await asyncio.sleep(1.0)
                rss_before = rss_kib(process.pid)
                pages: list[Page] = []
                tasks = []
                url = f"{base}/embed/stream?token={token}"
                while len(pages) < args.pages:  # in batches, as pages open over time
                    batch = [Page() for _ in range(min(args.batch, args.pages - len(pages)))]
                    tasks += [asyncio.create_task(p.run(session, url)) for p in batch]
                    pages += batch
                    await asyncio.wait_for(
                        asyncio.gather(*(p.ready.wait() for p in batch)), timeout=120
                    )
                await asyncio.sleep(2.0)
                rss_after = rss_kib(process.pid)

                cpu0 = cpu_seconds(process.pid)
                await asyncio.sleep(IDLE_SECS)
                idle_rate = (cpu_seconds(process.pid) - cpu0) / IDLE_SECS

                start, cpu1 = time.monotonic(), cpu_seconds(process.pid)
                for header in auth:
                    async with session.post(
                        f"{base}/api/v1/users/me/presence",
                        data={"status": "active", "new_user_input": "true"},
                        headers={"Authorization": header},
                    ) as response:
                        assert response.status == 200, await response.text()
                    await asyncio.sleep(args.gap)
                expected = args.pages * args.changes
                await wait_until(
                    lambda: sum(p.updates for p in pages) >= expected, 120, "every update"
                )
                elapsed = time.monotonic() - start
                cpu = cpu_seconds(process.pid) - cpu1 - idle_rate * elapsed
                delivered = sum(p.updates for p in pages)
                rss_end = rss_kib(process.pid)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "pages": args.pages,
        "users": args.users,
        "changes": args.changes,
        "delivered_updates": delivered,
        "rss_kib_before_pages": rss_before,
        "memory_per_page_kib": round((rss_after - rss_before) / args.pages, 1),
        "memory_per_page_kib_after_changes": round((rss_end - rss_before) / args.pages, 1),
        "idle_cpu_percent": round(idle_rate * 100, 1),
        "idle_cpu_us_per_page_second": round(idle_rate / args.pages * 1e6, 1),
        "cpu_us_per_delivered_update": round(max(cpu, 0.0) / delivered * 1e6, 1),
        "seconds_for_all_changes": round(elapsed, 2),
    }


async def wait_until_serving(session: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(base + "/api/v1/server_settings") as response:
                if response.status == 200:
                    return
        if time.monotonic() > deadline:
            raise SystemExit("server did not start")
        await asyncio.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100, help="pages opened at a time")
    parser.add_argument("--gap", type=float, default=0.25, help="seconds between changes")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args)), indent=2))


if __name__ == "__main__":
    main()
