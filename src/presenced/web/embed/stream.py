"""One open page's live feed, as server-sent events.

``snapshot``: everyone covered, with the server's time and thresholds (sent first, and again
whenever the covered people change). ``presence``: changed people only. ``revoked``: the token
no longer works; the stream ends.

The feed waits on its event queue for at most ``CHECK_SECS`` at a time, then re-checks its
token through the grant cache (a directory-version check shared by every open page), so a
revoked token stops the page within a second. Refreshes of people who stay online are not
announced as events (as in Zulip, clients poll for them); the feed reads them from the
in-memory index once per ping interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sse_starlette import ServerSentEvent

from presenced.core.server import Server
from presenced.events.base import BadEventQueueError, EventsUnavailableError
from presenced.events.queue import EventQueue
from presenced.store.base import StoreUnavailableError
from presenced.web.embed import queues
from presenced.web.embed.grants import Grant, Grants
from presenced.web.embed.people import SharedIndexes, newest_update_id, people_of

logger = logging.getLogger("presenced.embed")

CHECK_SECS = 1.0
"""How long a feed waits for events before re-checking its token."""
RETRY_MS = 1000
"""How soon a browser reconnects after losing the stream (a server restart)."""
MAX_CACHED_SNAPSHOTS = 100


@dataclass(frozen=True, slots=True)
class _Snapshot:
    grant: Grant
    built_at: float
    people: bytes
    """The encoded list, shared by every page that opens within ``CHECK_SECS``."""
    cursor: int


def _event(name: str, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(data=orjson.dumps(data).decode(), event=name, retry=RETRY_MS)


def _same_people(a: Grant, b: Grant) -> bool:
    return a is b or a.fingerprint == b.fingerprint


class Feed:
    def __init__(self, server: Server, grants: Grants, indexes: SharedIndexes) -> None:
        self.server = server
        self.grants = grants
        self.indexes = indexes
        self._snapshots: dict[int, _Snapshot] = {}

    async def _people(self, grant: Grant) -> _Snapshot:
        """The covered people, encoded once for all the pages that open (or reconnect after a
        restart) within a second. A snapshot up to that old is safe: its cursor makes the
        first index refresh send whatever changed since."""
        now = time.monotonic()
        cached = self._snapshots.get(grant.token.id)
        if cached is not None and cached.grant is grant and now - cached.built_at <= CHECK_SECS:
            return cached
        index = await self.indexes.index(grant.realm.id, max_age=CHECK_SECS)
        people = orjson.dumps(people_of(grant, index))
        cached = _Snapshot(grant, now, people, newest_update_id(grant, index))
        if len(self._snapshots) >= MAX_CACHED_SNAPSHOTS:
            self._snapshots.clear()
        self._snapshots[grant.token.id] = cached
        return cached

    async def snapshot(self, grant: Grant) -> tuple[ServerSentEvent, int]:
        settings = self.server.settings
        people = await self._people(grant)
        data = {
            "server_timestamp": self.server.clock(),
            "offline_threshold_secs": settings.offline_threshold_secs,
            "ping_interval_secs": settings.presence_ping_interval_secs,
            "presence_disabled": grant.realm.presence_disabled,
            "people": orjson.Fragment(people.people),
        }
        return _event("snapshot", data), people.cursor

    async def events(
        self,
        token: str,
        grant: Grant,
        stopping: Callable[[], bool] = lambda: False,
        queue: EventQueue | None = None,
    ) -> AsyncGenerator[ServerSentEvent, None]:
        """The page's events until its token stops working or ``stopping()`` (the server is
        shutting down: the stream then ends cleanly and the browser reconnects). ``queue``:
        the page's queue, if the caller opened it; the feed deletes it when it ends.

        If the store or the event queues become unreachable the stream ends (with a warning
        in the log, never a traceback); the browser reconnects, and gets a 503 until they
        are back."""
        server = self.server
        refresh_every = float(server.settings.presence_ping_interval_secs)
        try:
            if queue is None:
                queue = await queues.open_queue(server, grant.realm)
            first, cursor = await self.snapshot(grant)
            yield first
            # The list is large: keep no copy of it per page once it is sent (the response
            # holds the last item it sent until the next one, so send a small one).
            del first
            yield ServerSentEvent(comment="live")
            last_event_id = queue.last_event_id
            next_refresh = time.monotonic() + refresh_every
            while not stopping():
                try:
                    presences, last_event_id = await queues.next_presences(
                        server, grant.realm, queue, last_event_id, CHECK_SECS
                    )
                except BadEventQueueError:  # dropped (trimmed away): start again
                    queue = await queues.open_queue(server, grant.realm)
                    last_event_id = queue.last_event_id
                    presences = {}
                    next_refresh = 0.0
                if stopping():
                    return
                current = await self.grants.resolve(token, max_age=CHECK_SECS / 2)
                if current is None:
                    yield _event("revoked", {"msg": "This embed token has been revoked."})
                    return
                if not _same_people(current, grant):
                    grant = current
                    event, cursor = await self.snapshot(grant)
                    yield event
                    del event
                    yield ServerSentEvent(comment="live")
                    continue
                grant = current
                if grant.realm.presence_disabled:
                    continue
                if time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + refresh_every
                    index = await self.indexes.index(grant.realm.id, max_age=CHECK_SECS)
                    found = index.changed_since(cursor, True, grant.people_ids)
                    if found.last_update_id is not None:
                        cursor = found.last_update_id
                        presences = {**presences, **orjson.loads(found.presences)}
                covered = {k: v for k, v in presences.items() if int(k) in grant.people_ids}
                if covered:
                    data = {"server_timestamp": server.clock(), "presences": covered}
                    yield _event("presence", data)
        except (EventsUnavailableError, StoreUnavailableError) as exc:
            logger.warning(
                "embed stream ended (pages reconnect): %s", str(exc) or type(exc).__name__
            )
        finally:
            if queue is not None:
                await queues.close_queue(server, queue)
