"""Operator commands: ``presenced init | check | realm | user | key | channel | embed |
zuliprc | serve``.

Every mistake an operator can make (a bad flag or setting, an unusable database, an unknown
realm or user) ends in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sqlite3
import stat
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

import orjson
import sqlalchemy.exc

from presenced import __version__
from presenced.clock import system_clock
from presenced.keys import PREFIX_LENGTH, generate_api_key, hash_api_key
from presenced.preflight import database_problem, port_problem, workers_problem
from presenced.presence.access import ACCESS_GROUPS
from presenced.realms import realm_url
from presenced.settings import LOG_LEVELS, Settings, SettingsError, load_settings, unknown_variables
from presenced.store.base import (
    ApiKeyInfo,
    BotType,
    Channel,
    EmbedToken,
    Realm,
    Role,
    Store,
    StoreError,
    User,
)
from presenced.store.factory import redacted_url, store_for
from presenced.web.embed.policy import OriginError, normalize_origin
from presenced.web.embed.tokens import new_token, token_hash

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


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data).decode() + "\n")


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {value}")
    return number


def _port(value: str) -> int:
    number = _positive_int(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, not {number}")
    return number


def _flag(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {value!r}")


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, not {number}")
    return number


async def _realm(store: Store, subdomain: str) -> Realm:
    realm = await store.get_realm_by_subdomain(subdomain)
    if realm is None:
        name = "the root realm" if subdomain == "" else f"realm {subdomain!r}"
        hint = "" if subdomain == "" else f" --subdomain {subdomain}"
        raise CommandError(
            f"{name} does not exist; create it with: presenced realm create --name NAME{hint}"
        )
    return realm


async def _user(store: Store, args: argparse.Namespace) -> User:
    realm = await _realm(store, args.realm)
    user = await store.get_user_by_delivery_email(realm.id, args.email)
    if user is None:
        user = await store.get_user_by_email(realm.id, args.email)
    if user is None:
        raise CommandError(f"no user {args.email!r} in {_realm_label(realm)}")
    return user


def _realm_label(realm: Realm) -> str:
    return "the root realm" if realm.subdomain == "" else f"realm {realm.subdomain!r}"


async def _new_key(store: Store, user: User, label: str) -> tuple[ApiKeyInfo, str]:
    key = generate_api_key()
    info = await store.create_api_key(
        user.id, hash_api_key(key), key[:PREFIX_LENGTH], label, system_clock()
    )
    return info, key


def _realm_json(realm: Realm) -> dict[str, Any]:
    return {
        "id": realm.id,
        "subdomain": realm.subdomain,
        "name": realm.name,
        "deactivated": realm.deactivated,
        "presence_disabled": realm.presence_disabled,
    }


def _user_json(user: User) -> dict[str, Any]:
    role = next(name for name, value in ROLES.items() if value == user.role)
    return {
        "user_id": user.id,
        "email": user.email,
        "full_name": user.full_name,
        "role": role,
        "is_bot": user.is_bot,
        "is_active": user.is_active,
    }


# Commands


async def cmd_init(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    print(f"database schema is up to date ({redacted_url(settings.database_url)})")


async def cmd_schema_only(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    """Nothing beyond what ``_run`` does for a command without ``needs_schema``: migrate."""


async def cmd_realm_create(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    subdomain = args.subdomain.lower()
    if subdomain and not all(c.isalnum() or c == "-" for c in subdomain):
        raise CommandError("a subdomain may hold only letters, digits and '-'")
    existing = await store.get_realm_by_subdomain(subdomain) if args.if_missing else None
    realm = existing or await store.create_realm(subdomain, args.name, system_clock())
    url = realm_url(realm.subdomain, settings.external_host, "http")
    if args.json:
        _print_json({**_realm_json(realm), "url": url})
    elif existing is not None:
        print(f"{_realm_label(realm)} ({realm.name!r}) already exists at {url}")
    else:
        print(f"created {_realm_label(realm)} ({realm.name!r}) at {url}")


async def cmd_realm_list(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    realms = await store.list_realms()
    if args.json:
        _print_json([_realm_json(r) for r in realms])
        return
    for realm in realms:
        flags = [
            f
            for f, on in (
                ("deactivated", realm.deactivated),
                ("presence disabled", realm.presence_disabled),
            )
            if on
        ]
        subdomain = realm.subdomain or "(root)"
        print(
            f"{realm.id}\t{subdomain}\t{realm.name}" + (f"\t[{', '.join(flags)}]" if flags else "")
        )


async def cmd_realm_deactivate(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    realm = await _realm(store, args.subdomain)
    await store.set_realm_deactivated(realm.id, not args.reactivate)
    state = "reactivated" if args.reactivate else "deactivated"
    print(f"{state} {_realm_label(realm)}")


async def cmd_realm_set(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    realm = await _realm(store, args.subdomain)
    if args.presence_disabled is None and args.can_access_all_users_group is None:
        raise CommandError(
            "nothing to set: give --presence-disabled or --can-access-all-users-group"
        )
    if args.presence_disabled is not None:
        realm = await store.set_realm_presence_disabled(realm.id, args.presence_disabled)
    if args.can_access_all_users_group is not None:
        realm = await store.set_realm_access_group(realm.id, args.can_access_all_users_group)
    print(
        f"{_realm_label(realm)}: presence_disabled={str(realm.presence_disabled).lower()}, "
        f"can_access_all_users_group={realm.can_access_all_users_group}"
    )


async def _channel(store: Store, realm: Realm, name: str) -> Channel:
    channel = await store.get_channel_by_name(realm.id, name)
    if channel is None:
        raise CommandError(f"no channel {name!r} in {_realm_label(realm)}")
    return channel


async def cmd_channel_create(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    realm = await _realm(store, args.realm)
    channel = await store.create_channel(realm.id, args.name, args.description, system_clock())
    print(f"created channel {channel.name!r} (id {channel.id}) in {_realm_label(realm)}")


async def cmd_channel_subscribe(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    user = await _user(store, args)
    realm = await _realm(store, args.realm)
    channel = await _channel(store, realm, args.name)
    if args.unsubscribe:
        done = await store.unsubscribe(channel.id, user.id)
        print(
            f"unsubscribed {user.email} from {channel.name!r}"
            if done
            else f"{user.email} was not subscribed to {channel.name!r}"
        )
    else:
        done = await store.subscribe(channel.id, user.id)
        print(
            f"subscribed {user.email} to {channel.name!r}"
            if done
            else f"{user.email} was already subscribed to {channel.name!r}"
        )


async def cmd_channel_list(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    realm = await _realm(store, args.realm)
    users = {u.id: u.email for u in await store.list_users(realm.id)}
    members: dict[int, list[str]] = {}
    for channel_id, user_id in await store.realm_subscriptions(realm.id):
        members.setdefault(channel_id, []).append(users[user_id])
    channels = await store.list_channels(realm.id)
    if args.json:
        _print_json(
            [
                {
                    "channel_id": c.id,
                    "name": c.name,
                    "description": c.description,
                    "subscribers": members.get(c.id, []),
                }
                for c in channels
            ]
        )
        return
    for channel in channels:
        print(f"{channel.id}\t{channel.name}\t{', '.join(members.get(channel.id, []))}")


async def cmd_user_create(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    if "@" not in args.email or args.email.strip() != args.email:
        raise CommandError(f"{args.email!r} is not an email address")
    realm = await _realm(store, args.realm)
    bot_type = BOT_TYPES[args.bot_type or "generic"] if args.bot or args.bot_type else None
    owner_id = None
    if args.owner:
        owner = await store.get_user_by_delivery_email(realm.id, args.owner)
        if owner is None:
            raise CommandError(f"no user {args.owner!r} to own the bot")
        owner_id = owner.id
    if args.if_missing:
        existing = await store.get_user_by_delivery_email(realm.id, args.email)
        if existing is not None:
            if args.json:
                _print_json({"user_id": existing.id, "email": existing.email, "created": False})
            else:
                print(
                    f"{existing.email} already exists (user_id {existing.id}); its API key is "
                    f"not shown again: `presenced key create --email {args.email}` makes another"
                )
            return
    user = await store.create_user(
        realm.id,
        args.email,
        args.email,
        args.full_name,
        ROLES[args.role],
        bot_type,
        owner_id,
        system_clock(),
    )
    _, key = await _new_key(store, user, "created with the user")
    if args.json:
        _print_json({"user_id": user.id, "email": user.email, "api_key": key})
    else:
        print(f"user_id: {user.id}\nemail: {user.email}\napi_key: {key}")


async def cmd_user_deactivate(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    user = await _user(store, args)
    await store.set_user_active(user.id, args.reactivate)
    print(f"{'reactivated' if args.reactivate else 'deactivated'} {user.email}")


async def cmd_user_list(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    realm = await _realm(store, args.realm)
    users = await store.list_users(realm.id)
    if args.json:
        _print_json([_user_json(u) for u in users])
        return
    for user in users:
        info = _user_json(user)
        extra = [
            tag for tag, on in (("bot", user.is_bot), ("deactivated", not user.is_active)) if on
        ]
        print(
            f"{user.id}\t{user.email}\t{user.full_name}\t{info['role']}"
            + (f"\t[{', '.join(extra)}]" if extra else "")
        )


async def cmd_key_create(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    user = await _user(store, args)
    info, key = await _new_key(store, user, args.label)
    if args.json:
        _print_json({"key_id": info.id, "user_id": user.id, "email": user.email, "api_key": key})
    else:
        print(key)


async def cmd_key_list(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    user = await _user(store, args)
    keys = await store.list_api_keys(user.id)
    if args.json:
        _print_json(
            [
                {"key_id": k.id, "prefix": k.prefix, "label": k.label, "created_at": k.created_at}
                for k in keys
            ]
        )
        return
    for k in keys:
        print(f"{k.id}\t{k.prefix}…\t{k.label}")


async def cmd_key_revoke(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    user = await _user(store, args)
    if not await store.revoke_api_key(user.id, args.key_id):
        raise CommandError(f"{user.email} has no key with id {args.key_id}")
    print(f"revoked key {args.key_id} of {user.email}")


def _embed_url(realm: Realm, settings: Settings, token: str) -> str:
    return realm_url(realm.subdomain, settings.external_host, "http") + (
        f"/embed/directory?token={token}"
    )


async def _embed_users(store: Store, realm: Realm, emails: str | None) -> frozenset[int] | None:
    if emails is None:
        return None
    ids = set()
    for email in (e.strip() for e in emails.split(",")):
        if not email:
            continue
        user = await store.get_user_by_delivery_email(realm.id, email)
        if user is None:
            user = await store.get_user_by_email(realm.id, email)
        if user is None:
            raise CommandError(f"no user {email!r} in {_realm_label(realm)}")
        if user.is_bot:
            raise CommandError(f"{email} is a bot: embeds never show bots")
        ids.add(user.id)
    if not ids:
        raise CommandError("--users names nobody; leave it out to cover the whole organization")
    return frozenset(ids)


def _embed_json(token: EmbedToken, realms: dict[int, Realm]) -> dict[str, Any]:
    return {
        "token_id": token.id,
        "realm": realms[token.realm_id].subdomain if token.realm_id in realms else None,
        "prefix": token.prefix,
        "label": token.label,
        "user_ids": None if token.user_ids is None else sorted(token.user_ids),
        "origins": list(token.origins),
        "created_at": token.created_at,
    }


async def cmd_embed_create(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    realm = await _realm(store, args.realm)
    try:
        origins = tuple(dict.fromkeys(normalize_origin(o) for o in args.origin or ()))
    except OriginError as exc:
        raise CommandError(str(exc)) from None
    user_ids = await _embed_users(store, realm, args.users)
    token = new_token()
    info = await store.create_embed_token(
        realm.id,
        token_hash(token),
        token[:PREFIX_LENGTH],
        args.label,
        user_ids,
        origins,
        system_clock(),
    )
    url = _embed_url(realm, settings, token)
    if args.json:
        _print_json({**_embed_json(info, {realm.id: realm}), "token": token, "url": url})
        return
    print(f"token_id: {info.id}\ntoken: {token}\nurl: {url}")
    print("(the token is shown only now; it is stored as a hash)", file=sys.stderr)


async def cmd_embed_list(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    realms = {r.id: r for r in await store.list_realms()}
    realm_id = None if args.realm is None else (await _realm(store, args.realm)).id
    tokens = await store.list_embed_tokens(realm_id)
    if args.json:
        _print_json([_embed_json(t, realms) for t in tokens])
        return
    for token in tokens:
        realm = realms.get(token.realm_id)
        count = 0 if token.user_ids is None else len(token.user_ids)
        covers = "everyone" if token.user_ids is None else f"{count} user" + "s" * (count != 1)
        origins = ", ".join(token.origins) or "any site"
        subdomain = (realm.subdomain or "(root)") if realm else "?"
        print(f"{token.id}\t{subdomain}\t{token.prefix}…\t{token.label}\t{covers}\t{origins}")


async def cmd_embed_revoke(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    """By id (from ``embed list``), or by the token itself."""
    given = args.token.strip()
    if given.isdigit():
        token_id = int(given)
    else:
        found = await store.embed_token_by_hash(token_hash(given))
        if found is None:
            raise CommandError("no such embed token")
        token_id = found.id
    if not await store.revoke_embed_token(token_id):
        raise CommandError(f"no embed token with id {token_id}")
    print(f"revoked embed token {token_id}")


async def cmd_zuliprc(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    """The file holds a working API key: it is written readable by its owner only (0600),
    whether named with ``--output`` or redirected to with ``>``."""
    user = await _user(store, args)
    if args.output is not None:
        try:
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
        except OSError as exc:
            raise CommandError(f"cannot write {args.output}: {exc.strerror}") from None
    _, key = await _new_key(store, user, args.label)
    site = args.site or realm_url(args.realm, settings.external_host, settings.external_uri_scheme)
    text = f"[api]\nemail={user.delivery_email}\nkey={key}\nsite={site}\n"
    if args.output is None:
        _make_private_if_file(sys.stdout.fileno())
        sys.stdout.write(text)
        return
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), PRIVATE_FILE_MODE)
        out.write(text)
    print(f"wrote {args.output} (mode 0600)", file=sys.stderr)


def _make_private_if_file(fd: int) -> None:
    """``zuliprc > FILE``: the shell created FILE with the umask's mode; narrow it to 0600."""
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, PRIVATE_FILE_MODE)
    except OSError:
        pass


class Parser(argparse.ArgumentParser):
    """argparse with its mistakes on one line (it prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="presenced", description="A Zulip-compatible user presence server.")
    parser.add_argument("--version", action="version", version=f"presenced {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", help="create or upgrade the database schema")
    init.set_defaults(func=cmd_init, needs_schema=False)

    check = sub.add_parser(
        "check", help="validate the settings, the database and the services; non-zero on problems"
    )
    check.set_defaults(func=None)

    serve = sub.add_parser("serve", help="run the server (creates the schema if missing)")
    serve.add_argument(
        "--host", help="the address to listen on (PRESENCED_HOST; default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=_port, help="the port to listen on (PRESENCED_PORT; default 9991)"
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        help="server processes (PRESENCED_WORKERS; default 1; more need PostgreSQL and Redis)",
    )
    serve.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        help="the server log's level (PRESENCED_LOG_LEVEL; default info)",
    )
    serve.set_defaults(func=None, needs_schema=False)

    realm = sub.add_parser("realm", help="organizations").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = realm.add_parser("create", help="create a realm (no subdomain: the root realm)")
    create.add_argument("--name", required=True)
    create.add_argument("--subdomain", default="")
    create.add_argument("--json", action="store_true")
    create.add_argument(
        "--if-missing", action="store_true", help="succeed without change if the realm exists"
    )
    create.set_defaults(func=cmd_realm_create, changes_directory=True)
    listing = realm.add_parser("list", help="list realms")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_realm_list)
    setter = realm.add_parser("set", help="change a realm's presence settings")
    setter.add_argument("--subdomain", default="")
    setter.add_argument(
        "--presence-disabled",
        type=_flag,
        metavar="true|false",
        help="turn presence off (or back on) for the whole organization",
    )
    setter.add_argument(
        "--can-access-all-users-group",
        choices=ACCESS_GROUPS,
        help="who may see every user: everyone, or members (not guests)",
    )
    setter.set_defaults(func=cmd_realm_set, changes_directory=True)
    for name, reactivate in (("deactivate", False), ("reactivate", True)):
        cmd = realm.add_parser(name, help=f"{name} a realm")
        cmd.add_argument("--subdomain", default="")
        cmd.set_defaults(func=cmd_realm_deactivate, reactivate=reactivate, changes_directory=True)

    user = sub.add_parser("user", help="users and bots").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = user.add_parser("create", help="create a user and print its first API key")
    create.add_argument("--email", required=True)
    create.add_argument("--full-name", required=True)
    create.add_argument("--realm", default="", help="the realm's subdomain (default: root)")
    create.add_argument("--role", choices=sorted(ROLES), default="member")
    create.add_argument("--bot", action="store_true", help="a generic bot")
    create.add_argument("--bot-type", choices=sorted(BOT_TYPES), help="a bot of this type")
    create.add_argument("--owner", help="the email of the bot's owner")
    create.add_argument("--json", action="store_true")
    create.add_argument(
        "--if-missing",
        action="store_true",
        help="succeed without change if the user exists (no API key is printed then)",
    )
    create.set_defaults(func=cmd_user_create, changes_directory=True)
    for name, reactivate in (("deactivate", False), ("reactivate", True)):
        cmd = user.add_parser(name, help=f"{name} a user")
        cmd.add_argument("--email", required=True)
        cmd.add_argument("--realm", default="")
        cmd.set_defaults(func=cmd_user_deactivate, reactivate=reactivate, changes_directory=True)
    listing = user.add_parser("list", help="list a realm's users")
    listing.add_argument("--realm", default="")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_user_list)

    key = sub.add_parser("key", help="API keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = key.add_parser("create", help="create another API key for a user")
    create.add_argument("--email", required=True)
    create.add_argument("--realm", default="")
    create.add_argument("--label", default="")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=cmd_key_create, changes_directory=True)
    listing = key.add_parser("list", help="list a user's keys (never the keys themselves)")
    listing.add_argument("--email", required=True)
    listing.add_argument("--realm", default="")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_key_list)
    revoke = key.add_parser("revoke", help="revoke one key")
    revoke.add_argument("--email", required=True)
    revoke.add_argument("--realm", default="")
    revoke.add_argument("--key-id", type=int, required=True)
    revoke.set_defaults(func=cmd_key_revoke, changes_directory=True)

    channel = sub.add_parser("channel", help="channels (what limited guests may see)")
    channels = channel.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = channels.add_parser("create", help="create a channel")
    create.add_argument("--name", required=True)
    create.add_argument("--description", default="")
    create.add_argument("--realm", default="")
    create.set_defaults(func=cmd_channel_create, changes_directory=True)
    for name, unsubscribe in (("subscribe", False), ("unsubscribe", True)):
        cmd = channels.add_parser(name, help=f"{name} a user")
        cmd.add_argument("--name", required=True, help="the channel")
        cmd.add_argument("--email", required=True, help="the user")
        cmd.add_argument("--realm", default="")
        cmd.set_defaults(
            func=cmd_channel_subscribe, unsubscribe=unsubscribe, changes_directory=True
        )
    listing = channels.add_parser("list", help="channels and their subscribers")
    listing.add_argument("--realm", default="")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_channel_list)

    embed = sub.add_parser("embed", help="read-only tokens for the embeddable presence directory")
    embeds = embed.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = embeds.add_parser("create", help="create a token and print it (only this once)")
    create.add_argument("--realm", default="", help="the realm's subdomain (default: root)")
    create.add_argument("--label", default="")
    create.add_argument(
        "--users", metavar="EMAIL,...", help="only these people (default: the whole organization)"
    )
    create.add_argument(
        "--origin",
        action="extend",
        nargs="+",
        metavar="URL",
        help="sites that may frame the page and read the JSON (default: any site)",
    )
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=cmd_embed_create)
    listing = embeds.add_parser("list", help="list tokens (never the tokens themselves)")
    listing.add_argument("--realm", default=None, help="only this realm's tokens")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_embed_list)
    revoke = embeds.add_parser("revoke", help="revoke a token (open pages stop within a second)")
    revoke.add_argument(
        "token", metavar="TOKEN_ID|TOKEN", help="an id from `embed list`, or the token itself"
    )
    revoke.set_defaults(func=cmd_embed_revoke)

    zuliprc = sub.add_parser("zuliprc", help="create a key and print a zuliprc that uses it")
    zuliprc.add_argument("--email", required=True)
    zuliprc.add_argument("--realm", default="")
    zuliprc.add_argument("--site", help="the server URL clients use (default: from the realm)")
    zuliprc.add_argument("--label", default="zuliprc")
    zuliprc.add_argument(
        "--output", metavar="FILE", help="write the zuliprc to FILE (mode 0600) instead of stdout"
    )
    zuliprc.set_defaults(func=cmd_zuliprc, changes_directory=True)
    return parser


async def _run(command: Command, args: argparse.Namespace, settings: Settings) -> None:
    needs_schema = getattr(args, "needs_schema", True)
    problem = database_problem(settings.database_url, create=not needs_schema)
    if problem is not None:
        raise CommandError(problem)
    store = store_for(settings)
    await store.open()
    try:
        if needs_schema and not await store.schema_is_current():
            raise CommandError("the database schema is missing or old: run `presenced init`")
        if not needs_schema:
            await store.migrate()
        await command(args, store, settings)
    finally:
        await store.close()
    if not (getattr(args, "changes_directory", False) and settings.redis_url):
        return
    from presenced.core.backends import announce_directory_change  # only with Redis

    if not await announce_directory_change(settings):
        print(
            "presenced: warning: Redis did not answer; running servers will see the change "
            f"within {settings.change_poll_interval_secs:g} s (their periodic store check)",
            file=sys.stderr,
        )


async def _check_database(settings: Settings) -> None:
    """Fail with a one-line message (not a startup traceback) if the database is unreachable."""
    store = store_for(settings)
    await store.open()
    await store.close()


def serve_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """The settings with ``serve``'s flags applied over them."""
    flags = {
        name: getattr(args, name)
        for name in ("host", "port", "workers", "log_level")
        if getattr(args, name) is not None
    }
    return dataclasses.replace(settings, **flags).validate()


def serve(settings: Settings) -> None:
    from presenced.app import WORKER_ENV, create_app
    from presenced.observability.logconfig import configure_logging
    from presenced.serving.launch import raise_open_file_limit, uvicorn_config, workers_config
    from presenced.serving.shutdown import run, run_workers

    for problem in (
        workers_problem(settings),
        database_problem(settings.database_url, create=True),
        port_problem(settings.host, settings.port),
    ):
        if problem is not None:
            raise CommandError(problem)
    asyncio.run(_check_database(settings))
    configure_logging(settings.log_format, settings.log_level)
    raise_open_file_limit(settings.max_connections)
    if settings.workers == 1:
        app = create_app(settings, tune_gc=True)
        run(uvicorn_config(app, settings), app.state.server.events.shut_down)
        return
    # The schema once, here, rather than by every worker at once. Each worker then builds its
    # own app from the environment it inherits, so what the flags changed goes there too.
    asyncio.run(_migrate(settings))
    os.environ.update({WORKER_ENV: "1", "PRESENCED_LOG_LEVEL": settings.log_level})
    run_workers(workers_config(settings))


async def _migrate(settings: Settings) -> None:
    store = store_for(settings)
    await store.open()
    try:
        await store.migrate()
    finally:
        await store.close()


def check(settings: Settings) -> int:
    """``presenced check``: one line per check; non-zero if any found a problem."""
    problems: list[str] = []

    def report(what: str, problem: str | None) -> None:
        if problem is None:
            print(f"ok: {what}")
        else:
            problems.append(problem)
            print(f"problem: {problem}")

    report("settings", None)
    for name in unknown_variables():
        report("", f"{name} is not a presenced setting (a typo?)")
    report("workers", workers_problem(settings))
    problem = database_problem(settings.database_url, create=False)
    report(f"database {settings.database_url}", problem)
    if problem is None:
        try:
            schema = asyncio.run(_schema_problem(settings))
        except (StoreError, sqlite3.Error, sqlalchemy.exc.SQLAlchemyError) as exc:
            schema = f"cannot read the database: {_first_line(exc)}"
        report("database schema is current", schema)
    report(
        f"port {settings.host}:{settings.port} is free", port_problem(settings.host, settings.port)
    )
    return 1 if problems else 0


async def _schema_problem(settings: Settings) -> str | None:
    store = store_for(settings)
    await store.open()
    try:
        if not await store.schema_is_current():
            return "the database schema is missing or old: run `presenced init`"
        return None
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        try:
            settings = load_settings()
        except SettingsError as exc:
            if args.command == "check":
                print(f"problem: {exc}")
                return 1
            raise
        if args.command != "check":
            for name in unknown_variables():
                print(f"presenced: warning: {name} is not a presenced setting", file=sys.stderr)
        if args.command == "check":
            return check(settings)
        if args.command == "serve":
            serve(serve_settings(args, settings))
            return 0
        asyncio.run(_run(args.func, args, settings))
    except (CommandError, StoreError, SettingsError) as exc:
        print(f"presenced: {exc}", file=sys.stderr)
        return 1
    except (sqlite3.Error, sqlalchemy.exc.SQLAlchemyError) as exc:
        print(f"presenced: database error: {_first_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"presenced: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).splitlines()[0] if str(original) else type(original).__name__
