"""Per-realm caches of slowly changing data, dropped whenever the directory version moves.

Every change to realms, users, keys, channels or subscriptions bumps one counter in the store,
in the same transaction, whichever process makes it (the CLI included). The change tracker
(``core/changes.py``) tells this cache when the counter may have moved; reading the caches
costs no query.
"""

from __future__ import annotations

from presenced.presence.access import RealmAccess
from presenced.store.base import Realm, Store, User

MAX_CACHED_CALLERS = 100_000
"""Unknown keys are cached too (as None), so the cache is bounded against key guessing."""


class Directory:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.version = -1
        self._access: dict[int, RealmAccess] = {}
        self._callers: dict[str, tuple[User, Realm] | None] = {}

    async def refresh(self) -> None:
        """Read the directory version and drop the caches if it moved."""
        self.observe_version(await self.store.directory_version())

    def observe_version(self, version: int) -> None:
        if version != self.version:
            self._access.clear()
            self._callers.clear()
            self.version = version

    async def access(self, realm: Realm) -> RealmAccess:
        access = self._access.get(realm.id)
        if access is None:
            users = await self.store.list_users(realm.id)
            subscriptions = await self.store.realm_subscriptions(realm.id)
            access = self._access[realm.id] = RealmAccess.build(realm, users, subscriptions)
        return access

    async def caller(self, key_hash: str) -> tuple[User, Realm] | None:
        """Who an API key belongs to (None: nobody)."""
        if key_hash in self._callers:
            return self._callers[key_hash]
        found = await self.store.user_for_key_hash(key_hash)
        if len(self._callers) >= MAX_CACHED_CALLERS:
            self._callers.clear()
        self._callers[key_hash] = found
        return found

    async def visible_users(self, realm: Realm, viewer: User) -> list[User]:
        """The realm's users, less those a guest with limited access may not see (Zulip leaves
        them out of user lists)."""
        users = await self.store.list_users(realm.id)
        accessible = (await self.access(realm)).accessible(viewer.id)
        if accessible is None:
            return users
        return [u for u in users if u.id in accessible or u.is_bot]

    def cached_access(self, realm_id: int) -> RealmAccess | None:
        """The last access rules built for the realm, if any (for synchronous callers)."""
        return self._access.get(realm_id)
