"""POST /register (spec 3, Zulip's do_events_register): its parameters, checked in Zulip's
order with its messages, and the initial state it answers, in Zulip's key order."""

from __future__ import annotations

import pytest

from conftest import BACKENDS, Harness, assert_error
from events_support import queue_count, register
from presenced.store.base import Role

# Every test here runs on the in-process event system and on the Redis one.
pytestmark = pytest.mark.parametrize("harness_backends", BACKENDS, indirect=True)


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
