"""A realm's append-only change log, addressed by absolute positions.

Queues hold a position into it; publishing a change is one append, whatever the number of
queues. Entries every queue has read are trimmed.
"""

from __future__ import annotations

from collections import deque

from presenced.events.changes import Change


class ChangeLog:
    def __init__(self) -> None:
        self._entries: deque[Change] = deque()
        self.start = 0
        """The absolute position of the oldest entry kept."""

    @property
    def head(self) -> int:
        """The position the next change will take."""
        return self.start + len(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def append(self, change: Change) -> int:
        self._entries.append(change)
        return self.head - 1

    def since(self, position: int) -> list[Change]:
        """Entries from ``position`` on; ``position`` must not be older than ``start``."""
        if position < self.start:
            raise IndexError(f"position {position} was trimmed (log starts at {self.start})")
        offset = position - self.start
        if offset >= len(self._entries):
            return []
        return [self._entries[i] for i in range(offset, len(self._entries))]

    def trim(self, upto: int) -> None:
        """Forget entries before ``upto``."""
        while self.start < upto and self._entries:
            self._entries.popleft()
            self.start += 1
