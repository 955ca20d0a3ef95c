"""What the commands share: the operator-facing error, argument types, and lookups that
turn a mistake (an unknown realm or user) into one clear line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from presenced.clock import system_clock
from presenced.keys import PREFIX_LENGTH, generate_api_key, hash_api_key
from presenced.settings import Settings
from presenced.store.base import (
    ApiKeyInfo,
    BotType,
    Realm,
    Role,
    Store,
    User,
)

ROLES = {
    "owner": Role.OWNER,
    "admin": Role.ADMINISTRATOR,
    "administrator": Role.ADMINISTRATOR,
    "moderator": Role.MODERATOR,
    "member": Role.MEMBER,
    "guest": Role.GUEST,
}


BOT_TYPES = {
    "generic": BotType.GENERIC,
    "incoming-webhook": BotType.INCOMING_WEBHOOK,
    "outgoing-webhook": BotType.OUTGOING_WEBHOOK,
    "embedded": BotType.EMBEDDED,
}


class CommandError(Exception):
    """A mistake the operator can fix; printed without a traceback."""


PRIVATE_FILE_MODE = 0o600


Command = Callable[[argparse.Namespace, Store, Settings], Awaitable[None]]


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data).decode() + "\n")


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {value}")
    return number


LABEL_MAX_LENGTH = 100


def label_text(value: str) -> str:
    """A key's or token's label: one line of at most ``LABEL_MAX_LENGTH`` characters (it is
    a column of ``key list`` and ``embed list``)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise argparse.ArgumentTypeError("a label is one line, without control characters")
    if len(value) > LABEL_MAX_LENGTH:
        raise argparse.ArgumentTypeError(
            f"a label is at most {LABEL_MAX_LENGTH} characters, not {len(value)}"
        )
    return value


def port_number(value: str) -> int:
    number = positive_int(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, not {number}")
    return number


def true_or_false(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {value!r}")


async def find_realm(store: Store, subdomain: str) -> Realm:
    realm = await store.get_realm_by_subdomain(subdomain)
    if realm is None:
        name = "the root realm" if subdomain == "" else f"realm {subdomain!r}"
        hint = "" if subdomain == "" else f" --subdomain {subdomain}"
        raise CommandError(
            f"{name} does not exist; create it with: presenced realm create --name NAME{hint}"
        )
    return realm


async def find_user(store: Store, args: argparse.Namespace) -> User:
    realm = await find_realm(store, args.realm)
    user = await store.get_user_by_delivery_email(realm.id, args.email)
    if user is None:
        user = await store.get_user_by_email(realm.id, args.email)
    if user is None:
        raise CommandError(f"no user {args.email!r} in {realm_label(realm)}")
    return user


def realm_label(realm: Realm) -> str:
    return "the root realm" if realm.subdomain == "" else f"realm {realm.subdomain!r}"


async def new_api_key(store: Store, user: User, label: str) -> tuple[ApiKeyInfo, str]:
    key = generate_api_key()
    info = await store.create_api_key(
        user.id, hash_api_key(key), key[:PREFIX_LENGTH], label, system_clock()
    )
    return info, key


def realm_json(realm: Realm) -> dict[str, Any]:
    return {
        "id": realm.id,
        "subdomain": realm.subdomain,
        "name": realm.name,
        "deactivated": realm.deactivated,
        "presence_disabled": realm.presence_disabled,
    }


def user_json(user: User) -> dict[str, Any]:
    role = next(name for name, value in ROLES.items() if value == user.role)
    return {
        "user_id": user.id,
        "email": user.email,
        "full_name": user.full_name,
        "role": role,
        "is_bot": user.is_bot,
        "is_active": user.is_active,
    }


def first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).splitlines()[0] if str(original) else type(original).__name__
