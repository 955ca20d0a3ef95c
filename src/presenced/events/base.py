"""The event system's interface and the records it shares with every backend.

A backend keeps queues (a cursor into the realm's change log, filters, pending events) and the
per-realm change logs: in this process's memory (``events/system.py``) or in Redis, where any
process can answer any queue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from presenced.events.changes import Change
from presenced.events.formats import PresenceFormat
from presenced.events.queue import EventQueue, Visible
from presenced.store.base import Store

Prepare = Callable[[], Awaitable[None]]
"""Run before each read of the log (to load what the visibility rule needs)."""


class BadEventQueueError(Exception):
    """No such queue for this user: unknown, expired, deleted, or someone else's."""

    def __init__(self, queue_id: str) -> None:
        super().__init__(queue_id)
        self.queue_id = queue_id


class EventsUnavailableError(Exception):
    """The backend holding the queues cannot be reached (Redis is down)."""


def everyone_sees_everything(queue: EventQueue, change: Change) -> bool:
    return True


@dataclass
class EventSettings:
    heartbeat_secs: float = 45.0
    """A poll with nothing to say answers with a heartbeat after this long (plus up to 22 %
    more at random, like Zulip's 45-55 s, so that polls do not all return together)."""
    default_idle_timeout_secs: float = 600.0
    max_log_length: int = 100_000
    """Past this, the oldest changes are dropped and queues still needing them expire."""
    max_pending_events: int = 10_000
    """A queue holding more unacknowledged events than this expires."""
    activity_offset_secs: float = 70.0
    max_queues_per_user: int = 50
    """Registering one more queue than this reclaims the user's idlest queue."""


@dataclass(frozen=True, slots=True)
class Delivery:
    events: list[dict[str, object]]
    waited: bool
    """Whether the poll was held (Zulip then also names the queue in its answer)."""


class EventSystem(Protocol):
    def set_visibility(self, visible: Visible) -> None:
        """The privacy rule every read applies (the server's ``may_see``)."""
        ...

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
        """A new queue that will hear of every change published from now on. At the per-user
        cap the user's idlest queue is reclaimed first, unless ``capped`` is false (the embed's
        pages, which all share one viewer that is nobody's account)."""
        ...

    async def get_events(
        self,
        queue_id: str,
        user_id: int,
        last_event_id: int | None,
        dont_block: bool,
        prepare: Prepare | None = None,
    ) -> Delivery:
        """Pending events after ``last_event_id``; if none, wait for some or a heartbeat."""
        ...

    async def delete(self, queue_id: str, user_id: int) -> None: ...

    async def publish(self, realm_id: int, change: Change) -> None:
        """Append to the realm's log (once, whatever the number of queues) and wake its polls."""
        ...

    async def expire_idle(self) -> int:
        """Drop queues idle past their timeout; returns how many went."""
        ...

    @property
    def queue_count(self) -> int:
        """The event queues of the server as last counted, without I/O (for a metrics scrape):
        this process's, or every process's where the queues are shared (Redis)."""
        ...

    async def count_queues(self) -> int:
        """Count the queues now (a round trip where they are shared), and keep the figure
        for ``queue_count``."""
        ...

    async def shut_down(self) -> None:
        """Answer every parked long-poll now (pending events or a heartbeat) and later polls
        without parking them: the server is stopping and its connections must close."""
        ...

    async def save(self, store: Store) -> int:
        """Keep the queues in ``store`` for the next start (a backend whose queues outlive the
        process, like Redis, saves nothing); returns how many were saved."""
        ...

    async def load(self, store: Store) -> int:
        """Serve again the queues the last shutdown saved; returns how many."""
        ...

    async def close(self) -> None: ...
