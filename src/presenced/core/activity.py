"""Activity intervals (``new_user_input``) without a write per report.

Zulip extends the user's latest 15-minute interval on every report with user input, one write
each. Here an extension is decided from memory and written later, in one transaction with the
other pending extensions, at most ``activity_interval_flush_secs`` (30 s; at most 60 s) after
it was reported: the stored end lags Zulip's by at most that long, and a ``kill -9`` loses at
most that much of an interval's tail. A report that starts a new interval still goes through
the writer with the presence write, as before. Several processes may extend one interval: the
store keeps the later end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

from presenced.presence import rules
from presenced.store.base import ActivityExtension, ActivityInterval, IntervalRule, Store

logger = logging.getLogger("presenced.activity")

MAX_KNOWN_USERS = 200_000
"""Past this many cached intervals, the ones already closed are forgotten."""


class ActivityIntervals:
    def __init__(self, store: Store, flush_secs: float) -> None:
        self.store = store
        self.flush_secs = flush_secs
        self._known: dict[int, ActivityInterval] = {}
        """Each user's latest interval as this process last saw or extended it."""
        self._pending: dict[tuple[int, float], ActivityInterval] = {}
        """Extensions not yet written, by (user id, stored start time)."""
        self._flusher: asyncio.Task[None] | None = None

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    async def record(self, user_id: int, now: float) -> IntervalRule | None:
        """User input at ``now``. Returns the rule to run in the writer when the report must
        write now (a new interval, or write-through with a flush interval of 0), else None."""
        latest = self._known.get(user_id)
        if latest is None:
            latest = await self.store.latest_activity_interval(user_id)
        extend, interval = rules.extend_activity(latest, now)
        self._known[user_id] = interval
        if extend and latest is not None and self.flush_secs > 0:
            key = (user_id, latest.start)
            earlier = self._pending.get(key)
            if earlier is not None:
                interval = ActivityInterval(
                    min(earlier.start, interval.start), max(earlier.end, interval.end)
                )
            self._pending[key] = interval
            return None
        return partial(rules.extend_activity, now=now)

    async def flush(self) -> None:
        """Write every pending extension, in one transaction."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        extensions = [
            ActivityExtension(user_id, start, interval.start, interval.end)
            for (user_id, start), interval in pending.items()
        ]
        try:
            await self.store.extend_activity_intervals(extensions)
        except Exception as exc:
            for key, interval in pending.items():  # keep them for the next try
                self._pending.setdefault(key, interval)
            logger.warning("could not write %d activity intervals: %s", len(extensions), exc)
            return
        if len(self._known) > MAX_KNOWN_USERS:
            newest_end = max(interval.end for interval in self._known.values())
            cutoff = newest_end - 2 * rules.ACTIVITY_INTERVAL_SECS
            self._known = {u: i for u, i in self._known.items() if i.end >= cutoff}

    def start(self) -> None:
        if self.flush_secs > 0:
            self._flusher = asyncio.create_task(self._flush_forever())

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_secs)
            await self.flush()
