"""``init``, ``realm``, ``channel``, ``user`` and ``key``: the organizations, their people and
their API keys."""

from __future__ import annotations

import argparse

from presenced.cli.common import (
    BOT_TYPES,
    ROLES,
    CommandError,
    find_realm,
    find_user,
    new_api_key,
    print_json,
    realm_json,
    realm_label,
    user_json,
)
from presenced.clock import system_clock
from presenced.realms import realm_url
from presenced.settings import Settings
from presenced.store.base import (
    Channel,
    Realm,
    Store,
)
from presenced.store.factory import redacted_url


async def cmd_init(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    print(f"database schema is up to date ({redacted_url(settings.database_url)})")


async def cmd_realm_create(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    subdomain = args.subdomain.lower()
    if subdomain and not all(c.isalnum() or c == "-" for c in subdomain):
        raise CommandError("a subdomain may hold only letters, digits and '-'")
    existing = await store.get_realm_by_subdomain(subdomain) if args.if_missing else None
    realm = existing or await store.create_realm(subdomain, args.name, system_clock())
    url = realm_url(realm.subdomain, settings.external_host, settings.external_uri_scheme)
    if args.json:
        print_json({**realm_json(realm), "url": url})
    elif existing is not None:
        print(f"{realm_label(realm)} ({realm.name!r}) already exists at {url}")
    else:
        print(f"created {realm_label(realm)} ({realm.name!r}) at {url}")


async def cmd_realm_list(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    realms = await store.list_realms()
    if args.json:
        print_json([realm_json(r) for r in realms])
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
    realm = await find_realm(store, args.subdomain)
    await store.set_realm_deactivated(realm.id, not args.reactivate)
    state = "reactivated" if args.reactivate else "deactivated"
    print(f"{state} {realm_label(realm)}")


async def cmd_realm_set(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    realm = await find_realm(store, args.subdomain)
    if args.presence_disabled is None and args.can_access_all_users_group is None:
        raise CommandError(
            "nothing to set: give --presence-disabled or --can-access-all-users-group"
        )
    if args.presence_disabled is not None:
        realm = await store.set_realm_presence_disabled(realm.id, args.presence_disabled)
    if args.can_access_all_users_group is not None:
        realm = await store.set_realm_access_group(realm.id, args.can_access_all_users_group)
    print(
        f"{realm_label(realm)}: presence_disabled={str(realm.presence_disabled).lower()}, "
        f"can_access_all_users_group={realm.can_access_all_users_group}"
    )


async def find_channel(store: Store, realm: Realm, name: str) -> Channel:
    channel = await store.get_channel_by_name(realm.id, name)
    if channel is None:
        raise CommandError(f"no channel {name!r} in {realm_label(realm)}")
    return channel


async def cmd_channel_create(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    realm = await find_realm(store, args.realm)
    channel = await store.create_channel(realm.id, args.name, args.description, system_clock())
    print(f"created channel {channel.name!r} (id {channel.id}) in {realm_label(realm)}")


async def cmd_channel_subscribe(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    user = await find_user(store, args)
    realm = await find_realm(store, args.realm)
    channel = await find_channel(store, realm, args.name)
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
    realm = await find_realm(store, args.realm)
    users = {u.id: u.email for u in await store.list_users(realm.id)}
    members: dict[int, list[str]] = {}
    for channel_id, user_id in await store.realm_subscriptions(realm.id):
        members.setdefault(channel_id, []).append(users[user_id])
    channels = await store.list_channels(realm.id)
    if args.json:
        print_json(
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
    realm = await find_realm(store, args.realm)
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
                print_json({"user_id": existing.id, "email": existing.email, "created": False})
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
    _, key = await new_api_key(store, user, "created with the user")
    if args.json:
        print_json({"user_id": user.id, "email": user.email, "api_key": key})
    else:
        print(f"user_id: {user.id}\nemail: {user.email}\napi_key: {key}")


async def cmd_user_deactivate(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    user = await find_user(store, args)
    await store.set_user_active(user.id, args.reactivate)
    print(f"{'reactivated' if args.reactivate else 'deactivated'} {user.email}")


async def cmd_user_list(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    realm = await find_realm(store, args.realm)
    users = await store.list_users(realm.id)
    if args.json:
        print_json([user_json(u) for u in users])
        return
    for user in users:
        info = user_json(user)
        extra = [
            tag for tag, on in (("bot", user.is_bot), ("deactivated", not user.is_active)) if on
        ]
        print(
            f"{user.id}\t{user.email}\t{user.full_name}\t{info['role']}"
            + (f"\t[{', '.join(extra)}]" if extra else "")
        )


async def cmd_key_create(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    user = await find_user(store, args)
    info, key = await new_api_key(store, user, args.label)
    if args.json:
        print_json({"key_id": info.id, "user_id": user.id, "email": user.email, "api_key": key})
    else:
        print(key)


async def cmd_key_list(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    user = await find_user(store, args)
    keys = await store.list_api_keys(user.id)
    if args.json:
        print_json(
            [
                {"key_id": k.id, "prefix": k.prefix, "label": k.label, "created_at": k.created_at}
                for k in keys
            ]
        )
        return
    for k in keys:
        print(f"{k.id}\t{k.prefix}…\t{k.label}")


async def cmd_key_revoke(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    user = await find_user(store, args)
    if not await store.revoke_api_key(user.id, args.key_id):
        raise CommandError(f"{user.email} has no key with id {args.key_id}")
    print(f"revoked key {args.key_id} of {user.email}")
