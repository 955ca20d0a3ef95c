"""When a report changes the stored times (Zulip's write algorithm, spec 2.4 and 1.4)."""

from __future__ import annotations

from presenced.store.base import ActivityInterval, PresenceTimes, PresenceWrite

NULL_AGE_SECS = 86400.0
"""A NULL stored time counts as one day old."""

ACTIVITY_INTERVAL_SECS = 15 * 60
"""Zulip's UserActivityInterval.MIN_INTERVAL_LENGTH."""


def decide_report(
    current: PresenceTimes | None,
    *,
    active: bool,
    now: float,
    min_write_interval: float,
    became_online_after: float,
) -> PresenceWrite:
    """Apply one ``active``/``idle`` report at ``now`` to the stored times.

    A stored time moves only when the report is strictly more than ``min_write_interval``
    newer; an active report also raises last-connected to at least the new last-active.
    """
    if current is None:
        times = PresenceTimes(now if active else None, now)
        return PresenceWrite(times=times, write=True, became_online=False)
    active_time = current.last_active_time
    connected_time = current.last_connected_time
    since_active = NULL_AGE_SECS if active_time is None else now - active_time
    since_connected = NULL_AGE_SECS if connected_time is None else now - connected_time
    new_active, new_connected = active_time, connected_time
    if since_connected > min_write_interval:
        new_connected = now
    if active and since_active > min_write_interval:
        new_active = now
        if new_connected is None or now > new_connected:
            new_connected = now
    changed = new_active != active_time or new_connected != connected_time
    return PresenceWrite(
        times=PresenceTimes(new_active, new_connected),
        write=changed,
        became_online=active and since_active > became_online_after,
    )


def extend_activity(latest: ActivityInterval | None, now: float) -> tuple[bool, ActivityInterval]:
    """Record user input at ``now``: extend the latest interval if it is still open, else start one.

    Returns (True, the extended interval) or (False, a new interval to add).
    """
    end = now + ACTIVITY_INTERVAL_SECS
    if latest is not None and now <= latest.end and end >= latest.start:
        return True, ActivityInterval(min(latest.start, now), max(latest.end, end))
    return False, ActivityInterval(now, end)


def idle_for_notifications(
    times: PresenceTimes | None, *, now: float, offline_threshold: float
) -> bool:
    """Whether a user counts as away for message notifications (Zulip's
    ``filter_presence_idle_user_ids``): unless they were active within the offline threshold."""
    if times is None or times.last_active_time is None:
        return True
    return times.last_active_time < now - offline_threshold
