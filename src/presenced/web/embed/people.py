"""What an embed shows of each covered person: who they are and their presence timestamps,
in Zulip's modern format, read from the realm's in-memory presence index.

Display state follows Zulip's web app (spec 2.6): active if the last active report is within
the offline threshold, else idle if the last report of any kind is, else offline. The page's
script applies the same rule as time passes, from the timestamps and the thresholds it is sent.
"""

from __future__ import annotations

import time
from typing import Any

from presenced.core.server import Server
from presenced.presence import formats
from presenced.presence.index import Entry, RealmIndex
from presenced.store.base import User
from presenced.web.embed.grants import Grant

ACTIVE = "active"
IDLE = "idle"
OFFLINE = "offline"


def display_state(
    active_timestamp: int | None, idle_timestamp: int | None, now: float, threshold: float
) -> str:
    if active_timestamp is not None and now - active_timestamp < threshold:
        return ACTIVE
    if idle_timestamp is not None and now - idle_timestamp < threshold:
        return IDLE
    return OFFLINE


def timestamps(user: User, entry: Entry | None) -> dict[str, int | None]:
    """The modern pair; both None for someone who never reported (shown offline)."""
    if entry is None:
        return {"active_timestamp": None, "idle_timestamp": None}
    modern = formats.modern(entry.last_active_time, entry.last_connected_time, user.date_joined)
    return {**modern}


def person(user: User, entry: Entry | None) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "full_name": user.full_name,
        "email": user.email,
        **timestamps(user, entry),
    }


class SharedIndexes:
    """The realms' presence indexes for every open embed in this process.

    This process's own writes reach an index as they commit; other processes' writes are
    caught up (after a freshness check) at most once per ``max_age`` per realm, for all open
    pages together, so the number of viewers never multiplies store reads.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self._checked: dict[int, tuple[float, RealmIndex]] = {}

    async def index(self, realm_id: int, max_age: float = 0.0) -> RealmIndex:
        now = time.monotonic()
        checked = self._checked.get(realm_id)
        if checked is not None and now - checked[0] <= max_age:
            return checked[1]
        await self.server.changes.ensure_fresh()
        index = await self.server.indexes.index(realm_id)
        self._checked[realm_id] = (now, index)
        return index


def people_of(grant: Grant, index: RealmIndex) -> list[dict[str, Any]]:
    """Everyone the grant covers; no presence at all where the realm has presence off."""
    disabled = grant.realm.presence_disabled
    return [person(u, None if disabled else index.get(u.id)) for u in grant.people]


def newest_update_id(grant: Grant, index: RealmIndex) -> int:
    """The cursor after which the covered people's index entries are news."""
    newest = 0
    for user_id in grant.people_ids:
        entry = index.get(user_id)
        if entry is not None and entry.update_id > newest:
            newest = entry.update_id
    return newest
