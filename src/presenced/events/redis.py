"""Event queues and per-realm change logs in Redis, so any process answers any queue.

The semantics are those of ``events/system.py`` (Zulip's): a change is one append to its
realm's stream, whatever the number of queues; a queue is a hash holding its cursor (a stream
id), its settings and its progress (next event id, pending events), read and formatted by
whichever process serves the poll (``EventQueue.absorb``), then written back with a compare
and set on a version, so two processes touching one queue never corrupt it.

A change that cannot be appended (Redis unreachable) is never silently skipped: once Redis
answers again, every queue of its realm is ended, so that each client re-registers and
fetches the current state, as a Zulip client does when its queue is gone.

Parked long-polls are woken by one reader task per process: one ``XREAD BLOCK`` over the
streams of the realms that have parked polls here (plus a private stream this process pokes
when that set grows), never one Redis call per parked poll per change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from redis.commands.core import AsyncScript

from presenced.clock import Clock
from presenced.events import redis_scripts
from presenced.events.base import (
    BadEventQueueError,
    Delivery,
    EventSettings,
    EventsUnavailableError,
    Prepare,
    everyone_sees_everything,
)
from presenced.events.changes import Change
from presenced.events.codec import (
    decode_change,
    decode_queue,
    encode_change,
    encode_progress,
    encode_settings,
)
from presenced.events.formats import PresenceFormat
from presenced.events.queue import EventQueue, Visible
from presenced.redislink import RedisError, RedisLink, ThrottledWarning
from presenced.store.base import Store

logger = logging.getLogger("presenced.events")

READ_BATCH = 2000
"""Log entries fetched per round trip when a queue catches up."""
BLOCK_MS = 2000
TRACK_GRACE_SECS = 30.0
"""A realm's stream stays in the reader's set this long after its last parked poll ends, so a
client that polls again at once costs no change to the set."""
WRITE_ATTEMPTS = 20

Entry = tuple[str, dict[bytes, bytes]]
Recent = tuple[str, Change | None, str | None]
"""An entry the reader brought: its id, the change, or the id of a deleted queue."""
RECENT_ENTRIES = 512


_malformed_warning = ThrottledWarning(logger)


def _change(fields: dict[bytes, bytes]) -> Change | None:
    """The change a log entry holds; None for a queue-deleted marker or a malformed entry
    (which every reader then skips alike)."""
    data = fields.get(b"c")
    if data is None:
        return None
    try:
        return decode_change(data)
    except (ValueError, TypeError, IndexError):
        _malformed_warning("skipped a malformed event log entry: %r", data[:200])
        return None


def _stream_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@dataclass
class _Snapshot:
    """A queue as read from Redis, with the log entries past its cursor."""

    queue: EventQueue
    version: bytes
    cursor: str
    entries: list[Entry]


@dataclass
class _Realm:
    """This process's parked polls in one realm, and how far the reader has read its stream."""

    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    parked: int = 0
    last_id: str | None = None
    """None: not in the reader's set."""
    idle_since: float = 0.0
    recent: deque[Recent] = field(default_factory=lambda: deque(maxlen=RECENT_ENTRIES))
    """The entries the reader brought last, decoded once for every parked poll."""
    forgotten: str | None = None
    """The newest id not in ``recent`` (entries up to it are unknown here)."""

    def bring(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for raw_id, fields in entries:
            if len(self.recent) == self.recent.maxlen:
                self.forgotten = self.recent[0][0]
            entry_id = raw_id.decode()
            dropped = fields.get(b"d")
            self.recent.append(
                (entry_id, _change(fields), None if dropped is None else dropped.decode())
            )
        self.last_id = self.recent[-1][0]
        self.wake()

    def wake(self) -> None:
        wakeup, self.wakeup = self.wakeup, asyncio.Event()
        wakeup.set()


class RedisEventSystem:
    def __init__(
        self,
        link: RedisLink,
        settings: EventSettings,
        clock: Clock,
        visible: Visible = everyone_sees_everything,
    ) -> None:
        self.link = link
        self.settings = settings
        self.clock = clock
        self.visible = visible
        client = link.client
        self._register: AsyncScript = client.register_script(redis_scripts.REGISTER)
        self._read_script: AsyncScript = client.register_script(redis_scripts.READ)
        self._write: AsyncScript = client.register_script(redis_scripts.WRITE)
        self._touch: AsyncScript = client.register_script(redis_scripts.TOUCH)
        self._delete: AsyncScript = client.register_script(redis_scripts.DELETE)
        self._publish: AsyncScript = client.register_script(redis_scripts.PUBLISH)
        self._expire: AsyncScript = client.register_script(redis_scripts.EXPIRE)
        self._end_realm: AsyncScript = client.register_script(redis_scripts.END_REALM)
        self._trim: AsyncScript = client.register_script(redis_scripts.TRIM)
        self._realms: dict[int, _Realm] = {}
        self._wake_key = link.key("wake", uuid.uuid4().hex)
        self._wake_last = "0-0"
        self._tracking_changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._reading = False
        self._warn = ThrottledWarning(logger)
        self._closing = False
        self._queue_count = 0
        """Every process's queues, as ``count_queues`` last found them."""
        self._undelivered: set[int] = set()
        """Realms with a change that could not be appended to their log."""
        self._ending = asyncio.Lock()
        self._recovery: asyncio.Task[None] | None = None

    def set_visibility(self, visible: Visible) -> None:
        self.visible = visible

    # Redis calls

    async def _run(self, script: AsyncScript, *args: object) -> Any:
        """One script; an unreachable Redis becomes ``EventsUnavailableError`` (fast while the
        link's breaker is open)."""
        if not self.link.available:
            raise EventsUnavailableError
        try:
            return await script(args=[self.link.prefix, *args])  # type: ignore[list-item]
        except RedisError as exc:
            self.link.failed()
            self._warn("event queues are unavailable: %s", exc)
            raise EventsUnavailableError from exc

    async def _read(self, queue_id: str, user_id: int) -> _Snapshot:
        reply = await self._run(
            self._read_script, queue_id, user_id, repr(self.clock()), READ_BATCH
        )
        if reply[0] != 1:
            raise BadEventQueueError(queue_id)
        _, realm, settings, cursor, progress, version, raw_entries = reply
        queue = decode_queue(queue_id, user_id, int(realm), settings, progress)
        entries: list[Entry] = [(e[0].decode(), _pairs(e[1])) for e in raw_entries]
        while len(raw_entries) == READ_BATCH:
            try:
                raw_entries = await self.link.client.xrange(
                    self.link.key("log", queue.realm_id),
                    min="(" + entries[-1][0],
                    count=READ_BATCH,
                )
            except RedisError as exc:
                self.link.failed()
                raise EventsUnavailableError from exc
            entries.extend((e[0].decode(), dict(e[1])) for e in raw_entries)
        return _Snapshot(queue, version, cursor.decode(), entries)

    def _absorb(self, snapshot: _Snapshot) -> bool:
        """Turn the entries past the cursor into events; whether the cursor moved."""
        if not snapshot.entries:
            return False
        changes = [c for _, fields in snapshot.entries if (c := _change(fields)) is not None]
        snapshot.queue.absorb(changes, self.visible, self.settings.activity_offset_secs)
        snapshot.cursor = snapshot.entries[-1][0]
        snapshot.entries = []
        return True

    async def _save(self, snapshot: _Snapshot) -> bool:
        """Write the queue back unless another process wrote it since it was read."""
        queue = snapshot.queue
        if len(queue.pending) > self.settings.max_pending_events:
            await self._run(
                self._delete, queue.queue_id, queue.user_id, repr(self.clock()), self._maxlen
            )
            raise BadEventQueueError(queue.queue_id)
        written = await self._run(
            self._write,
            queue.queue_id,
            snapshot.version,
            snapshot.cursor,
            encode_progress(queue),
        )
        if written == -1:
            raise BadEventQueueError(queue.queue_id)
        return bool(written == 1)

    @property
    def _maxlen(self) -> int:
        return self.settings.max_log_length

    # The interface

    async def register(
        self,
        user_id: int,
        realm_id: int,
        event_types: frozenset[str] | None,
        presence_format: PresenceFormat,
        idle_timeout: float | None,
        *,
        capped: bool = True,
        user_settings_object: bool = False,
    ) -> EventQueue:
        if self._undelivered:
            await self._end_undelivered()
        now = self.clock()
        queue = EventQueue.new(
            user_id,
            realm_id,
            event_types,
            presence_format,
            self.settings.default_idle_timeout_secs if idle_timeout is None else idle_timeout,
            now,
            0,
            user_settings_object=user_settings_object,
        )
        await self._run(
            self._register,
            queue.queue_id,
            user_id,
            realm_id,
            encode_settings(queue),
            encode_progress(queue),
            repr(now + queue.idle_timeout),
            self.settings.max_queues_per_user if capped else 0,  # the script: 0 is no cap
            self._maxlen,
        )
        return queue

    async def publish(self, realm_id: int, change: Change) -> None:
        """One append to the realm's stream (skipped if the realm has no queue). If Redis is
        down, the request that made the change still succeeds, polls answer 503 meanwhile,
        and the realm's queues are ended once Redis is back (``_end_undelivered``)."""
        try:
            await self._run(self._publish, realm_id, encode_change(change), self._maxlen)
        except EventsUnavailableError:
            self._undelivered.add(realm_id)
            self._warn(
                "an event could not be delivered: Redis is unavailable (the event queues of "
                "its organization will be ended when it returns, so that clients re-register)"
            )
            if self._recovery is None or self._recovery.done():
                self._recovery = asyncio.create_task(self._recover())

    async def _end_undelivered(self) -> None:
        """End the queues of the realms that missed a change, before this process serves
        another queue (and within ``retry_secs`` of Redis's return, from ``_recover``)."""
        async with self._ending:
            for realm_id in sorted(self._undelivered):
                ended = int(await self._run(self._end_realm, realm_id, self._maxlen))
                self._undelivered.discard(realm_id)
                if ended:
                    logger.warning(
                        "ended %d event queues of realm %d: a change could not reach them "
                        "while Redis was unavailable (their clients re-register)",
                        ended,
                        realm_id,
                    )

    async def _recover(self) -> None:
        while self._undelivered:
            await asyncio.sleep(self.link.retry_secs)
            with contextlib.suppress(EventsUnavailableError):
                await self._end_undelivered()

    async def delete(self, queue_id: str, user_id: int) -> None:
        if self._undelivered:
            await self._end_undelivered()
        deleted = await self._run(self._delete, queue_id, user_id, repr(self.clock()), self._maxlen)
        if deleted != 1:
            raise BadEventQueueError(queue_id)

    async def get_events(
        self,
        queue_id: str,
        user_id: int,
        last_event_id: int | None,
        dont_block: bool,
        prepare: Prepare | None = None,
    ) -> Delivery:
        """Pending events after ``last_event_id``; if none, wait for some or a heartbeat."""
        if self._undelivered:
            await self._end_undelivered()
        for _ in range(WRITE_ATTEMPTS):
            if prepare is not None:
                await prepare()
            snapshot = await self._read(queue_id, user_id)
            queue = snapshot.queue
            acknowledged = False
            if last_event_id is not None:
                before = len(queue.pending)
                queue.acknowledge(last_event_id)
                acknowledged = len(queue.pending) != before
            moved = self._absorb(snapshot)
            if (acknowledged or moved) and not await self._save(snapshot):
                continue
            break
        else:
            raise EventsUnavailableError("too many concurrent writers on one queue")
        if queue.pending or dont_block:
            return Delivery(list(queue.pending), waited=False)
        return await self._wait(snapshot, prepare)

    async def _wait(self, snapshot: _Snapshot, prepare: Prepare | None) -> Delivery:
        """Park until the realm's stream moves past the queue's cursor, or a heartbeat."""
        queue = snapshot.queue
        loop = asyncio.get_running_loop()
        wait = self.settings.heartbeat_secs * (1 + 0.22 * random.random())
        deadline = loop.time() + wait
        # While parked, the queue does not expire (Zulip: a connected queue never does).
        await self._run(self._touch, queue.queue_id, repr(self.clock() + wait + queue.idle_timeout))
        realm = self._realms.setdefault(queue.realm_id, _Realm())
        realm.parked += 1
        try:
            await self._track(queue.realm_id, realm, snapshot.cursor)
            # Each wait is on the wakeup taken before the check it follows, so a change that
            # arrives during a read is never slept through. Before the first one, the reader
            # may already have passed entries the first read did not see.
            wakeup = realm.wakeup
            seen = snapshot.cursor
            read_now = False
            while True:
                if self._closing:  # shutting down: answer now, so the connection can close
                    return await self._heartbeat(queue.queue_id, queue.user_id)
                if not read_now and not self._reader_ahead(realm, seen):
                    try:
                        async with asyncio.timeout_at(deadline):
                            await wakeup.wait()
                    except TimeoutError:
                        return await self._heartbeat(queue.queue_id, queue.user_id)
                wakeup = realm.wakeup
                if prepare is not None:
                    await prepare()
                if not read_now:
                    # What the reader brought is usually enough to tell that none of it is
                    # for this queue (another user's settings, a user it may not see): then
                    # no Redis call, and back to waiting.
                    concerned, seen = self._concerns(realm, queue, seen)
                    if not concerned:
                        continue
                snapshot = await self._read(queue.queue_id, queue.user_id)
                read_now = self._absorb(snapshot) and not await self._save(snapshot)
                seen = snapshot.cursor
                if read_now:
                    continue  # another process wrote the queue first: read it again
                if snapshot.queue.pending:
                    return Delivery(list(snapshot.queue.pending), waited=True)
        finally:
            realm.parked -= 1
            if realm.parked == 0:
                realm.idle_since = time.monotonic()
            with contextlib.suppress(EventsUnavailableError):
                await self._run(
                    self._touch, queue.queue_id, repr(self.clock() + queue.idle_timeout)
                )

    async def _heartbeat(self, queue_id: str, user_id: int) -> Delivery:
        for _ in range(WRITE_ATTEMPTS):
            snapshot = await self._read(queue_id, user_id)
            if not snapshot.queue.pending:
                snapshot.queue.add_heartbeat()
                snapshot.entries = []  # read them on the next poll, after the heartbeat
                if not await self._save(snapshot):
                    continue
            return Delivery(list(snapshot.queue.pending), waited=True)
        raise EventsUnavailableError("too many concurrent writers on one queue")

    # The reader task

    async def _track(self, realm_id: int, realm: _Realm, cursor: str) -> None:
        """Make sure the reader follows the realm's stream (from ``cursor`` if it did not)."""
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_forever())
        if realm.last_id is not None:
            return
        realm.last_id = realm.forgotten = cursor
        realm.recent.clear()
        self._tracking_changed.set()
        if self._reading:  # interrupt its blocking read, which does not cover this realm
            try:
                async with self.link.client.pipeline(transaction=False) as pipe:
                    pipe.xadd(self._wake_key, {"w": b"1"}, maxlen=1, approximate=False)
                    pipe.pexpire(self._wake_key, 60_000)
                    await pipe.execute()
            except RedisError:
                self.link.failed()

    @staticmethod
    def _reader_ahead(realm: _Realm, cursor: str) -> bool:
        return realm.last_id is not None and _stream_id(realm.last_id) > _stream_id(cursor)

    def _concerns(self, realm: _Realm, queue: EventQueue, seen: str) -> tuple[bool, str]:
        """Whether the entries the reader brought past ``seen`` may matter to the queue (True
        when unsure), and how far that answer goes."""
        after = _stream_id(seen)
        if realm.forgotten is None or _stream_id(realm.forgotten) > after:
            return True, seen  # entries past ``seen`` may not be in ``recent``
        last = seen
        for entry_id, change, dropped in realm.recent:
            if _stream_id(entry_id) <= after:
                continue
            if dropped == queue.queue_id:
                return True, seen
            if change is not None and queue.wants(change) and self.visible(queue, change):
                return True, seen
            last = entry_id
        return False, last

    def _forget_idle_realms(self) -> None:
        cutoff = time.monotonic() - TRACK_GRACE_SECS
        for realm_id, realm in list(self._realms.items()):
            if realm.parked == 0 and realm.idle_since < cutoff:
                del self._realms[realm_id]

    async def _read_forever(self) -> None:
        while True:
            self._forget_idle_realms()
            streams: dict[Any, Any] = {
                self.link.key("log", realm_id): realm.last_id
                for realm_id, realm in self._realms.items()
                if realm.last_id is not None
            }
            if not streams:
                self._tracking_changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TRACK_GRACE_SECS):
                        await self._tracking_changed.wait()
                continue
            streams[self._wake_key] = self._wake_last
            self._reading = True
            try:
                reply = await self.link.client.xread(streams, block=BLOCK_MS)
            except RedisError as exc:
                self.link.failed()
                self._warn("event reader lost Redis: %s", exc)
                for realm in self._realms.values():
                    realm.wake()  # their polls find Redis gone and say so
                await asyncio.sleep(self.link.retry_secs)
                continue
            finally:
                self._reading = False
            try:
                self._bring(reply or [])
            except Exception as exc:  # a malformed entry: the polls read their queues anyway
                logger.warning("event reader could not decode what it read: %r", exc)
                for realm in self._realms.values():
                    realm.wake()

    def _bring(self, reply: list[Any]) -> None:
        for stream, entries in reply:
            if not entries:
                continue
            name = stream.decode()
            if name == self._wake_key:
                self._wake_last = entries[-1][0].decode()
                continue
            tracked = self._realms.get(int(name.rsplit(":", 1)[1]))
            if tracked is not None and tracked.last_id is not None:
                tracked.bring(entries)

    # Housekeeping

    async def expire_idle(self) -> int:
        """Drop queues past their deadline (every process may run this) and trim each realm's
        log to what its slowest queue still needs."""
        expired = 0
        try:
            while True:
                count = int(await self._run(self._expire, repr(self.clock()), 1000))
                expired += count
                if count < 1000:
                    break
            realms: set[bytes] = await self.link.client.smembers(  # type: ignore[misc]
                self.link.key("realms")
            )
            for realm_id in realms:
                await self._run(self._trim, realm_id.decode())
        except EventsUnavailableError:
            pass
        except RedisError as exc:
            self.link.failed()
            self._warn("event queue housekeeping failed: %s", exc)
        return expired

    # Shutdown and restart: the queues live in Redis, so there is nothing to save or load.

    async def shut_down(self) -> None:
        """Answer this process's parked polls now (a heartbeat, or their pending events), and
        later polls without parking them, so that its connections can close."""
        self._closing = True
        for realm in self._realms.values():
            realm.wake()

    async def save(self, store: Store) -> int:
        return 0

    async def load(self, store: Store) -> int:
        return 0

    @property
    def queue_count(self) -> int:
        return self._queue_count

    async def count_queues(self) -> int:
        self._queue_count = int(await self.link.client.zcard(self.link.key("queues")))
        return self._queue_count

    async def check(self) -> None:
        await self.link.check()

    async def close(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
            self._recovery = None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        await self.link.close()


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))
