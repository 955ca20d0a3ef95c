"""``serve``: the checks that make a startup mistake one line, then one process or N workers."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os

from presenced.cli.common import (
    CommandError,
)
from presenced.preflight import (
    database_problem,
    metrics_port_problem,
    port_problem,
    workers_problem,
)
from presenced.settings import Settings
from presenced.store.factory import store_for


async def check_database(settings: Settings) -> None:
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
        metrics_port_problem(settings),
    ):
        if problem is not None:
            raise CommandError(problem)
    asyncio.run(check_database(settings))
    configure_logging(settings.log_format, settings.log_level)
    raise_open_file_limit(settings.max_connections)
    if settings.workers == 1:
        app = create_app(settings, tune_gc=True)
        run(uvicorn_config(app, settings), app.state.server.events.shut_down)
        return
    # The schema once, here, rather than by every worker at once. Each worker then builds its
    # own app from the environment it inherits, so what the flags changed goes there too.
    asyncio.run(migrate(settings))
    os.environ.update(
        {
            WORKER_ENV: "1",
            "PRESENCED_LOG_LEVEL": settings.log_level,
            "PRESENCED_WORKERS": str(settings.workers),  # their metrics ports (one each)
        }
    )
    run_workers(workers_config(settings))


async def migrate(settings: Settings) -> None:
    store = store_for(settings)
    await store.open()
    try:
        await store.migrate()
    finally:
        await store.close()
