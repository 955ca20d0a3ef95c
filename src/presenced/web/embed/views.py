"""``/embed/directory``, ``/embed/stream``, ``/embed/presence.json`` and ``/embed/presence.js``.

Every error is Zulip's JSON envelope (status, ``msg``, ``code``); a bad or revoked token is
401 and reveals nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from presenced.api.errors import ApiError, MissingArgumentError, ServiceUnavailableError
from presenced.api.events_views import EVENTS_UNAVAILABLE
from presenced.api.responses import encode_headers, json_error, json_response, json_success
from presenced.core.server import Server
from presenced.events.base import EventsUnavailableError
from presenced.store.base import StoreUnavailableError
from presenced.web.embed import assets, policy, queues
from presenced.web.embed.grants import Grant, Grants
from presenced.web.embed.people import SharedIndexes, display_state, people_of
from presenced.web.embed.stream import CHECK_SECS, Feed
from presenced.web.methods import refuse_other_methods

logger = logging.getLogger("presenced.embed")

THEMES = ("light", "dark")
NO_STORE = {"Cache-Control": "no-store"}
SCRIPT_MAX_AGE = 300
PING_SECS = 15
"""A comment line this often keeps proxies from closing a quiet stream."""
SEND_TIMEOUT_SECS = 30
"""A page that reads nothing for this long is dropped (and its queue with it)."""
SHUTDOWN_GRACE_SECS = CHECK_SECS + 0.5
"""On shutdown a stream ends by itself within a check; less than serve's 3 s grace."""


class InvalidTokenError(ApiError):
    status_code = 401
    code = "UNAUTHORIZED"

    def __init__(self) -> None:
        super().__init__("Invalid or revoked embed token")


class OriginNotAllowedError(ApiError):
    status_code = 403
    code = "BAD_REQUEST"

    def __init__(self) -> None:
        super().__init__("This embed token may not be used from this site")


Handler = Callable[[Request], Awaitable[Response]]


class EmbedEndpoint:
    """GET (and HEAD) only, as the API answers other methods; errors in Zulip's envelope,
    never a traceback to the client."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response: Response | None = refuse_other_methods(request)
        if response is None:
            try:
                response = await self.handler(request)
            except ApiError as error:
                response = json_error(error)
            except StoreUnavailableError as exc:  # as the API answers it
                logger.warning("503 for %s %s: %s", request.method, request.url.path, exc)
                response = json_error(ServiceUnavailableError())
            except Exception:
                logger.exception("error serving %s", request.url.path)
                response = json_response(
                    {"result": "error", "msg": "Internal server error", "code": "BAD_REQUEST"},
                    500,
                )
        await response(scope, receive, send)


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


class EmbedViews:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.grants = Grants(server)
        self.indexes = SharedIndexes(server)
        self.feed = Feed(server, self.grants, self.indexes)

    async def _grant(self, request: Request, *, check_origin: bool) -> tuple[str, Grant]:
        token = request.query_params.get("token")
        if token is None or token == "":
            raise MissingArgumentError("token")
        grant = await self.grants.resolve(token)
        if grant is None:
            raise InvalidTokenError()
        origin = request.headers.get("origin")
        if check_origin and not policy.origin_allowed(grant.token, origin, _own_origin(request)):
            raise OriginNotAllowedError()
        return token, grant

    def _cors(self, request: Request, grant: Grant) -> dict[str, str]:
        return policy.cors_headers(grant.token, request.headers.get("origin"))

    async def directory(self, request: Request) -> Response:
        theme = request.query_params.get("theme", "light")
        if theme not in THEMES:
            raise ApiError("Invalid theme: use light or dark", var_name="theme")
        _, grant = await self._grant(request, check_origin=False)
        nonce = assets.new_nonce()
        headers = {**policy.page_security_headers(grant.token, nonce), **NO_STORE}
        return HTMLResponse(assets.directory_page(theme, nonce), headers=headers)

    async def stream(self, request: Request) -> Response:
        token, grant = await self._grant(request, check_origin=True)
        headers = {**self._cors(request, grant), **NO_STORE, "X-Accel-Buffering": "no"}
        if request.method == "HEAD":  # the headers only: no stream to keep open
            return Response(media_type="text/event-stream", headers=headers)
        # Opened before the response starts, so that event queues out of reach (Redis down)
        # answer 503, as /register does, rather than break a stream already begun.
        try:
            queue = await queues.open_queue(self.server, grant.realm)
        except EventsUnavailableError:
            raise ServiceUnavailableError(EVENTS_UNAVAILABLE) from None
        shutdown = anyio.Event()
        return EventSourceResponse(
            self.feed.events(token, grant, shutdown.is_set, queue),
            # The feed deletes its queue when it ends; this covers a page gone before its
            # stream began.
            background=BackgroundTask(queues.close_queue, self.server, queue),
            headers=headers,
            ping=PING_SECS,
            send_timeout=SEND_TIMEOUT_SECS,
            shutdown_event=shutdown,
            shutdown_grace_period=SHUTDOWN_GRACE_SECS,
        )

    async def presence_json(self, request: Request) -> Response:
        _, grant = await self._grant(request, check_origin=True)
        index = await self.indexes.index(grant.realm.id, max_age=CHECK_SECS)
        now = self.server.clock()
        threshold = self.server.settings.offline_threshold_secs
        people = people_of(grant, index)
        for p in people:
            p["presence"] = display_state(
                p["active_timestamp"], p["idle_timestamp"], now, threshold
            )
        response = json_success(
            {
                "server_timestamp": now,
                "offline_threshold_secs": threshold,
                "ping_interval_secs": self.server.settings.presence_ping_interval_secs,
                "people": people,
            }
        )
        response.extra_headers.extend(encode_headers({**self._cors(request, grant), **NO_STORE}))
        return response

    async def presence_script(self, request: Request) -> Response:
        return Response(
            assets.asset("presence.js"),
            media_type="text/javascript",
            headers={
                "Access-Control-Allow-Origin": "*",
                "Cache-Control": f"public, max-age={SCRIPT_MAX_AGE}",
                "X-Content-Type-Options": "nosniff",
            },
        )
