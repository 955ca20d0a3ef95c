"""The ASGI application: routes, lifespan (store open/close), JSON 404s."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from presenced.api import (
    channels_views,
    events_views,
    health_views,
    presence_views,
    server_views,
    settings_views,
    users_views,
)
from presenced.api.endpoint import Method, RestEndpoint
from presenced.api.responses import json_response
from presenced.clock import Clock, system_clock
from presenced.core.backends import build_server
from presenced.core.server import Server
from presenced.settings import Settings
from presenced.store.base import Store
from presenced.web.docs import docs_routes
from presenced.web.embed.routes import embed_routes

logger = logging.getLogger("presenced")

GC_YOUNG_THRESHOLD = 20_000
"""Allocations between young-generation collections (CPython's default: 700)."""


def api_routes(server: Server) -> list[Route]:
    """Zulip's routes under /api/v1; order matters (``users/me/presence`` before the lookup)."""

    def path(route: str, **methods: Method) -> Route:
        return Route("/api/v1" + route, RestEndpoint(server, methods))

    return [
        path("/server_settings", GET=Method(server_views.server_settings, public=True)),
        path("/openapi.json", GET=Method(server_views.openapi_document, public=True)),
        path("/users/me/presence", POST=Method(presence_views.update_presence)),
        path("/users/{user_id_or_email}/presence", GET=Method(presence_views.get_user_presence)),
        path("/realm/presence", GET=Method(presence_views.get_realm_presence)),
        path("/register", POST=Method(events_views.register)),
        path(
            "/events",
            GET=Method(events_views.get_events),
            DELETE=Method(events_views.delete_queue),
        ),
        path("/settings", PATCH=Method(settings_views.update_settings)),
        path("/users/me/status", POST=Method(settings_views.update_status)),
        path("/users/me/subscriptions", GET=Method(channels_views.get_subscriptions)),
        path("/streams", GET=Method(channels_views.get_streams)),
        path("/users/me", GET=Method(users_views.get_own_user)),
        path("/users", GET=Method(users_views.get_users)),
        path("/users/{user_id}", GET=Method(users_views.get_user)),
    ]


def operator_routes(server: Server) -> list[Route]:
    """Routes outside /api/v1 (Zulip's too), for operators and load balancers."""
    health = Method(health_views.health, public=True)
    return [Route("/health", RestEndpoint(server, {"GET": health}))]


async def not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    return json_response(
        {"result": "error", "msg": "Not Found", "code": "BAD_REQUEST"}, status_code=status
    )


def tune_garbage_collector() -> None:
    """Fewer, cheaper full collections. Thousands of parked long-polls keep about a million
    objects alive; with CPython's default thresholds each wave of polls set off several full
    collections of 0.3-0.5 s, stalling every request. Everything alive after start-up (modules,
    indexes) is frozen out of collection, and young objects are collected in larger batches."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


async def keep_house(server: Server) -> None:
    """Expire idle event queues (freeing their memory) and forget idle rate-limit logs."""
    interval = min(60.0, server.settings.event_queue_idle_timeout_secs / 4)
    while True:
        await asyncio.sleep(interval)
        await server.events.expire_idle()
        await server.rate_limiter.forget_idle()


async def save_event_queues(server: Server) -> None:
    """Save the queues for the next start; a store that fails here costs the queues (clients
    re-register), never the shutdown."""
    try:
        saved = await server.events.save(server.store)
    except Exception as exc:
        logger.warning("could not save the event queues (clients will re-register): %s", exc)
        return
    logger.info("saved %d event queues for the next start", saved)


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Clock = system_clock,
    tune_gc: bool = False,
) -> Starlette:
    """The app for ``settings``; the store is opened and migrated in the lifespan.

    ``tune_gc`` changes the process's garbage collector settings at start (for ``serve``,
    which owns its process; not for an app embedded in another program or a test run).
    """
    server = build_server(settings, clock, store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.store.open()
        try:
            await server.store.migrate()
            await server.changes.start()
            await server.indexes.load_all()
            loaded = await server.events.load(server.store)
            if loaded:
                logger.info("loaded %d event queues saved at the last shutdown", loaded)
            if tune_gc:
                tune_garbage_collector()
            housekeeping = asyncio.create_task(keep_house(server))
            server.activity.start()
            try:
                yield
            finally:
                housekeeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await housekeeping
                await server.events.shut_down()
                await server.activity.close()
                await server.changes.close()
                await save_event_queues(server)
                await server.events.close()
        finally:
            await server.store.close()

    app = Starlette(
        routes=[
            *operator_routes(server),
            *api_routes(server),
            *docs_routes(settings),
            *embed_routes(server),
        ],
        exception_handlers={404: not_found},
        lifespan=lifespan,
    )
    app.state.server = server
    return app
