"""What every store backend must do alike (each harness test runs on SQLite and PostgreSQL):
the change-feed hints, the single-transaction toggles, and input no store can keep."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import Account, Harness, assert_error
from presenced.store.base import Role
from presenced.store.sqlite import SQLiteStore


def test_change_state_reads_directory_version_and_every_sequence(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    store = harness.server.store
    other = harness.realm("other")
    before = harness.run(store.change_state)
    assert before.presence_sequences == {zulip_realm["hamlet"].user.realm_id: 0, other.id: 0}
    harness.presence(zulip_realm["hamlet"])
    harness.presence(zulip_realm["othello"])
    after = harness.run(store.change_state)
    assert after.presence_sequences[zulip_realm["hamlet"].user.realm_id] == 2
    assert after.presence_sequences[other.id] == 0
    assert after.directory_version == before.directory_version
    harness.account("new@zulip.com", realm="other")
    assert harness.run(store.change_state).directory_version > after.directory_version


def test_toggle_stores_flag_and_presence_together(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    """Invisible mode by ``away``, with a status text: one store operation for all three."""
    hamlet = zulip_realm["hamlet"]
    harness.presence(hamlet)
    before = harness.presence_row(hamlet)
    assert before is not None
    response = harness.post("/users/me/status", hamlet, away=True, status_text="out")
    assert response.status_code == 200, response.text
    assert not harness.refresh(hamlet).user.presence_enabled
    after = harness.presence_row(hamlet)
    assert after is not None and after.last_update_id > before.last_update_id
    assert after.last_connected_time is not None and before.last_connected_time is not None
    assert after.last_connected_time < before.last_connected_time
    status = harness.run(harness.server.store.get_user_status, hamlet.id)
    assert status is not None and status.status_text == "out"


def test_text_no_store_can_keep_is_refused(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    hamlet = zulip_realm["hamlet"]
    for field, value, msg in (
        ("status_text", "a\x00b", "status_text contains NULL (0x00) characters."),
        ("emoji_name", "smile\x00", "emoji_name contains NULL (0x00) characters."),
        ("emoji_name", "x" * 81, "emoji_name is too long (limit: 80 characters)"),
    ):
        assert_error(harness.post("/users/me/status", hamlet, **{field: value}), 400, msg)
    assert harness.run(harness.server.store.get_user_status, hamlet.id) is None
    for path in ("/users/a%00b/presence", "/users/99999999999999/presence"):
        assert_error(harness.get(path, hamlet), 400, "No such user")


def test_sqlite_may_have_changed_follows_other_connections(tmp_path: Path) -> None:
    """``PRAGMA data_version`` on the reader: True after another connection commits."""
    path = str(tmp_path / "presenced.db")

    async def run() -> None:
        watcher, writer = SQLiteStore(path), SQLiteStore(path)
        await watcher.open()
        await writer.open()
        try:
            await watcher.migrate()
            watcher.may_have_changed()  # the first call has nothing to compare with
            assert not watcher.may_have_changed()
            realm = await writer.create_realm("", "Zulip Dev", 0.0)
            assert watcher.may_have_changed()
            assert not watcher.may_have_changed()
            await writer.create_user(
                realm.id, "a@z.com", "a@z.com", "A", Role.MEMBER, None, None, 0
            )
            assert watcher.may_have_changed()
        finally:
            await writer.close()
            await watcher.close()

    asyncio.run(run())
