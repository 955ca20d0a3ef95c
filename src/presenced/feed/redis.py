"""Change notices over Redis pub/sub: one channel under the key prefix, shared by every process.

Publishing never waits on the network for long: notices are coalesced (per realm, the highest
sequence; directory changes into one flag; failed authentications as times per address) and a
background task sends them, one message per batch. The publisher waits for its batch to be
sent, but at most ``SEND_WAIT_SECS``, so that a client whose next request goes to another
process (a round-robin balancer) usually finds its change there already; past that, the
periodic check covers it. Each process ignores its own messages. After an outage, the
listener resubscribes and asks for one store check (``resync``), so a notice lost meanwhile is
a delay, not a loss; the tracker's periodic check covers the outage itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from presenced.feed.base import (
    AuthenticationFailed,
    DirectoryChanged,
    Notice,
    NoticeHandler,
    PresenceCommitted,
)
from presenced.redislink import RedisError, RedisLink, ThrottledWarning

logger = logging.getLogger("presenced.feed")

RECONNECT_SECS = 0.5
SEND_WAIT_SECS = 0.1
FLUSH_TIMEOUT_SECS = 2.0
MAX_FAILURES_PER_ADDRESS = 1000
"""Failed authentications per address in one message (a throttle needs only its limit's worth:
the newest are kept)."""


class RedisChangeFeed:
    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.channel = link.key("changes")
        self.origin = uuid.uuid4().hex
        self.resync: Callable[[], Awaitable[None]] | None = None
        """Called after the feed reconnects (the tracker's ``check_store``)."""
        self._handler: NoticeHandler | None = None
        self._sequences: dict[int, int] = {}
        self._directory = False
        self._failures: dict[str, list[float]] = {}
        self._wanted = asyncio.Event()
        self._batch_sent: asyncio.Future[None] | None = None
        self._in_flight: asyncio.Future[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._warn = ThrottledWarning(logger)

    async def start(self, handler: NoticeHandler) -> None:
        self._handler = handler
        self._listener = asyncio.create_task(self._listen_forever())

    async def publish(self, notice: Notice) -> None:
        self._add(notice)
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_forever())
        if self._batch_sent is None:
            self._batch_sent = asyncio.get_running_loop().create_future()
        sent = self._batch_sent
        self._wanted.set()
        if self.link.available:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(sent), SEND_WAIT_SECS)

    async def close(self) -> None:
        """Stop listening; send what is pending (the batch in flight, then the rest), for at
        most ``FLUSH_TIMEOUT_SECS``."""
        if self._sender is not None and self._in_flight is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._in_flight), FLUSH_TIMEOUT_SECS)
        for task in (self._sender, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sender = self._listener = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLUSH_TIMEOUT_SECS):
                await self._send_pending()

    async def check(self) -> None:
        await self.link.check()

    async def send_now(self, notice: Notice, timeout: float = FLUSH_TIMEOUT_SECS) -> bool:
        """Send one notice at once, without the background task (for the CLI, which exits
        right after); whether Redis took it."""
        self._add(notice)
        message = self._take_batch()
        if message is None or not self.link.available:
            return False
        try:
            async with asyncio.timeout(timeout):
                await self.link.client.publish(self.channel, message)
        except (RedisError, TimeoutError):
            self.link.failed()
            return False
        return True

    def _add(self, notice: Notice) -> None:
        if isinstance(notice, PresenceCommitted):
            if notice.sequence > self._sequences.get(notice.realm_id, 0):
                self._sequences[notice.realm_id] = notice.sequence
        elif isinstance(notice, AuthenticationFailed):
            times = self._failures.setdefault(notice.address, [])
            times.append(notice.at)
            del times[:-MAX_FAILURES_PER_ADDRESS]
        else:
            self._directory = True

    # Sending

    def _take_batch(self) -> bytes | None:
        if not self._sequences and not self._directory and not self._failures:
            return None
        message: dict[str, Any] = {"o": self.origin, "p": list(self._sequences.items())}
        if self._directory:
            message["d"] = 1
        if self._failures:
            message["f"] = list(self._failures.items())
        self._sequences = {}
        self._directory = False
        self._failures = {}
        return orjson.dumps(message)

    async def _send_pending(self) -> None:
        sent, self._batch_sent = self._batch_sent, None
        self._in_flight = sent
        try:
            await self._send(self._take_batch())
        finally:
            self._in_flight = None
            if sent is not None and not sent.done():
                sent.set_result(None)

    async def _send(self, message: bytes | None) -> None:
        if message is None:
            return
        if not self.link.available:
            self._warn("change notices are not being sent: Redis is unavailable")
            return
        try:
            await self.link.client.publish(self.channel, message)
        except RedisError as exc:
            self.link.failed()
            self._warn("change notices are not being sent: %s", exc)

    async def _send_forever(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            await self._send_pending()

    # Listening

    def _deliver(self, data: bytes) -> None:
        try:
            message = orjson.loads(data)
            if message.get("o") == self.origin:
                return
            notices: list[Notice] = [PresenceCommitted(int(r), int(s)) for r, s in message["p"]]
            if message.get("d"):
                notices.append(DirectoryChanged())
            for address, times in message.get("f", ()):
                notices.extend(AuthenticationFailed(str(address), float(at)) for at in times)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            logger.warning("ignored a malformed change notice on %s", self.channel)
            return
        assert self._handler is not None
        for notice in notices:
            self._handler(notice)

    async def _listen_forever(self) -> None:
        outage = False
        while True:
            pubsub = self.link.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if outage:
                    outage = False
                    logger.warning("change notices: reconnected to Redis")
                    await self._resync()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._deliver(message["data"])
            except (RedisError, OSError) as exc:
                if not outage:
                    logger.warning(
                        "change notices: lost Redis (%s); checking the store instead", exc
                    )
                outage = True
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(RECONNECT_SECS)

    async def _resync(self) -> None:
        if self.resync is None:
            return
        try:
            await self.resync()
        except Exception as exc:  # the store is down too: the periodic check keeps trying
            logger.warning("store check after reconnecting failed: %s", exc)
