"""Keeps each realm's in-memory presence index in step with the store.

Built from the store on first use. This process's own writes are applied as they commit; writes
by other processes (another server, the CLI) are found by comparing the realm's sequence in the
store with the highest id applied without gaps, and fetched from there: a missed write delays,
never loses. Any directory change (users deactivated, realms changed) rebuilds the indexes.
"""

from __future__ import annotations

from presenced.directory import Directory
from presenced.presence.index import Entry, RealmIndex, make_entry
from presenced.settings import Settings
from presenced.store.base import PresenceRow, RealmPresenceRow, RealmRead, Store, User


class PresenceIndexes:
    def __init__(self, store: Store, settings: Settings, directory: Directory) -> None:
        self.store = store
        self.activity_offset = settings.presence_legacy_event_offset_for_activity_seconds
        self.directory = directory
        self._indexes: dict[int, RealmIndex] = {}
        self._directory_version = -1

    async def index(self, realm_id: int) -> RealmIndex:
        """The realm's index, with every committed write applied."""
        if self.directory.version != self._directory_version:
            self._indexes.clear()
            self._directory_version = self.directory.version
        sequence = await self.store.realm_presence_sequence(realm_id)
        index = self._indexes.get(realm_id)
        if index is None:
            index = self._indexes[realm_id] = RealmIndex()
        if sequence > index.synced_upto:
            rows = await self.store.read_realm_presence(
                RealmRead(realm_id, after_update_id=index.synced_upto, connected_since=None)
            )
            for row in rows:
                index.apply(self._entry(row))
            index.synced_upto = max(index.synced_upto, sequence)
        return index

    def own_write(self, user: User, row: PresenceRow) -> None:
        """Apply a write this process committed (a no-op until the realm is first read)."""
        index = self._indexes.get(user.realm_id)
        if index is not None:
            index.apply_own_write(
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
