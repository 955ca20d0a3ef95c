"""The three presence endpoints (spec 2.1-2.3)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from presenced.api.endpoint import Call
from presenced.api.errors import ApiError
from presenced.api.responses import json_success
from presenced.api.settings_views import refuse_bots
from presenced.core import actions
from presenced.observability import metrics
from presenced.presence import formats
from presenced.presence.read import HistoryWindowError, window_start
from presenced.store.base import User

STATUSES = {"active": True, "idle": False}
CURSOR_MIN = -(2**63)
CURSOR_END = 2**64
"""Zulip 11 (Django 5) answers a cursor past its unsigned 64-bit column with an empty delta
that echoes it; beyond what a JSON encoder writes as a 64-bit integer, it fails with a 500."""


async def update_presence(call: Call) -> Response:
    """``POST /users/me/presence``: record the caller's status, return everyone's."""
    refuse_bots(call)
    params = call.params
    # Zulip 11's view declares its parameters in alphabetical order, and its typed_endpoint
    # reports the first that fails in that order: a missing ``status`` comes last.
    history_limit_days = params.json_int("history_limit_days")
    cursor = params.json_int("last_update_id")
    new_user_input = params.json_bool("new_user_input", False)
    ping_only = params.json_bool("ping_only", False)
    slim = params.json_bool("slim_presence", False)
    status = params.string("status")
    if status not in STATUSES:
        raise ApiError(f"Invalid status: {status}")
    if cursor is not None:
        slim = True
        if not CURSOR_MIN <= cursor < CURSOR_END:
            raise ApiError("Invalid last_update_id")
    clock = call.server.clock
    if history_limit_days is not None:
        try:
            window_start(clock(), history_limit_days)
        except HistoryWindowError:
            raise ApiError("Invalid history_limit_days") from None

    metrics.PRESENCE_REPORTS.inc()
    outcome = await actions.record_report(
        call.server,
        call.user,
        call.realm,
        active=STATUSES[status],
        new_user_input=new_user_input,
        now=clock(),
    )
    if outcome.written:
        metrics.PRESENCE_WRITES.inc()
    if ping_only:
        return json_success(ignored_parameters=params.ignored())
    server_timestamp = clock()
    result = await actions.realm_presence(
        call.server,
        call.realm,
        call.user,
        slim=slim,
        cursor=cursor,
        history_limit_days=history_limit_days,
        now=server_timestamp,
    )
    return json_success(
        {
            "presences": result.presences,
            "server_timestamp": server_timestamp,
            "presence_last_update_id": result.last_update_id,
        },
        ignored_parameters=params.ignored(),
    )


async def get_realm_presence(call: Call) -> Response:
    """``GET /realm/presence``: legacy format, no parameters (any sent are silently ignored)."""
    server_timestamp = call.server.clock()
    result = await actions.realm_presence(
        call.server,
        call.realm,
        call.user,
        slim=False,
        cursor=None,
        history_limit_days=None,
        now=server_timestamp,
    )
    return json_success({"presences": result.presences, "server_timestamp": server_timestamp})


async def find_user(call: Call, user_id_or_email: str) -> User | None:
    """An active user of the caller's realm, by ID (Python ``int()`` syntax) or API email."""
    store = call.server.store
    try:
        user_id = int(user_id_or_email)
    except ValueError:
        user = await store.get_user_by_email(call.realm.id, user_id_or_email.strip())
    else:
        user = await store.get_user(user_id)
    if user is None or user.realm_id != call.realm.id or not user.is_active:
        return None
    return user


async def get_user_presence(call: Call) -> Response:
    """``GET /users/{user_id_or_email}/presence``."""
    user_id_or_email: str = call.request.path_params["user_id_or_email"]
    slim = call.params.json_bool("slim_presence", False)
    target = await find_user(call, user_id_or_email)
    if target is None:
        raise ApiError("No such user")
    if target.is_bot:
        raise ApiError("Presence is not supported for bot users.")
    if call.server.limits_presence:
        access = await call.server.directory.access(call.realm)
        if not access.can_access(call.user.id, target.id):
            raise ApiError("Insufficient permission")
    row = await call.server.store.get_presence(target.id)
    if row is None:
        raise ApiError(f"No presence data for {user_id_or_email}")
    settings = call.server.settings
    presence: dict[str, Any]
    if slim:
        presence = formats.modern(row.last_active_time, row.last_connected_time, target.date_joined)
    else:
        presence = formats.single_user_legacy(
            row.last_active_time,
            row.last_connected_time,
            target.date_joined,
            settings.presence_legacy_event_offset_for_activity_seconds,
            call.server.clock(),
            settings.offline_threshold_secs,
        )
    return json_success({"presence": presence}, ignored_parameters=call.params.ignored())
