"""Event queues and presence events (spec 3 and 7.2), through HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conftest import BACKENDS, DAY, Account, Harness, assert_error
from presenced.events.changes import UserSettingsChange
from presenced.events.redis import RedisEventSystem
from presenced.events.system import InProcessEventSystem
from presenced.store.base import Role

# Every test here runs on the in-process event system and on the Redis one.
pytestmark = pytest.mark.parametrize("harness_backends", BACKENDS, indirect=True)


def queue_count(harness: Harness) -> int:
    system = harness.server.events
    if isinstance(system, InProcessEventSystem):
        return system.queue_count
    assert isinstance(system, RedisEventSystem)
    return harness.run(system.count_queues)


@pytest.fixture
def fast(make_harness: Callable[..., Harness]) -> Harness:
    """Heartbeats after 0.2 s, so long-polls end quickly."""
    return make_harness(event_queue_heartbeat_secs=0.2)


def register(harness: Harness, account: Account, **params: Any) -> dict[str, Any]:
    response = harness.post("/register", account, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def events(
    harness: Harness, account: Account, queue: dict[str, Any], last_event_id: int = -1, **extra: Any
) -> list[dict[str, Any]]:
    response = harness.get(
        "/events", account, queue_id=queue["queue_id"], last_event_id=last_event_id, **extra
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # Zulip names the queue only in answers that waited.
    assert body.get("queue_id", queue["queue_id"]) == queue["queue_id"]
    result: list[dict[str, Any]] = body["events"]
    return result


def pending(harness: Harness, account: Account, queue: dict[str, Any]) -> list[dict[str, Any]]:
    return events(harness, account, queue, dont_block=True)


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


def test_register_state(fast: Harness) -> None:
    hamlet, othello = fast.account("hamlet@zulip.com"), fast.account("othello@zulip.com")
    fast.presence(hamlet, "active", ping_only=True)
    state = register(fast, othello)
    assert state["queue_id"]
    assert state["last_event_id"] == -1
    assert state["zulip_feature_level"] >= 419
    assert set(state["presences"]) == {hamlet.email}
    assert state["presence_last_update_id"] == 1
    assert state["server_presence_ping_interval_seconds"] == 60
    assert state["server_presence_offline_threshold_seconds"] == 200
    assert state["realm_presence_disabled"] is False
    assert state["user_settings"]["presence_enabled"] is True
    assert {u["email"] for u in state["realm_users"]} == {hamlet.email, othello.email}
    assert state["event_queue_longpoll_timeout_seconds"] == 90

    modern = register(fast, othello, slim_presence=True, fetch_event_types=["presence"])
    assert set(modern["presences"]) == {str(hamlet.id)}
    assert "realm_users" not in modern
    simplified = register(
        fast,
        othello,
        client_capabilities={
            "notification_settings_null": False,
            "simplified_presence_events": True,
        },
        presence_history_limit_days=0,
    )
    assert simplified["presences"] == {}


def test_register_errors(fast: Harness) -> None:
    othello = fast.account("othello@zulip.com")
    for params, msg in [
        ({"event_types": "presence"}, "event_types is not valid JSON"),
        ({"event_types": '"presence"'}, "event_types is not a list"),
        ({"event_types": "[1]"}, "event_types[0] is not a string"),
        ({"slim_presence": "maybe"}, "slim_presence is not valid JSON"),
        ({"client_capabilities": "[]"}, "client_capabilities is not a dict"),
        (
            {"client_capabilities": '{"simplified_presence_events": true}'},
            'client_capabilities["notification_settings_null"] field is missing: Field required',
        ),
        (
            {"client_capabilities": '{"notification_settings_null": 1}'},
            'client_capabilities["notification_settings_null"] is not a boolean',
        ),
        ({"include_subscribers": "maybe"}, "Invalid include_subscribers"),
        ({"narrow": '[["bogus", "x"]]'}, "Operator bogus not supported."),
        ({"presence_history_limit_days": str(10**7)}, "Invalid presence_history_limit_days"),
        ({"queue_lifespan_secs": "-1"}, "Invalid queue_lifespan_secs"),
    ]:
        response = fast.request("POST", "/register", account=othello, data=params)
        assert_error(response, 400, msg)
    assert queue_count(fast) == 0
    # Event types presenced has nothing for are accepted (Zulip's clients ask for many).
    body = register(fast, othello, event_types=["message", "presence", "no_such_type"])
    assert body["queue_id"]


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


def test_queue_lifespan_is_at_least_the_default(fast: Harness) -> None:
    othello = fast.account("othello@zulip.com")
    short = register(fast, othello, queue_lifespan_secs=5)
    fast.clock.advance(300)
    assert fast.run(_expire, fast) == 0
    assert pending(fast, othello, short) == []
    fast.clock.advance(301)
    assert fast.run(_expire, fast) == 1


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


def test_register_answers_in_zulips_key_order(fast: Harness) -> None:
    """do_events_register: the queue and the version first, each fetched type's keys in
    fetch_initial_state_data's order, the user lists (post_process_state) and last_event_id
    last."""
    othello = fast.account("othello@zulip.com")
    body = register(
        fast,
        othello,
        fetch_event_types=["presence", "realm", "realm_user", "user_settings", "user_status"],
    )
    assert list(body) == [
        "result",
        "msg",
        "queue_id",
        "zulip_version",
        "zulip_feature_level",
        "zulip_merge_base",
        "presences",
        "presence_last_update_id",
        "server_timestamp",
        "realm_name",
        "realm_presence_disabled",
        "event_queue_longpoll_timeout_seconds",
        "server_presence_ping_interval_seconds",
        "server_presence_offline_threshold_seconds",
        "cross_realm_bots",
        "avatar_source",
        "avatar_url_medium",
        "avatar_url",
        "can_create_private_streams",
        "can_create_public_streams",
        "can_create_web_public_streams",
        "can_create_streams",
        "can_invite_others_to_realm",
        "is_admin",
        "is_owner",
        "is_moderator",
        "is_guest",
        "user_id",
        "email",
        "delivery_email",
        "full_name",
        "user_settings",
        "user_status",
        "realm_users",
        "realm_non_active_users",
        "last_event_id",
    ]
    bare = register(fast, othello, event_types=[])
    assert list(bare) == [
        "result",
        "msg",
        "queue_id",
        "zulip_version",
        "zulip_feature_level",
        "zulip_merge_base",
        "last_event_id",
    ]


def test_register_checks_parameters_in_zulips_order(fast: Harness) -> None:
    """typed_endpoint checks the (alphabetical) keyword parameters in order: the first bad
    one is named, whatever the others."""
    othello = fast.account("othello@zulip.com")
    for params, msg in [
        ({"slim_presence": "x", "apply_markdown": "x"}, "apply_markdown is not valid JSON"),
        ({"slim_presence": "x", "all_public_streams": "1"}, "all_public_streams is not a boolean"),
        ({"event_types": "[1]", "client_gravatar": "x"}, "client_gravatar is not valid JSON"),
        (
            {"narrow": "[1]", "include_subscribers": "maybe"},
            "Invalid include_subscribers",
        ),
        ({"queue_lifespan_secs": "x", "narrow": "[1]"}, "narrow[0] is not a list"),
        ({"narrow": '[["stream", 1]]'}, "narrow[0][1] is not a string"),
        ({"narrow": '[["is", "followed"]]'}, "Operand followed not supported."),
        # The operator check comes after every parameter is read.
        ({"narrow": '[["bogus", "x"]]', "slim_presence": "x"}, "slim_presence is not valid JSON"),
    ]:
        response = fast.request("POST", "/register", account=othello, data=params)
        assert_error(response, 400, msg)
    assert queue_count(fast) == 0


def test_register_client_capabilities_unknown_keys_are_dropped(fast: Harness) -> None:
    """ClientCapabilities is a TypedDict: a key Zulip does not know is ignored, whatever its
    value; a known one must be a boolean."""
    othello = fast.account("othello@zulip.com")
    body = register(
        fast,
        othello,
        event_types=[],
        client_capabilities={"notification_settings_null": False, "no_such_capability": 3},
    )
    assert "ignored_parameters_unsupported" not in body
    response = fast.request(
        "POST",
        "/register",
        account=othello,
        data={"client_capabilities": '{"notification_settings_null": true, "empty_topic_name": 1}'},
    )
    assert_error(response, 400, 'client_capabilities["empty_topic_name"] is not a boolean')


def test_all_public_streams_is_refused_to_guests(fast: Harness) -> None:
    guest = fast.account("polonius@zulip.com", role=Role.GUEST)
    for path, method in (("/register", "POST"), ("/events", "GET")):
        params = {"all_public_streams": "true", "dont_block": "true"}
        if method == "POST":
            response = fast.request(method, path, account=guest, data=params)
        else:
            response = fast.request(method, path, account=guest, params=params)
        assert_error(response, 400, "User not authorized for this query")
    assert queue_count(fast) == 0
    member = fast.account("othello@zulip.com")
    assert register(fast, member, all_public_streams=True, event_types=[])["queue_id"]


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


def test_register_legacy_settings_without_user_settings_object(fast: Harness) -> None:
    """fetch_initial_state_data: without user_settings_object, the update_display_settings
    and update_global_notifications types also give the legacy top-level settings, before
    user_settings; with it, only user_settings."""
    hamlet = fast.account("hamlet@zulip.com")
    response = fast.request(
        "PATCH", "/settings", account=hamlet, data={"presence_enabled": "false"}
    )
    assert response.status_code == 200, response.text
    legacy = register(fast, hamlet)
    keys = list(legacy)
    assert keys.index("emojiset") < keys.index("presence_enabled") < keys.index("user_settings")
    assert keys[keys.index("emojiset") : keys.index("emojiset") + 3] == [
        "emojiset",
        "starred_message_counts",
        "twenty_four_hour_time",
    ]
    assert legacy["presence_enabled"] is False
    assert legacy["user_settings"]["presence_enabled"] is False
    only_notifications = register(fast, hamlet, fetch_event_types=["update_global_notifications"])
    assert only_notifications["presence_enabled"] is False
    assert "emojiset" not in only_notifications
    modern = register(
        fast,
        hamlet,
        client_capabilities={"notification_settings_null": False, "user_settings_object": True},
    )
    assert "presence_enabled" not in modern
    assert "emojiset" not in modern
    assert modern["user_settings"]["presence_enabled"] is False


def test_register_channel_and_invite_permissions_follow_zulips_defaults(fast: Harness) -> None:
    """Zulip's default realm group settings: members create public and private channels and
    invite; only owners create web-public channels; guests do none of it."""
    keys = (
        "can_create_private_streams",
        "can_create_public_streams",
        "can_create_web_public_streams",
        "can_create_streams",
        "can_invite_others_to_realm",
    )
    for role, expected in [
        (Role.OWNER, (True, True, True, True, True)),
        (Role.MEMBER, (True, True, False, True, True)),
        (Role.GUEST, (False, False, False, False, False)),
    ]:
        account = fast.account(f"{role.name.lower()}@zulip.com", role=role)
        state = register(fast, account, fetch_event_types=["realm_user"])
        assert tuple(state[key] for key in keys) == expected, role


def test_register_user_status_lists_status_rows_only(fast: Harness) -> None:
    """get_all_users_status_dict lists the users with a UserStatus row (which every POST
    /users/me/status writes, away alone too), minus empty rows of visible users: going
    invisible through PATCH /settings writes no row."""
    hamlet, othello = fast.account("hamlet@zulip.com"), fast.account("othello@zulip.com")
    iago = fast.account("iago@zulip.com")
    response = fast.request(
        "PATCH", "/settings", account=hamlet, data={"presence_enabled": "false"}
    )
    assert response.status_code == 200, response.text
    response = fast.post("/users/me/status", othello, away="true")
    assert response.status_code == 200, response.text
    state = register(fast, iago, fetch_event_types=["user_status"])
    assert state["user_status"] == {str(othello.id): {"away": True}}
    response = fast.post("/users/me/status", othello, away="false")
    assert response.status_code == 200, response.text
    assert register(fast, iago, fetch_event_types=["user_status"])["user_status"] == {}
