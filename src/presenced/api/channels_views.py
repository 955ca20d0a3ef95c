"""``GET /users/me/subscriptions`` and ``GET /streams``: the channels that decide what a
limited guest may see."""

from __future__ import annotations

import html
from typing import Any

from starlette.responses import Response

from presenced.api.endpoint import Call
from presenced.api.responses import json_success
from presenced.store.base import Channel, Role

DEFAULT_COLOR = "#76ce90"


def stream_dict(channel: Channel) -> dict[str, Any]:
    return {
        "stream_id": channel.id,
        "name": channel.name,
        "description": channel.description,
        "rendered_description": (
            f"<p>{html.escape(channel.description)}</p>" if channel.description else ""
        ),
        "date_created": int(channel.date_created),
        "invite_only": False,
        "is_web_public": False,
        "is_archived": False,
        "history_public_to_subscribers": True,
    }


async def _membership(call: Call) -> tuple[list[Channel], dict[int, list[int]]]:
    store = call.server.store
    channels = await store.list_channels(call.realm.id)
    active = {u.id for u in await store.list_users(call.realm.id) if u.is_active}
    members: dict[int, list[int]] = {c.id: [] for c in channels}
    for channel_id, user_id in await store.realm_subscriptions(call.realm.id):
        if user_id in active:
            members[channel_id].append(user_id)
    return channels, members


async def get_subscriptions(call: Call) -> Response:
    include_subscribers = call.params.json_bool("include_subscribers", False)
    channels, members = await _membership(call)
    subscriptions = []
    for channel in channels:
        if call.user.id not in members[channel.id]:
            continue
        entry = {
            **stream_dict(channel),
            "color": DEFAULT_COLOR,
            "is_muted": False,
            "in_home_view": True,
            "pin_to_top": False,
        }
        if include_subscribers:
            entry["subscribers"] = members[channel.id]
        subscriptions.append(entry)
    return json_success({"subscriptions": subscriptions}, ignored_parameters=call.params.ignored())


async def get_streams(call: Call) -> Response:
    channels, members = await _membership(call)
    visible = [c for c in channels if call.user.role != Role.GUEST or call.user.id in members[c.id]]
    return json_success(
        {"streams": [stream_dict(c) for c in visible]}, ignored_parameters=call.params.ignored()
    )
