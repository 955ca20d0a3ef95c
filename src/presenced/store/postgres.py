"""The shared backend: PostgreSQL through an asyncpg connection pool.

Statements are plain SQL; asyncpg prepares each once per connection and reuses it. Presence
reports are group-committed (see ``group_commit``): a batch is one transaction of a few
statements over arrays (``unnest``), whatever its size. Every write that moves a realm's
presence sequence first locks that realm's sequence row (in realm order, so two batches never
deadlock) and keeps it to the commit, as Zulip does: within a realm, ``last_update_id`` values
become visible in increasing order across every process sharing the database.

While the database is unreachable, calls fail within the timeout with StoreUnavailableError;
the pool replaces broken connections by itself once the database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import asyncpg

from presenced.store import migrate
from presenced.store.base import (
    NO_OUTCOME,
    ActivityExtension,
    ActivityInterval,
    ApiKeyInfo,
    BotType,
    ChangeState,
    Channel,
    EmbedToken,
    PresenceOutcome,
    PresenceReport,
    PresenceRow,
    PresenceTimes,
    Realm,
    RealmPresenceRow,
    RealmRead,
    Role,
    SavedChangeLog,
    SavedEventQueue,
    SavedEventQueues,
    StatusWrite,
    StoreBusyError,
    StoreError,
    StoreUnavailableError,
    User,
    UserStatus,
)
from presenced.store.group_commit import GroupCommitter
from presenced.store.rows import (
    CHANNEL_COLUMNS,
    EMBED_COLUMNS,
    KEY_COLUMNS,
    REALM_COLUMNS,
    STATUS_COLUMNS,
    USER_COLUMNS,
    channel_record,
    embed_token_columns,
    embed_token_record,
    key_record,
    prefixed,
    realm_record,
    user_record,
)

T = TypeVar("T")
Connection = Any
"""An ``asyncpg.Connection`` (asyncpg ships no type hints)."""

INT4 = range(-(2**31), 2**31)
"""Ids are PostgreSQL ``integer``s: anything outside cannot name a record."""

UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable; TimeoutError (connect, command) is one too
    asyncpg.PostgresConnectionError,  # class 08: the connection failed
    asyncpg.InterfaceError,  # the connection was closed under us
    asyncpg.exceptions.CannotConnectNowError,  # starting up or shutting down
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)


def asyncpg_dsn(database_url: str) -> str:
    """asyncpg takes libpq URLs (``postgres://`` or ``postgresql://``, sslmode and all)."""
    return database_url


async def _no_session_state(conn: Connection) -> None:
    """The pool's reset on release. asyncpg's default sends a query (unlock advisory locks,
    close cursors, UNLISTEN, RESET ALL) on every release: a round trip per store call for
    session state this store never creates."""


def sqlalchemy_url(database_url: str) -> str:
    """The same database for Alembic, through psycopg 3 (sync), libpq options kept."""
    return "postgresql+psycopg://" + database_url.split("://", 1)[1]


def _text_ok(*values: str) -> bool:
    """PostgreSQL text cannot hold NUL: such a name can match nothing."""
    return not any("\x00" in value for value in values)


class PostgresStore:
    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int = 8,
        timeout: float = 3.0,
        pool_timeout: float = 10.0,
    ) -> None:
        self.database_url = database_url
        self.pool_size = pool_size
        self.timeout = timeout
        self.pool_timeout = pool_timeout
        self._pool: Any = None
        self._reports: GroupCommitter[PresenceReport, PresenceOutcome] = GroupCommitter(
            self._commit_reports
        )

    # Lifecycle

    async def open(self) -> None:
        try:
            # No floor of open connections: asyncpg would re-open it in the background and log
            # a traceback for each failed try while the database is down. Connections open on
            # demand instead, and the first one here checks that the database is there.
            self._pool = await asyncpg.create_pool(
                asyncpg_dsn(self.database_url),
                min_size=0,
                max_size=self.pool_size,
                timeout=self.timeout,
                command_timeout=self.timeout,
                reset=_no_session_state,
            )
            async with self._pool.acquire(timeout=self.timeout):
                pass
        except BaseException as exc:
            if self._pool is not None:
                self._pool.terminate()
                self._pool = None
            if isinstance(exc, UNAVAILABLE):
                raise StoreUnavailableError(f"cannot connect to the database: {exc}") from None
            if isinstance(exc, asyncpg.PostgresError):  # no such database, bad password
                raise StoreError(f"cannot open the database: {exc}") from None
            raise

    async def close(self) -> None:
        await self._reports.drain()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), self.timeout)
            except UNAVAILABLE:  # TimeoutError included
                pool.terminate()

    async def migrate(self) -> None:
        await self._off_loop(partial(migrate.upgrade, sqlalchemy_url(self.database_url)))

    async def schema_is_current(self) -> bool:
        return await self._off_loop(partial(migrate.is_current, sqlalchemy_url(self.database_url)))

    async def _off_loop(self, fn: Callable[[], T]) -> T:
        """Alembic's synchronous work, in a thread; a database that is down fails cleanly."""
        import sqlalchemy.exc

        try:
            return await asyncio.to_thread(fn)
        except sqlalchemy.exc.OperationalError as exc:
            raise StoreUnavailableError(f"cannot reach the database: {exc.orig}") from None

    async def change_state(self) -> ChangeState:
        rows = await self._fetch(
            "SELECT d.version, s.realm_id, s.last_update_id FROM directory_version d "
            "LEFT JOIN presence_sequences s ON true WHERE d.id = 1"
        )
        sequences = {int(r[1]): int(r[2]) for r in rows if r[1] is not None}
        return ChangeState(int(rows[0][0]) if rows else 0, sequences)

    def may_have_changed(self) -> bool:
        """Always False: other processes announce their commits through the change feed."""
        return False

    # Plumbing

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        """A connection of the pool. Waiting for a free one is bounded by ``pool_timeout``
        (a burst larger than the pool queues), connecting and each statement by ``timeout``
        (the database is down or stuck)."""
        pool = self._pool
        if pool is None:
            raise StoreError("the store is not open")
        try:
            conn = await pool.acquire(timeout=self.pool_timeout)
        except TimeoutError:
            if pool.get_size() == self.pool_size and pool.get_idle_size() == 0:
                raise StoreBusyError(
                    f"no database connection was free within {self.pool_timeout:g} s: all "
                    f"{self.pool_size} of the pool (PRESENCED_DATABASE_POOL_SIZE) stayed busy"
                ) from None
            raise StoreUnavailableError(
                f"no database connection within {self.pool_timeout:g} s"
            ) from None
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(f"cannot connect to the database: {exc}") from None
        try:
            yield conn
        except StoreError:
            raise
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
            # A duplicate, or a value the schema cannot hold (too long, NUL, out of range).
            raise StoreError(str(exc)) from None
        except TimeoutError:
            raise StoreUnavailableError(
                f"the database did not answer within {self.timeout:g} s"
            ) from None
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(f"the database is unavailable: {exc}") from None
        finally:
            await pool.release(conn)

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._connection() as conn:
            return list(await conn.fetch(sql, *args))

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        async with self._connection() as conn:
            return await conn.fetchrow(sql, *args)

    async def _write(
        self, fn: Callable[[Connection], Awaitable[T]], *, directory: bool = True
    ) -> T:
        """Run ``fn`` in one transaction; a ``directory`` change also bumps the directory
        version, in the same transaction."""
        async with self._connection() as conn, conn.transaction():
            result = await fn(conn)
            if directory:
                await conn.execute(
                    "UPDATE directory_version SET version = version + 1 WHERE id = 1"
                )
            return result

    # Realms

    async def create_realm(self, subdomain: str, name: str, now: float) -> Realm:
        async def create(conn: Connection) -> Realm:
            if await conn.fetchval("SELECT 1 FROM realms WHERE subdomain = $1", subdomain):
                raise StoreError(f"a realm with subdomain {subdomain!r} already exists")
            realm = realm_record(
                await conn.fetchrow(
                    "INSERT INTO realms (subdomain, name, deactivated, presence_disabled, "
                    "date_created) VALUES ($1, $2, false, false, $3) RETURNING " + REALM_COLUMNS,
                    subdomain,
                    name,
                    now,
                )
            )
            await conn.execute(
                "INSERT INTO presence_sequences (realm_id, last_update_id) VALUES ($1, 0)",
                realm.id,
            )
            return realm

        return await self._write(create)

    async def get_realm_by_subdomain(self, subdomain: str) -> Realm | None:
        if not _text_ok(subdomain):
            return None
        row = await self._fetchrow(
            f"SELECT {REALM_COLUMNS} FROM realms WHERE subdomain = $1", subdomain
        )
        return None if row is None else realm_record(row)

    async def get_realm(self, realm_id: int) -> Realm | None:
        if realm_id not in INT4:
            return None
        row = await self._fetchrow(f"SELECT {REALM_COLUMNS} FROM realms WHERE id = $1", realm_id)
        return None if row is None else realm_record(row)

    async def list_realms(self) -> list[Realm]:
        return [
            realm_record(r)
            for r in await self._fetch(f"SELECT {REALM_COLUMNS} FROM realms ORDER BY id")
        ]

    async def _update_realm(self, realm_id: int, column: str, value: object) -> Realm:
        async def update(conn: Connection) -> Realm:
            row = await conn.fetchrow(
                f"UPDATE realms SET {column} = $1 WHERE id = $2 RETURNING {REALM_COLUMNS}",
                value,
                realm_id,
            )
            if row is None:
                raise StoreError(f"no realm with id {realm_id}")
            return realm_record(row)

        return await self._write(update)

    async def set_realm_deactivated(self, realm_id: int, deactivated: bool) -> Realm:
        return await self._update_realm(realm_id, "deactivated", deactivated)

    async def set_realm_presence_disabled(self, realm_id: int, disabled: bool) -> Realm:
        return await self._update_realm(realm_id, "presence_disabled", disabled)

    async def set_realm_access_group(self, realm_id: int, group: str) -> Realm:
        return await self._update_realm(realm_id, "can_access_all_users_group", group)

    async def ping(self) -> None:
        await self._fetchrow("SELECT 1")

    async def directory_version(self) -> int:
        row = await self._fetchrow("SELECT version FROM directory_version WHERE id = 1")
        return int(row[0])

    # Channels

    async def create_channel(
        self, realm_id: int, name: str, description: str, now: float
    ) -> Channel:
        async def create(conn: Connection) -> Channel:
            clash = await conn.fetchval(
                "SELECT 1 FROM channels WHERE realm_id = $1 AND lower(name) = lower($2)",
                realm_id,
                name,
            )
            if clash:
                raise StoreError(f"a channel named {name!r} already exists")
            row = await conn.fetchrow(
                "INSERT INTO channels (realm_id, name, description, date_created) "
                f"VALUES ($1, $2, $3, $4) RETURNING {CHANNEL_COLUMNS}",
                realm_id,
                name,
                description,
                now,
            )
            return channel_record(row)

        return await self._write(create)

    async def get_channel_by_name(self, realm_id: int, name: str) -> Channel | None:
        if not _text_ok(name):
            return None
        row = await self._fetchrow(
            f"SELECT {CHANNEL_COLUMNS} FROM channels "
            "WHERE realm_id = $1 AND lower(name) = lower($2)",
            realm_id,
            name,
        )
        return None if row is None else channel_record(row)

    async def list_channels(self, realm_id: int) -> list[Channel]:
        rows = await self._fetch(
            f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE realm_id = $1 ORDER BY id", realm_id
        )
        return [channel_record(r) for r in rows]

    async def subscribe(self, channel_id: int, user_id: int) -> bool:
        async def add(conn: Connection) -> bool:
            done = await conn.fetchval(
                "INSERT INTO subscriptions (channel_id, user_id) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING RETURNING 1",
                channel_id,
                user_id,
            )
            return done is not None

        return await self._write(add)

    async def unsubscribe(self, channel_id: int, user_id: int) -> bool:
        async def remove(conn: Connection) -> bool:
            done = await conn.fetchval(
                "DELETE FROM subscriptions WHERE channel_id = $1 AND user_id = $2 RETURNING 1",
                channel_id,
                user_id,
            )
            return done is not None

        return await self._write(remove)

    async def realm_subscriptions(self, realm_id: int) -> list[tuple[int, int]]:
        rows = await self._fetch(
            "SELECT s.channel_id, s.user_id FROM subscriptions s "
            "JOIN channels c ON c.id = s.channel_id WHERE c.realm_id = $1 "
            "ORDER BY s.channel_id, s.user_id",
            realm_id,
        )
        return [(channel_id, user_id) for channel_id, user_id in rows]

    # User status

    async def get_user_status(self, user_id: int) -> UserStatus | None:
        if user_id not in INT4:
            return None
        row = await self._fetchrow(
            f"SELECT {STATUS_COLUMNS} FROM user_status WHERE user_id = $1", user_id
        )
        return None if row is None else UserStatus(*row)

    async def set_user_status(
        self,
        status: UserStatus | None,
        now: float,
        presence: tuple[bool, PresenceReport] | None = None,
    ) -> StatusWrite:
        async def upsert(conn: Connection) -> StatusWrite:
            toggled = None
            if presence is not None:
                enabled, report = presence
                toggled = await _toggle_presence(conn, report.user_id, enabled, report)
            if status is None:
                return StatusWrite(None, toggled)
            await conn.execute(
                "INSERT INTO user_status (user_id, status_text, emoji_name, emoji_code, "
                "reaction_type, timestamp) VALUES ($1, $2, $3, $4, $5, $6) "
                "ON CONFLICT (user_id) DO UPDATE SET status_text = excluded.status_text, "
                "emoji_name = excluded.emoji_name, emoji_code = excluded.emoji_code, "
                "reaction_type = excluded.reaction_type, timestamp = excluded.timestamp",
                status.user_id,
                status.status_text,
                status.emoji_name,
                status.emoji_code,
                status.reaction_type,
                now,
            )
            return StatusWrite(status, toggled)

        return await self._write(upsert, directory=presence is not None)

    async def realm_user_statuses(self, realm_id: int) -> list[UserStatus]:
        rows = await self._fetch(
            f"SELECT {prefixed(STATUS_COLUMNS, 's')} "
            "FROM user_status s JOIN users u ON u.id = s.user_id WHERE u.realm_id = $1 "
            "ORDER BY s.user_id",
            realm_id,
        )
        return [UserStatus(*row) for row in rows]

    # Users

    async def create_user(
        self,
        realm_id: int,
        email: str,
        delivery_email: str,
        full_name: str,
        role: Role,
        bot_type: BotType | None,
        bot_owner_id: int | None,
        now: float,
    ) -> User:
        async def create(conn: Connection) -> User:
            clash = await conn.fetchval(
                "SELECT 1 FROM users WHERE realm_id = $1 AND "
                "(lower(email) = lower($2) OR lower(delivery_email) = lower($3))",
                realm_id,
                email,
                delivery_email,
            )
            if clash:
                raise StoreError(f"a user with email {email!r} already exists in this realm")
            row = await conn.fetchrow(
                "INSERT INTO users (realm_id, email, delivery_email, full_name, role, bot_type, "
                "bot_owner_id, is_active, date_joined, presence_enabled, timezone) "
                f"VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8, true, '') RETURNING {USER_COLUMNS}",
                realm_id,
                email,
                delivery_email,
                full_name,
                int(role),
                None if bot_type is None else int(bot_type),
                bot_owner_id,
                now,
            )
            return user_record(row)

        return await self._write(create)

    async def get_user(self, user_id: int) -> User | None:
        if user_id not in INT4:
            return None
        row = await self._fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)
        return None if row is None else user_record(row)

    async def get_user_by_email(self, realm_id: int, email: str) -> User | None:
        if not _text_ok(email):
            return None
        row = await self._fetchrow(
            f"SELECT {USER_COLUMNS} FROM users WHERE realm_id = $1 AND lower(email) = lower($2)",
            realm_id,
            email,
        )
        return None if row is None else user_record(row)

    async def get_user_by_delivery_email(self, realm_id: int, email: str) -> User | None:
        if not _text_ok(email):
            return None
        row = await self._fetchrow(
            f"SELECT {USER_COLUMNS} FROM users "
            "WHERE realm_id = $1 AND lower(delivery_email) = lower($2)",
            realm_id,
            email,
        )
        return None if row is None else user_record(row)

    async def list_users(self, realm_id: int) -> list[User]:
        rows = await self._fetch(
            f"SELECT {USER_COLUMNS} FROM users WHERE realm_id = $1 ORDER BY id", realm_id
        )
        return [user_record(r) for r in rows]

    async def set_user_active(self, user_id: int, active: bool) -> User:
        async def update(conn: Connection) -> User:
            row = await conn.fetchrow(
                f"UPDATE users SET is_active = $1 WHERE id = $2 RETURNING {USER_COLUMNS}",
                active,
                user_id,
            )
            if row is None:
                raise StoreError(f"no user with id {user_id}")
            return user_record(row)

        return await self._write(update)

    async def set_presence_enabled(
        self, user_id: int, enabled: bool, report: PresenceReport | None = None
    ) -> tuple[User, PresenceOutcome]:
        return await self._write(lambda conn: _toggle_presence(conn, user_id, enabled, report))

    # API keys

    async def create_api_key(
        self, user_id: int, key_hash: str, prefix: str, label: str, now: float
    ) -> ApiKeyInfo:
        async def create(conn: Connection) -> ApiKeyInfo:
            row = await conn.fetchrow(
                "INSERT INTO api_keys (user_id, key_hash, prefix, label, created_at) "
                f"VALUES ($1, $2, $3, $4, $5) RETURNING {KEY_COLUMNS}",
                user_id,
                key_hash,
                prefix,
                label,
                now,
            )
            return key_record(row)

        return await self._write(create)

    async def list_api_keys(self, user_id: int) -> list[ApiKeyInfo]:
        rows = await self._fetch(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY id", user_id
        )
        return [key_record(r) for r in rows]

    async def revoke_api_key(self, user_id: int, key_id: int) -> bool:
        if key_id not in INT4:
            return False

        async def revoke(conn: Connection) -> bool:
            done = await conn.fetchval(
                "DELETE FROM api_keys WHERE id = $1 AND user_id = $2 RETURNING 1", key_id, user_id
            )
            return done is not None

        return await self._write(revoke)

    async def user_for_key_hash(self, key_hash: str) -> tuple[User, Realm] | None:
        if not _text_ok(key_hash):
            return None
        row = await self._fetchrow(
            f"SELECT {prefixed(USER_COLUMNS, 'u')}, {prefixed(REALM_COLUMNS, 'r')} "
            "FROM api_keys k JOIN users u ON u.id = k.user_id JOIN realms r ON r.id = u.realm_id "
            "WHERE k.key_hash = $1",
            key_hash,
        )
        if row is None:
            return None
        return user_record(row[:12]), realm_record(row[12:])

    # Embed tokens

    async def create_embed_token(
        self,
        realm_id: int,
        token_hash: str,
        prefix: str,
        label: str,
        user_ids: frozenset[int] | None,
        origins: tuple[str, ...],
        now: float,
    ) -> EmbedToken:
        users, allowed = embed_token_columns(user_ids, origins)

        async def create(conn: Connection) -> EmbedToken:
            row = await conn.fetchrow(
                "INSERT INTO embed_tokens "
                "(realm_id, token_hash, prefix, label, user_ids, origins, created_at) "
                f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {EMBED_COLUMNS}",
                realm_id,
                token_hash,
                prefix,
                label,
                users,
                allowed,
                now,
            )
            return embed_token_record(row)

        return await self._write(create)

    async def list_embed_tokens(self, realm_id: int | None = None) -> list[EmbedToken]:
        if realm_id is None:
            rows = await self._fetch(f"SELECT {EMBED_COLUMNS} FROM embed_tokens ORDER BY id")
        else:
            rows = await self._fetch(
                f"SELECT {EMBED_COLUMNS} FROM embed_tokens WHERE realm_id = $1 ORDER BY id",
                realm_id,
            )
        return [embed_token_record(r) for r in rows]

    async def revoke_embed_token(self, token_id: int) -> bool:
        if token_id not in INT4:
            return False

        async def revoke(conn: Connection) -> bool:
            done = await conn.fetchval(
                "DELETE FROM embed_tokens WHERE id = $1 RETURNING 1", token_id
            )
            return done is not None

        return await self._write(revoke)

    async def embed_token_by_hash(self, token_hash: str) -> EmbedToken | None:
        if not _text_ok(token_hash):
            return None
        row = await self._fetchrow(
            f"SELECT {EMBED_COLUMNS} FROM embed_tokens WHERE token_hash = $1", token_hash
        )
        return None if row is None else embed_token_record(row)

    # Presence

    async def record_presence(self, report: PresenceReport) -> PresenceOutcome:
        return await self._reports.submit(report)

    async def _commit_reports(self, reports: list[PresenceReport]) -> list[PresenceOutcome]:
        async with self._connection() as conn, conn.transaction():
            return await _apply_reports(conn, reports)

    async def get_presence(self, user_id: int) -> PresenceRow | None:
        if user_id not in INT4:
            return None
        row = await self._fetchrow(
            "SELECT user_id, last_active_time, last_connected_time, last_update_id "
            "FROM user_presence WHERE user_id = $1",
            user_id,
        )
        return None if row is None else PresenceRow(*row)

    async def read_realm_presence(self, query: RealmRead) -> Sequence[RealmPresenceRow]:
        sql = (
            "SELECT p.user_id, u.email, u.date_joined, p.last_active_time, "
            "p.last_connected_time, p.last_update_id "
            "FROM user_presence p JOIN users u ON u.id = p.user_id "
            "WHERE p.realm_id = $1 AND u.is_active AND u.bot_type IS NULL"
        )
        params: list[Any] = [query.realm_id]
        if query.after_update_id is not None:
            params.append(query.after_update_id)
            sql += f" AND p.last_update_id > ${len(params)}"
        if query.connected_since is not None:
            params.append(query.connected_since)
            sql += f" AND p.last_connected_time >= ${len(params)}"
        if query.only_user_ids is not None:
            params.append([i for i in query.only_user_ids if i in INT4])
            sql += f" AND p.user_id = ANY(${len(params)}::int[])"
        sql += " ORDER BY p.last_update_id"
        return [RealmPresenceRow(*row) for row in await self._fetch(sql, *params)]

    async def realm_presence_sequence(self, realm_id: int) -> int:
        row = await self._fetchrow(
            "SELECT last_update_id FROM presence_sequences WHERE realm_id = $1", realm_id
        )
        return 0 if row is None else int(row[0])

    async def activity_intervals(self, user_id: int) -> list[ActivityInterval]:
        rows = await self._fetch(
            "SELECT start_time, end_time FROM user_activity_intervals WHERE user_id = $1 "
            "ORDER BY start_time",
            user_id,
        )
        return [ActivityInterval(start, end) for start, end in rows]

    # Saved event queues

    async def save_event_queues(self, saved: SavedEventQueues) -> None:
        async def save(conn: Connection) -> None:
            await conn.execute("DELETE FROM saved_event_queues")
            await conn.execute("DELETE FROM saved_change_logs")
            if saved.queues:
                await conn.executemany(
                    "INSERT INTO saved_event_queues (queue_id, realm_id, user_id, state) "
                    "VALUES ($1, $2, $3, $4)",
                    [(q.queue_id, q.realm_id, q.user_id, q.state) for q in saved.queues],
                )
            if saved.logs:
                await conn.executemany(
                    "INSERT INTO saved_change_logs (realm_id, changes) VALUES ($1, $2)",
                    [(log.realm_id, log.changes) for log in saved.logs],
                )

        await self._write(save, directory=False)

    async def take_event_queues(self) -> SavedEventQueues:
        async def take(conn: Connection) -> SavedEventQueues:
            queues = [
                SavedEventQueue(r[0], r[1], r[2], bytes(r[3]))
                for r in await conn.fetch(
                    "DELETE FROM saved_event_queues RETURNING queue_id, realm_id, user_id, state"
                )
            ]
            logs = [
                SavedChangeLog(r[0], bytes(r[1]))
                for r in await conn.fetch(
                    "DELETE FROM saved_change_logs RETURNING realm_id, changes"
                )
            ]
            return SavedEventQueues(queues, logs)

        return await self._write(take, directory=False)

    async def latest_activity_interval(self, user_id: int) -> ActivityInterval | None:
        row = await self._fetchrow(
            "SELECT start_time, end_time FROM user_activity_intervals WHERE user_id = $1 "
            "ORDER BY end_time DESC LIMIT 1",
            user_id,
        )
        return None if row is None else ActivityInterval(row[0], row[1])

    async def extend_activity_intervals(self, extensions: Sequence[ActivityExtension]) -> None:
        async def extend(conn: Connection) -> None:
            await conn.execute(
                "UPDATE user_activity_intervals i SET "
                "start_time = LEAST(i.start_time, e.start_time), "
                "end_time = GREATEST(i.end_time, e.end_time) "
                "FROM unnest($1::int[], $2::float8[], $3::float8[], $4::float8[]) "
                "AS e(user_id, stored_start, start_time, end_time) "
                "WHERE i.user_id = e.user_id AND i.start_time = e.stored_start",
                [e.user_id for e in extensions],
                [e.stored_start for e in extensions],
                [e.start for e in extensions],
                [e.end for e in extensions],
            )

        await self._write(extend, directory=False)


async def _toggle_presence(
    conn: Connection, user_id: int, enabled: bool, report: PresenceReport | None
) -> tuple[User, PresenceOutcome]:
    row = await conn.fetchrow(
        f"UPDATE users SET presence_enabled = $1 WHERE id = $2 RETURNING {USER_COLUMNS}",
        enabled,
        user_id,
    )
    if row is None:
        raise StoreError(f"no user with id {user_id}")
    if report is None:
        return user_record(row), NO_OUTCOME
    (outcome,) = await _apply_reports(conn, [report])
    return user_record(row), outcome


@dataclass
class _Intervals:
    """One user's activity intervals as a batch changes them."""

    latest_id: int | None
    latest: ActivityInterval | None
    updates: dict[int, ActivityInterval] = field(default_factory=dict)
    inserts: list[ActivityInterval] = field(default_factory=list)


async def _apply_reports(conn: Connection, reports: list[PresenceReport]) -> list[PresenceOutcome]:
    """Apply reports in order, inside the caller's transaction, in a fixed few statements.

    The rules run here, in Python, against the rows as they stand under the realm locks; a
    user reported twice in one batch sees the first report's result.
    """
    realm_ids = sorted({r.realm_id for r in reports})
    locked = await conn.fetch(
        "SELECT realm_id, last_update_id FROM presence_sequences "
        "WHERE realm_id = ANY($1::int[]) ORDER BY realm_id FOR UPDATE",
        realm_ids,
    )
    sequences: dict[int, int] = {r[0]: r[1] for r in locked}
    moved: set[int] = set()
    user_ids = sorted({r.user_id for r in reports if r.presence_rule is not None})
    current: dict[int, PresenceRow] = {}
    if user_ids:
        for row in await conn.fetch(
            "SELECT user_id, last_active_time, last_connected_time, last_update_id "
            "FROM user_presence WHERE user_id = ANY($1::int[])",
            user_ids,
        ):
            current[row[0]] = PresenceRow(*row)
    interval_users = sorted({r.user_id for r in reports if r.interval_rule is not None})
    intervals: dict[int, _Intervals] = {u: _Intervals(None, None) for u in interval_users}
    if interval_users:
        for row in await conn.fetch(
            "SELECT DISTINCT ON (user_id) user_id, id, start_time, end_time "
            "FROM user_activity_intervals WHERE user_id = ANY($1::int[]) "
            "ORDER BY user_id, end_time DESC",
            interval_users,
        ):
            intervals[row[0]] = _Intervals(row[1], ActivityInterval(row[2], row[3]))

    upserts: dict[int, tuple[int, PresenceRow]] = {}
    outcomes: list[PresenceOutcome] = []
    for report in reports:
        outcome = NO_OUTCOME
        if report.presence_rule is not None:
            row = current.get(report.user_id)
            times = (
                None
                if row is None
                else PresenceTimes(row.last_active_time, row.last_connected_time)
            )
            decision = report.presence_rule(times)
            if decision.write:
                if report.realm_id not in sequences:
                    raise StoreError(f"no presence sequence for realm {report.realm_id}")
                sequences[report.realm_id] += 1
                moved.add(report.realm_id)
                new = PresenceRow(
                    report.user_id,
                    decision.times.last_active_time,
                    decision.times.last_connected_time,
                    sequences[report.realm_id],
                )
                current[report.user_id] = new
                upserts[report.user_id] = (report.realm_id, new)
                outcome = PresenceOutcome(
                    created=row is None,
                    written=True,
                    became_online=decision.became_online,
                    row=new,
                )
            elif row is not None:
                outcome = PresenceOutcome(
                    created=False, written=False, became_online=False, row=row
                )
        if report.interval_rule is not None:
            state = intervals[report.user_id]
            extend, interval = report.interval_rule(state.latest)
            if extend and state.latest is not None:
                if state.inserts:
                    state.inserts[-1] = interval
                else:
                    assert state.latest_id is not None
                    state.updates[state.latest_id] = interval
            else:
                state.inserts.append(interval)
            state.latest = interval
        outcomes.append(outcome)

    if upserts:
        # One statement: the realms' new sequence values (every write moved one) and the rows.
        realms = sorted(moved)
        rows = list(upserts.values())
        await conn.execute(
            "WITH sequences AS (UPDATE presence_sequences s "
            "SET last_update_id = v.last_update_id "
            "FROM unnest($6::int[], $7::bigint[]) AS v(realm_id, last_update_id) "
            "WHERE s.realm_id = v.realm_id) "
            "INSERT INTO user_presence (user_id, realm_id, last_active_time, "
            "last_connected_time, last_update_id) "
            "SELECT * FROM unnest($1::int[], $2::int[], $3::float8[], $4::float8[], $5::bigint[]) "
            "ON CONFLICT (user_id) DO UPDATE SET "
            "last_active_time = excluded.last_active_time, "
            "last_connected_time = excluded.last_connected_time, "
            "last_update_id = excluded.last_update_id",
            [row.user_id for _, row in rows],
            [realm_id for realm_id, _ in rows],
            [row.last_active_time for _, row in rows],
            [row.last_connected_time for _, row in rows],
            [row.last_update_id for _, row in rows],
            realms,
            [sequences[r] for r in realms],
        )
    updates = [(i, iv) for state in intervals.values() for i, iv in state.updates.items()]
    if updates:
        await conn.execute(
            "UPDATE user_activity_intervals i SET start_time = v.start_time, "
            "end_time = v.end_time "
            "FROM unnest($1::int[], $2::float8[], $3::float8[]) AS v(id, start_time, end_time) "
            "WHERE i.id = v.id",
            [i for i, _ in updates],
            [iv.start for _, iv in updates],
            [iv.end for _, iv in updates],
        )
    inserts = [(u, iv) for u, state in intervals.items() for iv in state.inserts]
    if inserts:
        await conn.execute(
            "INSERT INTO user_activity_intervals (user_id, start_time, end_time) "
            "SELECT * FROM unnest($1::int[], $2::float8[], $3::float8[])",
            [u for u, _ in inserts],
            [iv.start for _, iv in inserts],
            [iv.end for _, iv in inserts],
        )
    return outcomes
