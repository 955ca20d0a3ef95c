"""Embed tokens resolved to what they may show, cached until the directory version moves.

A grant is the token's realm and the people it covers: active humans only (bots and
deactivated users are never shown), narrowed to the token's users if it names any. Creating
or revoking a token, like any change to users or realms, bumps the directory version, so a
cached grant is never older than the last freshness check (at most ``max_age`` seconds; the
change tracker makes that check free unless something changed).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

import orjson

from presenced.core.server import Server
from presenced.store.base import EmbedToken, Realm, User
from presenced.web.embed.tokens import has_token_format, token_hash

MAX_CACHED_GRANTS = 10_000
"""Unknown tokens are cached too (as None), so the cache is bounded against guessing."""


@dataclass(frozen=True, slots=True)
class Grant:
    token: EmbedToken
    realm: Realm
    people: tuple[User, ...]
    """The covered active humans, in the store's order."""
    people_ids: frozenset[int]
    directory_version: int
    """The version this grant was built at."""
    fingerprint: bytes
    """A digest of what the pages show of the people: open pages resend their list only
    when it changes (comparing this, not 10,000 records per page)."""


def covered_people(token: EmbedToken, users: list[User]) -> tuple[User, ...]:
    return tuple(
        u
        for u in users
        if u.is_active and not u.is_bot and (token.user_ids is None or u.id in token.user_ids)
    )


def fingerprint(realm: Realm, people: tuple[User, ...]) -> bytes:
    shown = [realm.presence_disabled, [(u.id, u.full_name, u.email, u.date_joined) for u in people]]
    return hashlib.sha256(orjson.dumps(shown)).digest()


class Grants:
    def __init__(self, server: Server) -> None:
        self.server = server
        self._version = -1
        self._checked_at = -math.inf
        self._grants: dict[str, Grant | None] = {}

    async def resolve(self, token: str, max_age: float = 0.0) -> Grant | None:
        """The grant for ``token``, or None if it is unknown, revoked, or its realm is
        deactivated. ``max_age``: accept a directory check that recent (seconds)."""
        if not has_token_format(token):
            return None
        now = time.monotonic()
        if now - self._checked_at > max_age:
            await self.server.changes.ensure_fresh()
            self._checked_at = now
        directory = self.server.directory
        if directory.version != self._version:
            self._grants.clear()
            self._version = directory.version
        key = token_hash(token)
        if key in self._grants:
            return self._grants[key]
        grant = await self._load(key)
        if len(self._grants) >= MAX_CACHED_GRANTS:
            self._grants.clear()
        self._grants[key] = grant
        return grant

    async def _load(self, key: str) -> Grant | None:
        store = self.server.store
        token = await store.embed_token_by_hash(key)
        if token is None:
            return None
        realm = await store.get_realm(token.realm_id)
        if realm is None or realm.deactivated:
            return None
        people = covered_people(token, await store.list_users(realm.id))
        return Grant(
            token,
            realm,
            people,
            frozenset(u.id for u in people),
            self._version,
            fingerprint(realm, people),
        )
