"""``PATCH /settings`` (invisible mode) and ``POST /users/me/status`` (its deprecated ``away``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from presenced.api.endpoint import Call
from presenced.api.errors import ApiError
from presenced.api.responses import json_success
from presenced.core import actions
from presenced.store.base import UserStatus

STATUS_TEXT_MAX = 60
EMOJI_FIELD_MAX = 80
"""The stored length of emoji names and codes."""
REACTION_TYPES = ("unicode_emoji", "realm_emoji", "zulip_extra_emoji")


def refuse_bots(call: Call) -> None:
    if call.user.is_bot:
        raise ApiError("This endpoint does not accept bot requests.")


async def update_settings(call: Call) -> Response:
    """Only ``presence_enabled`` is a setting presenced keeps; others are reported ignored."""
    refuse_bots(call)
    enabled = call.params.json_value("presence_enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise ApiError("presence_enabled is not a boolean")
    if enabled is not None and enabled != call.user.presence_enabled:
        await actions.set_presence_enabled(call.server, call.user, enabled, now=call.server.clock())
    return json_success(ignored_parameters=call.params.ignored())


async def update_status(call: Call) -> Response:
    refuse_bots(call)
    params = call.params
    away = params.json_value("away")
    if away is not None and not isinstance(away, bool):
        raise ApiError("away is not a boolean")
    status_text = params.optional_string("status_text")
    emoji_name = params.optional_string("emoji_name")
    emoji_code = params.optional_string("emoji_code")
    reaction_type = params.optional_string("reaction_type")
    if away is None and status_text is None and emoji_name is None:
        raise ApiError("Client did not pass any new values.")
    if status_text is not None:
        status_text = status_text.strip()
        if len(status_text) > STATUS_TEXT_MAX:
            raise ApiError(f"status_text is too long (limit: {STATUS_TEXT_MAX} characters)")
    for name, value in (
        ("status_text", status_text),
        ("emoji_name", emoji_name),
        ("emoji_code", emoji_code),
    ):
        # No store can keep NUL in text (PostgreSQL refuses it), and emoji names are short.
        if value is not None and "\x00" in value:
            raise ApiError(f"{name} contains NULL (0x00) characters.")
        if name != "status_text" and value is not None and len(value) > EMOJI_FIELD_MAX:
            raise ApiError(f"{name} is too long (limit: {EMOJI_FIELD_MAX} characters)")
    if reaction_type is not None and reaction_type not in REACTION_TYPES:
        raise ApiError("Invalid emoji type.")

    fields: list[tuple[str, Any]] = []
    if away is not None:
        fields.append(("away", away))
    status: UserStatus | None = None
    if status_text is not None or emoji_name is not None:
        old = await call.server.store.get_user_status(call.user.id)
        status = UserStatus(
            user_id=call.user.id,
            status_text=status_text
            if status_text is not None
            else (old.status_text if old else ""),
            emoji_name=emoji_name if emoji_name is not None else (old.emoji_name if old else ""),
            emoji_code=(emoji_code or "")
            if emoji_name is not None
            else (old.emoji_code if old else ""),
            reaction_type=(reaction_type or "unicode_emoji")
            if emoji_name is not None
            else (old.reaction_type if old else "unicode_emoji"),
        )
        if status_text is not None:
            fields.append(("status_text", status.status_text))
        if emoji_name is not None:
            fields.extend(
                (
                    ("emoji_name", status.emoji_name),
                    ("emoji_code", status.emoji_code),
                    ("reaction_type", status.reaction_type),
                )
            )
    if status is None:
        # Zulip's update_user_status writes the row whatever was sent (``away`` alone too):
        # the row is what lists the user in /register's user_status.
        old = await call.server.store.get_user_status(call.user.id)
        status = old or UserStatus(call.user.id, "", "", "", "unicode_emoji")
    await actions.update_user_status(
        call.server,
        call.user,
        away=away,
        status=status,
        fields=tuple(fields),
        now=call.server.clock(),
    )
    return json_success(ignored_parameters=params.ignored())
