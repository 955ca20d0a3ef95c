"""Zulip's REST dispatch: one ASGI endpoint per path, handlers per method.

Routing comes before authentication, as in Zulip: a method the path does not serve gets 405
with ``allowed_methods`` whoever asks. HEAD is served wherever GET is; OPTIONS answers 204 with
an ``Allow`` header. Client errors become Zulip's error envelope; anything unexpected becomes a
logged 500 with no traceback in the body.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from presenced.api.auth import Caller, authenticate
from presenced.api.errors import ApiError, RateLimitedError, ServiceUnavailableError
from presenced.api.params import RequestParams, parse_form
from presenced.api.responses import json_error, json_response
from presenced.core.server import Server
from presenced.ratelimit.base import RateLimitResult
from presenced.store.base import Realm, StoreUnavailableError, User

logger = logging.getLogger("presenced.api")

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
NEVER_CACHE = {"Cache-Control": "max-age=0, no-cache, no-store, must-revalidate, private"}


@dataclass
class Call:
    """One request as a handler sees it."""

    request: Request
    server: Server
    params: RequestParams
    caller: Caller | None

    @property
    def user(self) -> User:
        assert self.caller is not None, "handler registered as public"
        return self.caller.user

    @property
    def realm(self) -> Realm:
        assert self.caller is not None, "handler registered as public"
        return self.caller.realm


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Method:
    handler: Handler
    public: bool = False
    """True: no authentication (Zulip's server_settings ignores credentials entirely)."""


class RestEndpoint:
    def __init__(self, server: Server, methods: dict[str, Method]) -> None:
        self.server = server
        self.methods = methods
        allowed: list[str] = []
        for name in methods:
            allowed.append(name)
            if name == "GET":
                allowed.append("HEAD")
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.respond(request)
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        method = request.method
        if method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": ", ".join(sorted(self.allowed))})
        spec = self.methods.get("GET" if method == "HEAD" else method)
        if spec is None:
            return json_response(
                {"result": "error", "msg": "Method Not Allowed", "allowed_methods": self.allowed},
                405,
                {"Allow": ", ".join(self.allowed)},
            )
        limit: RateLimitResult | None = None
        try:
            caller = None if spec.public else await authenticate(request, self.server)
            if caller is not None and self.server.rate_limiter.enabled:
                limit = await self.server.rate_limiter.hit(caller.user.id)
                if not limit.allowed:
                    raise RateLimitedError(round(limit.retry_after, 3))
            params = RequestParams(request.query_params, await _form_body(request))
            response = await spec.handler(Call(request, self.server, params, caller))
        except ApiError as error:
            response = json_error(error)
        except StoreUnavailableError as exc:
            self.server.changes.store_failed(exc)
            logger.warning("503 for %s %s: %s", method, request.url.path, exc)
            response = json_error(ServiceUnavailableError())
        except Exception:
            logger.exception("error serving %s %s", method, request.url.path)
            response = json_response(
                {"result": "error", "msg": "Internal server error", "code": "BAD_REQUEST"}, 500
            )
        if limit is not None:
            response.headers.update(limit.headers(self.server.rate_limiter.limit))
        response.headers.update(NEVER_CACHE)
        return response


async def _form_body(request: Request) -> dict[str, str]:
    """Form fields of a urlencoded or multipart body (as Django parses them); else none."""
    if request.method in ("GET", "HEAD"):
        return {}
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == URLENCODED:
        return parse_form(await request.body())
    if content_type == MULTIPART:
        try:
            form = await request.form()
        except Exception:
            raise ApiError("Malformed multipart/form-data request body") from None
        return {name: value for name, value in form.items() if isinstance(value, str)}
    return {}
