"""The ASGI application: routes, lifespan (store open/close), JSON 404s.

Zulip's REST routes take a lean path (``PresencedApp``): matched by exact path and served by
their plain-ASGI endpoints without Starlette's middleware, request and response objects. Every
other route (and any request the lean router does not match) goes through Starlette unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send

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
from presenced.api.router import LeanRouter
from presenced.clock import Clock, system_clock
from presenced.core.backends import build_server
from presenced.core.server import Server
from presenced.observability import metrics
from presenced.observability.logconfig import BufferedStderrHandler
from presenced.observability.requests import RequestRecorder
from presenced.preflight import database_problem
from presenced.serving.shutdown import answering_on_signals
from presenced.settings import Settings, SettingsError, load_settings, unknown_variables
from presenced.store.base import Store, StoreError
from presenced.store.group_commit import GroupCommitter
from presenced.web.docs import docs_routes
from presenced.web.embed.routes import embed_routes

logger = logging.getLogger("presenced")

logger = logging.getLogger("presenced")

WORKER_ENV = "_PRESENCED_SERVE_WORKER"
"""Set for the worker processes of ``presenced serve --workers N`` (outside the ``PRESENCED_``
settings namespace, so it is not taken for a misspelt setting)."""
QUEUE_COUNT_SECS = 5.0
"""How often the event-queue gauge is brought up to date."""

GC_YOUNG_THRESHOLD = 20_000
"""Allocations between young-generation collections (CPython's default: 700)."""


def api_routes(server: Server) -> list[Route]:
    """Zulip's routes under /api/v1; order matters (``users/me/presence`` before the lookup)."""

    def path(route: str, **methods: Method) -> Route:
        return Route("/api/v1" + route, RestEndpoint(server, methods, "/api/v1" + route))

    update = Method(presence_views.update_presence)
    user_presence = Method(presence_views.get_user_presence)
    realm_presence = Method(presence_views.get_realm_presence)
    return [
        path("/server_settings", GET=Method(server_views.server_settings, public=True)),
        path("/openapi.json", GET=Method(server_views.openapi_document, public=True)),
        path("/users/me/presence", POST=update),
        path("/users/{user_id_or_email}/presence", GET=user_presence),
        path("/realm/presence", GET=realm_presence),
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


def session_routes(server: Server) -> list[Route]:
    """Zulip serves its presence API under /json/ too, for its web app's session cookie;
    presenced has no sessions, so these answer as Zulip does to a request without one."""

    def path(route: str, **methods: Method) -> Route:
        endpoint = RestEndpoint(server, methods, "/json" + route, session=True)
        return Route("/json" + route, endpoint)

    return [
        path("/users/me/presence", POST=Method(presence_views.update_presence)),
        path("/users/{user_id_or_email}/presence", GET=Method(presence_views.get_user_presence)),
        path("/realm/presence", GET=Method(presence_views.get_realm_presence)),
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


UNMATCHED = "<unmatched>"
"""How logs and metrics name a request no route matched (never its raw path)."""


class StartupProblem(Exception):
    """Why the app cannot start (the database is unreachable, ...), in one line for the
    operator: the ASGI server is told that line instead of a traceback."""


class PresencedApp(Starlette):
    """Starlette, with the lean path for Zulip's REST endpoints in front.

    The lean path steps aside when middleware is added (``add_middleware``), so middleware
    always sees every request. Requests Starlette serves are logged and counted here; the REST
    endpoints report their own.
    """

    def __init__(self, *, routes: list[BaseRoute], recorder: RequestRecorder, **kwargs: Any):
        super().__init__(routes=routes, **kwargs)
        self.recorder = recorder
        api = [r for r in routes if isinstance(r, Route) and isinstance(r.endpoint, RestEndpoint)]
        for route in api:
            assert isinstance(route.endpoint, RestEndpoint)
            route.endpoint.observer = recorder
        self.lean = LeanRouter(api)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Starlette reports a failed startup or shutdown with the traceback's text; a
        ``StartupProblem`` is reported as its one line (``uvicorn --factory``, gunicorn's
        worker) instead, and a shutdown cut short by a second interrupt not at all."""

        async def send_plainly(message: Message) -> None:
            problem = sys.exc_info()[1]  # Starlette sends the failure while handling it
            if message["type"] == "lifespan.startup.failed" and isinstance(problem, StartupProblem):
                message = {**message, "message": f"presenced: {problem}"}
            elif message["type"] == "lifespan.shutdown.failed" and isinstance(
                problem, asyncio.CancelledError
            ):
                # A second Ctrl-C: the runner stops at once, as asked (the queues were still
                # saved on the way out); not an error, and no traceback on the terminal.
                message = {**message, "message": ""}
            await send(message)

        with contextlib.suppress(StartupProblem):  # the server was told; it exits by itself
            await super().__call__(scope, receive, send_plainly)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if not self.user_middleware:
            endpoint = self.lean.match(scope)
            if endpoint is not None:
                scope["app"] = self
                await endpoint(scope, receive, send)
                return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await super().__call__(scope, receive, send_and_note)
        finally:
            if not isinstance(scope.get("endpoint"), RestEndpoint):  # those report themselves
                route = scope.get("route")
                client = scope.get("client")
                self.recorder.request_done(
                    scope["method"],
                    getattr(route, "path", UNMATCHED),
                    status,
                    time.perf_counter() - started,
                    None,
                    str(client[0]) if client else "",
                )


async def metrics_page(request: Request) -> Response:
    """``GET /metrics`` (Prometheus text format), for allowed client addresses only."""
    allow: metrics.AddressAllowList = request.app.state.metrics_allow
    client = request.client.host if request.client else ""
    if not allow.allows(client):
        return json_response(
            {"result": "error", "msg": "Access denied", "code": "UNAUTHORIZED"}, status_code=403
        )
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)


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
        server.auth_throttle.forget_idle()


async def count_queues(server: Server) -> None:
    """Keep the event-queue gauge current: a scrape cannot wait for Redis (the separate
    metrics port is served from a thread), so it reads the count taken here every
    ``QUEUE_COUNT_SECS`` (a failed count keeps the previous one)."""
    while True:
        with contextlib.suppress(Exception):
            await server.events.count_queues()
        await asyncio.sleep(QUEUE_COUNT_SECS)


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
    answer_polls_on_signals: bool = False,
) -> Starlette:
    """The app for ``settings``; the store is opened and migrated in the lifespan.

    ``tune_gc`` changes the process's garbage collector settings at start (for ``serve``,
    which owns its process; not for an app embedded in another program or a test run).
    ``answer_polls_on_signals`` answers parked long-polls as soon as SIGTERM or SIGINT
    arrives, for ASGI servers other than ``presenced serve``'s own (see
    ``serving.shutdown.answering_on_signals``).
    """
    server = build_server(settings, clock, store)

    gauges = metrics.ServerGauges(
        index_sizes=server.indexes.sizes, event_queues=lambda: server.events.queue_count
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await server.store.open()
        except StoreError as exc:
            raise StartupProblem(str(exc)) from None
        GroupCommitter.observer = metrics.observe_commit
        exposed = contextlib.ExitStack()
        exposed.enter_context(metrics.SERVERS.tracking(gauges))
        try:
            try:
                if settings.metrics_port:
                    first = settings.metrics_port
                    exposed.enter_context(
                        metrics.separate_port(
                            settings.metrics_host, range(first, first + settings.workers)
                        )
                    )
                await server.store.migrate()
            except metrics.MetricsPortError as exc:
                raise StartupProblem(str(exc)) from None
            except OSError as exc:
                raise StartupProblem(f"cannot serve the metrics: {exc.strerror}") from None
            except StoreError as exc:
                raise StartupProblem(str(exc)) from None
            await server.changes.start()
            await server.indexes.load_all()
            loaded = await server.events.load(server.store)
            if loaded:
                logger.info("loaded %d event queues saved at the last shutdown", loaded)
            if tune_gc:
                tune_garbage_collector()
            housekeeping = asyncio.create_task(keep_house(server))
            counting = asyncio.create_task(count_queues(server))
            server.activity.start()
            if answer_polls_on_signals:
                exposed.enter_context(answering_on_signals(server.events.shut_down))
            try:
                yield
            finally:
                BufferedStderrHandler.write_through()
                for task in (housekeeping, counting):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await server.events.shut_down()
                await server.activity.close()
                await server.changes.close()
                await save_event_queues(server)
                await server.events.close()
        finally:
            exposed.close()
            await server.store.close()

    routes: list[BaseRoute] = [
        *operator_routes(server),
        *api_routes(server),
        *session_routes(server),
    ]
    if settings.metrics_port == 0:
        routes.append(Route("/metrics", metrics_page, methods=["GET"]))
    routes.extend(docs_routes(settings))
    routes.extend(embed_routes(server))
    app = PresencedApp(
        routes=routes,
        recorder=RequestRecorder(),
        exception_handlers={404: not_found},
        lifespan=lifespan,
    )
    # Django never removes a trailing slash: ``/api/v1/realm/presence/`` is not found in Zulip,
    # where Starlette would redirect it (and a client would follow) to the route.
    app.router.redirect_slashes = False
    app.state.server = server
    app.state.metrics_allow = metrics.parse_allow_list(settings.metrics_allow)
    return app


def from_environment() -> Starlette:
    """The app configured like ``presenced serve`` (environment, ``PRESENCED_CONFIG_FILE``), for
    other ASGI servers: ``uvicorn --factory presenced.app:from_environment``, or gunicorn with
    ``-k uvicorn.workers.UvicornWorker 'presenced.app:from_environment()'``; and for each worker
    of ``presenced serve --workers N``.

    A bad setting or an unusable database ends the process with one line, not a traceback.
    The connection limits of ``presenced serve`` are then the ASGI server's to set.
    """
    from presenced.observability.logconfig import configure_logging

    for name in unknown_variables():
        logger.warning("%s is not a presenced setting", name)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"presenced: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    problem = database_problem(settings.database_url, create=True)
    if problem is not None:
        print(f"presenced: {problem}", file=sys.stderr)
        raise SystemExit(1)
    worker = bool(os.environ.get(WORKER_ENV))
    if worker:  # a worker of ``serve --workers N``: logging is set up in each process
        configure_logging(settings.log_format, settings.log_level)
    return create_app(settings, tune_gc=worker, answer_polls_on_signals=True)
