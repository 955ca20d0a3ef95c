"""Event queues and presence events (spec 3 and 7.2), through HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conftest import BACKENDS, DAY, Harness, assert_error
from events_support import events, pending, queue_count, register
from presenced.events.changes import UserSettingsChange

# Every test here runs on the in-process event system and on the Redis one.
pytestmark = pytest.mark.parametrize("harness_backends", BACKENDS, indirect=True)


def test_legacy_presence_events(fast: Harness) -> None:
    """Scenario 31: email-keyed legacy events, and without email for slim queues."""
    hamlet, othello = fast.account("hamlet@zulip.com"), fast.account("othello@zulip.com")
    legacy = register(fast, othello, event_types=["presence"])
    slim = register(fast, othello, event_types=["presence"], slim_presence=True)
    fast.presence(hamlet, "active", ping_only=True)
    now = fast.clock()
    website = {"client": "website", "status": "active", "timestamp": int(now), "pushable": False}
    assert pending(fast, othello, legacy) == [
        {
            "type": "presence",
            "user_id": hamlet.id,
            "email": hamlet.email,
            "server_timestamp": now,
            "presence": {"website": website},
            "id": 0,
        }
    ]
    assert pending(fast, othello, slim) == [
        {
            "type": "presence",
            "user_id": hamlet.id,
            "server_timestamp": now,
            "presence": {"website": website},
            "id": 0,
        }
    ]


def test_modern_presence_events(fast: Harness) -> None:
    """Scenario 32, and several changes waiting for a modern queue going out as one event."""
    hamlet, othello = fast.account("hamlet@zulip.com"), fast.account("othello@zulip.com")
    iago = fast.account("iago@zulip.com")
    queue = register(
        fast,
        othello,
        client_capabilities={
            "notification_settings_null": False,
            "simplified_presence_events": True,
        },
        slim_presence=True,
    )
    fast.presence(hamlet, "active", ping_only=True)
    fast.presence(iago, "idle", ping_only=True)
    now = int(fast.clock())
    assert pending(fast, othello, queue) == [
        {
            "type": "presence",
            "presences": {
                str(hamlet.id): {"active_timestamp": now, "idle_timestamp": now},
                str(iago.id): {"active_timestamp": now, "idle_timestamp": now},
            },
            "id": 0,
        }
    ]


def test_presence_events_multiple_clients(fast: Harness) -> None:
    """Scenario 33: only 'became online' reports after the row exists produce events."""
    hamlet, othello = fast.account("hamlet@zulip.com"), fast.account("othello@zulip.com")
    now = fast.clock()
    fast.set_times(hamlet, now - 365 * DAY, now - 365 * DAY)
    queue = register(fast, othello, event_types=["presence"])
    fast.presence(hamlet, "idle", ping_only=True)
    assert pending(fast, othello, queue) == []
    fast.presence(hamlet, "active", ping_only=True)
    got = pending(fast, othello, queue)
    assert [e["presence"]["website"]["status"] for e in got] == ["active"]
    fast.presence(hamlet, "idle", ping_only=True)
    assert pending(fast, othello, queue) == got
    row = fast.presence_row(hamlet)
    fast.clock.advance(301)
    fast.presence(hamlet, "active", ping_only=True)
    got = events(fast, othello, queue, last_event_id=got[-1]["id"])
    assert len(got) == 1
    assert set(got[0]["presence"]) == {"website"}
    assert got[0]["presence"]["website"]["status"] == "active"
    assert fast.presence_row(hamlet) != row


def test_who_receives_presence_events(fast: Harness) -> None:
    """The subject's own queues and bots' queues too; not queues without the type."""
    hamlet = fast.account("hamlet@zulip.com")
    from presenced.store.base import BotType

    bot = fast.account("bot@zulip.com", bot_type=BotType.GENERIC)
    other_realm = fast.account("zephyr@mit.edu", realm="zephyr")
    own = register(fast, hamlet)
    bots = register(fast, bot, event_types=["presence"])
    no_presence = register(fast, hamlet, event_types=["realm"])
    elsewhere = register(fast, other_realm)
    fast.presence(hamlet, "active", ping_only=True)
    assert [e["user_id"] for e in pending(fast, hamlet, own)] == [hamlet.id]
    assert [e["user_id"] for e in pending(fast, bot, bots)] == [hamlet.id]
    assert pending(fast, hamlet, no_presence) == []
    assert pending(fast, other_realm, elsewhere) == []


def test_no_events_when_realm_presence_disabled(fast: Harness) -> None:
    hamlet, othello = fast.account("hamlet@zulip.com"), fast.account("othello@zulip.com")
    fast.run(fast.server.store.set_realm_presence_disabled, hamlet.user.realm_id, True)
    queue = register(fast, othello)
    assert queue["presences"] == {}
    assert queue["presence_last_update_id"] == -1
    assert queue["realm_presence_disabled"] is True
    fast.presence(hamlet, "active", ping_only=True)
    assert pending(fast, othello, queue) == []


def test_heartbeat_and_acknowledgement(fast: Harness) -> None:
    hamlet, othello = fast.account("hamlet@zulip.com"), fast.account("othello@zulip.com")
    queue = register(fast, othello, event_types=["presence"])
    assert queue["last_event_id"] == -1
    assert events(fast, othello, queue) == [{"type": "heartbeat", "id": 0}]
    # Unacknowledged events come again; acknowledged ones are dropped.
    fast.presence(hamlet, "active", ping_only=True)
    got = events(fast, othello, queue)
    assert [e["type"] for e in got] == ["heartbeat", "presence"]
    assert [e["id"] for e in got] == [0, 1]
    assert events(fast, othello, queue, last_event_id=0)[0]["id"] == 1
    assert events(fast, othello, queue, last_event_id=1) == [{"type": "heartbeat", "id": 2}]


def test_dont_block(fast: Harness) -> None:
    othello = fast.account("othello@zulip.com")
    queue = register(fast, othello)
    response = fast.get(
        "/events", othello, queue_id=queue["queue_id"], last_event_id=-1, dont_block=True
    )
    assert response.json() == {"result": "success", "msg": "", "events": []}
    # Without a queue, dont_block makes one (Zulip's old way of registering).
    created = fast.get("/events", othello, dont_block=True).json()
    assert created["events"] == []
    assert (
        fast.get(
            "/events", othello, queue_id=created["queue_id"], last_event_id=-1, dont_block=True
        ).json()["events"]
        == []
    )


def test_last_event_id_rules(fast: Harness) -> None:
    hamlet, othello = fast.account("hamlet@zulip.com"), fast.account("othello@zulip.com")
    queue = register(fast, othello)
    assert_error(
        fast.get("/events", othello, queue_id=queue["queue_id"], last_event_id=5),
        400,
        "Event 5 was not in this queue",
    )
    fast.presence(hamlet, "active", ping_only=True)
    fast.presence(fast.account("iago@zulip.com"), "active", ping_only=True)
    assert [e["id"] for e in pending(fast, othello, queue)] == [0, 1]
    assert [e["id"] for e in events(fast, othello, queue, last_event_id=0, dont_block=True)] == [1]
    assert_error(
        fast.get("/events", othello, queue_id=queue["queue_id"], last_event_id=-1),
        400,
        "An event newer than -1 has already been pruned!",
    )


def test_long_poll_returns_when_an_event_arrives(make_harness: Callable[..., Harness]) -> None:
    import threading
    import time

    harness = make_harness(event_queue_heartbeat_secs=30)
    hamlet, othello = harness.account("hamlet@zulip.com"), harness.account("othello@zulip.com")
    queue = register(harness, othello, event_types=["presence"])
    result: list[list[dict[str, Any]]] = []
    poller = threading.Thread(target=lambda: result.append(events(harness, othello, queue)))
    started = time.monotonic()
    poller.start()
    time.sleep(0.2)
    harness.presence(hamlet, "active", ping_only=True)
    poller.join(timeout=10)
    assert time.monotonic() - started < 5
    assert [e["user_id"] for e in result[0]] == [hamlet.id]


def test_bad_event_queue_ids(fast: Harness) -> None:
    hamlet, othello = fast.account("hamlet@zulip.com"), fast.account("othello@zulip.com")
    queue = register(fast, othello)
    for account, queue_id in ((othello, "nonsense"), (hamlet, queue["queue_id"])):
        response = fast.get("/events", account, queue_id=queue_id, last_event_id=-1)
        body = assert_error(response, 400, f"Bad event queue ID: {queue_id}", "BAD_EVENT_QUEUE_ID")
        assert body["queue_id"] == queue_id
    # Another user can neither read nor delete it.
    response = fast.request(
        "DELETE", "/events", account=hamlet, data={"queue_id": queue["queue_id"]}
    )
    assert_error(response, 400, f"Bad event queue ID: {queue['queue_id']}", "BAD_EVENT_QUEUE_ID")
    assert pending(fast, othello, queue) == []
    response = fast.get("/events", othello)
    body = assert_error(response, 400, "Missing 'queue_id' argument")
    assert "var_name" not in body
    response = fast.get("/events", othello, queue_id=queue["queue_id"])
    assert_error(response, 400, "Missing 'last_event_id' argument")
    response = fast.request("DELETE", "/events", account=othello)
    body = assert_error(response, 400, "Missing 'queue_id' argument", "REQUEST_VARIABLE_MISSING")
    assert body["var_name"] == "queue_id"


def test_delete_queue(fast: Harness) -> None:
    othello = fast.account("othello@zulip.com")
    queue = register(fast, othello)
    response = fast.request(
        "DELETE", "/events", account=othello, data={"queue_id": queue["queue_id"]}
    )
    assert response.json() == {"result": "success", "msg": ""}
    response = fast.get("/events", othello, queue_id=queue["queue_id"], last_event_id=-1)
    assert_error(response, 400, f"Bad event queue ID: {queue['queue_id']}", "BAD_EVENT_QUEUE_ID")


def test_queues_expire_and_release_memory(fast: Harness) -> None:
    hamlet, othello = fast.account("hamlet@zulip.com"), fast.account("othello@zulip.com")
    kept = register(fast, othello)
    idle = register(fast, othello)
    long_lived = register(fast, othello, queue_lifespan_secs=3600)
    assert queue_count(fast) == 3
    fast.presence(hamlet, "active", ping_only=True)
    fast.clock.advance(599)
    # Only a poll that waits keeps a queue alive (Zulip's rule); this one waits for a heartbeat.
    first = pending(fast, othello, kept)
    assert events(fast, othello, kept, last_event_id=first[-1]["id"])[0]["type"] == "heartbeat"
    pending(fast, othello, idle)  # answered at once: does not count
    fast.clock.advance(2)
    assert fast.run(_expire, fast) == 1
    assert queue_count(fast) == 2
    response = fast.get("/events", othello, queue_id=idle["queue_id"], last_event_id=-1)
    assert_error(response, 400, f"Bad event queue ID: {idle['queue_id']}", "BAD_EVENT_QUEUE_ID")
    assert len(events(fast, othello, kept, last_event_id=0, dont_block=True)) == 1
    assert len(pending(fast, othello, long_lived)) == 1
    fast.clock.advance(4000)
    assert fast.run(_expire, fast) == 2
    assert queue_count(fast) == 0


async def _expire(harness: Harness) -> int:
    return await harness.server.events.expire_idle()


def test_user_settings_events_reach_only_the_user(fast: Harness) -> None:
    hamlet, othello = fast.account("hamlet@zulip.com"), fast.account("othello@zulip.com")
    mine = register(fast, hamlet, event_types=["user_settings", "presence"])
    theirs = register(fast, othello)
    change = UserSettingsChange(hamlet.id, "presence_enabled", False)
    fast.run(_publish, fast, hamlet.user.realm_id, change)
    assert pending(fast, hamlet, mine) == [
        {
            "type": "user_settings",
            "op": "update",
            "property": "presence_enabled",
            "value": False,
            "id": 0,
        }
    ]
    assert pending(fast, othello, theirs) == []


async def _publish(harness: Harness, realm_id: int, change: UserSettingsChange) -> None:
    await harness.server.events.publish(realm_id, change)


def test_change_during_register_is_in_state_or_queue(fast: Harness) -> None:
    """Spec 3.5: a queue made before the state is read misses nothing."""
    hamlet, othello = fast.account("hamlet@zulip.com"), fast.account("othello@zulip.com")
    queue = register(fast, othello)
    fast.presence(hamlet, "active", ping_only=True)
    assert hamlet.email not in queue["presences"]
    assert [e["user_id"] for e in pending(fast, othello, queue)] == [hamlet.id]


def test_large_realm_one_change_reaches_every_queue(make_harness: Callable[..., Harness]) -> None:
    """2,000 users, 500 open queues: one user's first report reaches all 500."""
    harness = make_harness(event_queue_heartbeat_secs=0.2)
    users = [harness.account(f"user{i}@example.com") for i in range(2000)]
    queues = [
        (u, register(harness, u, event_types=["presence"], fetch_event_types=[]))
        for u in users[:500]
    ]
    harness.presence(users[-1], "active", ping_only=True)
    for user, queue in queues:
        got = pending(harness, user, queue)
        assert [e["user_id"] for e in got] == [users[-1].id]


def test_a_parked_poll_ignores_changes_not_for_it(make_harness: Callable[..., Harness]) -> None:
    """Another user's settings change does not answer a parked poll; a presence change does."""
    import threading

    harness = make_harness(event_queue_heartbeat_secs=30)
    hamlet, othello = harness.account("hamlet@zulip.com"), harness.account("othello@zulip.com")
    queue = register(harness, othello)
    result: list[list[dict[str, Any]]] = []
    poller = threading.Thread(target=lambda: result.append(events(harness, othello, queue)))
    poller.start()
    try:
        change = UserSettingsChange(hamlet.id, "presence_enabled", True)
        harness.run(_publish, harness, hamlet.user.realm_id, change)
        poller.join(timeout=0.5)
        assert poller.is_alive()
    finally:
        harness.presence(hamlet, "active", ping_only=True)
        poller.join(timeout=20)
    assert [(e["type"], e["user_id"]) for e in result[0]] == [("presence", hamlet.id)]


def test_get_events_reads_every_parameter(fast: Harness) -> None:
    """get_events_backend reads all its parameters, with or without a queue: each is
    checked, none is reported as ignored, and a queue it creates honours them."""
    hamlet, othello = fast.account("hamlet@zulip.com"), fast.account("othello@zulip.com")
    for params, msg in [
        ({"narrow": "x"}, "narrow is not valid JSON"),
        ({"narrow": "[[1]]"}, "narrow[0][0] is not a string"),
        ({"lifespan_secs": "-1"}, "lifespan_secs is too small"),
        ({"simplified_presence_events": "1"}, "simplified_presence_events is not a boolean"),
        ({"last_event_id": "x", "queue_id": "abc"}, "last_event_id is not valid JSON"),
    ]:
        response = fast.get("/events", othello, dont_block="true", **params)
        assert_error(response, 400, msg)
    assert queue_count(fast) == 0
    created = fast.get(
        "/events",
        othello,
        dont_block="true",
        event_types='["presence"]',
        simplified_presence_events="true",
        narrow="[]",
        apply_markdown="true",
        extra="1",
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert list(body) == ["result", "msg", "events", "queue_id", "ignored_parameters_unsupported"]
    assert body["ignored_parameters_unsupported"] == ["extra"]
    fast.presence(hamlet, "active", ping_only=True)
    got = pending(fast, othello, body)
    assert [list(e) for e in got] == [["type", "presences", "id"]]


def test_legacy_settings_event_without_user_settings_object(fast: Harness) -> None:
    """Zulip below feature level 439: do_change_user_setting follows the user_settings event
    of a setting in notification_settings_legacy (presence_enabled is one) with
    update_global_notifications, which only queues without user_settings_object get."""
    hamlet = fast.account("hamlet@zulip.com")
    every_type = register(fast, hamlet, fetch_event_types=[])
    legacy_only = register(fast, hamlet, event_types=["update_global_notifications"])
    modern = register(
        fast,
        hamlet,
        client_capabilities={"notification_settings_null": False, "user_settings_object": True},
    )
    response = fast.request(
        "PATCH", "/settings", account=hamlet, data={"presence_enabled": "false"}
    )
    assert response.status_code == 200, response.text
    legacy = {
        "type": "update_global_notifications",
        "user": hamlet.email,
        "notification_name": "presence_enabled",
        "setting": False,
    }
    got = pending(fast, hamlet, every_type)
    assert [e["type"] for e in got] == ["user_settings", "update_global_notifications"]
    assert got[1] == {**legacy, "id": 1}
    assert pending(fast, hamlet, legacy_only) == [{**legacy, "id": 0}]
    assert [e["type"] for e in pending(fast, hamlet, modern)] == ["user_settings"]


def test_queue_lifespan_is_at_least_the_default(fast: Harness) -> None:
    othello = fast.account("othello@zulip.com")
    short = register(fast, othello, queue_lifespan_secs=5)
    fast.clock.advance(300)
    assert fast.run(_expire, fast) == 0
    assert pending(fast, othello, short) == []
    fast.clock.advance(301)
    assert fast.run(_expire, fast) == 1
