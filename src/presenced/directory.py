"""Per-realm caches of slowly changing data, dropped whenever the directory version moves.

Every change to realms, users, keys, channels or subscriptions bumps one counter in the store,
in the same transaction, whichever process makes it (the CLI included); checking it costs one
small query, so a cache is never staler than the request that reads it.
"""

from __future__ import annotations

import math
import time

from presenced.presence.access import RealmAccess
from presenced.store.base import Realm, Store, User

MAX_CACHED_CALLERS = 100_000
"""Unknown keys are cached too (as None), so the cache is bounded against key guessing."""


class Directory:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.version = -1
        self._checked_at = -math.inf
        self._access: dict[int, RealmAccess] = {}
        self._callers: dict[str, tuple[User, Realm] | None] = {}

    async def refresh(self, max_age: float = 0.0) -> None:
        """Drop the caches if the directory changed; ``max_age`` accepts a check that recent
        (in seconds), so thousands of long-polls waking at once share one query."""
        now = time.monotonic()
        if now - self._checked_at <= max_age:
            return
        version = await self.store.directory_version()
        self._checked_at = now
        if version != self.version:
            self._access.clear()
            self._callers.clear()
            self.version = version

    async def access(self, realm: Realm, max_age: float = 0.0) -> RealmAccess:
        await self.refresh(max_age)
        access = self._access.get(realm.id)
        if access is None:
            users = await self.store.list_users(realm.id)
            subscriptions = await self.store.realm_subscriptions(realm.id)
            access = self._access[realm.id] = RealmAccess.build(realm, users, subscriptions)
        return access

    async def caller(self, key_hash: str) -> tuple[User, Realm] | None:
        """Who an API key belongs to. Checks the directory version first, so a revoked key or
        a deactivated user or realm is refused on the very next request."""
        await self.refresh()
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
