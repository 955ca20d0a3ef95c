"""Event queues and change-log entries as bytes, for saving across a restart.

The encoding is versioned JSON. A queue's log position is written relative to the start of the
log tail saved with it, and re-based onto the new log when it is loaded.
"""

from __future__ import annotations

from typing import Any

import orjson

from presenced.events.changes import Change, PresenceChange, UserSettingsChange, UserStatusChange
from presenced.events.formats import PresenceFormat
from presenced.events.queue import EventQueue

FORMAT_VERSION = 1


class SavedStateError(ValueError):
    """Saved state this version cannot read (written by another version, or damaged)."""


def encode_queue(queue: EventQueue, log_offset: int) -> bytes:
    """``log_offset``: the queue's position in the saved log tail (0: its first entry)."""
    return orjson.dumps(
        {
            "v": FORMAT_VERSION,
            "event_types": None if queue.event_types is None else sorted(queue.event_types),
            "presence_format": queue.presence_format.value,
            "idle_timeout": queue.idle_timeout,
            "created": queue.created,
            "last_seen": queue.last_seen,
            "user_settings_object": queue.user_settings_object,
            "log_offset": log_offset,
            "next_event_id": queue.next_event_id,
            "newest_pruned_id": queue.newest_pruned_id,
            "pending": queue.pending,
        }
    )


def decode_queue(
    queue_id: str, realm_id: int, user_id: int, state: bytes, log_start: int
) -> EventQueue:
    """The queue, its log position re-based: ``log_start`` is where the loaded tail begins."""
    try:
        data = orjson.loads(state)
        if data.get("v") != FORMAT_VERSION:
            raise SavedStateError(f"saved queue format {data.get('v')!r} is not {FORMAT_VERSION}")
        event_types = data["event_types"]
        return EventQueue(
            queue_id=queue_id,
            user_id=user_id,
            realm_id=realm_id,
            event_types=None if event_types is None else frozenset(event_types),
            presence_format=PresenceFormat(data["presence_format"]),
            idle_timeout=float(data["idle_timeout"]),
            created=float(data["created"]),
            last_seen=float(data["last_seen"]),
            log_position=log_start + int(data["log_offset"]),
            user_settings_object=bool(data.get("user_settings_object", False)),
            next_event_id=int(data["next_event_id"]),
            newest_pruned_id=int(data["newest_pruned_id"]),
            pending=list(data["pending"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SavedStateError(f"unreadable saved queue {queue_id}: {exc}") from None


def _change_data(change: Change) -> dict[str, Any]:
    if isinstance(change, PresenceChange):
        return {
            "kind": "presence",
            "user_id": change.user_id,
            "email": change.email,
            "date_joined": change.date_joined,
            "last_active_time": change.last_active_time,
            "last_connected_time": change.last_connected_time,
            "server_timestamp": change.server_timestamp,
        }
    if isinstance(change, UserSettingsChange):
        return {
            "kind": "user_settings",
            "user_id": change.user_id,
            "property": change.property,
            "value": change.value,
            "email": change.email,
        }
    return {"kind": "user_status", "user_id": change.user_id, "fields": list(change.fields)}


def _change(data: dict[str, Any]) -> Change:
    kind = data["kind"]
    if kind == "presence":
        return PresenceChange(
            user_id=data["user_id"],
            email=data["email"],
            date_joined=data["date_joined"],
            last_active_time=data["last_active_time"],
            last_connected_time=data["last_connected_time"],
            server_timestamp=data["server_timestamp"],
        )
    if kind == "user_settings":
        return UserSettingsChange(
            data["user_id"], data["property"], data["value"], data.get("email", "")
        )
    if kind == "user_status":
        return UserStatusChange(data["user_id"], tuple((k, v) for k, v in data["fields"]))
    raise SavedStateError(f"unknown change kind {kind!r}")


def encode_changes(changes: list[Change]) -> bytes:
    return orjson.dumps({"v": FORMAT_VERSION, "changes": [_change_data(c) for c in changes]})


def decode_changes(saved: bytes) -> list[Change]:
    try:
        data = orjson.loads(saved)
        if data.get("v") != FORMAT_VERSION:
            raise SavedStateError(f"saved log format {data.get('v')!r} is not {FORMAT_VERSION}")
        return [_change(item) for item in data["changes"]]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SavedStateError(f"unreadable saved change log: {exc}") from None
