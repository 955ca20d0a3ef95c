"""Invisible mode, the realm presence switch and limited guests (spec 5, 7.1, 7.2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conftest import DAY, Account, Harness, assert_error
from presenced.store.base import ActivityInterval, Role

BACKDATE = 200 + 55 + 10


def set_presence_enabled(harness: Harness, account: Account, enabled: bool) -> None:
    response = harness.request(
        "PATCH",
        "/settings",
        account=account,
        data={"presence_enabled": "true" if enabled else "false"},
    )
    assert response.status_code == 200, response.text


def times(harness: Harness, account: Account) -> tuple[float | None, float | None] | None:
    row = harness.presence_row(account)
    return None if row is None else (row.last_active_time, row.last_connected_time)


# Zulip's test_events registers with user_settings_object, so its counts have no legacy
# update_global_notifications events.
MODERN_SETTINGS = {"notification_settings_null": False, "user_settings_object": True}


def register(harness: Harness, account: Account, **params: Any) -> dict[str, Any]:
    response = harness.post("/register", account, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def pending(harness: Harness, account: Account, queue: dict[str, Any]) -> list[dict[str, Any]]:
    response = harness.get(
        "/events", account, queue_id=queue["queue_id"], last_event_id=-1, dont_block=True
    )
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["events"]
    return result


def test_change_presence_enabled(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 28: no row stays no row; enabling records now; disabling back-dates."""
    hamlet = zulip_realm["hamlet"]
    n = harness.clock()
    set_presence_enabled(harness, hamlet, False)
    assert times(harness, hamlet) is None
    set_presence_enabled(harness, hamlet, True)
    assert times(harness, hamlet) == (n, n)
    set_presence_enabled(harness, hamlet, False)
    assert times(harness, hamlet) == (n - BACKDATE, n - BACKDATE)

    set_presence_enabled(harness, hamlet, True)
    harness.set_times(hamlet, n - 100 * DAY, n - 100 * DAY)
    set_presence_enabled(harness, hamlet, False)
    assert times(harness, hamlet) == (n - 100 * DAY, n - 100 * DAY)

    set_presence_enabled(harness, hamlet, True)
    harness.set_times(hamlet, n - 100 * DAY, n - 1)
    set_presence_enabled(harness, hamlet, False)
    assert times(harness, hamlet) == (n - 100 * DAY, n - BACKDATE)
    me = harness.get("/users/me", hamlet).json()
    assert me["email"] == hamlet.email
    state = register(harness, hamlet, fetch_event_types=["user_settings"])
    assert state["user_settings"]["presence_enabled"] is False


def test_invisible_reports_are_not_recorded(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    """Scenario 29: an invisible user's reports change nothing but activity intervals."""
    othello, hamlet = zulip_realm["othello"], zulip_realm["hamlet"]
    set_presence_enabled(harness, othello, False)
    body = harness.presence(othello, "active", new_user_input=True)
    assert body["presences"] == {}
    body = harness.presence(hamlet, "idle")
    assert set(body["presences"]) == {hamlet.email}
    harness.run(harness.server.activity.flush)
    assert harness.run(harness.server.store.activity_intervals, othello.id) == [
        ActivityInterval(harness.clock(), harness.clock() + 900)
    ]
    body = harness.presence(hamlet, "active", slim_presence=True)
    assert set(body["presences"]) == {str(hamlet.id)}
    assert times(harness, othello) is None


def test_going_invisible_looks_offline_at_once(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    othello, hamlet = zulip_realm["othello"], zulip_realm["hamlet"]
    harness.presence(othello, "active")
    set_presence_enabled(harness, othello, False)
    single = harness.get(f"/users/{othello.id}/presence", hamlet).json()
    assert single["presence"]["aggregated"]["status"] == "offline"
    body = harness.presence(hamlet, "active", slim_presence=True)
    entry = body["presences"][str(othello.id)]
    assert harness.clock() - entry["active_timestamp"] >= 200
    assert harness.clock() - entry["idle_timestamp"] >= 200


def test_presence_enabled_events(make_harness: Callable[..., Harness]) -> None:
    """Scenario 34: each toggle: a user_settings event, then a forced presence event."""
    harness = make_harness(event_queue_heartbeat_secs=0.2)
    hamlet = harness.account("hamlet@zulip.com")
    set_presence_enabled(harness, hamlet, False)  # no row: no presence event
    queue = register(harness, hamlet, client_capabilities=MODERN_SETTINGS)
    set_presence_enabled(harness, hamlet, True)
    n = int(harness.clock())
    got = pending(harness, hamlet, queue)
    assert [e["type"] for e in got] == ["user_settings", "presence"]
    assert got[0] == {
        "type": "user_settings",
        "op": "update",
        "property": "presence_enabled",
        "value": True,
        "id": 0,
    }
    assert got[1]["presence"]["website"]["status"] == "active"
    assert got[1]["presence"]["website"]["timestamp"] == n
    set_presence_enabled(harness, hamlet, False)
    got = pending(harness, hamlet, queue)[2:]
    assert [e["type"] for e in got] == ["user_settings", "presence"]
    assert got[0]["value"] is False
    assert got[1]["presence"]["website"] == {
        "client": "website",
        "status": "active",
        "timestamp": n - BACKDATE,
        "pushable": False,
    }


def test_forced_events_ignore_the_realm_switch(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(event_queue_heartbeat_secs=0.2)
    hamlet, othello = harness.account("hamlet@zulip.com"), harness.account("othello@zulip.com")
    harness.run(harness.server.store.set_realm_presence_disabled, hamlet.user.realm_id, True)
    queue = register(harness, othello, event_types=["presence"])
    harness.presence(hamlet, "active")
    assert pending(harness, othello, queue) == []
    set_presence_enabled(harness, hamlet, False)
    assert [e["user_id"] for e in pending(harness, othello, queue)] == [hamlet.id]


def test_away_events(make_harness: Callable[..., Harness]) -> None:
    """Scenario 35: away is invisible mode; status text alone is only a user_status event."""
    harness = make_harness(event_queue_heartbeat_secs=0.2)
    hamlet = harness.account("hamlet@zulip.com")
    harness.presence(hamlet, "active")
    queue = register(harness, hamlet, client_capabilities=MODERN_SETTINGS)
    seen = 0

    def new_events() -> list[str]:
        nonlocal seen
        got = pending(harness, hamlet, queue)[seen:]
        seen += len(got)
        return [e["type"] for e in got]

    def status(**data: Any) -> None:
        response = harness.post("/users/me/status", hamlet, **data)
        assert response.status_code == 200, response.text

    status(away=True, status_text="out to lunch", emoji_name="car", emoji_code="1f697")
    assert new_events() == ["user_settings", "user_status", "presence"]
    assert harness.refresh(hamlet).user.presence_enabled is False
    status(away=False)
    assert new_events() == ["user_settings", "user_status", "presence"]
    status(away=True)
    assert new_events() == ["user_settings", "user_status", "presence"]
    status(status_text="in a meeting")
    assert new_events() == ["user_status"]
    last = pending(harness, hamlet, queue)[-1]
    assert last == {
        "type": "user_status",
        "user_id": hamlet.id,
        "status_text": "in a meeting",
        "id": last["id"],
    }
    assert_error(
        harness.post("/users/me/status", hamlet), 400, "Client did not pass any new values."
    )
    assert_error(
        harness.post("/users/me/status", hamlet, status_text="x" * 61),
        400,
        "status_text is too long (limit: 60 characters)",
    )


def test_realm_switch(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Spec 5.2: no data from the realm endpoints, the single-user one still answers."""
    hamlet, othello = zulip_realm["hamlet"], zulip_realm["othello"]
    harness.presence(othello, "active")
    harness.run(harness.server.store.set_realm_presence_disabled, hamlet.user.realm_id, True)
    assert harness.presence(hamlet, "active", last_update_id=3) == {
        "result": "success",
        "msg": "",
        "server_timestamp": harness.clock(),
        "presences": {},
        "presence_last_update_id": -1,
    }
    assert harness.get("/realm/presence", hamlet).json()["presences"] == {}
    state = register(harness, hamlet)
    assert state["presences"] == {}
    assert state["presence_last_update_id"] == -1
    assert state["realm_presence_disabled"] is True
    single = harness.get(f"/users/{othello.id}/presence", hamlet).json()
    assert single["presence"]["aggregated"]["status"] == "active"
    assert times(harness, hamlet) is not None


@pytest.fixture
def guest_realm(
    make_harness: Callable[..., Harness],
) -> Callable[[bool], tuple[Harness, dict[str, Account]]]:
    def make(limits: bool) -> tuple[Harness, dict[str, Account]]:
        harness = make_harness(
            can_access_all_users_group_limits_presence=limits, event_queue_heartbeat_secs=0.2
        )
        realm = harness.realm()
        harness.run(harness.server.store.set_realm_access_group, realm.id, "members")
        people = {
            "hamlet": harness.account("hamlet@zulip.com"),
            "othello": harness.account("othello@zulip.com"),
            "polonius": harness.account("polonius@zulip.com", role=Role.GUEST),
        }
        channel = harness.run(harness.server.store.create_channel, realm.id, "Verona", "", 0.0)
        for name in ("hamlet", "polonius"):
            harness.run(harness.server.store.subscribe, channel.id, people[name].id)
        return harness, people

    return make


def test_guest_listings_with_limits(
    guest_realm: Callable[[bool], tuple[Harness, dict[str, Account]]],
) -> None:
    """Scenarios 20 and 27, guest parts, with the server setting on."""
    harness, people = guest_realm(True)
    hamlet, othello, polonius = people["hamlet"], people["othello"], people["polonius"]
    harness.presence(othello, "active")
    harness.presence(hamlet, "idle")
    assert set(harness.get("/realm/presence", polonius).json()["presences"]) == {hamlet.email}
    body = harness.presence(polonius, "idle")
    assert set(body["presences"]) == {hamlet.email, polonius.email}
    modern = harness.presence(polonius, "idle", last_update_id=-1)
    assert set(modern["presences"]) == {str(hamlet.id), str(polonius.id)}
    assert modern["presence_last_update_id"] == 3
    assert_error(
        harness.get(f"/users/{othello.id}/presence", polonius), 400, "Insufficient permission"
    )
    assert harness.get(f"/users/{hamlet.id}/presence", polonius).status_code == 200
    # Members see everyone.
    assert len(harness.get("/realm/presence", othello).json()["presences"]) == 3


def test_guest_listings_without_limits(
    guest_realm: Callable[[bool], tuple[Harness, dict[str, Account]]],
) -> None:
    harness, people = guest_realm(False)
    hamlet, othello, polonius = people["hamlet"], people["othello"], people["polonius"]
    harness.presence(othello, "active")
    harness.presence(hamlet, "idle")
    assert set(harness.get("/realm/presence", polonius).json()["presences"]) == {
        hamlet.email,
        othello.email,
    }
    body = harness.presence(polonius, "idle")
    assert set(body["presences"]) == {hamlet.email, polonius.email, othello.email}
    single = harness.get(f"/users/{othello.id}/presence", polonius).json()
    assert set(single["presence"]) == {"website", "aggregated"}
    assert set(single["presence"]["website"]) == {"status", "timestamp"}


def test_guest_events(guest_realm: Callable[[bool], tuple[Harness, dict[str, Account]]]) -> None:
    for limits in (True, False):
        harness, people = guest_realm(limits)
        hamlet, othello, polonius = people["hamlet"], people["othello"], people["polonius"]
        queue = register(harness, polonius)
        harness.presence(othello, "active")
        harness.presence(hamlet, "active")
        seen = [e["user_id"] for e in pending(harness, polonius, queue)]
        assert seen == ([hamlet.id] if limits else [othello.id, hamlet.id])
        # user_status events are always limited to those who may see the user.
        response = harness.post("/users/me/status", othello, status_text="busy")
        assert response.status_code == 200
        assert [e["type"] for e in pending(harness, polonius, queue)].count("user_status") == 0


def test_membership_changes_apply_at_once(
    guest_realm: Callable[[bool], tuple[Harness, dict[str, Account]]],
) -> None:
    harness, people = guest_realm(True)
    othello, polonius = people["othello"], people["polonius"]
    harness.presence(othello, "active")
    store = harness.server.store
    channel = harness.run(store.get_channel_by_name, polonius.user.realm_id, "verona")
    assert channel is not None
    harness.run(store.subscribe, channel.id, othello.id)
    assert othello.email in harness.get("/realm/presence", polonius).json()["presences"]
    harness.run(store.unsubscribe, channel.id, othello.id)
    assert othello.email not in harness.get("/realm/presence", polonius).json()["presences"]
    harness.run(store.set_realm_access_group, polonius.user.realm_id, "everyone")
    assert othello.email in harness.get("/realm/presence", polonius).json()["presences"]


def test_subscriptions_and_streams(
    guest_realm: Callable[[bool], tuple[Harness, dict[str, Account]]],
) -> None:
    harness, people = guest_realm(True)
    subs = harness.get("/users/me/subscriptions", people["polonius"], include_subscribers=True)
    [verona] = subs.json()["subscriptions"]
    assert verona["name"] == "Verona"
    assert set(verona["subscribers"]) == {people["hamlet"].id, people["polonius"].id}
    assert harness.get("/users/me/subscriptions", people["othello"]).json()["subscriptions"] == []
    streams = harness.get("/streams", people["othello"]).json()["streams"]
    assert [s["name"] for s in streams] == ["Verona"]


def test_limited_guests_user_lists_and_statuses(
    guest_realm: Callable[[bool], tuple[Harness, dict[str, Account]]],
) -> None:
    """A guest who may not see everyone is not shown the others in user lists or statuses,
    whatever the presence setting (that is Zulip's user access rule)."""
    for limits in (True, False):
        harness, people = guest_realm(limits)
        hamlet, othello, polonius = people["hamlet"], people["othello"], people["polonius"]
        for account in (hamlet, othello):
            response = harness.post("/users/me/status", account, status_text="busy")
            assert response.status_code == 200
        set_presence_enabled(harness, othello, False)
        state = register(harness, polonius, fetch_event_types=["realm_user", "user_status"])
        assert {u["email"] for u in state["realm_users"]} == {hamlet.email, polonius.email}
        assert set(state["user_status"]) == {str(hamlet.id)}
        members = harness.get("/users", polonius).json()["members"]
        assert {m["email"] for m in members} == {hamlet.email, polonius.email}
        assert_error(harness.get(f"/users/{othello.id}", polonius), 400, "Insufficient permission")
        # Members see everyone, and an invisible user's status says away.
        state = register(harness, hamlet, fetch_event_types=["user_status"])
        assert state["user_status"] == {
            str(hamlet.id): {"status_text": "busy"},
            str(othello.id): {"away": True, "status_text": "busy"},
        }


def test_away_without_status_text_is_listed(harness: Harness) -> None:
    hamlet, othello = harness.account("hamlet@zulip.com"), harness.account("othello@zulip.com")
    assert harness.post("/users/me/status", othello, away=True).status_code == 200
    state = register(harness, hamlet, fetch_event_types=["user_status"])
    assert state["user_status"] == {str(othello.id): {"away": True}}


def test_bots_may_not_change_settings_or_status(harness: Harness) -> None:
    from presenced.store.base import BotType

    bot = harness.account("bot@zulip.com", bot_type=BotType.GENERIC)
    response = harness.request(
        "PATCH", "/settings", account=bot, data={"presence_enabled": "false"}
    )
    assert_error(response, 400, "This endpoint does not accept bot requests.")
    response = harness.post("/users/me/status", bot, status_text="beep")
    assert_error(response, 400, "This endpoint does not accept bot requests.")
