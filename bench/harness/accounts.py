"""Realms, users and API keys for a benchmark, created through presenced's store API."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from presenced.keys import PREFIX_LENGTH, generate_api_key, hash_api_key
from presenced.store.base import Role, Store


@dataclass(frozen=True)
class NewUser:
    realm_id: int
    email: str
    full_name: str


@dataclass(frozen=True)
class Account:
    """A user the benchmark logs in as."""

    user_id: int
    realm_id: int
    email: str
    delivery_email: str
    key: str

    @property
    def authorization(self) -> str:
        """The HTTP Basic ``Authorization`` header value."""
        token = base64.b64encode(f"{self.delivery_email}:{self.key}".encode()).decode("ascii")
        return "Basic " + token


async def create_realms(store: Store, subdomains: Sequence[str], now: float) -> dict[str, int]:
    """Subdomain -> realm id; 200 at a time."""
    realms: dict[str, int] = {}
    for i in range(0, len(subdomains), 200):
        chunk = subdomains[i : i + 200]
        made = await asyncio.gather(
            *(store.create_realm(sub, f"Bench {sub}" if sub else "Bench", now) for sub in chunk)
        )
        realms.update((sub, realm.id) for sub, realm in zip(chunk, made, strict=True))
    return realms


async def create_accounts(
    store: Store,
    wanted: Sequence[NewUser],
    now: float,
    chunk_size: int = 100,
    progress: Callable[[int], None] | None = None,
) -> list[Account]:
    """One member and one API key per entry, in concurrent chunks; ``progress(done)`` after
    each chunk. Every user or key created bumps the directory version, so on PostgreSQL the
    creations of a chunk queue up on that row: a chunk must fit in the store's pool-wait
    timeout (3 s), which 1,000 at once did not."""
    accounts: list[Account] = []
    for first in range(0, len(wanted), chunk_size):
        part = wanted[first : first + chunk_size]
        users = await asyncio.gather(
            *(
                store.create_user(
                    u.realm_id, u.email, u.email, u.full_name, Role.MEMBER, None, None, now
                )
                for u in part
            )
        )
        keys = [generate_api_key() for _ in users]
        await asyncio.gather(
            *(
                store.create_api_key(u.id, hash_api_key(k), k[:PREFIX_LENGTH], "bench", now)
                for u, k in zip(users, keys, strict=True)
            )
        )
        accounts.extend(
            Account(user.id, user.realm_id, user.email, user.delivery_email, key)
            for user, key in zip(users, keys, strict=True)
        )
        if progress is not None:
            progress(len(accounts))
    return accounts
