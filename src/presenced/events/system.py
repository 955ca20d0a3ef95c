"""The event system: queues over per-realm change logs, long-poll, heartbeats, expiry.

Publishing a change appends it to its realm's log and wakes the long-polls parked in that realm:
one append whatever the number of queues. Each queue turns log entries into events in its own
format when it is read, so a queue that nobody is polling costs nothing until it is.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field

from presenced.clock import Clock
from presenced.events import persistence
from presenced.events.base import (
    BadEventQueueError,
    Delivery,
    EventSettings,
    Prepare,
    everyone_sees_everything,
)
from presenced.events.changes import Change
from presenced.events.formats import PresenceFormat
from presenced.events.log import ChangeLog
from presenced.events.queue import EventQueue, Visible
from presenced.store.base import SavedChangeLog, SavedEventQueue, SavedEventQueues, Store

logger = logging.getLogger("presenced.events")

__all__ = ["BadEventQueueError", "Delivery", "EventSettings", "InProcessEventSystem"]


@dataclass
class _Realm:
    log: ChangeLog = field(default_factory=ChangeLog)
    queue_ids: set[str] = field(default_factory=set)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


def _idleness(queue: EventQueue) -> tuple[bool, float]:
    """Sort key: queues with no poll parked first, then the longest unpolled."""
    return (queue.connected > 0, queue.last_seen)


class InProcessEventSystem:
    """Queues and logs in this process's memory (the embedded, single-process mode)."""

    def __init__(
        self, settings: EventSettings, clock: Clock, visible: Visible = everyone_sees_everything
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.visible = visible
        self._queues: dict[str, EventQueue] = {}
        self._user_queues: dict[int, str | set[str]] = {}
        """Each user's queue IDs: most users have one, held as the ID itself (a set costs
        about 200 B more per user)."""
        self._realms: dict[int, _Realm] = {}
        self._event_type_sets: dict[frozenset[str], frozenset[str]] = {}
        self._closing = False

    def _realm(self, realm_id: int) -> _Realm:
        realm = self._realms.get(realm_id)
        if realm is None:
            realm = self._realms[realm_id] = _Realm()
        return realm

    @property
    def queue_count(self) -> int:
        return len(self._queues)

    async def count_queues(self) -> int:
        return len(self._queues)

    def set_visibility(self, visible: Visible) -> None:
        self.visible = visible

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
        return self.register_now(
            user_id,
            realm_id,
            event_types,
            presence_format,
            idle_timeout,
            capped=capped,
            user_settings_object=user_settings_object,
        )

    def register_now(
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
        """A new queue that will hear of every change published from now on."""
        realm = self._realm(realm_id)
        now = self.clock()
        if event_types is not None:  # queues mostly ask for the same few sets: share them
            event_types = self._event_type_sets.setdefault(event_types, event_types)
        queue = EventQueue.new(
            user_id,
            realm_id,
            event_types,
            presence_format,
            self.settings.default_idle_timeout_secs if idle_timeout is None else idle_timeout,
            now,
            realm.log.head,
            user_settings_object=user_settings_object,
        )
        if capped:
            self._reclaim_for(user_id)
        self._queues[queue.queue_id] = queue
        realm.queue_ids.add(queue.queue_id)
        held = self._user_queues.get(user_id)
        if held is None:
            self._user_queues[user_id] = queue.queue_id
        elif isinstance(held, str):
            self._user_queues[user_id] = {held, queue.queue_id}
        else:
            held.add(queue.queue_id)
        return queue

    def _reclaim_for(self, user_id: int) -> None:
        """Make room for one more queue of the user: drop their idlest while at the cap."""
        cap = self.settings.max_queues_per_user
        while True:
            held = self._user_queues.get(user_id)
            if held is None:
                return
            ids = [held] if isinstance(held, str) else held
            if len(ids) < cap:
                return
            self._drop(min((self._queues[q] for q in ids), key=_idleness))

    def queue(self, queue_id: str, user_id: int) -> EventQueue:
        queue = self._queues.get(queue_id)
        if queue is None or queue.user_id != user_id:
            raise BadEventQueueError(queue_id)
        if queue.expired(self.clock()):
            self._drop(queue)
            raise BadEventQueueError(queue_id)
        return queue

    async def delete(self, queue_id: str, user_id: int) -> None:
        self._drop(self.queue(queue_id, user_id))

    def _drop(self, queue: EventQueue) -> None:
        self._queues.pop(queue.queue_id, None)
        held = self._user_queues.get(queue.user_id)
        if held == queue.queue_id:
            del self._user_queues[queue.user_id]
        elif isinstance(held, set):
            held.discard(queue.queue_id)
            if len(held) == 1:
                self._user_queues[queue.user_id] = held.pop()
        realm = self._realms.get(queue.realm_id)
        if realm is not None:
            realm.queue_ids.discard(queue.queue_id)
            realm.wakeup.set()  # a parked poll on it finds it gone
            realm.wakeup = asyncio.Event()

    async def publish(self, realm_id: int, change: Change) -> None:
        self.publish_now(realm_id, change)

    def publish_now(self, realm_id: int, change: Change) -> None:
        """Append the change to its realm's log and wake that realm's parked polls.

        The append is O(1) whatever the number of queues. Waking N parked polls costs about
        1-2 us each; it is scheduled for the loop's next turn, so the request that published
        (a presence report) is not held up by it.
        """
        realm = self._realms.get(realm_id)
        if realm is None or not realm.queue_ids:
            return  # no queue could ever read it
        realm.log.append(change)
        if len(realm.log) > self.settings.max_log_length:
            self._trim(realm, force=True)
        wakeup, realm.wakeup = realm.wakeup, asyncio.Event()
        asyncio.get_running_loop().call_soon(wakeup.set)

    def _collect(self, queue: EventQueue) -> None:
        realm = self._realm(queue.realm_id)
        log = realm.log
        if queue.log_position >= log.head:
            return
        queue.absorb(
            log.since(queue.log_position), self.visible, self.settings.activity_offset_secs
        )
        queue.log_position = log.head
        if len(queue.pending) > self.settings.max_pending_events:
            self._drop(queue)
            raise BadEventQueueError(queue.queue_id)

    async def get_events(
        self,
        queue_id: str,
        user_id: int,
        last_event_id: int | None,
        dont_block: bool,
        prepare: Prepare | None = None,
    ) -> Delivery:
        """Pending events after ``last_event_id``; if none, wait for some or a heartbeat.

        ``prepare`` runs before each read of the log (to load what ``visible`` needs). Only a
        poll that waits keeps the queue alive, as in Zulip.
        """
        queue = self.queue(queue_id, user_id)
        if last_event_id is not None:
            queue.acknowledge(last_event_id)
        if prepare is not None:
            await prepare()
        self._collect(queue)
        if queue.pending or dont_block:
            return Delivery(list(queue.pending), waited=False)
        if self._closing:  # shutting down: answer at once rather than park
            queue.add_heartbeat()
            queue.last_seen = self.clock()
            return Delivery(list(queue.pending), waited=True)
        loop = asyncio.get_running_loop()
        wait = self.settings.heartbeat_secs * (1 + 0.22 * random.random())
        deadline = loop.time() + wait
        queue.last_seen = self.clock()
        queue.connected += 1
        try:
            while not queue.pending:
                wakeup = self._realm(queue.realm_id).wakeup
                try:
                    async with asyncio.timeout_at(deadline):
                        await wakeup.wait()
                except TimeoutError:
                    queue.add_heartbeat()
                    break
                if prepare is not None:
                    await prepare()
                if queue.queue_id not in self._queues:
                    raise BadEventQueueError(queue_id)
                self._collect(queue)
                if self._closing and not queue.pending:
                    queue.add_heartbeat()
        finally:
            queue.connected -= 1
            queue.last_seen = self.clock()
        return Delivery(list(queue.pending), waited=True)

    async def close(self) -> None:
        return None

    async def expire_idle(self) -> int:
        """Drop queues idle past their timeout and trim logs; returns how many queues went."""
        now = self.clock()
        expired = [q for q in self._queues.values() if q.expired(now)]
        for queue in expired:
            self._drop(queue)
        for realm_id, realm in list(self._realms.items()):
            if not realm.queue_ids:
                del self._realms[realm_id]
            else:
                self._trim(realm, force=False)
        return len(expired)

    def _trim(self, realm: _Realm, *, force: bool) -> None:
        """Drop log entries every queue has read; with ``force``, also half the log, expiring
        the queues that still needed that half (their clients re-register)."""
        positions = [self._queues[q].log_position for q in realm.queue_ids]
        upto = min(positions, default=realm.log.head)
        if force:
            upto = max(upto, realm.log.head - self.settings.max_log_length // 2)
            for queue_id in list(realm.queue_ids):
                if self._queues[queue_id].log_position < upto:
                    self._drop(self._queues[queue_id])
        realm.log.trim(upto)

    # Shutdown and restart

    async def shut_down(self) -> None:
        """Answer every parked long-poll now (its pending events, or a heartbeat), and every
        later poll without parking it, so that the server's connections can close."""
        self._closing = True
        for realm in self._realms.values():
            realm.wakeup.set()
            realm.wakeup = asyncio.Event()

    async def save(self, store: Store) -> int:
        """Save every live queue, with the part of its realm's log it has not read yet, in
        place of whatever was saved before; returns how many queues were saved."""
        now = self.clock()
        queues: list[SavedEventQueue] = []
        logs: list[SavedChangeLog] = []
        for realm_id, realm in self._realms.items():
            live = [
                self._queues[q]
                for q in realm.queue_ids
                if q in self._queues and not self._queues[q].expired(now)
            ]
            if not live:
                continue
            start = min(queue.log_position for queue in live)
            for queue in live:
                state = persistence.encode_queue(queue, queue.log_position - start)
                queues.append(SavedEventQueue(queue.queue_id, realm_id, queue.user_id, state))
            tail = realm.log.since(start)
            if tail:
                logs.append(SavedChangeLog(realm_id, persistence.encode_changes(tail)))
        await store.save_event_queues(SavedEventQueues(queues, logs))
        return len(queues)

    async def load(self, store: Store) -> int:
        """Take the queues saved at the last shutdown (the store forgets them) and serve them
        again; returns how many were loaded. Queues that expired meanwhile are dropped."""
        self._closing = False  # starting (again): polls park as usual
        saved = await store.take_event_queues()
        now = self.clock()
        log_starts: dict[int, int] = {}
        for saved_log in saved.logs:
            try:
                changes = persistence.decode_changes(saved_log.changes)
            except persistence.SavedStateError as error:
                logger.warning("realm %d: %s", saved_log.realm_id, error)
                continue
            log = self._realm(saved_log.realm_id).log
            log_starts[saved_log.realm_id] = log.head
            for change in changes:
                log.append(change)
        loaded = 0
        for item in saved.queues:
            realm = self._realm(item.realm_id)
            start = log_starts.get(item.realm_id, realm.log.head)
            try:
                queue = persistence.decode_queue(
                    item.queue_id, item.realm_id, item.user_id, item.state, start
                )
            except persistence.SavedStateError as error:
                logger.warning("%s", error)
                continue
            if queue.expired(now) or queue.log_position > realm.log.head:
                continue
            if queue.event_types is not None:
                queue.event_types = self._event_type_sets.setdefault(
                    queue.event_types, queue.event_types
                )
            self._queues[queue.queue_id] = queue
            realm.queue_ids.add(queue.queue_id)
            loaded += 1
        for realm_id, realm in list(self._realms.items()):
            if not realm.queue_ids:
                del self._realms[realm_id]
            else:
                self._trim(realm, force=False)
        return loaded
