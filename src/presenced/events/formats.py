"""Presence and settings events in the wire format each queue asked for (spec 3.4)."""

from __future__ import annotations

import enum
from typing import Any

from presenced.events.changes import PresenceChange, UserSettingsChange, UserStatusChange
from presenced.presence import formats


class PresenceFormat(enum.StrEnum):
    MODERN = "modern"
    """``simplified_presence_events``: ``presences`` keyed by user id; may carry many users."""
    SLIM = "slim"
    """``slim_presence``: the legacy event without ``email``."""
    LEGACY = "legacy"


def presence_event(
    changes: list[PresenceChange], fmt: PresenceFormat, activity_offset: float
) -> list[dict[str, Any]]:
    """Events (without ids) for consecutive presence changes: one modern event for all of
    them, or one legacy event each."""
    if fmt is PresenceFormat.MODERN:
        presences = {
            str(c.user_id): formats.modern(c.last_active_time, c.last_connected_time, c.date_joined)
            for c in changes
        }
        return [{"type": "presence", "presences": presences}]
    events = []
    for change in changes:
        status, ts = formats.legacy_status(
            change.last_active_time,
            change.last_connected_time,
            change.date_joined,
            activity_offset,
        )
        event: dict[str, Any] = {"type": "presence", "user_id": change.user_id}
        if fmt is PresenceFormat.LEGACY:
            event["email"] = change.email
        event["server_timestamp"] = change.server_timestamp
        event["presence"] = {formats.WEBSITE: formats.legacy_client_entry(status, ts)}
        events.append(event)
    return events


def user_settings_event(change: UserSettingsChange) -> dict[str, Any]:
    return {
        "type": "user_settings",
        "op": "update",
        "property": change.property,
        "value": change.value,
    }


# Zulip's UserProfile.notification_settings_legacy (settings older than feature level 89).
LEGACY_NOTIFICATION_SETTINGS = frozenset(
    {
        "desktop_icon_count_display",
        "email_notifications_batching_period_seconds",
        "enable_desktop_notifications",
        "enable_digest_emails",
        "enable_login_emails",
        "enable_marketing_emails",
        "enable_offline_email_notifications",
        "enable_offline_push_notifications",
        "enable_online_push_notifications",
        "enable_sounds",
        "enable_stream_audible_notifications",
        "enable_stream_desktop_notifications",
        "enable_stream_email_notifications",
        "enable_stream_push_notifications",
        "message_content_in_email_notifications",
        "notification_sound",
        "pm_content_in_desktop_notifications",
        "presence_enabled",
        "realm_name_in_email_notifications_policy",
        "wildcard_mentions_notify",
    }
)


def legacy_settings_event(change: UserSettingsChange) -> dict[str, Any]:
    """Zulip's ``update_global_notifications``, sent after each ``user_settings`` event for
    these settings to queues registered without the ``user_settings_object`` capability."""
    return {
        "type": "update_global_notifications",
        "user": change.email,
        "notification_name": change.property,
        "setting": change.value,
    }


def user_status_event(change: UserStatusChange) -> dict[str, Any]:
    return {"type": "user_status", "user_id": change.user_id, **dict(change.fields)}
