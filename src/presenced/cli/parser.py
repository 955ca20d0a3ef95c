"""The command line: every command, its flags and their help."""

from __future__ import annotations

import argparse
from typing import NoReturn

from presenced import __version__
from presenced.cli.client_files import cmd_zuliprc
from presenced.cli.common import (
    BOT_TYPES,
    ROLES,
    label_text,
    port_number,
    positive_int,
    true_or_false,
)
from presenced.cli.directory import (
    cmd_channel_create,
    cmd_channel_list,
    cmd_channel_subscribe,
    cmd_init,
    cmd_key_create,
    cmd_key_list,
    cmd_key_revoke,
    cmd_realm_create,
    cmd_realm_deactivate,
    cmd_realm_list,
    cmd_realm_set,
    cmd_user_create,
    cmd_user_deactivate,
    cmd_user_list,
)
from presenced.cli.embed import cmd_embed_create, cmd_embed_list, cmd_embed_revoke
from presenced.presence.access import ACCESS_GROUPS
from presenced.settings import LOG_LEVELS


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
        "--port", type=port_number, help="the port to listen on (PRESENCED_PORT; default 9991)"
    )
    serve.add_argument(
        "--workers",
        type=positive_int,
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
        type=true_or_false,
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
    create.add_argument("--label", default="", type=label_text)
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
    create.add_argument("--label", default="", type=label_text)
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
    zuliprc.add_argument("--label", default="zuliprc", type=label_text)
    zuliprc.add_argument(
        "--output", metavar="FILE", help="write the zuliprc to FILE (mode 0600) instead of stdout"
    )
    zuliprc.set_defaults(func=cmd_zuliprc, changes_directory=True)
    return parser
