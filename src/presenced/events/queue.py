"""One client's event queue. Plain, serialisable state: ids, a log position, pending events."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from presenced.events import formats
from presenced.events.changes import Change, PresenceChange, UserSettingsChange, event_type
from presenced.events.formats import PresenceFormat


class EventIdError(ValueError):
    """A ``last_event_id`` the queue cannot accept."""


Visible = Callable[["EventQueue", Change], bool]
"""Whether a queue's user may see a change (privacy rules plug in here)."""


@dataclass
class EventQueue:
    queue_id: str
    user_id: int
    realm_id: int
    event_types: frozenset[str] | None
    """None: every type."""
    presence_format: PresenceFormat
    idle_timeout: float
    created: float
    last_seen: float
    log_position: int
    next_event_id: int = 0
    newest_pruned_id: int = -1
    pending: list[dict[str, Any]] = field(default_factory=list)
    """Events sent or ready to send, dropped once the client acknowledges them."""
    connected: int = 0
    """Long-polls parked on this queue right now."""
    user_settings_object: bool = False
    """The ``user_settings_object`` client capability: no legacy settings events."""

    @classmethod
    def new(
        cls,
        user_id: int,
        realm_id: int,
        event_types: frozenset[str] | None,
        presence_format: PresenceFormat,
        idle_timeout: float,
        now: float,
        log_position: int,
        *,
        user_settings_object: bool = False,
    ) -> EventQueue:
        """A fresh queue with a random id, reading the realm's log from ``log_position``."""
        return cls(
            queue_id=str(uuid.uuid4()),
            user_id=user_id,
            realm_id=realm_id,
            event_types=event_types,
            presence_format=presence_format,
            idle_timeout=idle_timeout,
            created=now,
            last_seen=now,
            log_position=log_position,
            user_settings_object=user_settings_object,
        )

    @property
    def last_event_id(self) -> int:
        return self.next_event_id - 1

    def _wants_type(self, name: str) -> bool:
        return self.event_types is None or name in self.event_types

    def wants_legacy_settings_event(self, change: UserSettingsChange) -> bool:
        """Zulip (below feature level 439) also sends ``update_global_notifications`` for the
        settings older than feature level 89, to queues without ``user_settings_object``."""
        return (
            not self.user_settings_object
            and change.property in formats.LEGACY_NOTIFICATION_SETTINGS
            and self._wants_type("update_global_notifications")
        )

    def wants(self, change: Change) -> bool:
        if isinstance(change, UserSettingsChange):
            return change.user_id == self.user_id and (
                self._wants_type("user_settings") or self.wants_legacy_settings_event(change)
            )
        return self._wants_type(event_type(change))

    def acknowledge(self, last_event_id: int) -> None:
        """Drop events up to ``last_event_id`` (Zulip's checks: the id must be the last one
        dropped, and not older than one dropped before)."""
        if last_event_id < self.newest_pruned_id:
            raise EventIdError(f"An event newer than {last_event_id} has already been pruned!")
        while self.pending and self.pending[0]["id"] <= last_event_id:
            self.newest_pruned_id = self.pending.pop(0)["id"]
        if last_event_id != self.newest_pruned_id:
            raise EventIdError(f"Event {last_event_id} was not in this queue")

    def _add(self, event: dict[str, Any]) -> None:
        event["id"] = self.next_event_id
        self.next_event_id += 1
        self.pending.append(event)

    def absorb(self, changes: Iterable[Change], visible: Visible, activity_offset: float) -> None:
        """Turn new log entries into events; consecutive presence changes share one modern
        event."""
        run: list[PresenceChange] = []

        def flush() -> None:
            for event in formats.presence_event(run, self.presence_format, activity_offset):
                self._add(event)
            run.clear()

        for change in changes:
            if not self.wants(change) or not visible(self, change):
                continue
            if isinstance(change, PresenceChange):
                run.append(change)
                continue
            if run:
                flush()
            if isinstance(change, UserSettingsChange):
                if self._wants_type("user_settings"):
                    self._add(formats.user_settings_event(change))
                if self.wants_legacy_settings_event(change):
                    self._add(formats.legacy_settings_event(change))
            else:
                self._add(formats.user_status_event(change))
        if run:
            flush()

    def add_heartbeat(self) -> None:
        self._add({"type": "heartbeat"})

    def expired(self, now: float) -> bool:
        """Zulip's rule: no poll connected, and none blocked for the whole timeout."""
        return self.connected == 0 and now - self.last_seen >= self.idle_timeout
