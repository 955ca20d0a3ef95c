"""Column lists and row-to-record conversions shared by the SQL backends (one schema)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from presenced.store.base import ApiKeyInfo, BotType, Channel, EmbedToken, Realm, Role, User

USER_COLUMNS = (
    "id, realm_id, email, delivery_email, full_name, role, bot_type, bot_owner_id, is_active, "
    "date_joined, presence_enabled, timezone"
)
REALM_COLUMNS = (
    "id, subdomain, name, deactivated, presence_disabled, date_created, can_access_all_users_group"
)
CHANNEL_COLUMNS = "id, realm_id, name, description, date_created"
STATUS_COLUMNS = "user_id, status_text, emoji_name, emoji_code, reaction_type"
KEY_COLUMNS = "id, user_id, label, prefix, created_at"
EMBED_COLUMNS = "id, realm_id, prefix, label, user_ids, origins, created_at"


def user_record(row: Sequence[Any]) -> User:
    return User(
        id=row[0],
        realm_id=row[1],
        email=row[2],
        delivery_email=row[3],
        full_name=row[4],
        role=Role(row[5]),
        bot_type=None if row[6] is None else BotType(row[6]),
        bot_owner_id=row[7],
        is_active=bool(row[8]),
        date_joined=row[9],
        presence_enabled=bool(row[10]),
        timezone=row[11],
    )


def realm_record(row: Sequence[Any]) -> Realm:
    return Realm(
        id=row[0],
        subdomain=row[1],
        name=row[2],
        deactivated=bool(row[3]),
        presence_disabled=bool(row[4]),
        date_created=row[5],
        can_access_all_users_group=row[6],
    )


def channel_record(row: Sequence[Any]) -> Channel:
    return Channel(id=row[0], realm_id=row[1], name=row[2], description=row[3], date_created=row[4])


def key_record(row: Sequence[Any]) -> ApiKeyInfo:
    return ApiKeyInfo(id=row[0], user_id=row[1], label=row[2], prefix=row[3], created_at=row[4])


def embed_token_columns(
    user_ids: frozenset[int] | None, origins: tuple[str, ...]
) -> tuple[str | None, str]:
    """The covered users and the origins as the schema keeps them: JSON arrays in text."""
    users = None if user_ids is None else orjson.dumps(sorted(user_ids)).decode()
    return users, orjson.dumps(list(origins)).decode()


def embed_token_record(row: Sequence[Any]) -> EmbedToken:
    return EmbedToken(
        id=row[0],
        realm_id=row[1],
        prefix=row[2],
        label=row[3],
        user_ids=None if row[4] is None else frozenset(orjson.loads(row[4])),
        origins=tuple(orjson.loads(row[5])),
        created_at=row[6],
    )


def prefixed(columns: str, alias: str) -> str:
    """``columns`` qualified by a table alias: ``"a, b"`` -> ``"u.a, u.b"``."""
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))
