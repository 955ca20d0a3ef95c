"""``embed create | list | revoke``: read-only tokens for the embeddable presence directory."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from presenced.cli.common import (
    CommandError,
    find_realm,
    print_json,
    realm_label,
)
from presenced.clock import system_clock
from presenced.keys import PREFIX_LENGTH
from presenced.realms import realm_url
from presenced.settings import Settings
from presenced.store.base import (
    EmbedToken,
    Realm,
    Store,
)
from presenced.web.embed.policy import OriginError, normalize_origin
from presenced.web.embed.tokens import new_token, token_hash


def embed_url(realm: Realm, settings: Settings, token: str) -> str:
    return realm_url(realm.subdomain, settings.external_host, settings.external_uri_scheme) + (
        f"/embed/directory?token={token}"
    )


async def embed_users(store: Store, realm: Realm, emails: str | None) -> frozenset[int] | None:
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
            raise CommandError(f"no user {email!r} in {realm_label(realm)}")
        if user.is_bot:
            raise CommandError(f"{email} is a bot: embeds never show bots")
        if not user.is_active:
            raise CommandError(f"{email} is deactivated: embeds never show deactivated users")
        ids.add(user.id)
    if not ids:
        raise CommandError("--users names nobody; leave it out to cover the whole organization")
    return frozenset(ids)


def embed_json(token: EmbedToken, realms: dict[int, Realm]) -> dict[str, Any]:
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
    realm = await find_realm(store, args.realm)
    try:
        origins = tuple(dict.fromkeys(normalize_origin(o) for o in args.origin or ()))
    except OriginError as exc:
        raise CommandError(str(exc)) from None
    user_ids = await embed_users(store, realm, args.users)
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
    url = embed_url(realm, settings, token)
    if args.json:
        print_json({**embed_json(info, {realm.id: realm}), "token": token, "url": url})
        return
    print(f"token_id: {info.id}\ntoken: {token}\nurl: {url}")
    print("(the token is shown only now; it is stored as a hash)", file=sys.stderr)


async def cmd_embed_list(args: argparse.Namespace, store: Store, settings: Settings) -> None:
    realms = {r.id: r for r in await store.list_realms()}
    realm_id = None if args.realm is None else (await find_realm(store, args.realm)).id
    tokens = await store.list_embed_tokens(realm_id)
    if args.json:
        print_json([embed_json(t, realms) for t in tokens])
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
