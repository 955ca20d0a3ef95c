"""``presenced check``: settings, database and port, in the spirit of Zulip's ``checkconfig``."""

from __future__ import annotations

import asyncio
import sqlite3

import sqlalchemy.exc

from presenced.cli.common import (
    first_line,
)
from presenced.preflight import (
    database_problem,
    metrics_port_problem,
    port_problem,
    workers_problem,
)
from presenced.settings import Settings, unknown_variables
from presenced.store.base import (
    StoreError,
)
from presenced.store.factory import redacted_url, store_for


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
    report(f"database {redacted_url(settings.database_url)}", problem)
    if problem is None:
        try:
            schema = asyncio.run(schema_problem(settings))
        except (StoreError, sqlite3.Error, sqlalchemy.exc.SQLAlchemyError) as exc:
            schema = f"cannot read the database: {first_line(exc)}"
        report("database schema is current", schema)
    if settings.redis_url:
        report(
            f"Redis {redacted_url(settings.redis_url)} answers",
            asyncio.run(redis_problem(settings)),
        )
    report(
        f"port {settings.host}:{settings.port} is free", port_problem(settings.host, settings.port)
    )
    if settings.metrics_port:
        report(
            f"metrics port {settings.metrics_host}:{settings.metrics_port} is free",
            metrics_port_problem(settings),
        )
    return 1 if problems else 0


async def redis_problem(settings: Settings) -> str | None:
    from presenced.core.backends import open_redis  # only with Redis
    from presenced.redislink import RedisError

    link = open_redis(settings)
    try:
        await link.check()
    except (RedisError, OSError) as exc:
        return f"Redis does not answer (PRESENCED_REDIS_URL): {first_line(exc)}"
    finally:
        await link.close()
    return None


async def schema_problem(settings: Settings) -> str | None:
    store = store_for(settings)
    await store.open()
    try:
        if not await store.schema_is_current():
            return "the database schema is missing or old: run `presenced init`"
        return None
    finally:
        await store.close()
