"""The realm read (spec 2.5): which rows a request gets, and the id it is told to come back with."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from presenced.presence import formats
from presenced.store.base import RealmPresenceRow, RealmRead

NO_UPDATE_ID = -1


class HistoryWindowError(ValueError):
    """``history_limit_days`` puts the window outside the calendar (years 1 to 9999)."""


def window_start(now: float, history_days: int) -> float:
    """``now`` minus ``history_days`` days, refusing dates the calendar cannot hold."""
    try:
        now_dt = datetime.datetime.fromtimestamp(now, tz=datetime.UTC)
        since = now_dt - datetime.timedelta(days=history_days)
    except (OverflowError, ValueError):
        raise HistoryWindowError(history_days) from None
    return since.timestamp()


@dataclass(frozen=True, slots=True)
class ReadPlan:
    query: RealmRead | None
    """None: nothing can match (``history_limit_days=0``)."""
    cursor: int | None


def plan_realm_read(
    realm_id: int,
    *,
    cursor: int | None,
    history_limit_days: int | None,
    default_history_days: int,
    now: float,
) -> ReadPlan:
    """Rows after the cursor; a first fetch (no cursor, or one <= 0) also within the window."""
    days = default_history_days if history_limit_days is None else history_limit_days
    since = window_start(now, days)
    if history_limit_days == 0:
        return ReadPlan(query=None, cursor=cursor)
    incremental = cursor is not None and cursor > 0
    return ReadPlan(
        query=RealmRead(
            realm_id=realm_id,
            after_update_id=cursor,
            connected_since=None if incremental else since,
        ),
        cursor=cursor,
    )


def last_update_id(rows: Sequence[RealmPresenceRow], cursor: int | None) -> int:
    """The newest id among the rows; else the cursor echoed back; else -1."""
    if rows:
        return max(row.last_update_id for row in rows)
    return NO_UPDATE_ID if cursor is None else cursor


def format_rows(
    rows: Sequence[RealmPresenceRow], *, slim: bool, activity_offset: float
) -> dict[str, Any]:
    if slim:
        return {
            str(row.user_id): formats.modern(
                row.last_active_time, row.last_connected_time, row.date_joined
            )
            for row in rows
        }
    return {
        row.email: formats.legacy(
            row.last_active_time, row.last_connected_time, row.date_joined, activity_offset
        )
        for row in rows
    }
