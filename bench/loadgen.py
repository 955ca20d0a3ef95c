"""One load-generator process for bench/load.py: an asyncio loop with aiohttp, a slice of users.

Not meant to be run by hand: ``bench/load.py`` writes a spec (JSON) and starts several of these,
pinned to CPU 0, with ``python bench/loadgen.py SPEC``. The protocol on stdin/stdout is one line
each way per step::

    loadgen -> READY                     (session open, users loaded)
    load.py -> GO <t0>                   (t0 on CLOCK_MONOTONIC, shared by every process)
    loadgen -> DONE <phase name>         (once per phase, in the spec's order)
    loadgen -> RESULT <path>             (figures written; the process then exits)

Every simulated user follows the real protocol: its first ``POST /users/me/presence`` sends
``last_update_id=-1``; later ones send the ``presence_last_update_id`` it was given. Legacy callers
send no cursor and ``slim_presence=false``. A user never has two requests in flight.

The spec's ``base_urls`` are one or more servers: with several, each request goes to the next
(the generator is their round-robin balancer). Users send the spec's ``accept_encoding``; a gzip
answer is inflated here, and both its size on the wire and decoded are counted.

Responses are not JSON-decoded on the hot path (a 10,000-user reply is ~700 KB): the cursor is
read from the tail and entries are counted by a byte search. A few "auditor" users per process
decode every reply and merge the deltas into their own view of the realm; load.py compares those
views with the store at the end (a lost or reordered change would show up as a difference).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gzip
import json
import math
import re
import resource
import sys
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

PRESENCE_PATH = "/api/v1/users/me/presence"
REALM_PRESENCE_PATH = "/api/v1/realm/presence"
FORM = "application/x-www-form-urlencoded"
CURSOR_KEY = b'"presence_last_update_id":'
CURSOR_RE = re.compile(rb'"presence_last_update_id":(-?\d+)')
SUCCESS_PREFIX = b'{"result":"success"'
MODERN_ENTRY = b'"active_timestamp"'
LEGACY_ENTRY = b'"aggregated"'
MAX_ERROR_SAMPLES = 5
SLOW_MS = 25.0

# Request kinds a phase may ask for.
AUTO = "auto"
"""The user's own behaviour: first call with last_update_id=-1, then by behaviour (below)."""
FIRST_FETCH = "first_fetch"
"""POST last_update_id=-1 (status active, no new input) whatever the user's cursor."""
LEGACY_GET = "legacy_get"
"""GET /realm/presence."""
PING_ONLY = "ping_only"
"""POST status=active&ping_only=true: records presence, returns no presences."""
EMPTY_DELTA = "empty_delta"
"""POST status=active with the user's cursor (first fetch if it has none), no new input."""
KINDS = (AUTO, FIRST_FETCH, LEGACY_GET, PING_ONLY, EMPTY_DELTA)

# Behaviours (the "auto" mix).
ACTIVE = "active"  # status=active, new_user_input=true, cursor
IDLE = "idle"  # status=idle, new_user_input=false, cursor
PING = "ping_only"  # first call with last_update_id=-1, then ping_only=true
LEGACY = "legacy"  # status=active, slim_presence=false, never a cursor


@dataclass
class SimUser:
    index: int
    """Line number in the credentials file (global across processes)."""
    user_id: int
    realm: str
    group: str
    behavior: str
    headers: dict[str, str]
    get_headers: dict[str, str]
    auditor: bool = False
    cursor: int | None = None
    view: dict[str, tuple[int, int]] | None = None


@dataclass
class PhaseStats:
    name: str
    t0: float
    t_end: float | None
    latencies: dict[str, array[float]] = field(default_factory=dict)
    """Milliseconds, by request label (what the request was: first, active, legacy, ...)."""
    send_lag_ms: array[float] = field(default_factory=lambda: array("d"))
    seconds: dict[int, list[float]] = field(default_factory=dict)
    """Per second of the phase (by send slot): [requests, slowest latency in ms, requests over
    25 ms]; shows when the tail happened."""
    ok: int = 0
    completed_in_window: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    body_bytes: int = 0
    """Decoded body bytes."""
    wire_bytes: int = 0
    """Body bytes as received (compressed, if the server compressed them)."""
    gzip_replies: int = 0
    entries: int = 0
    nonempty: int = 0
    presence_replies: int = 0
    cursor_regressions: int = 0
    unfinished: int = 0
    first_start: float | None = None
    last_done: float | None = None
    cpu_s: float = 0.0
    wall_s: float = 0.0

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(f"{kind}: {detail[:200]}")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "t0": self.t0,
            "t_end": self.t_end,
            "latencies_ms": {k: [round(v, 3) for v in a] for k, a in self.latencies.items()},
            "send_lag_ms": [round(v, 3) for v in self.send_lag_ms],
            "seconds": {str(k): v for k, v in self.seconds.items()},
            "ok": self.ok,
            "completed_in_window": self.completed_in_window,
            "errors": dict(self.errors),
            "error_samples": self.error_samples,
            "body_bytes": self.body_bytes,
            "wire_bytes": self.wire_bytes,
            "gzip_replies": self.gzip_replies,
            "entries": self.entries,
            "nonempty": self.nonempty,
            "presence_replies": self.presence_replies,
            "cursor_regressions": self.cursor_regressions,
            "unfinished": self.unfinished,
            "first_start": self.first_start,
            "last_done": self.last_done,
            "cpu_s": self.cpu_s,
            "wall_s": self.wall_s,
        }


def load_users(
    path: str, proc: int, procs: int, auditors: int, accept_encoding: str
) -> list[SimUser]:
    """Every ``procs``-th line of the credentials file from line ``proc`` (so each group of
    users is spread over every process); the first ``auditors`` active users of each group
    audit."""
    users: list[SimUser] = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i % procs != proc:
                continue
            rec = json.loads(line)
            token = base64.b64encode(f"{rec['email']}:{rec['key']}".encode()).decode("ascii")
            auth = "Basic " + token
            get_headers = {
                "Authorization": auth,
                "Host": rec["host"],
                "Accept-Encoding": accept_encoding,
            }
            headers = {**get_headers, "Content-Type": FORM}
            users.append(
                SimUser(
                    index=i,
                    user_id=rec["user_id"],
                    realm=rec["realm"],
                    group=rec["group"],
                    behavior=rec["behavior"],
                    headers=headers,
                    get_headers=get_headers,
                )
            )
    chosen: Counter[str] = Counter()
    for user in users:
        if user.behavior == ACTIVE and chosen[user.group] < auditors:
            user.auditor = True
            user.view = {}
            chosen[user.group] += 1
    return users


def build_request(user: SimUser, kind: str) -> tuple[str, bytes | None, str, bool]:
    """(method, form body or None for GET, label, whether the reply carries modern presences)."""
    cursor = user.cursor
    if kind == LEGACY_GET:
        return "GET", None, "legacy_get", False
    if kind == PING_ONLY:
        return "POST", b"status=active&ping_only=true&new_user_input=false", "ping_only", False
    if kind == FIRST_FETCH or (kind == EMPTY_DELTA and cursor is None):
        body = b"status=active&new_user_input=false&slim_presence=true&last_update_id=-1"
        return "POST", body, "first_fetch", True
    if kind == EMPTY_DELTA:
        body = b"status=active&new_user_input=false&slim_presence=true&last_update_id=%d" % (
            cursor or 0
        )
        return "POST", body, "empty_delta", True
    # AUTO: the behaviour mix.
    behavior = user.behavior
    if behavior == LEGACY:
        return "POST", b"status=active&new_user_input=false&slim_presence=false", "legacy", False
    if cursor is None:
        status = b"idle" if behavior == IDLE else b"active"
        user_input = b"false" if behavior == IDLE else b"true"
        body = b"status=%s&new_user_input=%s&slim_presence=true&last_update_id=-1" % (
            status,
            user_input,
        )
        return "POST", body, "first", True
    if behavior == PING:
        return "POST", b"status=active&ping_only=true&new_user_input=false", "ping_only", False
    if behavior == IDLE:
        body = b"status=idle&new_user_input=false&slim_presence=true&last_update_id=%d" % cursor
        return "POST", body, "idle", True
    body = b"status=active&new_user_input=true&slim_presence=true&last_update_id=%d" % cursor
    return "POST", body, "active", True


def read_cursor(body: bytes) -> int | None:
    at = body.rfind(CURSOR_KEY)
    if at < 0:
        return None
    match = CURSOR_RE.match(body, at)
    return int(match.group(1)) if match else None


class Generator:
    """Sends each request to the next of ``base_urls`` in turn (several ``presenced serve``
    processes on their own ports: the generator is their round-robin balancer)."""

    def __init__(self, session: aiohttp.ClientSession, base_urls: list[str]) -> None:
        self.session = session
        self.presence_urls = [base + PRESENCE_PATH for base in base_urls]
        self.realm_urls = [base + REALM_PRESENCE_PATH for base in base_urls]
        self.turn = 0

    def next_server(self) -> int:
        turn = self.turn
        self.turn = (turn + 1) % len(self.presence_urls)
        return turn

    async def request(self, user: SimUser, kind: str, scheduled: float, stats: PhaseStats) -> float:
        """One request; latency from ``scheduled`` (the send time, or the open-loop slot).
        Returns the completion time."""
        method, form, label, modern = build_request(user, kind)
        server = self.next_server()
        start = time.monotonic()
        if stats.first_start is None:
            stats.first_start = start
        try:
            if form is None:
                async with self.session.get(
                    self.realm_urls[server], headers=user.get_headers
                ) as resp:
                    body = await resp.read()
                    status = resp.status
                    encoding = resp.headers.get("Content-Encoding")
            else:
                async with self.session.post(
                    self.presence_urls[server], data=form, headers=user.headers
                ) as resp:
                    body = await resp.read()
                    status = resp.status
                    encoding = resp.headers.get("Content-Encoding")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any transport failure is an error of this request
            done = time.monotonic()
            stats.error(type(exc).__name__, str(exc))
            stats.last_done = done
            return done
        done = time.monotonic()
        stats.last_done = done
        stats.wire_bytes += len(body)
        if encoding == "gzip":
            # What the client would do: inflate (gzip members may be concatenated).
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as exc:
                stats.error("bad gzip", str(exc))
                return done
            stats.gzip_replies += 1
        if status != 200 or not body.startswith(SUCCESS_PREFIX):
            stats.error(f"http {status}", body[:200].decode("utf-8", "replace"))
            return done
        stats.ok += 1
        if stats.t_end is None or done <= stats.t_end:
            stats.completed_in_window += 1
        samples = stats.latencies.get(label)
        if samples is None:
            samples = stats.latencies[label] = array("d")
        latency_ms = (done - scheduled) * 1000.0
        samples.append(latency_ms)
        second = stats.seconds.setdefault(int(scheduled - stats.t0), [0, 0.0, 0])
        second[0] += 1
        second[1] = max(second[1], latency_ms)
        second[2] += latency_ms > SLOW_MS
        stats.body_bytes += len(body)
        if method == "GET" or label in ("legacy", "legacy_get"):
            n = body.count(LEGACY_ENTRY)
            stats.entries += n
            stats.presence_replies += 1
            stats.nonempty += n > 0
        elif modern:
            n = body.count(MODERN_ENTRY)
            stats.entries += n
            stats.presence_replies += 1
            stats.nonempty += n > 0
            new_cursor = read_cursor(body)
            if new_cursor is None:
                stats.error("no cursor", body[:200].decode("utf-8", "replace"))
                return done
            first = label in ("first", "first_fetch")
            if not first and user.cursor is not None and new_cursor < user.cursor:
                stats.cursor_regressions += 1
            user.cursor = new_cursor
            if user.auditor:
                self.audit(user, body, replace=first)
        return done

    @staticmethod
    def audit(user: SimUser, body: bytes, *, replace: bool) -> None:
        presences: dict[str, dict[str, int]] = orjson.loads(body)["presences"]
        if replace or user.view is None:
            user.view = {}
        for uid, entry in presences.items():
            user.view[uid] = (entry["active_timestamp"], entry["idle_timestamp"])


async def finish(
    tasks: list[asyncio.Task[None]], deadline: float, stats: PhaseStats, *, count: bool = True
) -> None:
    """Wait for the tasks until ``deadline``; cancel the rest (with ``count``, each cancelled
    task counts as one unfinished request; else the tasks count their own)."""
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if count:
        stats.unfinished += len(pending)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            stats.error("generator " + type(exc).__name__, str(exc))


async def run_each(
    gen: Generator, users: list[SimUser], phase: dict[str, Any], stats: PhaseStats
) -> None:
    """Every user once (in order), ``concurrency`` at a time, within ``duration`` seconds."""
    kind: str = phase["request"]
    deadline = stats.t0 + float(phase["duration"])
    queue = list(reversed(users))

    async def worker() -> None:
        while queue and time.monotonic() < deadline:
            user = queue.pop()
            await gen.request(user, kind, time.monotonic(), stats)

    tasks = [asyncio.create_task(worker()) for _ in range(min(phase["concurrency"], len(users)))]
    await finish(tasks, deadline + float(phase["grace"]), stats)
    stats.unfinished += len(queue)


async def run_closed(
    gen: Generator, users: list[SimUser], phase: dict[str, Any], stats: PhaseStats
) -> None:
    """Closed loop: each worker owns users[w::C] and sends back-to-back until the window ends
    (or the process's share of ``max_requests`` is spent)."""
    kind: str = phase["request"]
    assert stats.t_end is not None
    t_end = stats.t_end
    limit = phase.get("max_requests")
    budget = [-1 if limit is None else int(limit)]
    workers = min(phase["concurrency"], len(users))

    async def worker(mine: list[SimUser]) -> None:
        i = 0
        while time.monotonic() < t_end and budget[0] != 0:
            if budget[0] > 0:
                budget[0] -= 1
            user = mine[i % len(mine)]
            i += 1
            await gen.request(user, kind, time.monotonic(), stats)

    tasks = [asyncio.create_task(worker(users[w::workers])) for w in range(workers)]
    await finish(tasks, t_end + float(phase["grace"]), stats)


async def run_open(
    gen: Generator, users: list[SimUser], phase: dict[str, Any], stats: PhaseStats
) -> None:
    """Open loop: user i sends at t0 + (i / n_total) * period + k * period, whether or not the
    server keeps up. Latency counts from the slot, so a late reply delays nothing unmeasured
    (no coordinated omission); a user whose previous reply is still out sends when it comes."""
    kind: str = phase["request"]
    period = float(phase["period"])
    n_total = int(phase["n_total"])
    assert stats.t_end is not None
    t_end = stats.t_end

    async def user_loop(user: SimUser) -> None:
        slot = stats.t0 + (user.index % n_total) / n_total * period
        previous_done = 0.0
        try:
            while slot < t_end:
                wait = slot - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if previous_done <= slot:  # not held back by its own previous request
                    stats.send_lag_ms.append((time.monotonic() - slot) * 1000.0)
                previous_done = await gen.request(user, kind, slot, stats)
                slot += period
        except asyncio.CancelledError:
            # The request in flight and every slot not yet sent were never answered.
            stats.unfinished += max(1, math.ceil((t_end - slot) / period))
            raise

    tasks = [asyncio.create_task(user_loop(u)) for u in users]
    await finish(tasks, t_end + float(phase["grace"]), stats, count=False)


RUNNERS: dict[
    str, Callable[[Generator, list[SimUser], dict[str, Any], PhaseStats], Awaitable[None]]
] = {"each": run_each, "closed": run_closed, "open": run_open}


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def read_go() -> float:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    parts = line.split()
    if len(parts) != 2 or parts[0] != "GO":
        raise SystemExit(f"loadgen: expected 'GO <t0>', got {line!r}")
    return float(parts[1])


def selected(users: list[SimUser], phase: dict[str, Any]) -> list[SimUser]:
    if phase.get("auditors_only"):
        return [u for u in users if u.auditor]
    groups = phase.get("groups")
    if groups is None:
        return users
    wanted = set(groups)
    return [u for u in users if u.group in wanted]


async def run(spec: dict[str, Any]) -> None:
    users = load_users(
        spec["credentials"],
        spec["proc"],
        spec["procs"],
        spec["auditors"],
        spec.get("accept_encoding", "identity"),
    )
    connector = aiohttp.TCPConnector(limit=spec["connections"], limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=float(spec["request_timeout"]))
    phases_out: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,  # bodies are inflated by hand, to count the bytes on the wire
    ) as session:
        gen = Generator(session, list(spec["base_urls"]))
        emit("READY")
        for phase in spec["phases"]:
            t0 = await read_go()
            duration = phase.get("duration")
            t_end = t0 + float(duration) if phase["mode"] != "each" else None
            stats = PhaseStats(phase["name"], t0, t_end)
            mine = selected(users, phase)
            wait = t0 - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            cpu0, wall0 = time.process_time(), time.monotonic()
            if mine and phase["concurrency"] > 0:
                await RUNNERS[phase["mode"]](gen, mine, phase, stats)
            stats.cpu_s = time.process_time() - cpu0
            stats.wall_s = time.monotonic() - wall0
            phases_out.append(stats.to_json())
            emit(f"DONE {phase['name']}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "proc": spec["proc"],
        "users": len(users),
        "phases": phases_out,
        "auditors": [
            {
                "user_id": u.user_id,
                "realm": u.realm,
                "cursor": u.cursor,
                "view": u.view,
            }
            for u in users
            if u.auditor
        ],
        "max_rss_kib": usage.ru_maxrss,
    }
    with open(spec["out"], "wb") as fh:
        fh.write(orjson.dumps(result))
    emit(f"RESULT {spec['out']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec", help="the JSON spec bench/load.py wrote")
    args = parser.parse_args()
    with open(args.spec, encoding="utf-8") as fh:
        spec = json.load(fh)
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(spec))
    else:
        uvloop.run(run(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
