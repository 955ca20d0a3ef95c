"""Zulip's presence test scenarios (spec 7.1), through HTTP against the real app."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from conftest import DAY, Account, Harness, assert_error
from presenced.presence import rules
from presenced.store.base import ActivityInterval, PresenceTimes


def test_date_logic_window_and_formats(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 2: empty realm, then one entry; one week old stays, three weeks old goes."""
    hamlet, bot = zulip_realm["hamlet"], zulip_realm["bot"]
    assert harness.get("/realm/presence", bot).json()["presences"] == {}

    legacy = harness.presence(hamlet, "active")
    assert set(legacy["presences"]) == {hamlet.email}
    assert legacy["presences"][hamlet.email]["website"]["status"] == "active"
    sequence = harness.run(harness.server.store.realm_presence_sequence, hamlet.user.realm_id)
    assert legacy["presence_last_update_id"] == sequence
    modern = harness.presence(hamlet, "active", slim_presence=True)
    assert set(modern["presences"][str(hamlet.id)]) == {"active_timestamp", "idle_timestamp"}

    now = harness.clock()
    harness.set_times(hamlet, now - 7 * DAY, now - 7 * DAY)
    assert set(harness.get("/realm/presence", bot).json()["presences"]) == {hamlet.email}
    harness.set_times(hamlet, now - 21 * DAY, now - 21 * DAY)
    assert harness.get("/realm/presence", bot).json()["presences"] == {}


def test_null_times_fall_back_to_date_joined(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    """Scenarios 2 (end) and 17: NULL times read as date_joined; listings skip them."""
    hamlet, bot = zulip_realm["hamlet"], zulip_realm["bot"]
    othello = harness.account("othello2@zulip.com", date_joined=harness.clock() - DAY)
    cursor = harness.presence(hamlet, "idle", last_update_id=-1)["presence_last_update_id"]
    harness.set_times(othello, None, None)
    single = harness.get(f"/users/{othello.id}/presence", hamlet).json()
    assert single["presence"]["website"]["timestamp"] == int(harness.clock() - DAY)
    assert set(harness.get("/realm/presence", bot).json()["presences"]) == {hamlet.email}
    # A first fetch (cursor <= 0) applies the window, which NULL fails; an incremental one not.
    assert str(othello.id) not in harness.presence(hamlet, "idle", last_update_id=0)["presences"]
    incremental = harness.presence(hamlet, "idle", last_update_id=cursor)
    assert set(incremental["presences"]) == {str(othello.id)}
    assert incremental["presences"][str(othello.id)] == {
        "active_timestamp": int(harness.clock() - DAY),
        "idle_timestamp": int(harness.clock() - DAY),
    }

    now = harness.clock()
    harness.set_times(othello, now, now)
    assert othello.email in harness.get("/realm/presence", bot).json()["presences"]


def test_concurrent_first_reports_create_one_row(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    """Scenario 3: racing first reports all succeed; exactly one row, one sequence value."""
    hamlet = zulip_realm["hamlet"]
    realm_id = hamlet.user.realm_id
    before = harness.run(harness.server.store.realm_presence_sequence, realm_id)
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(
                lambda _: harness.post("/users/me/presence", hamlet, status="active"), range(16)
            )
        )
    assert all(r.status_code == 200 for r in responses)
    after = harness.run(harness.server.store.realm_presence_sequence, realm_id)
    assert after == before + 1
    row = harness.presence_row(hamlet)
    assert row is not None and row.last_update_id == after


def test_last_update_id_logic(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 4: the cursor returns only what changed and echoes itself when nothing did."""
    hamlet, iago = zulip_realm["hamlet"], zulip_realm["iago"]
    first = harness.presence(hamlet, "active", last_update_id=-1)
    assert set(first["presences"]) == {str(hamlet.id)}
    top = first["presence_last_update_id"]
    assert top == harness.run(harness.server.store.realm_presence_sequence, hamlet.user.realm_id)
    again = harness.presence(hamlet, "active", last_update_id=top)
    assert again["presences"] == {}
    assert again["presence_last_update_id"] == top
    after_iago = harness.presence(iago, "active", last_update_id=top)
    assert set(after_iago["presences"]) == {str(iago.id)}
    assert after_iago["presence_last_update_id"] == top + 1


def test_pushable_always_false(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 5."""
    body = harness.presence(zulip_realm["hamlet"], "active")
    assert body["presences"][zulip_realm["hamlet"].email]["website"]["pushable"] is False


def test_invalid_status(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 6, and the status value being checked case-sensitively and unquoted."""
    hamlet = zulip_realm["hamlet"]
    for status in ("foo", "", "Active", "offline", '"active"'):
        response = harness.post("/users/me/presence", hamlet, status=status)
        assert_error(response, 400, f"Invalid status: {status}")
    assert harness.presence_row(hamlet) is None


def test_history_limit_days(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 7."""
    hamlet, othello, iago = zulip_realm["hamlet"], zulip_realm["othello"], zulip_realm["iago"]
    harness.presence(hamlet, "idle", last_update_id=-1)
    harness.presence(othello, "idle", last_update_id=-1)
    row = harness.presence_row(othello)
    assert row is not None
    harness.set_times(othello, row.last_active_time, harness.clock() - 100 * DAY)

    def keys(days: int) -> set[str]:
        body = harness.presence(iago, "idle", last_update_id=-1, history_limit_days=days)
        return set(body["presences"])

    assert keys(50) == {str(hamlet.id), str(iago.id)}
    assert keys(101) == {str(hamlet.id), str(iago.id), str(othello.id)}
    assert keys(0) == set()


def test_last_update_id_api(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 8."""
    hamlet, othello = zulip_realm["hamlet"], zulip_realm["othello"]
    body = harness.presence(hamlet, "idle", last_update_id=-1)
    assert set(body["presences"]) == {str(hamlet.id)}
    top = body["presence_last_update_id"]
    legacy = harness.presence(hamlet, "idle", slim_presence=False)
    assert legacy["presence_last_update_id"] == top
    assert set(legacy["presences"]) == {hamlet.email}

    body = harness.presence(othello, "idle", last_update_id=-1)
    assert set(body["presences"]) == {str(hamlet.id), str(othello.id)}
    assert body["presence_last_update_id"] == top + 1
    body = harness.presence(othello, "idle", last_update_id=top + 1)
    assert body == {
        "result": "success",
        "msg": "",
        "server_timestamp": body["server_timestamp"],
        "presences": {},
        "presence_last_update_id": top + 1,
    }
    # hamlet has only been idle (no last-active time), so this report writes at once.
    harness.presence(hamlet, "active", last_update_id=-1, ping_only=True)
    assert harness.run(harness.server.store.realm_presence_sequence, hamlet.user.realm_id) == (
        top + 2
    )
    body = harness.presence(othello, "idle", last_update_id=top + 1)
    assert set(body["presences"]) == {str(hamlet.id)}
    assert body["presence_last_update_id"] == top + 2


def test_no_data_edge_cases(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 9: nothing written (the caller is invisible) and nothing to read."""
    hamlet = zulip_realm["hamlet"]
    harness.run(harness.server.store.set_presence_enabled, hamlet.id, False)
    body = harness.presence(hamlet, "idle", last_update_id=-1)
    assert body["presences"] == {}
    assert body["presence_last_update_id"] == -1
    body = harness.presence(hamlet, "idle")
    assert body["presences"] == {}
    assert body["presence_last_update_id"] == -1
    assert harness.presence_row(hamlet) is None


def test_set_idle(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 10."""
    hamlet, othello = zulip_realm["hamlet"], zulip_realm["othello"]
    body = harness.presence(hamlet, "idle")
    assert set(body["presences"]) == {hamlet.email}
    entry = body["presences"][hamlet.email]["website"]
    assert isinstance(entry["timestamp"], int)
    harness.clock.advance(100)  # hamlet was created now: his NULL active time reads as joined
    body = harness.presence(hamlet, "idle")
    harness.clock.advance(1)
    body = harness.presence(othello, "idle", slim_presence=True)
    assert set(body["presences"]) == {str(hamlet.id), str(othello.id)}
    for entry in body["presences"].values():
        assert set(entry) == {"idle_timestamp", "active_timestamp"}
    assert (
        body["presences"][str(othello.id)]["idle_timestamp"]
        >= body["presences"][str(hamlet.id)]["idle_timestamp"]
    )


def test_set_active(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 11."""
    hamlet, othello = zulip_realm["hamlet"], zulip_realm["othello"]
    harness.clock.advance(100)  # past the 70 s in which date_joined makes idle read as active
    body = harness.presence(hamlet, "idle")
    assert body["presences"][hamlet.email]["website"]["status"] == "idle"
    body = harness.presence(othello, "idle")
    assert {v["website"]["status"] for v in body["presences"].values()} == {"idle"}
    body = harness.presence(othello, "active")
    assert body["presences"][othello.email]["website"]["status"] == "active"
    assert body["presences"][hamlet.email]["website"]["status"] == "idle"
    harness.clock.advance(1)
    body = harness.presence(hamlet, "active", slim_presence=True)
    presences = body["presences"]
    assert set(presences) == {str(hamlet.id), str(othello.id)}
    assert (
        presences[str(hamlet.id)]["active_timestamp"]
        >= presences[str(othello.id)]["active_timestamp"]
    )


def stored_intervals(harness: Harness, user: Account) -> list[ActivityInterval]:
    """The user's intervals once the coalesced extensions are written."""
    harness.run(harness.server.activity.flush)
    return harness.run(harness.server.store.activity_intervals, user.id)


def test_new_user_input_intervals(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 12: a 15-minute interval, extended while open, a new one after a gap."""
    hamlet = zulip_realm["hamlet"]
    t0 = harness.clock()
    harness.presence(hamlet, "active", new_user_input=True)
    intervals = stored_intervals(harness, hamlet)
    assert intervals == [ActivityInterval(t0, t0 + 900)]
    harness.clock.advance(600)
    harness.presence(hamlet, "active", new_user_input=True)
    intervals = stored_intervals(harness, hamlet)
    assert intervals == [ActivityInterval(t0, t0 + 600 + 900)]
    harness.clock.advance(5400)
    harness.presence(hamlet, "idle", new_user_input=True)
    intervals = stored_intervals(harness, hamlet)
    assert intervals == [
        ActivityInterval(t0, t0 + 1500),
        ActivityInterval(t0 + 6000, t0 + 6000 + 900),
    ]
    harness.presence(hamlet, "idle", new_user_input=False)
    assert len(stored_intervals(harness, hamlet)) == 2


def test_interval_extensions_are_coalesced(
    make_harness: Callable[..., Harness],
) -> None:
    """An extension waits in memory (no writer round trip), several reports make one write,
    and closing the server writes what is pending; with a flush interval of 0 every report
    writes, as in Zulip."""
    harness = make_harness(activity_interval_flush_secs=30)
    hamlet = harness.account("hamlet@zulip.com")
    t0 = harness.clock()
    harness.presence(hamlet, "active", new_user_input=True)
    for _ in range(5):
        harness.clock.advance(60)
        harness.presence(hamlet, "active", new_user_input=True)
    store = harness.server.store
    assert harness.run(store.activity_intervals, hamlet.id) == [ActivityInterval(t0, t0 + 900)]
    assert harness.server.activity.pending_count == 1
    harness.run(harness.server.activity.close)
    assert harness.run(store.activity_intervals, hamlet.id) == [
        ActivityInterval(t0, t0 + 300 + 900)
    ]

    direct = make_harness(activity_interval_flush_secs=0)
    othello = direct.account("othello@zulip.com")
    t1 = direct.clock()
    direct.presence(othello, "active", new_user_input=True)
    direct.clock.advance(60)
    direct.presence(othello, "active", new_user_input=True)
    assert direct.run(direct.server.store.activity_intervals, othello.id) == [
        ActivityInterval(t1, t1 + 60 + 900)
    ]


def test_email_access(harness: Harness) -> None:
    """Scenario 19: lookups use the API email, not the delivery email."""
    hamlet = harness.account("hamlet@zulip.com")
    harness.account("email@zulip.com", delivery_email="delivery_email@zulip.com")
    response = harness.get("/users/delivery_email@zulip.com/presence", hamlet)
    assert_error(response, 400, "No such user")
    response = harness.get("/users/not_even_in_realm@zulip.com/presence", hamlet)
    assert_error(response, 400, "No such user")
    response = harness.get("/users/email@zulip.com/presence", hamlet)
    assert_error(response, 400, "No presence data for email@zulip.com")


def test_single_user_get(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 20 (without guests): every error in its order, and the two-key shape."""
    othello, hamlet, cordelia = (
        zulip_realm["othello"],
        zulip_realm["hamlet"],
        zulip_realm["cordelia"],
    )
    harness.presence(othello, "active")
    harness.presence(othello, "idle")
    other = harness.account("zephyr@mit.edu", realm="zephyr")

    assert_error(harness.get("/users/nonexistence@zulip.com/presence", hamlet), 400, "No such user")
    assert_error(
        harness.get("/users/cordelia@zulip.com/presence", hamlet),
        400,
        "No presence data for cordelia@zulip.com",
    )
    assert_error(
        harness.get(f"/users/{cordelia.id}/presence", hamlet),
        400,
        f"No presence data for {cordelia.id}",
    )
    harness.run(harness.server.store.set_user_active, cordelia.id, False)
    for ref in (cordelia.email, str(cordelia.id)):
        assert_error(harness.get(f"/users/{ref}/presence", hamlet), 400, "No such user")
    assert_error(
        harness.get("/users/default-bot@zulip.com/presence", hamlet),
        400,
        "Presence is not supported for bot users.",
    )
    for ref in (othello.email, str(othello.id)):
        assert_error(harness.get(f"/users/{ref}/presence", other), 400, "No such user")
    for ref in (othello.email, str(othello.id), f" {othello.id} ", othello.email.upper()):
        body = harness.get(f"/users/{ref}/presence", hamlet).json()
        assert set(body["presence"]) == {"website", "aggregated"}
        assert set(body["presence"]["website"]) == {"status", "timestamp"}
        assert set(body["presence"]["aggregated"]) == {"status", "timestamp"}


def test_single_user_bots_may_ask_and_slim(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    othello = zulip_realm["othello"]
    harness.presence(othello, "active")
    body = harness.get(f"/users/{othello.id}/presence", zulip_realm["bot"]).json()
    assert body["presence"]["aggregated"]["status"] == "active"
    slim = harness.get(f"/users/{othello.id}/presence", othello, slim_presence=True).json()
    now = int(harness.clock())
    assert slim["presence"] == {"active_timestamp": now, "idle_timestamp": now}
    assert "ignored_parameters_unsupported" not in slim


def test_ping_only(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 21."""
    body = harness.presence(zulip_realm["hamlet"], "active", ping_only=True)
    assert body == {"result": "success", "msg": ""}
    assert harness.presence_row(zulip_realm["hamlet"]) is not None


def _aggregation_helper(harness: Harness, account: Account, status: str) -> float:
    """Reports at V-365d, V-5s, V-2s, V-7s (V = now); returns V."""
    v = harness.clock()
    for offset in (-365 * DAY, -5, -2, -7):
        harness.clock.now = v + offset
        body = harness.presence(account, status)
    harness.clock.now = v
    assert body["presences"][account.email]["aggregated"] == {
        "status": status,
        "timestamp": int(v - 5),
        "client": "website",
    }
    return v


def test_aggregated_info(make_harness: object) -> None:
    """Scenario 22: a report 56 s after the aggregated time moves it."""
    harness: Harness = make_harness()  # type: ignore[operator]
    harness.clock.now -= 400 * DAY
    hamlet = harness.account("hamlet@zulip.com")
    harness.clock.now += 400 * DAY - 56
    v = _aggregation_helper(harness, hamlet, "active")
    harness.clock.now = v + 56
    body = harness.presence(hamlet, "active")
    assert body["presences"][hamlet.email]["aggregated"] == {
        "status": "active",
        "timestamp": int(harness.clock()),
        "client": "website",
    }


def test_aggregated_presence_states(make_harness: object) -> None:
    """Scenarios 23-26: active, idle, mixed and offline aggregates of the single-user GET."""
    for status, late_active, later, expected in (
        ("active", False, 0, ("active", -5)),
        ("idle", False, 0, ("idle", -5)),
        ("idle", True, 0, ("active", -3)),
        ("idle", False, 201, ("offline", -5)),
    ):
        harness: Harness = make_harness()  # type: ignore[operator]
        harness.clock.now -= 400 * DAY
        user = harness.account("user@zulip.com")
        harness.clock.now += 400 * DAY
        v = _aggregation_helper(harness, user, status)
        if late_active:
            harness.clock.now = v - 3
            harness.presence(user, "active")
        harness.clock.now = v + later
        body = harness.get(f"/users/{user.email}/presence", user).json()
        assert body["presence"]["aggregated"] == {
            "status": expected[0],
            "timestamp": int(v + expected[1]),
        }


def test_get_statuses(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 27 (without guests)."""
    othello, hamlet = zulip_realm["othello"], zulip_realm["hamlet"]
    body = harness.presence(othello, "active")
    body = harness.presence(hamlet, "idle")
    assert set(body["presences"]) == {hamlet.email, othello.email}
    body = harness.presence(hamlet, "active", slim_presence=True)
    assert set(body["presences"]) == {str(hamlet.id), str(othello.id)}
    body = harness.get("/realm/presence", zulip_realm["bot"]).json()
    assert set(body["presences"]) == {hamlet.email, othello.email}
    assert "presence_last_update_id" not in body
    assert isinstance(body["server_timestamp"], float)


def test_bots_and_deactivated_users_are_never_listed(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    hamlet, othello = zulip_realm["hamlet"], zulip_realm["othello"]
    harness.presence(hamlet, "active")
    harness.presence(othello, "active")
    harness.run(harness.server.store.set_user_active, othello.id, False)
    body = harness.presence(hamlet, "active", last_update_id=-1)
    assert set(body["presences"]) == {str(hamlet.id)}


def test_realms_are_separate(harness: Harness) -> None:
    """Scenario 16: another realm's presence never appears."""
    hamlet = harness.account("hamlet@zulip.com")
    outsider = harness.account("starnine@mit.edu", realm="zephyr")
    harness.presence(outsider, "active")
    body = harness.presence(hamlet, "idle")
    assert set(body["presences"]) == {hamlet.email}
    body = harness.presence(outsider, "active", last_update_id=-1)
    assert set(body["presences"]) == {str(outsider.id)}
    assert body["presence_last_update_id"] == 1


def test_presence_disabled_realm(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 14: a realm with presence disabled gets nothing back, writes still happen."""
    hamlet = zulip_realm["hamlet"]
    harness.run(harness.server.store.set_realm_presence_disabled, hamlet.user.realm_id, True)
    body = harness.presence(hamlet, "idle", last_update_id=5)
    assert body["presences"] == {}
    assert body["presence_last_update_id"] == -1
    assert harness.get("/realm/presence", hamlet).json()["presences"] == {}
    assert harness.presence_row(hamlet) is not None
    body = harness.get(f"/users/{hamlet.id}/presence", hamlet).json()
    assert body["presence"]["website"]["timestamp"] == int(harness.clock())


def test_idle_for_notifications(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Scenario 13: no row, an idle-only row, a fresh active report, 201 s later, idle again."""
    hamlet = zulip_realm["hamlet"]

    def idle() -> bool:
        row = harness.presence_row(hamlet)
        times = (
            None if row is None else PresenceTimes(row.last_active_time, row.last_connected_time)
        )
        return rules.idle_for_notifications(
            times, now=harness.clock(), offline_threshold=harness.settings.offline_threshold_secs
        )

    assert idle()
    harness.presence(hamlet, "idle", ping_only=True)
    assert idle()
    harness.presence(hamlet, "active", ping_only=True)
    assert not idle()
    harness.clock.advance(201)
    assert idle()
    harness.presence(hamlet, "idle", ping_only=True)
    assert idle()
    response = harness.request(
        "POST",
        "/users/me/presence",
        account=hamlet,
        data={"status": "active"},
        headers={"User-Agent": "ZulipAndroid/1.0"},
    )
    assert response.status_code == 200
    assert not idle()
