"""events_fanout part B, the client side: queues registered over HTTP, long-polls, and the
check that each long-poll got exactly the expected event in its queue's format."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from harness.accounts import Account
from presenced.events.formats import PresenceFormat
from scenarios.fanout_in_process import FORMATS


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
    headers = {"Authorization": account.authorization}
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


async def long_poll(
    session: aiohttp.ClientSession, base: str, queue: RemoteQueue, last_event_id: int
) -> PollResult:
    url = f"{base}/api/v1/events?queue_id={queue.queue_id}&last_event_id={last_event_id}"
    try:
        async with session.get(url, headers={"Authorization": queue.account.authorization}) as resp:
            body = await resp.read()
            return PollResult(resp.status, body, time.perf_counter())
    except (aiohttp.ClientError, TimeoutError) as exc:
        return PollResult(None, b"", time.perf_counter(), f"{type(exc).__name__}: {exc}"[:200])


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
