"""What processes tell each other, and the interface that carries it.

A notice says only that something was committed; the receiver reads the store to catch up. So
a lost notice delays a change (until the periodic check finds it) but never loses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PresenceCommitted:
    """A realm's presence sequence reached ``sequence`` (rows up to it are committed)."""

    realm_id: int
    sequence: int


@dataclass(frozen=True, slots=True)
class DirectoryChanged:
    """Realms, users, keys, channels, subscriptions or embed tokens changed."""


@dataclass(frozen=True, slots=True)
class AuthenticationFailed:
    """A request from ``address`` failed to authenticate at ``at`` (wall-clock seconds), so
    that every process throttles the address on the failures of all of them. Unlike the
    others, this notice carries its data (nothing is stored); a lost one makes the throttle
    a little more lenient, never stricter."""

    address: str
    at: float


Notice = PresenceCommitted | DirectoryChanged | AuthenticationFailed
NoticeHandler = Callable[[Notice], None]


class ChangeFeed(Protocol):
    async def start(self, handler: NoticeHandler) -> None:
        """Deliver other processes' notices to ``handler`` from now on (on the event loop)."""
        ...

    async def publish(self, notice: Notice) -> None:
        """Tell the other processes. Must not wait on the network for long: a backend may
        coalesce and send in the background, since the periodic check covers a lost notice."""
        ...

    async def close(self) -> None: ...

    async def check(self) -> None:
        """Raise if the feed cannot reach its backend (for ``/health``)."""
        ...


class LocalChangeFeed:
    """One process and no shared bus: nobody else to tell. Another process writing the same
    SQLite file (the CLI, a second server) is found by the store check instead."""

    async def start(self, handler: NoticeHandler) -> None:
        return None

    async def publish(self, notice: Notice) -> None:
        return None

    async def close(self) -> None:
        return None

    async def check(self) -> None:
        return None
