"""A benchmark run's durable state: a fresh SQLite file or PostgreSQL database, and optionally
a Redis key prefix of its own, all removed afterwards.

The PostgreSQL database is created on the server given by ``admin_url`` (user postgres) with a
unique name and dropped at the end; only that database is ever dropped. Redis keys are written
by the servers under a unique prefix; at the end every key under that prefix is deleted (never
FLUSHDB). The store itself is reached only through ``presenced.store.factory.open_store``.
"""

from __future__ import annotations

import contextlib
import importlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis

from presenced.store.base import Store
from presenced.store.factory import open_store

STORES = ("sqlite", "postgres")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class BackendChoice:
    """What the command line asked for."""

    store: str = "sqlite"
    redis: bool = False
    postgres_admin_url: str = DEFAULT_POSTGRES_URL
    redis_url: str = DEFAULT_REDIS_URL

    def describe(self) -> str:
        store = "embedded SQLite" if self.store == "sqlite" else "PostgreSQL"
        return store + (" + Redis" if self.redis else "")


@dataclass(frozen=True)
class Backend:
    """The run's database URL and Redis settings, as the servers get them."""

    choice: BackendChoice
    database_url: str
    redis_prefix: str | None

    def server_env(self) -> dict[str, str]:
        env = {"PRESENCED_DATABASE_URL": self.database_url}
        if self.redis_prefix is not None:
            env["PRESENCED_REDIS_URL"] = self.choice.redis_url
            env["PRESENCED_REDIS_KEY_PREFIX"] = self.redis_prefix
        return env

    async def service_pids(self) -> dict[str, list[int]]:
        """The local processes doing the backend's work outside the servers: the PostgreSQL
        backends connected to this run's database, and the Redis server (shared with any other
        client of it). Empty for the embedded store, whose work is in the servers' CPU."""
        pids: dict[str, list[int]] = {}
        if self.choice.store == "postgres":
            name = urlsplit(self.database_url).path.lstrip("/")
            conn = await _asyncpg().connect(self.choice.postgres_admin_url)
            try:
                rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
            finally:
                await conn.close()
            pids["postgres"] = [int(row["pid"]) for row in rows]
        if self.redis_prefix is not None:
            client = aioredis.Redis.from_url(self.choice.redis_url)
            try:
                info = await client.info("server")
            finally:
                await client.aclose()
            pid = int(info.get("process_id", 0))
            pids["redis"] = [pid] if pid and Path(f"/proc/{pid}").exists() else []
        return pids

    async def open_store(self) -> Store:
        """An opened store on the run's database (the caller closes it)."""
        store = open_store(self.database_url)
        await store.open()
        return store


def _asyncpg() -> Any:
    """asyncpg, imported at run time: it ships no type information, and only --store postgres
    needs it."""
    return importlib.import_module("asyncpg")


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def _create_database(admin_url: str, name: str) -> None:
    conn = await _asyncpg().connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await _asyncpg().connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _delete_redis_keys(url: str, prefix: str) -> int:
    client = aioredis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await client.unlink(*batch)
                batch = []
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


@contextlib.asynccontextmanager
async def bench_backend(choice: BackendChoice, workdir: Path) -> AsyncIterator[Backend]:
    """The run's backend; the PostgreSQL database and the Redis keys go when it exits."""
    token = secrets.token_hex(4)
    prefix = f"presenced-bench-{token}:" if choice.redis else None
    if choice.store == "sqlite":
        backend = Backend(choice, f"sqlite:///{workdir / 'presenced.db'}", prefix)
        try:
            yield backend
        finally:
            if prefix is not None:
                await _delete_redis_keys(choice.redis_url, prefix)
        return
    if choice.store != "postgres":
        raise ValueError(f"unknown store {choice.store!r}; choose from {STORES}")
    name = f"presenced_bench_{token}"
    await _create_database(choice.postgres_admin_url, name)
    try:
        yield Backend(choice, _with_database(choice.postgres_admin_url, name), prefix)
    finally:
        try:
            if prefix is not None:
                await _delete_redis_keys(choice.redis_url, prefix)
        finally:
            await _drop_database(choice.postgres_admin_url, name)
