"""The embed's use of the event system, in one place.

Each open page holds one event queue on its realm's change log, for presence events in the
modern format, so a change costs one append per realm however many pages are open. The queue's
viewer is nobody in particular: the realm's rules for what "everyone" may see (invisible users
are already back-dated in the log); the embed itself filters to the people its token covers.

These three functions are the embed's only callers of the event system.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from presenced.core.server import Server
from presenced.events.base import BadEventQueueError, EventsUnavailableError
from presenced.events.formats import PresenceFormat
from presenced.events.queue import EventQueue
from presenced.store.base import Realm

EMBED_VIEWER_ID = 0
"""No user has id 0; as a viewer it is a member with no special access (never a guest)."""
PRESENCE_EVENTS = frozenset({"presence"})


async def open_queue(server: Server, realm: Realm) -> EventQueue:
    # Every page is this one viewer: the per-user cap would make the 51st page evict another,
    # which reopens and evicts the next, round and round (a core busy at 70 pages).
    return await server.events.register(
        EMBED_VIEWER_ID, realm.id, PRESENCE_EVENTS, PresenceFormat.MODERN, None, capped=False
    )


async def next_presences(
    server: Server, realm: Realm, queue: EventQueue, last_event_id: int, timeout: float
) -> tuple[dict[str, Any], int]:
    """Presence changes published after ``last_event_id`` (acknowledging it), waiting up to
    ``timeout`` seconds for some: ``({user id: modern times}, new last event id)``.

    Raises BadEventQueueError if the queue is gone (expired or trimmed away)."""

    async def load_access_rules() -> None:
        await server.changes.ensure_fresh()
        await server.directory.access(realm)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        async with asyncio.timeout_at(deadline):
            delivery = await server.events.get_events(
                queue.queue_id, EMBED_VIEWER_ID, last_event_id, False, load_access_rules
            )
    except TimeoutError:
        return {}, last_event_id
    presences: dict[str, Any] = {}
    for event in delivery.events:
        event_id = event["id"]
        assert isinstance(event_id, int)
        last_event_id = max(last_event_id, event_id)
        changed = event.get("presences")
        if event.get("type") == "presence" and isinstance(changed, dict):
            presences.update(changed)
    if not presences:
        # Only a heartbeat: while the server shuts down these come at once, so wait out the
        # rest of the timeout rather than spin.
        await asyncio.sleep(max(0.0, deadline - loop.time()))
    return presences, last_event_id


async def close_queue(server: Server, queue: EventQueue) -> None:
    """Delete the page's queue; one already gone, or out of reach, expires by itself."""
    with contextlib.suppress(BadEventQueueError, EventsUnavailableError):
        await server.events.delete(queue.queue_id, EMBED_VIEWER_ID)
