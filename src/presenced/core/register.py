"""The initial state ``POST /register`` returns, per fetched event type (spec 6)."""

from __future__ import annotations

from typing import Any

from presenced.core import actions
from presenced.core.server import Server
from presenced.core.users import user_dict
from presenced.store.base import Realm, Role, User

USER_SETTINGS_DEFAULTS: dict[str, Any] = {
    "twenty_four_hour_time": False,
    "starred_message_counts": True,
    "display_emoji_reaction_users": True,
    "emojiset": "google",
    "send_private_typing_notifications": True,
    "send_read_receipts": True,
    "email_address_visibility": 1,
}


# In the order of Zulip's UserProfile.display_settings_legacy.
DISPLAY_SETTINGS_LEGACY = ("emojiset", "starred_message_counts", "twenty_four_hour_time")


async def fetch_initial_state(
    server: Server,
    user: User,
    realm: Realm,
    *,
    fetch: list[str] | None,
    modern_presence: bool,
    history_limit_days: int | None,
    client_gravatar: bool,
    user_settings_object: bool = False,
) -> dict[str, Any]:
    def want(event_type: str) -> bool:
        return fetch is None or event_type in fetch

    settings = server.settings
    state: dict[str, Any] = {}
    if want("presence"):
        now = server.clock()
        presence = await actions.realm_presence(
            server,
            realm,
            user,
            slim=modern_presence,
            cursor=None,
            history_limit_days=history_limit_days,
            now=now,
        )
        state["presences"] = presence.presences
        state["presence_last_update_id"] = presence.last_update_id
        state["server_timestamp"] = now
    if want("realm"):
        state.update(
            realm_name=realm.name,
            realm_presence_disabled=realm.presence_disabled,
            event_queue_longpoll_timeout_seconds=settings.event_queue_longpoll_timeout_secs,
            server_presence_ping_interval_seconds=settings.presence_ping_interval_secs,
            server_presence_offline_threshold_seconds=settings.offline_threshold_secs,
        )
    listed_users: list[dict[str, Any]] | None = None
    if want("realm_user"):
        users = await server.directory.visible_users(realm, user)

        def listed(u: User) -> dict[str, Any]:
            entry = user_dict(u, client_gravatar=client_gravatar)
            entry.pop("is_active")  # implied by the list it is in, as in Zulip
            return entry

        listed_users = [listed(u) for u in users if u.is_active]
        non_active = [listed(u) for u in users if not u.is_active]
        own = user_dict(user, client_gravatar=False)
        member = user.role != Role.GUEST
        state.update(
            cross_realm_bots=[],
            avatar_source="G",
            avatar_url_medium=own["avatar_url"],
            avatar_url=own["avatar_url"],
            # Zulip's default group settings: members may create public and private
            # channels and invite; only owners may create web-public ones.
            can_create_private_streams=member,
            can_create_public_streams=member,
            can_create_web_public_streams=user.role == Role.OWNER,
            can_create_streams=member,
            can_invite_others_to_realm=member,
            is_admin=own["is_admin"],
            is_owner=own["is_owner"],
            is_moderator=user.role == Role.MODERATOR,
            is_guest=own["is_guest"],
            user_id=user.id,
            email=user.email,
            delivery_email=user.delivery_email,
            full_name=user.full_name,
        )
    if not user_settings_object:
        # Zulip's legacy top-level copies of the settings older than feature level 89, for
        # clients without the user_settings_object capability (the ones presenced holds).
        if want("update_display_settings"):
            for name in DISPLAY_SETTINGS_LEGACY:
                state[name] = USER_SETTINGS_DEFAULTS[name]
        if want("update_global_notifications"):
            state["presence_enabled"] = user.presence_enabled
    if want("user_settings"):
        state["user_settings"] = {
            **USER_SETTINGS_DEFAULTS,
            "presence_enabled": user.presence_enabled,
        }
    if want("user_status"):
        state["user_status"] = await user_statuses(server, realm, user)
    if listed_users is not None:
        # Zulip's post_process_state turns its raw users into these two lists last.
        state["realm_users"] = listed_users
        state["realm_non_active_users"] = non_active
    return state


async def user_statuses(server: Server, realm: Realm, viewer: User) -> dict[str, dict[str, Any]]:
    """Zulip's get_all_users_status_dict: the active users the viewer may see who have a
    status row (any ``POST /users/me/status`` writes one), unless it is empty and they are
    not invisible; ``away`` (true) for those in invisible mode."""
    access = await server.directory.access(realm)
    statuses = {s.user_id: s for s in await server.store.realm_user_statuses(realm.id)}
    result: dict[str, dict[str, Any]] = {}
    for user in await server.store.list_users(realm.id):
        if not user.is_active or not access.can_access(viewer.id, user.id):
            continue
        status = statuses.get(user.id)
        if status is None:
            continue
        entry: dict[str, Any] = {}
        if not user.presence_enabled:
            entry["away"] = True
        if status.status_text:
            entry["status_text"] = status.status_text
        if status.emoji_name:
            entry.update(
                emoji_name=status.emoji_name,
                emoji_code=status.emoji_code,
                reaction_type=status.reaction_type,
            )
        if entry:
            result[str(user.id)] = entry
    return result
