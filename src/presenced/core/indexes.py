"""Keeps each realm's in-memory presence index in step with the store.

Built from the store at start. This process's own writes are applied as they commit; writes by
other processes (another server, the CLI) arrive as a sequence number (``note_sequence``, from
the change tracker) and are fetched from the highest id applied without gaps: a missed notice
delays, never loses. After a directory change, an index drops the users who are no longer
active humans and loads those who came back.
"""

from __future__ import annotations

from dataclasses import dataclass

from presenced.core.directory import Directory
from presenced.presence.index import Entry, RealmIndex, make_entry
from presenced.settings import Settings
from presenced.store.base import (
    PresenceRow,
    PresenceTimes,
    RealmPresenceRow,
    RealmRead,
    Store,
    User,
)


@dataclass
class _RealmState:
    index: RealmIndex
    members: frozenset[int] = frozenset()
    """The realm's active humans when last reconciled."""
    directory_version: int = -1


class PresenceIndexes:
    def __init__(self, store: Store, settings: Settings, directory: Directory) -> None:
        self.store = store
        self.activity_offset = settings.presence_legacy_event_offset_for_activity_seconds
        self.directory = directory
        self._indexes: dict[int, _RealmState] = {}
        self._known_sequences: dict[int, int] = {}
        """The highest presence sequence each realm's store is known to have reached."""

    def note_sequence(self, realm_id: int, sequence: int) -> None:
        """The store holds the realm's writes up to ``sequence`` (read on the next request)."""
        if sequence > self._known_sequences.get(realm_id, 0):
            self._known_sequences[realm_id] = sequence

    async def load_all(self) -> None:
        """Build every realm's index from the store (at start, so no first request waits)."""
        for realm in await self.store.list_realms():
            await self.index(realm.id)

    async def index(self, realm_id: int) -> RealmIndex:
        """The realm's index, with every committed write applied."""
        state = self._indexes.get(realm_id)
        if state is None:
            state = self._indexes[realm_id] = _RealmState(RealmIndex())
            await self._reconcile(realm_id, state)
        elif state.directory_version != self.directory.version:
            await self._reconcile(realm_id, state)
        index = state.index
        sequence = self._known_sequences.get(realm_id, 0)
        if sequence > index.synced_upto:
            await self._fetch(index, RealmRead(realm_id, index.synced_upto, None))
            index.synced_upto = max(index.synced_upto, sequence)
        return index

    async def _reconcile(self, realm_id: int, state: _RealmState) -> None:
        """After a directory change: drop users no longer active humans, and load the rows of
        users who became active again (a plain rebuild would cost a read of the whole realm
        for every change, an invisible-mode toggle included)."""
        state.directory_version = self.directory.version
        users = await self.store.list_users(realm_id)
        members = frozenset(u.id for u in users if u.is_active and not u.is_bot)
        for user_id in state.members - members:
            state.index.remove(user_id)
        returning = members - state.members
        state.members = members
        if returning and state.index.synced_upto > 0:
            await self._fetch(state.index, RealmRead(realm_id, None, None, returning))

    async def _fetch(self, index: RealmIndex, query: RealmRead) -> None:
        for row in await self.store.read_realm_presence(query):
            index.apply(self._entry(row))

    async def stored_times(self, user: User) -> PresenceTimes | None:
        """The user's times as the store holds them (the index, caught up first); None if the
        user has no presence row."""
        entry = (await self.index(user.realm_id)).get(user.id)
        if entry is None:
            return None
        return PresenceTimes(entry.last_active_time, entry.last_connected_time)

    def own_write(self, user: User, row: PresenceRow) -> None:
        """Apply a write this process committed (a no-op until the realm is first read)."""
        state = self._indexes.get(user.realm_id)
        if state is not None:
            state.index.apply_own_write(
                make_entry(
                    user.id,
                    user.email,
                    user.date_joined,
                    row.last_active_time,
                    row.last_connected_time,
                    row.last_update_id,
                    self.activity_offset,
                )
            )

    def _entry(self, row: RealmPresenceRow) -> Entry:
        return make_entry(
            row.user_id,
            row.email,
            row.date_joined,
            row.last_active_time,
            row.last_connected_time,
            row.last_update_id,
            self.activity_offset,
        )
