"""Zulip's user objects, as ``/users``, ``/users/me`` and ``/register`` return them."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from presenced.store.base import Role, User

AVATAR_VERSION = 1


def iso_datetime(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).isoformat(timespec="minutes")


def gravatar_url(email: str) -> str:
    digest = hashlib.md5(email.lower().encode("utf-8"), usedforsecurity=False).hexdigest()
    return f"https://secure.gravatar.com/avatar/{digest}?d=identicon&version={AVATAR_VERSION}"


def user_dict(user: User, *, client_gravatar: bool) -> dict[str, Any]:
    """A user object as Zulip's ``format_user_row`` builds it (emails visible to everyone)."""
    data: dict[str, Any] = {
        "email": user.email,
        "user_id": user.id,
        "avatar_version": AVATAR_VERSION,
        "is_admin": user.role in (Role.OWNER, Role.ADMINISTRATOR),
        "is_owner": user.role == Role.OWNER,
        "is_guest": user.role == Role.GUEST,
        "role": int(user.role),
        "is_bot": user.is_bot,
        "full_name": user.full_name,
        "timezone": user.timezone,
        "is_active": user.is_active,
        "date_joined": iso_datetime(user.date_joined),
        "delivery_email": user.delivery_email,
        "avatar_url": None if client_gravatar else gravatar_url(user.delivery_email),
    }
    if user.bot_type is not None:
        data["bot_type"] = int(user.bot_type)
        data["bot_owner_id"] = user.bot_owner_id
    return data
