"""The PostgreSQL store with real ``presenced serve`` processes: several processes writing one
realm while readers follow the cursor, and the database going away and coming back.

The database "goes away" through a TCP proxy the test cuts, so the machine's PostgreSQL keeps
serving everyone else.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg
import pytest

import pg
from live import LiveServer, live_server
from presenced.keys import PREFIX_LENGTH, generate_api_key, hash_api_key
from presenced.store.base import (
    PresenceReport,
    PresenceTimes,
    PresenceWrite,
    Role,
    Store,
    StoreBusyError,
)
from presenced.store.factory import open_store, redacted_url
from presenced.store.postgres import PostgresStore, sqlalchemy_url
from tcp_proxy import tcp_proxy


@dataclass(frozen=True)
class Person:
    user_id: int
    email: str
    api_key: str

    def headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.email}:{self.api_key}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


def make_people(database_url: str, count: int) -> list[Person]:
    """The root realm and ``count`` users with a key each, written straight to the store."""

    async def make() -> list[Person]:
        store = open_store(database_url)
        await store.open()
        try:
            realm = await store.create_realm("", "Zulip Dev", time.time())
            people = []
            for n in range(count):
                email = f"user{n}@zulip.com"
                user = await store.create_user(
                    realm.id, email, email, f"User {n}", Role.MEMBER, None, None, time.time()
                )
                key = generate_api_key()
                await store.create_api_key(
                    user.id, hash_api_key(key), key[:PREFIX_LENGTH], "test", time.time()
                )
                people.append(Person(user.id, email, key))
            return people
        finally:
            await store.close()

    return asyncio.run(make())


def report(server: LiveServer, person: Person, **data: Any) -> httpx.Response:
    return httpx.post(
        server.url + "/api/v1/users/me/presence",
        data={"status": "active", **data},
        headers=person.headers(),
        timeout=30,
    )


@pytest.fixture
def database() -> Iterator[str]:
    with pg.temporary_database(migrated=False) as url:
        yield url


def test_database_urls_choose_postgres() -> None:
    url = "postgres://presenced:s3cr%40t@db.example:6432/presence?sslmode=require"
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    assert sqlalchemy_url(url) == (
        "postgresql+psycopg://presenced:s3cr%40t@db.example:6432/presence?sslmode=require"
    )
    assert isinstance(open_store("postgresql://postgres@127.0.0.1:5432/x"), PostgresStore)
    assert redacted_url(url) == "postgres://presenced:***@db.example:6432/presence?sslmode=require"
    assert redacted_url("postgresql://postgres@h/db") == "postgresql://postgres@h/db"


def test_postgres_url_with_password_and_libpq_options(database: str) -> None:
    """Both drivers (asyncpg for serving, psycopg for Alembic) take the same URL."""
    name = database.rsplit("/", 1)[1]
    url = f"postgres://postgres:not%40needed@127.0.0.1:5432/{name}?sslmode=disable"

    async def run() -> None:
        store = open_store(url)
        await store.open()
        try:
            await store.migrate()
            assert await store.schema_is_current()
            await store.create_realm("", "Zulip Dev", 0.0)
            assert [r.subdomain for r in await store.list_realms()] == [""]
        finally:
            await store.close()

    asyncio.run(run())


def test_calls_beyond_the_pool_queue_for_a_connection(database: str) -> None:
    """More calls in flight than the pool has connections wait their turn (up to the pool
    timeout), however short the statement timeout; a call that waits past the pool timeout
    gets a StoreBusyError that says so."""

    async def burst() -> int:
        store = open_store(database, pool_size=1, timeout=0.3, pool_timeout=10.0)
        await store.open()
        try:
            await store.migrate()
            realm = await store.create_realm("", "Zulip Dev", 0.0)
            writes = [
                store.create_user(
                    realm.id,
                    f"u{n}@zulip.com",
                    f"u{n}@zulip.com",
                    "U",
                    Role.MEMBER,
                    None,
                    None,
                    0.0,
                )
                for n in range(1000)
            ]
            await asyncio.gather(*writes)  # well over 0.3 s of work through one connection
            assert len(await store.list_users(realm.id)) == 1000
            return realm.id
        finally:
            await store.close()

    async def busy(realm_id: int) -> None:
        store = open_store(database, pool_size=1, timeout=5.0, pool_timeout=0.5)
        await store.open()
        try:
            with psycopg.connect(database, autocommit=True) as admin:
                admin.execute("BEGIN")
                admin.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
                stuck = asyncio.create_task(store.list_users(realm_id))
                await asyncio.sleep(0.2)  # it holds the pool's one connection, waiting
                with pytest.raises(StoreBusyError) as refused:
                    await store.list_realms()
                admin.execute("ROLLBACK")
            assert "all 1 of the pool (PRESENCED_DATABASE_POOL_SIZE) stayed busy" in str(
                refused.value
            )
            assert len(await stuck) == 1000
        finally:
            await store.close()

    asyncio.run(busy(asyncio.run(burst())))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_group_commit_isolates_a_failing_report(kind: str, tmp_path: Path) -> None:
    """Concurrent reports commit together; one whose rule fails fails alone."""
    with ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / 'presenced.db'}"
        else:
            url = stack.enter_context(pg.temporary_database())

        async def run() -> None:
            store: Store = open_store(url)
            await store.open()
            try:
                await store.migrate()
                realm = await store.create_realm("", "Zulip Dev", 0.0)
                users = [
                    await store.create_user(
                        realm.id, f"u{n}@z.com", f"u{n}@z.com", "U", Role.MEMBER, None, None, 0.0
                    )
                    for n in range(20)
                ]

                def good(_: PresenceTimes | None) -> PresenceWrite:
                    return PresenceWrite(PresenceTimes(10.0, 10.0), write=True, became_online=False)

                def bad(_: PresenceTimes | None) -> PresenceWrite:
                    raise ValueError("a broken rule")

                reports = [
                    PresenceReport(u.id, realm.id, bad if n == 7 else good, None)
                    for n, u in enumerate(users)
                ]
                results = await asyncio.gather(
                    *(store.record_presence(r) for r in reports), return_exceptions=True
                )
                assert isinstance(results[7], ValueError)
                written = [r for n, r in enumerate(results) if n != 7]
                ids = sorted(
                    r.row.last_update_id
                    for r in written
                    if not isinstance(r, BaseException) and r.row is not None
                )
                assert ids == list(range(1, 20))
                assert await store.get_presence(users[7].id) is None
                assert await store.realm_presence_sequence(realm.id) == 19
                state = await store.change_state()
                assert state.presence_sequences == {realm.id: 19}
            finally:
                await store.close()

        asyncio.run(run())


def test_processes_writing_one_realm_readers_miss_nothing(tmp_path: Path, database: str) -> None:
    """Three processes on one database; every writer reports once, through any process, while
    a reader on each process follows the cursor. A change missed would never come back (each
    writer writes once), so every reader must end up with every writer; and no cursor goes
    backwards."""
    env = {"PRESENCED_DATABASE_URL": database}
    writers_count, readers_count = 45, 3
    with ExitStack() as stack:
        servers = []
        for n in range(3):
            workdir = tmp_path / f"p{n}"
            workdir.mkdir()
            servers.append(stack.enter_context(live_server(workdir, env, init=n == 0)))
        people = make_people(database, writers_count + readers_count)
        readers, writers = people[:readers_count], people[readers_count:]
        done = threading.Event()
        # Per reader: user id -> when the reader first saw that user's change.
        seen: list[dict[str, float]] = [{} for _ in readers]
        acknowledged: dict[str, float] = {}
        failures: list[str] = []

        def follow(n: int) -> None:
            server, reader = servers[n % len(servers)], readers[n]
            cursor = -1
            while True:
                finishing = done.is_set()
                body = report(server, reader, last_update_id=cursor).json()
                new = body["presence_last_update_id"]
                if new < cursor:
                    failures.append(f"reader {n}: cursor went from {cursor} to {new}")
                for user_id, _ in body["presences"].items():
                    seen[n].setdefault(user_id, time.monotonic())
                cursor = max(cursor, new)
                if finishing and all(str(w.user_id) in seen[n] for w in writers):
                    return
                if finishing and time.monotonic() > deadline:
                    return
                time.sleep(0.01)

        deadline = float("inf")
        with ThreadPoolExecutor(max_workers=readers_count + 6) as pool:
            followers = [pool.submit(follow, n) for n in range(readers_count)]
            order = list(range(writers_count))
            random.Random(8).shuffle(order)

            def write(i: int) -> int:
                status = report(servers[i % len(servers)], writers[i]).status_code
                acknowledged[str(writers[i].user_id)] = time.monotonic()
                return status

            written = list(pool.map(write, order))
            assert written == [200] * writers_count
            deadline = time.monotonic() + 10  # "seen within a few seconds"
            done.set()
            for follower in followers:
                follower.result(timeout=60)
        assert not failures, failures
        for n in range(readers_count):
            missing = [w.email for w in writers if str(w.user_id) not in seen[n]]
            assert not missing, f"reader {n} never saw {missing}"
            late = {u: seen[n][u] - at for u, at in acknowledged.items() if seen[n][u] - at > 5}
            assert not late, f"reader {n} saw changes late: {late}"
        with psycopg.connect(database) as conn:
            row = conn.execute("SELECT last_update_id FROM presence_sequences").fetchone()
            assert row is not None and row[0] == writers_count + readers_count
        for server in servers:
            assert "Traceback" not in server.log()


def test_database_outage_gets_503_and_service_resumes(tmp_path: Path, database: str) -> None:
    """PostgreSQL unreachable: each request gets a JSON 503 within a few seconds, nothing is
    half-done, no traceback is logged; within 5 s of its return the server serves again, and
    every report acknowledged before the outage is in the database."""
    target = database.rsplit("/", 1)[0].rsplit(":", 1)
    host, port = target[0].rsplit("@", 1)[1], int(target[1])
    with tcp_proxy(host, port) as proxy:
        proxied = f"postgresql://postgres@127.0.0.1:{proxy.port}/{database.rsplit('/', 1)[1]}"
        env = {"PRESENCED_DATABASE_URL": proxied, "PRESENCED_DATABASE_TIMEOUT_SECS": "2"}
        with live_server(tmp_path, env) as server:
            people = make_people(database, 8)
            acknowledged = [p for p in people[:3] if report(server, p).status_code == 200]
            assert len(acknowledged) == 3
            embed = json.loads(server.cli("embed", "create", "--json"))["token"]

            proxy.cut()
            # The embed too answers the API's 503 (never a 500): a token it must look up, and
            # one it knows, whose page cannot be confirmed against the store either.
            for token in ("Zz" * 16, embed):
                response = httpx.get(
                    server.url + "/embed/presence.json", params={"token": token}, timeout=30
                )
                assert response.status_code == 503, response.text
                assert response.json()["code"] == "SERVICE_UNAVAILABLE"
            refused = []
            for person in people[3:6]:
                started = time.monotonic()
                response = report(server, person)
                assert time.monotonic() - started < 8
                assert response.status_code == 503, response.text
                body = response.json()
                assert body["result"] == "error"
                assert body["code"] == "SERVICE_UNAVAILABLE"
                assert "database" in body["msg"]
                refused.append(person)
            started = time.monotonic()
            response = httpx.get(
                server.url + "/api/v1/realm/presence", headers=people[0].headers(), timeout=30
            )
            assert response.status_code == 503 and time.monotonic() - started < 8

            proxy.restore()
            restored = time.monotonic()
            while report(server, people[6]).status_code != 200:
                assert time.monotonic() - restored < 5, "service did not resume within 5 s"
                time.sleep(0.1)
            assert report(server, people[7]).status_code == 200
            acknowledged += people[6:]

            with psycopg.connect(database) as conn:
                stored = {r[0] for r in conn.execute("SELECT user_id FROM user_presence")}
            assert stored == {p.user_id for p in acknowledged}
            listed = httpx.get(
                server.url + "/api/v1/realm/presence", headers=people[0].headers(), timeout=30
            ).json()["presences"]
            assert set(listed) == {p.email for p in acknowledged}
            shown = httpx.get(server.url + "/embed/presence.json", params={"token": embed})
            assert shown.status_code == 200, shown.text
            log = server.log()
            assert "Traceback" not in log, log
            assert "503 for POST /api/v1/users/me/presence" in log


def test_init_upgrades_an_old_postgres_schema(tmp_path: Path, database: str) -> None:
    """``presenced init`` on a database at the first revision brings it to the newest."""
    import sqlalchemy as sa
    from alembic import command

    from presenced.store import migrate

    engine = sa.create_engine(sqlalchemy_url(database))
    try:
        with engine.begin() as connection:
            config = migrate._config()
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
    finally:
        engine.dispose()

    async def current() -> bool:
        store = open_store(database)
        await store.open()
        try:
            return await store.schema_is_current()
        finally:
            await store.close()

    assert not asyncio.run(current())
    done = subprocess.run(
        [sys.executable, "-m", "presenced", "init"],
        env={**os.environ, "PRESENCED_DATABASE_URL": database, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "database schema is up to date" in done.stdout
    assert asyncio.run(current())
