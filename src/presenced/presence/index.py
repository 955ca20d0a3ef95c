"""The in-memory realm index: every presence entry of a realm, ordered by ``last_update_id``,
with its JSON pre-encoded in both formats.

A read with a cursor walks only the entries changed since the cursor (a bisect into the update
order); a first fetch walks the realm once and is cached until something changes. Responses are
built by joining the pre-encoded fragments, never by building and encoding dicts. No I/O here:
the caller feeds entries in (from its own writes, and from the store to catch up with others).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import orjson

from presenced.presence import formats
from presenced.presence.blocks import Block, JoinedJson, Piece


@dataclass(slots=True)
class Entry:
    user_id: int
    update_id: int
    last_active_time: float | None
    last_connected_time: float | None
    modern: bytes
    """``"<user id>":{"active_timestamp":..,"idle_timestamp":..}``"""
    legacy: bytes
    """``"<email>":{"website":{..},"aggregated":{..}}``"""


def make_entry(
    user_id: int,
    email: str,
    date_joined: float,
    last_active_time: float | None,
    last_connected_time: float | None,
    update_id: int,
    activity_offset: float,
) -> Entry:
    modern = formats.modern(last_active_time, last_connected_time, date_joined)
    legacy = formats.legacy(last_active_time, last_connected_time, date_joined, activity_offset)
    return Entry(
        user_id=user_id,
        update_id=update_id,
        last_active_time=last_active_time,
        last_connected_time=last_connected_time,
        modern=b'"%d":%s' % (user_id, orjson.dumps(modern)),
        legacy=orjson.dumps(email) + b":" + orjson.dumps(legacy),
    )


class IndexRead:
    """A read's ``presences`` object (as pieces: cached blocks keep their compressed form) and
    the newest update id among the entries returned (None if there were none)."""

    __slots__ = ("joined", "last_update_id")

    def __init__(self, pieces: list[Piece], last_update_id: int | None) -> None:
        self.joined = JoinedJson(pieces)
        self.last_update_id = last_update_id

    @property
    def presences(self) -> bytes:
        """The ``presences`` object, encoded."""
        return self.joined.encoded


def _object(fragments: list[bytes], newest: int | None) -> IndexRead:
    return IndexRead([b"{" + b",".join(fragments) + b"}"], newest)


@dataclass(slots=True)
class _FullRead:
    version: int
    slim: bool
    since: float
    cursor: int | None
    oldest_connected: float
    read: IndexRead


@dataclass(frozen=True, slots=True)
class _Segment:
    modern: Block
    legacy: Block
    newest: int | None


class RealmIndex:
    """``segment_size``: the update order is cut into blocks of this many items, each caching
    the join of its live fragments. In steady state every online user's ping moves their entry,
    so a client polling once a minute gets nearly the whole realm back: that answer is then a
    join of cached blocks, not a walk over every entry."""

    def __init__(self, segment_size: int = 256) -> None:
        self._entries: dict[int, Entry] = {}
        self._order: list[tuple[int, int]] = []
        """(update id, user id), ascending; items whose update id is not the entry's are stale."""
        self._segment_size = segment_size
        self._segments: dict[int, _Segment] = {}
        """Cached joins of the full blocks of ``_order``, by block number."""
        self.synced_upto = 0
        """Every write to the realm up to this update id is applied."""
        self.version = 0
        """Bumped on every change, to invalidate cached reads."""
        self._full_reads: dict[tuple[bool, int | None, int], _FullRead] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, user_id: int) -> Entry | None:
        return self._entries.get(user_id)

    def apply(self, entry: Entry) -> bool:
        """Take a newer entry for its user; older or equal ones are ignored."""
        current = self._entries.get(entry.user_id)
        if current is not None and current.update_id >= entry.update_id:
            return False
        if current is not None:  # its old item goes stale: that block's join changes
            old = bisect.bisect_left(self._order, (current.update_id, current.user_id))
            self._segments.pop(old // self._segment_size, None)
        self._entries[entry.user_id] = entry
        item = (entry.update_id, entry.user_id)
        if not self._order or self._order[-1] < item:
            self._order.append(item)
        else:  # caught up out of order (another process's older write): keep the list sorted
            position = bisect.bisect_left(self._order, item)
            self._order.insert(position, item)
            first = position // self._segment_size
            self._segments = {k: v for k, v in self._segments.items() if k < first}
        if len(self._order) > 2 * len(self._entries) + 1024:
            self._compact()
        self.version += 1
        return True

    def apply_own_write(self, entry: Entry) -> None:
        """An entry this process just committed; advances ``synced_upto`` when contiguous."""
        self.apply(entry)
        if entry.update_id == self.synced_upto + 1:
            self.synced_upto = entry.update_id

    def remove(self, user_id: int) -> None:
        """Forget a user (deactivated): their item goes stale like an overwritten one."""
        current = self._entries.pop(user_id, None)
        if current is not None:
            old = bisect.bisect_left(self._order, (current.update_id, current.user_id))
            self._segments.pop(old // self._segment_size, None)
            self.version += 1

    def _compact(self) -> None:
        self._order = sorted((e.update_id, e.user_id) for e in self._entries.values())
        self._segments.clear()

    def _live(
        self, items: list[tuple[int, int]], slim: bool, only: frozenset[int] | None
    ) -> tuple[list[bytes], int | None]:
        fragments = []
        newest = None
        for update_id, user_id in items:
            entry = self._entries.get(user_id)
            if entry is None or entry.update_id != update_id:
                continue
            if only is not None and user_id not in only:
                continue
            fragments.append(entry.modern if slim else entry.legacy)
            newest = update_id
        return fragments, newest

    def _segment(self, number: int) -> _Segment:
        segment = self._segments.get(number)
        if segment is None:
            size = self._segment_size
            items = self._order[number * size : (number + 1) * size]
            modern, newest = self._live(items, True, None)
            legacy, _ = self._live(items, False, None)
            segment = self._segments[number] = _Segment(
                Block(b",".join(modern)), Block(b",".join(legacy)), newest
            )
        return segment

    def changed_since(
        self, cursor: int, slim: bool, only: frozenset[int] | None = None
    ) -> IndexRead:
        """Entries with an update id above ``cursor``: O(changes since the cursor)."""
        start = bisect.bisect_right(self._order, (cursor, 1 << 62))
        size = self._segment_size
        if only is not None:
            return _object(*self._live(self._order[start:], slim, only))
        # The partial block the cursor falls in, item by item; then whole cached blocks; then
        # the last block, still filling, item by item.
        first_full = -(-start // size)
        last_full = len(self._order) // size
        if first_full >= last_full:
            return _object(*self._live(self._order[start:], slim, None))
        head, newest = self._live(self._order[start : first_full * size], slim, None)
        pieces: list[Piece] = [b"{" + b",".join(head)]
        separate = bool(head)
        for number in range(first_full, last_full):
            segment = self._segment(number)
            block = segment.modern if slim else segment.legacy
            if block.raw:
                if separate:
                    pieces.append(b",")
                pieces.append(block)
                separate = True
                newest = segment.newest
        tail, tail_newest = self._live(self._order[last_full * size :], slim, None)
        if tail:
            pieces.append((b"," if separate else b"") + b",".join(tail))
            newest = tail_newest
        pieces.append(b"}")
        return IndexRead(pieces, newest)

    def connected_since(
        self,
        since: float,
        window_days: int,
        cursor: int | None,
        slim: bool,
        only: frozenset[int] | None = None,
    ) -> IndexRead:
        """A first fetch: entries connected at or after ``since`` (``window_days`` before now;
        and past ``cursor``). Cached: a repeat is free until an entry changes or the oldest one
        included ages out of the window."""
        key = (slim, cursor, window_days)
        if only is None:
            cached = self._full_reads.get(key)
            if (
                cached is not None
                and cached.version == self.version
                and cached.since <= since <= cached.oldest_connected
            ):
                return cached.read
        fragments = []
        newest = None
        oldest = float("inf")
        for entry in self._entries.values():
            connected = entry.last_connected_time
            if connected is None or connected < since:
                continue
            if cursor is not None and entry.update_id <= cursor:
                continue
            if only is not None and entry.user_id not in only:
                continue
            fragments.append(entry.modern if slim else entry.legacy)
            newest = entry.update_id if newest is None else max(newest, entry.update_id)
            oldest = min(oldest, connected)
        # One block: a repeated first fetch also reuses its compressed form.
        read = IndexRead([Block(b"{" + b",".join(fragments) + b"}")], newest)
        if only is None:
            self._full_reads[key] = _FullRead(self.version, slim, since, cursor, oldest, read)
        return read
