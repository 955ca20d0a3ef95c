"""What goes into a realm's change log: one record per change, shared by all its queues."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """A user's presence as it stood right after a change that Zulip announces."""

    user_id: int
    email: str
    date_joined: float
    last_active_time: float | None
    last_connected_time: float | None
    server_timestamp: float


@dataclass(frozen=True, slots=True)
class UserSettingsChange:
    """One of a user's own settings changed; only that user's queues hear of it."""

    user_id: int
    property: str
    value: Any
    email: str = ""
    """The user's (API) email, for Zulip's legacy ``update_global_notifications`` event."""


@dataclass(frozen=True, slots=True)
class UserStatusChange:
    """A user's status changed; ``fields`` are the ones the request set (Zulip's event shape)."""

    user_id: int
    fields: tuple[tuple[str, Any], ...]


Change = PresenceChange | UserSettingsChange | UserStatusChange


def event_type(change: Change) -> str:
    if isinstance(change, PresenceChange):
        return "presence"
    if isinstance(change, UserSettingsChange):
        return "user_settings"
    return "user_status"
