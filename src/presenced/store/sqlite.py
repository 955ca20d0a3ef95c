"""The embedded backend: one SQLite file in WAL mode.

Reads run on the event loop's own connection (WAL readers never wait for the writer). Every
write runs on one writer thread with its own connection. Presence reports are group-committed:
while one batch commits, new reports queue up and go together in the next transaction, and each
report is acknowledged only once its transaction has committed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

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
    StoreError,
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
    realm_record,
    user_record,
)

T = TypeVar("T")


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class SQLiteStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._reader: sqlite3.Connection | None = None
        self._writer_conn: sqlite3.Connection | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._reports: GroupCommitter[PresenceReport, PresenceOutcome] = GroupCommitter(
            self._commit_reports
        )
        self._data_version: int | None = None

    # Lifecycle

    async def open(self) -> None:
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="presenced-writer")
        self._writer_conn = await self._in_writer(lambda: _connect(self.path))
        self._reader = _connect(self.path)

    async def close(self) -> None:
        await self._reports.drain()
        if self._writer is not None:
            writer_conn = self._writer_conn
            if writer_conn is not None:
                await self._in_writer(writer_conn.close)
            self._writer.shutdown(wait=True)
            self._writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    async def migrate(self) -> None:
        await self._in_writer(lambda: migrate.upgrade(self._sqlalchemy_url))

    async def schema_is_current(self) -> bool:
        return await self._in_writer(lambda: migrate.is_current(self._sqlalchemy_url))

    async def ping(self) -> None:
        """A read on the event loop's connection, then one through the writer thread (a stuck
        writer means reports cannot be acknowledged)."""
        self._read("SELECT version FROM directory_version WHERE id = 1")
        conn = self._writer_conn
        if conn is None:
            raise StoreError("the store is not open")
        await self._in_writer(
            lambda: conn.execute("SELECT version FROM directory_version WHERE id = 1").fetchall()
        )

    @property
    def _sqlalchemy_url(self) -> str:
        return "sqlite:///" + self.path

    # Plumbing

    async def _in_writer(self, fn: Callable[[], T]) -> T:
        if self._writer is None:
            raise StoreError("the store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn)

    async def _write(self, fn: Callable[[sqlite3.Connection], T], *, directory: bool = True) -> T:
        """Run ``fn`` in one immediate transaction on the writer thread; a ``directory``
        change also bumps the directory version, in the same transaction."""

        def run() -> T:
            conn = self._writer_conn
            assert conn is not None
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                if directory:
                    conn.execute("UPDATE directory_version SET version = version + 1 WHERE id = 1")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        try:
            return await self._in_writer(run)
        except sqlite3.IntegrityError as exc:
            raise StoreError(str(exc)) from None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._reader is None:
            raise StoreError("the store is not open")
        return self._reader.execute(sql, params).fetchall()

    # Realms

    async def create_realm(self, subdomain: str, name: str, now: float) -> Realm:
        def create(conn: sqlite3.Connection) -> Realm:
            exists = conn.execute("SELECT 1 FROM realms WHERE subdomain = ?", (subdomain,))
            if exists.fetchone():
                raise StoreError(f"a realm with subdomain {subdomain!r} already exists")
            cur = conn.execute(
                "INSERT INTO realms (subdomain, name, deactivated, presence_disabled, "
                "date_created) VALUES (?, ?, 0, 0, ?) RETURNING " + REALM_COLUMNS,
                (subdomain, name, now),
            )
            realm = realm_record(cur.fetchone())
            conn.execute(
                "INSERT INTO presence_sequences (realm_id, last_update_id) VALUES (?, 0)",
                (realm.id,),
            )
            return realm

        return await self._write(create)

    async def get_realm_by_subdomain(self, subdomain: str) -> Realm | None:
        rows = self._read(f"SELECT {REALM_COLUMNS} FROM realms WHERE subdomain = ?", (subdomain,))
        return realm_record(rows[0]) if rows else None

    async def get_realm(self, realm_id: int) -> Realm | None:
        rows = self._read(f"SELECT {REALM_COLUMNS} FROM realms WHERE id = ?", (realm_id,))
        return realm_record(rows[0]) if rows else None

    async def list_realms(self) -> list[Realm]:
        return [
            realm_record(r) for r in self._read(f"SELECT {REALM_COLUMNS} FROM realms ORDER BY id")
        ]

    async def _update_realm(self, realm_id: int, column: str, value: bool) -> Realm:
        def update(conn: sqlite3.Connection) -> Realm:
            row = conn.execute(
                f"UPDATE realms SET {column} = ? WHERE id = ? RETURNING {REALM_COLUMNS}",
                (int(value), realm_id),
            ).fetchone()
            if row is None:
                raise StoreError(f"no realm with id {realm_id}")
            return realm_record(row)

        return await self._write(update)

    async def set_realm_deactivated(self, realm_id: int, deactivated: bool) -> Realm:
        return await self._update_realm(realm_id, "deactivated", deactivated)

    async def set_realm_presence_disabled(self, realm_id: int, disabled: bool) -> Realm:
        return await self._update_realm(realm_id, "presence_disabled", disabled)

    async def set_realm_access_group(self, realm_id: int, group: str) -> Realm:
        def update(conn: sqlite3.Connection) -> Realm:
            row = conn.execute(
                "UPDATE realms SET can_access_all_users_group = ? WHERE id = ? "
                f"RETURNING {REALM_COLUMNS}",
                (group, realm_id),
            ).fetchone()
            if row is None:
                raise StoreError(f"no realm with id {realm_id}")
            return realm_record(row)

        return await self._write(update)

    async def directory_version(self) -> int:
        return int(self._read("SELECT version FROM directory_version WHERE id = 1")[0][0])

    async def change_state(self) -> ChangeState:
        rows = self._read(
            "SELECT -1, version FROM directory_version WHERE id = 1 "
            "UNION ALL SELECT realm_id, last_update_id FROM presence_sequences"
        )
        version = next(value for key, value in rows if key == -1)
        return ChangeState(int(version), {key: int(value) for key, value in rows if key != -1})

    def may_have_changed(self) -> bool:
        """SQLite's ``data_version`` moves whenever another connection (this process's writer
        thread, another server, the CLI) commits to the file; reading it costs about 2 us."""
        if self._reader is None:
            return True
        version = self._reader.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return False
        self._data_version = version
        return True

    # Channels

    async def create_channel(
        self, realm_id: int, name: str, description: str, now: float
    ) -> Channel:
        def create(conn: sqlite3.Connection) -> Channel:
            clash = conn.execute(
                "SELECT 1 FROM channels WHERE realm_id = ? AND lower(name) = lower(?)",
                (realm_id, name),
            ).fetchone()
            if clash:
                raise StoreError(f"a channel named {name!r} already exists")
            row = conn.execute(
                "INSERT INTO channels (realm_id, name, description, date_created) "
                f"VALUES (?, ?, ?, ?) RETURNING {CHANNEL_COLUMNS}",
                (realm_id, name, description, now),
            ).fetchone()
            return channel_record(row)

        return await self._write(create)

    async def get_channel_by_name(self, realm_id: int, name: str) -> Channel | None:
        rows = self._read(
            f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE realm_id = ? AND lower(name) = lower(?)",
            (realm_id, name),
        )
        return channel_record(rows[0]) if rows else None

    async def list_channels(self, realm_id: int) -> list[Channel]:
        rows = self._read(
            f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE realm_id = ? ORDER BY id", (realm_id,)
        )
        return [channel_record(r) for r in rows]

    async def subscribe(self, channel_id: int, user_id: int) -> bool:
        def add(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT INTO subscriptions (channel_id, user_id) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                (channel_id, user_id),
            )
            return cur.rowcount > 0

        return await self._write(add)

    async def unsubscribe(self, channel_id: int, user_id: int) -> bool:
        def remove(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM subscriptions WHERE channel_id = ? AND user_id = ?",
                (channel_id, user_id),
            )
            return cur.rowcount > 0

        return await self._write(remove)

    async def realm_subscriptions(self, realm_id: int) -> list[tuple[int, int]]:
        rows = self._read(
            "SELECT s.channel_id, s.user_id FROM subscriptions s "
            "JOIN channels c ON c.id = s.channel_id WHERE c.realm_id = ? "
            "ORDER BY s.channel_id, s.user_id",
            (realm_id,),
        )
        return [(channel_id, user_id) for channel_id, user_id in rows]

    # User status

    async def get_user_status(self, user_id: int) -> UserStatus | None:
        rows = self._read(f"SELECT {STATUS_COLUMNS} FROM user_status WHERE user_id = ?", (user_id,))
        return UserStatus(*rows[0]) if rows else None

    async def set_user_status(
        self,
        status: UserStatus | None,
        now: float,
        presence: tuple[bool, PresenceReport] | None = None,
    ) -> StatusWrite:
        def upsert(conn: sqlite3.Connection) -> StatusWrite:
            toggled = None
            if presence is not None:
                enabled, report = presence
                toggled = _toggle_presence(report.user_id, enabled, report, conn)
            if status is None:
                return StatusWrite(None, toggled)
            conn.execute(
                "INSERT INTO user_status (user_id, status_text, emoji_name, emoji_code, "
                "reaction_type, timestamp) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET status_text = excluded.status_text, "
                "emoji_name = excluded.emoji_name, emoji_code = excluded.emoji_code, "
                "reaction_type = excluded.reaction_type, timestamp = excluded.timestamp",
                (
                    status.user_id,
                    status.status_text,
                    status.emoji_name,
                    status.emoji_code,
                    status.reaction_type,
                    now,
                ),
            )
            return StatusWrite(status, toggled)

        # The toggle is a user setting: the directory version moves with it.
        return await self._write(upsert, directory=presence is not None)

    async def realm_user_statuses(self, realm_id: int) -> list[UserStatus]:
        rows = self._read(
            f"SELECT {', '.join('s.' + c.strip() for c in STATUS_COLUMNS.split(','))} "
            "FROM user_status s JOIN users u ON u.id = s.user_id WHERE u.realm_id = ? "
            "ORDER BY s.user_id",
            (realm_id,),
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
        def create(conn: sqlite3.Connection) -> User:
            clash = conn.execute(
                "SELECT 1 FROM users WHERE realm_id = ? AND "
                "(lower(email) = lower(?) OR lower(delivery_email) = lower(?))",
                (realm_id, email, delivery_email),
            ).fetchone()
            if clash:
                raise StoreError(f"a user with email {email!r} already exists in this realm")
            row = conn.execute(
                "INSERT INTO users (realm_id, email, delivery_email, full_name, role, bot_type, "
                "bot_owner_id, is_active, date_joined, presence_enabled, timezone) "
                f"VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, 1, '') RETURNING {USER_COLUMNS}",
                (
                    realm_id,
                    email,
                    delivery_email,
                    full_name,
                    int(role),
                    None if bot_type is None else int(bot_type),
                    bot_owner_id,
                    now,
                ),
            ).fetchone()
            return user_record(row)

        return await self._write(create)

    async def get_user(self, user_id: int) -> User | None:
        if not -(2**63) <= user_id < 2**63:
            return None
        rows = self._read(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return user_record(rows[0]) if rows else None

    async def get_user_by_email(self, realm_id: int, email: str) -> User | None:
        rows = self._read(
            f"SELECT {USER_COLUMNS} FROM users WHERE realm_id = ? AND lower(email) = lower(?)",
            (realm_id, email),
        )
        return user_record(rows[0]) if rows else None

    async def get_user_by_delivery_email(self, realm_id: int, email: str) -> User | None:
        rows = self._read(
            f"SELECT {USER_COLUMNS} FROM users "
            "WHERE realm_id = ? AND lower(delivery_email) = lower(?)",
            (realm_id, email),
        )
        return user_record(rows[0]) if rows else None

    async def list_users(self, realm_id: int) -> list[User]:
        rows = self._read(
            f"SELECT {USER_COLUMNS} FROM users WHERE realm_id = ? ORDER BY id", (realm_id,)
        )
        return [user_record(r) for r in rows]

    async def _update_user(self, user_id: int, column: str, value: bool) -> User:
        def update(conn: sqlite3.Connection) -> User:
            row = conn.execute(
                f"UPDATE users SET {column} = ? WHERE id = ? RETURNING {USER_COLUMNS}",
                (int(value), user_id),
            ).fetchone()
            if row is None:
                raise StoreError(f"no user with id {user_id}")
            return user_record(row)

        return await self._write(update)

    async def set_user_active(self, user_id: int, active: bool) -> User:
        return await self._update_user(user_id, "is_active", active)

    async def set_presence_enabled(
        self, user_id: int, enabled: bool, report: PresenceReport | None = None
    ) -> tuple[User, PresenceOutcome]:
        return await self._write(partial(_toggle_presence, user_id, enabled, report))

    # API keys

    async def create_api_key(
        self, user_id: int, key_hash: str, prefix: str, label: str, now: float
    ) -> ApiKeyInfo:
        def create(conn: sqlite3.Connection) -> ApiKeyInfo:
            row = conn.execute(
                "INSERT INTO api_keys (user_id, key_hash, prefix, label, created_at) "
                f"VALUES (?, ?, ?, ?, ?) RETURNING {KEY_COLUMNS}",
                (user_id, key_hash, prefix, label, now),
            ).fetchone()
            return key_record(row)

        return await self._write(create)

    async def list_api_keys(self, user_id: int) -> list[ApiKeyInfo]:
        rows = self._read(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ? ORDER BY id", (user_id,)
        )
        return [key_record(r) for r in rows]

    async def revoke_api_key(self, user_id: int, key_id: int) -> bool:
        def revoke(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM api_keys WHERE id = ? AND user_id = ?", (key_id, user_id)
            )
            return cur.rowcount > 0

        return await self._write(revoke)

    async def user_for_key_hash(self, key_hash: str) -> tuple[User, Realm] | None:
        columns = ", ".join("u." + c.strip() for c in USER_COLUMNS.split(","))
        realm_columns = ", ".join("r." + c.strip() for c in REALM_COLUMNS.split(","))
        rows = self._read(
            f"SELECT {columns}, {realm_columns} FROM api_keys k "
            "JOIN users u ON u.id = k.user_id JOIN realms r ON r.id = u.realm_id "
            "WHERE k.key_hash = ?",
            (key_hash,),
        )
        if not rows:
            return None
        return user_record(rows[0][:12]), realm_record(rows[0][12:])

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

        def create(conn: sqlite3.Connection) -> EmbedToken:
            row = conn.execute(
                "INSERT INTO embed_tokens "
                "(realm_id, token_hash, prefix, label, user_ids, origins, created_at) "
                f"VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {EMBED_COLUMNS}",
                (realm_id, token_hash, prefix, label, users, allowed, now),
            ).fetchone()
            return embed_token_record(row)

        return await self._write(create)

    async def list_embed_tokens(self, realm_id: int | None = None) -> list[EmbedToken]:
        if realm_id is None:
            rows = self._read(f"SELECT {EMBED_COLUMNS} FROM embed_tokens ORDER BY id")
        else:
            rows = self._read(
                f"SELECT {EMBED_COLUMNS} FROM embed_tokens WHERE realm_id = ? ORDER BY id",
                (realm_id,),
            )
        return [embed_token_record(r) for r in rows]

    async def revoke_embed_token(self, token_id: int) -> bool:
        def revoke(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM embed_tokens WHERE id = ?", (token_id,)).rowcount > 0

        return await self._write(revoke)

    async def embed_token_by_hash(self, token_hash: str) -> EmbedToken | None:
        rows = self._read(
            f"SELECT {EMBED_COLUMNS} FROM embed_tokens WHERE token_hash = ?", (token_hash,)
        )
        return embed_token_record(rows[0]) if rows else None

    # Presence

    async def record_presence(self, report: PresenceReport) -> PresenceOutcome:
        return await self._reports.submit(report)

    async def _commit_reports(self, reports: list[PresenceReport]) -> list[PresenceOutcome]:
        return await self._in_writer(partial(self._commit_reports_now, reports))

    def _commit_reports_now(self, reports: list[PresenceReport]) -> list[PresenceOutcome]:
        """One transaction for the batch, on the writer thread."""
        conn = self._writer_conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            outcomes = [_apply_report(conn, report) for report in reports]
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return outcomes

    async def get_presence(self, user_id: int) -> PresenceRow | None:
        rows = self._read(
            "SELECT user_id, last_active_time, last_connected_time, last_update_id "
            "FROM user_presence WHERE user_id = ?",
            (user_id,),
        )
        return PresenceRow(*rows[0]) if rows else None

    async def read_realm_presence(self, query: RealmRead) -> Sequence[RealmPresenceRow]:
        sql = (
            "SELECT p.user_id, u.email, u.date_joined, p.last_active_time, "
            "p.last_connected_time, p.last_update_id "
            "FROM user_presence p JOIN users u ON u.id = p.user_id "
            "WHERE p.realm_id = ? AND u.is_active = 1 AND u.bot_type IS NULL"
        )
        params: list[Any] = [query.realm_id]
        if query.after_update_id is not None:
            sql += " AND p.last_update_id > ?"
            params.append(query.after_update_id)
        if query.connected_since is not None:
            sql += " AND p.last_connected_time >= ?"
            params.append(query.connected_since)
        if query.only_user_ids is not None:
            sql += f" AND p.user_id IN ({','.join('?' * len(query.only_user_ids))})"
            params.extend(sorted(query.only_user_ids))
        sql += " ORDER BY p.last_update_id"
        return [RealmPresenceRow(*row) for row in self._read(sql, params)]

    async def realm_presence_sequence(self, realm_id: int) -> int:
        rows = self._read(
            "SELECT last_update_id FROM presence_sequences WHERE realm_id = ?", (realm_id,)
        )
        return int(rows[0][0]) if rows else 0

    async def activity_intervals(self, user_id: int) -> list[ActivityInterval]:
        rows = self._read(
            "SELECT start_time, end_time FROM user_activity_intervals WHERE user_id = ? "
            "ORDER BY start_time",
            (user_id,),
        )
        return [ActivityInterval(start, end) for start, end in rows]

    async def latest_activity_interval(self, user_id: int) -> ActivityInterval | None:
        rows = self._read(
            "SELECT start_time, end_time FROM user_activity_intervals WHERE user_id = ? "
            "ORDER BY end_time DESC LIMIT 1",
            (user_id,),
        )
        return ActivityInterval(rows[0][0], rows[0][1]) if rows else None

    async def extend_activity_intervals(self, extensions: Sequence[ActivityExtension]) -> None:
        def extend(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE user_activity_intervals SET start_time = min(start_time, ?), "
                "end_time = max(end_time, ?) WHERE user_id = ? AND start_time = ?",
                [(e.start, e.end, e.user_id, e.stored_start) for e in extensions],
            )

        await self._write(extend, directory=False)

    # Saved event queues

    async def save_event_queues(self, saved: SavedEventQueues) -> None:
        def save(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM saved_event_queues")
            conn.execute("DELETE FROM saved_change_logs")
            conn.executemany(
                "INSERT INTO saved_event_queues (queue_id, realm_id, user_id, state) "
                "VALUES (?, ?, ?, ?)",
                [(q.queue_id, q.realm_id, q.user_id, q.state) for q in saved.queues],
            )
            conn.executemany(
                "INSERT INTO saved_change_logs (realm_id, changes) VALUES (?, ?)",
                [(log.realm_id, log.changes) for log in saved.logs],
            )

        await self._write(save, directory=False)

    async def take_event_queues(self) -> SavedEventQueues:
        def take(conn: sqlite3.Connection) -> SavedEventQueues:
            queues = [
                SavedEventQueue(queue_id, realm_id, user_id, bytes(state))
                for queue_id, realm_id, user_id, state in conn.execute(
                    "SELECT queue_id, realm_id, user_id, state FROM saved_event_queues"
                )
            ]
            logs = [
                SavedChangeLog(realm_id, bytes(changes))
                for realm_id, changes in conn.execute(
                    "SELECT realm_id, changes FROM saved_change_logs"
                )
            ]
            conn.execute("DELETE FROM saved_event_queues")
            conn.execute("DELETE FROM saved_change_logs")
            return SavedEventQueues(queues, logs)

        return await self._write(take, directory=False)


def _toggle_presence(
    user_id: int, enabled: bool, report: PresenceReport | None, conn: sqlite3.Connection
) -> tuple[User, PresenceOutcome]:
    row = conn.execute(
        f"UPDATE users SET presence_enabled = ? WHERE id = ? RETURNING {USER_COLUMNS}",
        (int(enabled), user_id),
    ).fetchone()
    if row is None:
        raise StoreError(f"no user with id {user_id}")
    return user_record(row), NO_OUTCOME if report is None else _apply_report(conn, report)


def _apply_report(conn: sqlite3.Connection, report: PresenceReport) -> PresenceOutcome:
    outcome = PresenceOutcome(created=False, written=False, became_online=False, row=None)
    if report.presence_rule is not None:
        current = conn.execute(
            "SELECT last_active_time, last_connected_time, last_update_id "
            "FROM user_presence WHERE user_id = ?",
            (report.user_id,),
        ).fetchone()
        times = None if current is None else PresenceTimes(current[0], current[1])
        decision = report.presence_rule(times)
        if decision.write:
            (update_id,) = conn.execute(
                "UPDATE presence_sequences SET last_update_id = last_update_id + 1 "
                "WHERE realm_id = ? RETURNING last_update_id",
                (report.realm_id,),
            ).fetchone()
            new = decision.times
            conn.execute(
                "INSERT INTO user_presence (user_id, realm_id, last_active_time, "
                "last_connected_time, last_update_id) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET "
                "last_active_time = excluded.last_active_time, "
                "last_connected_time = excluded.last_connected_time, "
                "last_update_id = excluded.last_update_id",
                (
                    report.user_id,
                    report.realm_id,
                    new.last_active_time,
                    new.last_connected_time,
                    update_id,
                ),
            )
            row = PresenceRow(
                report.user_id, new.last_active_time, new.last_connected_time, update_id
            )
            outcome = PresenceOutcome(
                created=current is None,
                written=True,
                became_online=decision.became_online,
                row=row,
            )
        elif current is not None:
            outcome = PresenceOutcome(
                created=False,
                written=False,
                became_online=False,
                row=PresenceRow(report.user_id, current[0], current[1], current[2]),
            )
    if report.interval_rule is not None:
        latest = conn.execute(
            "SELECT id, start_time, end_time FROM user_activity_intervals WHERE user_id = ? "
            "ORDER BY end_time DESC LIMIT 1",
            (report.user_id,),
        ).fetchone()
        extend, interval = report.interval_rule(
            None if latest is None else ActivityInterval(latest[1], latest[2])
        )
        if extend and latest is not None:
            conn.execute(
                "UPDATE user_activity_intervals SET start_time = ?, end_time = ? WHERE id = ?",
                (interval.start, interval.end, latest[0]),
            )
        else:
            conn.execute(
                "INSERT INTO user_activity_intervals (user_id, start_time, end_time) "
                "VALUES (?, ?, ?)",
                (report.user_id, interval.start, interval.end),
            )
    return outcome
