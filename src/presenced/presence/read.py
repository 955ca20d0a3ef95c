"""The realm read (spec 2.5): the history window, and the id a reader is told to come back with.

Which entries match is decided by :mod:`presenced.presence.index`.
"""

from __future__ import annotations

import datetime

NO_UPDATE_ID = -1


HISTORY_DAYS_MIN = -2_500_000
HISTORY_DAYS_MAX = 700_000
"""The ``history_limit_days`` accepted: fixed bounds (so that the API document can state them)
that keep the window inside the calendar (years 1 to 9999) for the next century and more."""


class HistoryWindowError(ValueError):
    """``history_limit_days`` puts the window outside the calendar (years 1 to 9999)."""


def valid_history_days(history_days: int) -> bool:
    return HISTORY_DAYS_MIN <= history_days <= HISTORY_DAYS_MAX


def window_start(now: float, history_days: int) -> float:
    """``now`` minus ``history_days`` days, refusing dates the calendar cannot hold."""
    if not valid_history_days(history_days):
        raise HistoryWindowError(history_days)
    try:
        now_dt = datetime.datetime.fromtimestamp(now, tz=datetime.UTC)
        since = now_dt - datetime.timedelta(days=history_days)
    except (OverflowError, ValueError):
        raise HistoryWindowError(history_days) from None
    return since.timestamp()


def last_update_id(newest: int | None, cursor: int | None) -> int:
    """The newest id among the rows returned; else the cursor echoed back; else -1."""
    if newest is not None:
        return newest
    return NO_UPDATE_ID if cursor is None else cursor
