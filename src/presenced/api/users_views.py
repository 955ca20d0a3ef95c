"""``GET /users/me``, ``GET /users``, ``GET /users/{user_id}`` with Zulip's user fields."""

from __future__ import annotations

from starlette.responses import Response

from presenced.api.endpoint import Call
from presenced.api.errors import ApiError
from presenced.api.responses import json_success
from presenced.core.users import user_dict


async def get_own_user(call: Call) -> Response:
    """Takes no parameters and, like Zulip's, reports none as ignored."""
    data = user_dict(call.user, client_gravatar=False)
    if not call.user.is_bot:
        data["profile_data"] = {}
    data["max_message_id"] = -1
    return json_success(data)


async def get_users(call: Call) -> Response:
    client_gravatar = call.params.json_bool("client_gravatar", True)
    include_custom = call.params.json_bool("include_custom_profile_fields", False)
    members = []
    for user in await call.server.directory.visible_users(call.realm, call.user):
        data = user_dict(user, client_gravatar=client_gravatar)
        if include_custom and not user.is_bot:
            data["profile_data"] = {}
        members.append(data)
    return json_success({"members": members}, ignored_parameters=call.params.ignored())


async def get_user(call: Call) -> Response:
    """``/users/{user_id}`` for digits, else ``/users/{email}``; deactivated users included."""
    raw: str = call.request.path_params["user_id"]
    client_gravatar = call.params.json_bool("client_gravatar", True)
    include_custom = call.params.json_bool("include_custom_profile_fields", False)
    store = call.server.store
    if raw.isascii() and raw.isdigit():
        user = await store.get_user(int(raw))
    else:
        user = await store.get_user_by_email(call.realm.id, raw)
    if user is None or user.realm_id != call.realm.id:
        raise ApiError("No such user")
    access = await call.server.directory.access(call.realm)
    if not access.can_access(call.user.id, user.id):
        raise ApiError("Insufficient permission")
    data = user_dict(user, client_gravatar=client_gravatar)
    if include_custom and not user.is_bot:
        data["profile_data"] = {}
    return json_success({"user": data}, ignored_parameters=call.params.ignored())
