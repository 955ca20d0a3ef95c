"""Property-based tests of the presence rules and of the cursor protocol."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Account, Harness
from presenced.presence import formats, rules
from presenced.store.base import PresenceTimes

MIN = 55.0
ONLINE = 130.0

times = st.one_of(st.none(), st.floats(min_value=0, max_value=10_000, allow_nan=False))


@given(
    active=times,
    connected=times,
    status=st.booleans(),
    now=st.floats(min_value=0, max_value=20_000, allow_nan=False),
)
def test_report_rule(
    active: float | None, connected: float | None, status: bool, now: float
) -> None:
    current = PresenceTimes(active, connected)
    decision = rules.decide_report(
        current, active=status, now=now, min_write_interval=MIN, became_online_after=ONLINE
    )
    new = decision.times
    # A write happens exactly when a time changed, and only ever to ``now``.
    assert decision.write == (new != current)
    for before, after in ((active, new.last_active_time), (connected, new.last_connected_time)):
        assert after in (before, now)
    # last-active moves only when the report is more than MIN newer (NULL counts as old) ...
    if new.last_active_time != active:
        assert active is None or now - active > MIN
    # ... and last-connected too, unless it is being raised to a newly advanced last-active.
    if new.last_connected_time != connected and new.last_active_time == active:
        assert connected is None or now - connected > MIN
    # Idle reports never touch last-active.
    if not status:
        assert new.last_active_time == active
    # An advanced last-active drags last-connected up to it.
    if new.last_active_time != active:
        assert new.last_connected_time is not None and new.last_connected_time >= now
    age = rules.NULL_AGE_SECS if active is None else now - active
    assert decision.became_online == (status and age > ONLINE)


@given(status=st.booleans(), now=st.floats(min_value=0, max_value=1e10, allow_nan=False))
def test_first_report_creates_a_row(status: bool, now: float) -> None:
    decision = rules.decide_report(
        None, active=status, now=now, min_write_interval=MIN, became_online_after=ONLINE
    )
    assert decision.write
    assert decision.times == PresenceTimes(now if status else None, now)


@given(
    reports=st.lists(
        st.tuples(st.booleans(), st.floats(min_value=0, max_value=600, allow_nan=False)),
        max_size=30,
    )
)
def test_times_only_move_forward_and_connected_follows_active(
    reports: list[tuple[bool, float]],
) -> None:
    current: PresenceTimes | None = None
    now = 1000.0
    for status, gap in reports:
        now += gap
        decision = rules.decide_report(
            current, active=status, now=now, min_write_interval=MIN, became_online_after=ONLINE
        )
        new = decision.times
        if current is not None:
            for before, after in (
                (current.last_active_time, new.last_active_time),
                (current.last_connected_time, new.last_connected_time),
            ):
                assert before is None or (after is not None and after >= before)
        if new.last_active_time is not None:
            assert new.last_connected_time is not None
            assert new.last_connected_time >= new.last_active_time
        current = new


@given(
    active=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    delta=st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
)
def test_legacy_status_rule(active: float, delta: float) -> None:
    status, ts = formats.legacy_status(active, active + delta, 0.0, 70)
    if active + 70 >= active + delta:
        assert (status, ts) == ("active", int(active))
    else:
        assert (status, ts) == ("idle", int(active + delta))


# The cursor protocol, end to end.

step = st.one_of(
    st.tuples(
        st.just("report"),
        st.integers(0, 3),
        st.sampled_from(["active", "idle"]),
        st.sampled_from([0.0, 1.0, 30.0, 56.0, 131.0, 600.0]),
    ),
    st.tuples(st.just("poll"), st.integers(0, 3), st.just(""), st.just(0.0)),
)
realm_counter = itertools.count()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_cursor_protocol_returns_every_change_once(
    harness: Harness, steps: list[tuple[str, int, str, float]]
) -> None:
    """Followers that poll with their cursor see each write exactly once, in order, and end
    with the same view as a full fetch; the cursor they are given never goes backwards."""
    subdomain = f"prop{next(realm_counter)}"
    users = [harness.account(f"user{i}@example.com", realm=subdomain) for i in range(4)]
    observer = harness.account("observer@example.com", realm=subdomain)
    harness.run(harness.server.store.set_presence_enabled, observer.id, False)
    observer = harness.refresh(observer)
    views: list[dict[str, Any]] = [{} for _ in users]
    cursors = [-1 for _ in users]
    seen_ids: list[set[int]] = [set() for _ in users]

    def sequence() -> int:
        return harness.run(harness.server.store.realm_presence_sequence, observer.user.realm_id)

    def poll(index: int, account: Account, status: str) -> None:
        body = harness.presence(account, status, last_update_id=cursors[index])
        assert body["presence_last_update_id"] >= cursors[index]
        for user_id, entry in body["presences"].items():
            row = harness.run(harness.server.store.get_presence, int(user_id))
            assert row is not None
            assert row.last_update_id > cursors[index]
            assert row.last_update_id not in seen_ids[index]
            seen_ids[index].add(row.last_update_id)
            views[index][user_id] = entry
        cursors[index] = body["presence_last_update_id"]
        assert cursors[index] <= sequence()

    for kind, index, status, gap in steps:
        harness.clock.advance(gap)
        if kind == "report":
            harness.presence(users[index], status, ping_only=True)
        else:
            poll(index, users[index], "idle")

    full = harness.presence(observer, "idle", last_update_id=-1, history_limit_days=3650)
    for index, user in enumerate(users):
        poll(index, user, "idle")
        # Each follower's own final poll may have written its row; a full fetch now agrees.
        full = harness.presence(observer, "idle", last_update_id=-1, history_limit_days=3650)
        for user_id, entry in full["presences"].items():
            row = harness.run(harness.server.store.get_presence, int(user_id))
            assert row is not None
            if row.last_update_id <= cursors[index]:
                assert views[index][user_id] == entry
    assert full["presence_last_update_id"] == sequence()
