"""The boundary cases of spec section 4, through HTTP with a controlled clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import DAY, Account, Harness


def sequence(harness: Harness, account: Account) -> int:
    return harness.run(harness.server.store.realm_presence_sequence, account.user.realm_id)


@pytest.mark.parametrize(("gap", "writes"), [(55, False), (55.001, True), (56, True)])
def test_minimum_write_interval(
    harness: Harness, zulip_realm: dict[str, Account], gap: float, writes: bool
) -> None:
    hamlet = zulip_realm["hamlet"]
    harness.presence(hamlet, "idle", ping_only=True)
    before = sequence(harness, hamlet)
    harness.clock.advance(gap)
    harness.presence(hamlet, "idle", ping_only=True)
    assert (sequence(harness, hamlet) == before + 1) is writes
    row = harness.presence_row(hamlet)
    assert row is not None
    assert (row.last_connected_time == harness.clock()) is writes


def test_worked_timeline(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """The table of spec 2.4: which reports write, and what they store."""
    hamlet = zulip_realm["hamlet"]
    t0 = harness.clock()
    steps = [
        (0, "active", (0, 0), True),
        (30, "active", (0, 0), False),
        (60, "idle", (0, 60), True),
        (120, "active", (120, 120), True),
        (400, "active", (400, 400), True),
        (405, "idle", (400, 400), False),
    ]
    for t, status, (active, connected), writes in steps:
        harness.clock.now = t0 + t
        before = sequence(harness, hamlet)
        harness.presence(hamlet, status, ping_only=True)
        row = harness.presence_row(hamlet)
        assert row is not None
        assert (row.last_active_time, row.last_connected_time) == (t0 + active, t0 + connected)
        assert (sequence(harness, hamlet) > before) is writes, t


def test_older_report_never_moves_times_back(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    hamlet = zulip_realm["hamlet"]
    harness.presence(hamlet, "active", ping_only=True)
    harness.clock.advance(-3600)
    harness.presence(hamlet, "active", ping_only=True)
    row = harness.presence_row(hamlet)
    assert row is not None and row.last_active_time == harness.clock() + 3600


@pytest.mark.parametrize(("gap", "status"), [(70, "active"), (71, "idle")])
def test_legacy_activity_offset(
    harness: Harness, zulip_realm: dict[str, Account], gap: int, status: str
) -> None:
    hamlet = zulip_realm["hamlet"]
    now = harness.clock()
    harness.set_times(hamlet, now - gap, now)
    entry = harness.get("/realm/presence", hamlet).json()["presences"][hamlet.email]
    expected_ts = int(now - gap) if status == "active" else int(now)
    assert entry["website"] == {
        "client": "website",
        "status": status,
        "timestamp": expected_ts,
        "pushable": False,
    }
    assert entry["aggregated"] == {"client": "website", "status": status, "timestamp": expected_ts}


@pytest.mark.parametrize(("age", "status"), [(200, "active"), (201, "offline")])
def test_single_user_offline_threshold(
    harness: Harness, zulip_realm: dict[str, Account], age: int, status: str
) -> None:
    hamlet = zulip_realm["hamlet"]
    harness.presence(hamlet, "active", ping_only=True)
    harness.clock.advance(age)
    body = harness.get(f"/users/{hamlet.id}/presence", hamlet).json()
    assert body["presence"]["aggregated"]["status"] == status
    assert body["presence"]["website"]["status"] == "active"


@pytest.mark.parametrize(("extra", "listed"), [(0.0, True), (0.5, False)])
def test_history_window_is_inclusive(
    harness: Harness, zulip_realm: dict[str, Account], extra: float, listed: bool
) -> None:
    hamlet, bot = zulip_realm["hamlet"], zulip_realm["bot"]
    now = harness.clock()
    harness.set_times(hamlet, now - 14 * DAY - extra, now - 14 * DAY - extra)
    presences = harness.get("/realm/presence", bot).json()["presences"]
    assert (hamlet.email in presences) is listed


def test_thresholds_are_settings(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(
        offline_threshold_secs=50,
        presence_ping_interval_secs=10,
        presence_update_min_freq_seconds=5,
        presence_history_days_default=1,
        presence_legacy_event_offset_for_activity_seconds=3,
    )
    hamlet = harness.account("hamlet@zulip.com")
    harness.presence(hamlet, "active", ping_only=True)
    harness.clock.advance(6)
    body = harness.presence(hamlet, "idle")
    assert body["presences"][hamlet.email]["website"]["status"] == "idle"
    harness.clock.advance(51)
    single = harness.get(f"/users/{hamlet.id}/presence", hamlet).json()
    assert single["presence"]["aggregated"]["status"] == "offline"
    harness.clock.advance(DAY)
    assert harness.get("/realm/presence", hamlet).json()["presences"] == {}
