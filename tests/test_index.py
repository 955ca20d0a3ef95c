"""The in-memory realm index, and its catching up with writes made by other processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from hypothesis import given
from hypothesis import strategies as st

from conftest import Account, Harness, assert_error
from presenced.presence.index import Entry, RealmIndex, make_entry


def entry(user_id: int, update_id: int, connected: float = 1000.0) -> Entry:
    return make_entry(user_id, f"u{user_id}@example.com", 0.0, connected, connected, update_id, 70)


def decode(raw: bytes) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(raw)
    return decoded


def test_index_reads() -> None:
    index = RealmIndex()
    for user_id, update_id in ((1, 1), (2, 2), (1, 3), (3, 4)):
        index.apply(entry(user_id, update_id))
    assert not index.apply(entry(3, 4))  # not newer: ignored
    assert set(decode(index.changed_since(0, slim=True).presences)) == {"1", "2", "3"}
    delta = index.changed_since(2, slim=True)
    assert set(decode(delta.presences)) == {"1", "3"} and delta.last_update_id == 4
    nothing = index.changed_since(4, slim=True)
    assert nothing.presences == b"{}" and nothing.last_update_id is None
    legacy = decode(index.connected_since(0.0, 14, None, slim=False).presences)
    assert set(legacy) == {"u1@example.com", "u2@example.com", "u3@example.com"}
    only = index.changed_since(0, slim=True, only=frozenset({2}))
    assert set(decode(only.presences)) == {"2"}


def test_out_of_order_catch_up_keeps_order() -> None:
    index = RealmIndex()
    index.apply(entry(1, 5))
    index.apply(entry(2, 3))  # another process's older write arrives late
    assert set(decode(index.changed_since(3, slim=True).presences)) == {"1"}
    assert set(decode(index.changed_since(2, slim=True).presences)) == {"1", "2"}


def test_full_read_cache_follows_changes_and_the_window() -> None:
    index = RealmIndex()
    index.apply(entry(1, 1, connected=100.0))
    index.apply(entry(2, 2, connected=200.0))
    first = index.connected_since(50.0, 14, None, slim=True)
    assert index.connected_since(60.0, 14, None, slim=True) is first  # cached
    aged = index.connected_since(150.0, 14, None, slim=True)  # user 1 aged out
    assert set(decode(aged.presences)) == {"2"}
    index.apply(entry(3, 3, connected=300.0))
    assert set(decode(index.connected_since(150.0, 14, None, slim=True).presences)) == {"2", "3"}


@given(
    writes=st.lists(st.tuples(st.integers(1, 20), st.booleans()), max_size=200),
    segment_size=st.sampled_from([1, 2, 4, 256]),
    read_every=st.integers(1, 10),
)
def test_delta_is_exactly_the_newest_entries(
    writes: list[tuple[int, bool]], segment_size: int, read_every: int
) -> None:
    """Whatever the order of writes (some arriving late) and whichever blocks were cached by
    reads in between, a delta from any cursor holds exactly the users whose newest update id
    is above it, in both formats."""
    index = RealmIndex(segment_size=segment_size)
    newest: dict[int, int] = {}
    late: list[Entry] = []

    def check() -> None:
        top = max(newest.values(), default=0)
        for cursor in range(top + 1):
            expected = {u for u, i in newest.items() if i > cursor}
            modern = index.changed_since(cursor, slim=True)
            assert set(decode(modern.presences)) == {str(u) for u in expected}
            legacy = decode(index.changed_since(cursor, slim=False).presences)
            assert set(legacy) == {f"u{u}@example.com" for u in expected}
            assert modern.last_update_id == (max(newest[u] for u in expected) if expected else None)

    for update_id, (user_id, delay) in enumerate(writes, start=1):
        item = entry(user_id, update_id)
        if delay:
            late.append(item)
        else:
            index.apply(item)
            newest[user_id] = max(newest.get(user_id, 0), update_id)
        if update_id % read_every == 0:
            check()
    for item in late:
        index.apply(item)
        newest[item.user_id] = max(newest.get(item.user_id, 0), item.update_id)
        check()
    check()


OTHER_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    from presenced.store.factory import open_store
    from presenced.store.base import PresenceReport, PresenceTimes, PresenceWrite

    async def main(url, user_id, realm_id, when):
        store = open_store(url)
        await store.open()
        def rule(current):
            return PresenceWrite(PresenceTimes(when, when), write=True, became_online=False)
        outcome = await store.record_presence(PresenceReport(user_id, realm_id, rule, None))
        print(outcome.row.last_update_id)
        await store.close()

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
    """
)


def write_from_another_process(harness: Harness, account: Account, when: float) -> int:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            OTHER_PROCESS,
            harness.settings.database_url,
            str(account.id),
            str(account.user.realm_id),
            str(when),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout)


def test_index_catches_up_with_another_process(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    hamlet, othello = zulip_realm["hamlet"], zulip_realm["othello"]
    first = harness.presence(hamlet, "active", last_update_id=-1)
    cursor = first["presence_last_update_id"]
    when = harness.clock() - 30
    update_id = write_from_another_process(harness, othello, when)
    harness.other_process_committed()
    assert update_id == cursor + 1
    delta = harness.presence(hamlet, "active", last_update_id=cursor)
    assert delta["presences"] == {
        str(othello.id): {"active_timestamp": int(when), "idle_timestamp": int(when)}
    }
    assert delta["presence_last_update_id"] == update_id
    legacy = harness.get("/realm/presence", hamlet).json()["presences"]
    assert legacy[othello.email]["aggregated"]["timestamp"] == int(when)
    # This process's next write continues the sequence and is seen at once.
    harness.clock.advance(60)
    body = harness.presence(othello, "active", last_update_id=update_id)
    assert set(body["presences"]) == {str(othello.id)}
    assert body["presence_last_update_id"] == update_id + 1


def test_operator_changes_from_the_cli_apply_at_once(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    """Deactivating a user or revoking a key in another process: refused on the next request,
    gone from listings at once (the caches follow the directory version; with PostgreSQL, once
    the change notice arrives)."""
    hamlet, othello, iago = zulip_realm["hamlet"], zulip_realm["othello"], zulip_realm["iago"]
    harness.presence(othello, "active")
    harness.presence(iago, "active")
    assert othello.email in harness.get("/realm/presence", hamlet).json()["presences"]
    env = {"PRESENCED_DATABASE_URL": harness.settings.database_url, "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "presenced", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        harness.other_process_committed()
        return result.stdout

    cli("user", "deactivate", "--email", othello.email)
    assert_error(
        harness.get("/realm/presence", othello), 401, "Account is deactivated", "UNAUTHORIZED"
    )
    assert othello.email not in harness.get("/realm/presence", hamlet).json()["presences"]
    cli("user", "reactivate", "--email", othello.email)
    assert othello.email in harness.get("/realm/presence", hamlet).json()["presences"]
    cli("user", "deactivate", "--email", othello.email)
    assert othello.email not in harness.get("/realm/presence", hamlet).json()["presences"]
    keys = json.loads(cli("key", "list", "--email", iago.email, "--json"))
    cli("key", "revoke", "--email", iago.email, "--key-id", str(keys[0]["key_id"]))
    assert_error(harness.get("/realm/presence", iago), 401, "Invalid API key", "UNAUTHORIZED")
    cli("realm", "set", "--presence-disabled", "true")
    assert harness.get("/realm/presence", hamlet).json()["presences"] == {}
