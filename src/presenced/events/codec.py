"""Changes and queue state as plain data (orjson), for event logs and queues kept in Redis."""

from __future__ import annotations

from typing import Any

import orjson

from presenced.events.changes import Change, PresenceChange, UserSettingsChange, UserStatusChange
from presenced.events.formats import PresenceFormat
from presenced.events.queue import EventQueue


def encode_change(change: Change) -> bytes:
    if isinstance(change, PresenceChange):
        return orjson.dumps(
            [
                "p",
                change.user_id,
                change.email,
                change.date_joined,
                change.last_active_time,
                change.last_connected_time,
                change.server_timestamp,
            ]
        )
    if isinstance(change, UserSettingsChange):
        return orjson.dumps(["s", change.user_id, change.property, change.value, change.email])
    return orjson.dumps(["u", change.user_id, [list(pair) for pair in change.fields]])


def decode_change(data: bytes) -> Change:
    record: list[Any] = orjson.loads(data)
    kind = record[0]
    if kind == "p":
        return PresenceChange(*record[1:])
    if kind == "s":
        return UserSettingsChange(record[1], record[2], record[3], *record[4:5])
    if kind == "u":
        return UserStatusChange(record[1], tuple((name, value) for name, value in record[2]))
    raise ValueError(f"unknown change record {kind!r}")


def encode_settings(queue: EventQueue) -> bytes:
    """What never changes after ``/register``."""
    return orjson.dumps(
        {
            "types": None if queue.event_types is None else sorted(queue.event_types),
            "format": queue.presence_format.value,
            "idle": queue.idle_timeout,
            "created": queue.created,
            "uso": queue.user_settings_object,
        }
    )


def encode_progress(queue: EventQueue) -> bytes:
    """What each read may change: the next id, the newest acknowledged id, pending events."""
    return orjson.dumps([queue.next_event_id, queue.newest_pruned_id, queue.pending])


def decode_queue(
    queue_id: str, user_id: int, realm_id: int, settings: bytes, progress: bytes
) -> EventQueue:
    fixed: dict[str, Any] = orjson.loads(settings)
    next_event_id, newest_pruned_id, pending = orjson.loads(progress)
    types = fixed["types"]
    return EventQueue(
        queue_id=queue_id,
        user_id=user_id,
        realm_id=realm_id,
        event_types=None if types is None else frozenset(types),
        presence_format=PresenceFormat(fixed["format"]),
        idle_timeout=fixed["idle"],
        created=fixed["created"],
        last_seen=fixed["created"],
        user_settings_object=bool(fixed.get("uso", False)),
        log_position=0,
        next_event_id=next_event_id,
        newest_pruned_id=newest_pruned_id,
        pending=pending,
    )
