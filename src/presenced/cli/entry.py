"""The entry point: settings, the command, and every operator mistake as one line on stderr."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Sequence

import sqlalchemy.exc

from presenced.cli.check import check
from presenced.cli.common import (
    Command,
    CommandError,
    first_line,
)
from presenced.cli.parser import build_parser
from presenced.cli.serve import serve, serve_settings
from presenced.preflight import database_problem
from presenced.settings import Settings, SettingsError, load_settings, unknown_variables
from presenced.store.base import (
    StoreError,
)
from presenced.store.factory import store_for


async def run_command(command: Command, args: argparse.Namespace, settings: Settings) -> None:
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
        asyncio.run(run_command(args.func, args, settings))
    except (CommandError, StoreError, SettingsError) as exc:
        print(f"presenced: {exc}", file=sys.stderr)
        return 1
    except (sqlite3.Error, sqlalchemy.exc.SQLAlchemyError) as exc:
        print(f"presenced: database error: {first_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"presenced: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
