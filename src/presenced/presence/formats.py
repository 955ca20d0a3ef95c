"""The modern and legacy presence formats (spec 2.6) and the single-user shape (spec 2.3)."""

from __future__ import annotations

from typing import Any

WEBSITE = "website"


def timestamp(seconds: float) -> int:
    """Zulip's whole-second timestamp: truncated toward zero."""
    return int(seconds)


def modern(active: float | None, connected: float | None, date_joined: float) -> dict[str, int]:
    return {
        "active_timestamp": timestamp(date_joined if active is None else active),
        "idle_timestamp": timestamp(date_joined if connected is None else connected),
    }


def legacy_status(
    active: float | None, connected: float | None, date_joined: float, activity_offset: float
) -> tuple[str, int]:
    """("active", last active) if last active is within ``activity_offset`` of last connected."""
    active_time = date_joined if active is None else active
    connected_time = date_joined if connected is None else connected
    if active_time + activity_offset >= connected_time:
        return "active", timestamp(active_time)
    return "idle", timestamp(connected_time)


def legacy_client_entry(status: str, ts: int) -> dict[str, Any]:
    return {"client": WEBSITE, "status": status, "timestamp": ts, "pushable": False}


def legacy(
    active: float | None, connected: float | None, date_joined: float, activity_offset: float
) -> dict[str, Any]:
    """The per-user object of legacy realm listings: ``aggregated``, then ``website`` (Zulip's
    key order)."""
    status, ts = legacy_status(active, connected, date_joined, activity_offset)
    return {
        "aggregated": {"client": WEBSITE, "status": status, "timestamp": ts},
        WEBSITE: legacy_client_entry(status, ts),
    }


def single_user_legacy(
    active: float | None,
    connected: float | None,
    date_joined: float,
    activity_offset: float,
    now: float,
    offline_threshold: float,
) -> dict[str, Any]:
    """``GET /users/{id}/presence``: only status and timestamp; aggregated may say offline."""
    status, ts = legacy_status(active, connected, date_joined, activity_offset)
    aggregated_status = "offline" if timestamp(now) - ts > offline_threshold else status
    return {
        "aggregated": {"status": aggregated_status, "timestamp": ts},
        WEBSITE: {"status": status, "timestamp": ts},
    }
