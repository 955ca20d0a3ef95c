"""Zulip's REST dispatch: one ASGI endpoint per path, handlers per method.

Routing comes before authentication, as in Zulip: a method the path does not serve gets 405
with ``allowed_methods`` whoever asks. HEAD is served wherever GET is; OPTIONS answers 204 with
an ``Allow`` header. Client errors become Zulip's error envelope; anything unexpected becomes a
logged 500 with no traceback in the body.

The endpoint is plain ASGI: it reads the scope directly (``ApiRequest``), writes pre-encoded
headers (``ApiResponse``) and reports each finished request to an optional observer (access
log, metrics) with the route template, never the raw path or any credential.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from presenced.api.auth import NOT_LOGGED_IN, Caller, authenticate
from presenced.api.compression import accepts_gzip
from presenced.api.errors import (
    ApiError,
    InvalidApiKeyError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthorizedError,
)
from presenced.api.params import RequestParams, parse_form
from presenced.api.request import ApiRequest, ClientDisconnectedError
from presenced.api.responses import (
    ApiResponse,
    Headers,
    encode_headers,
    json_error,
    json_response,
)
from presenced.core.server import Server
from presenced.ratelimit.base import RateLimitResult
from presenced.store.base import Realm, StoreBusyError, StoreUnavailableError, User

logger = logging.getLogger("presenced.api")

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
DJANGO_HTML = (b"content-type", b"text/html; charset=utf-8")
"""Django's default content type, which Zulip's 405 and OPTIONS responses keep."""
NEVER_CACHE = (b"cache-control", b"max-age=0, no-cache, no-store, must-revalidate, private")
CLIENT_CLOSED = 499
"""The status recorded (never sent) for a client that went away mid-request (nginx's)."""


_expires: tuple[int, Headers] = (0, [])


def never_cache() -> Headers:
    """Django's ``add_never_cache_headers``: ``Expires`` now (an HTTP date, made once a
    second) and ``Cache-Control``."""
    global _expires
    now = int(time.time())
    if _expires[0] != now:
        _expires = (now, [(b"expires", formatdate(now, usegmt=True).encode()), NEVER_CACHE])
    return list(_expires[1])


@dataclass
class Call:
    """One request as a handler sees it."""

    request: ApiRequest
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


class RequestObserver(Protocol):
    """Told of every finished request (the access log and metrics)."""

    def request_done(
        self,
        method: str,
        endpoint: str,
        status: int,
        seconds: float,
        caller: Caller | None,
        client: str,
    ) -> None: ...

    def rate_limited(self) -> None: ...

    def auth_failed(self) -> None: ...


@dataclass(slots=True)
class _Outcome:
    response: ApiResponse
    headers: Headers
    caller: Caller | None


class RestEndpoint:
    def __init__(
        self, server: Server, methods: dict[str, Method], path: str = "", *, session: bool = False
    ) -> None:
        self.server = server
        self.methods = methods
        self.path = path
        self.session = session
        """Zulip's ``/json/`` twin of an API route: it takes a browser session, which
        presenced does not have, so every call but a public one is refused as unauthenticated."""
        """The route template, as logs and metrics name the endpoint."""
        self.observer: RequestObserver | None = None
        # Zulip's order: the route's methods as declared, then HEAD for a GET route.
        allowed = list(methods)
        if "GET" in methods:
            allowed.append("HEAD")
        self.allowed = allowed
        self._options_allow = (b"allow", ", ".join(sorted(allowed)).encode())
        self._allow = {"Allow": ", ".join(allowed)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = ApiRequest(scope, receive)
        try:
            outcome = await self._respond(request)
        except ClientDisconnectedError:
            self._done(request, CLIENT_CLOSED, started, None)
            return
        accept = request.headers.get("accept-encoding")
        status = await outcome.response.send_to(
            send, accept is not None and accepts_gzip(accept), outcome.headers
        )
        self._done(request, status, started, outcome.caller)

    def _done(
        self, request: ApiRequest, status: int, started: float, caller: Caller | None
    ) -> None:
        if self.observer is not None:
            self.observer.request_done(
                request.method,
                self.path or request.path,
                status,
                time.perf_counter() - started,
                caller,
                request.client_host,
            )

    async def respond(self, request: Request | ApiRequest) -> ApiResponse:
        """The response to ``request``, its headers included (for callers outside ASGI)."""
        if isinstance(request, Request):
            request = ApiRequest(request.scope, request.receive)
        outcome = await self._respond(request)
        outcome.response.extra_headers.extend(outcome.headers)
        return outcome.response

    async def _respond(self, request: ApiRequest) -> _Outcome:
        method = request.method
        if method == "OPTIONS":
            options = ApiResponse(
                status_code=204, headers=[self._options_allow], content_type=DJANGO_HTML
            )
            return _Outcome(options, never_cache(), None)
        form: dict[str, str] | None = None
        if method == "POST":
            # Zulip's rest_dispatch lets a POST form field ``method`` choose the handler. A
            # body that cannot be parsed is reported later, after authentication, as before.
            with contextlib.suppress(ApiError):
                form = await _form_body(request)
            if form and "method" in form:
                method = form["method"]
        spec = self.methods.get("GET" if method == "HEAD" else method)
        if spec is None:
            return _Outcome(self._method_not_allowed(), never_cache(), None)
        headers: Headers = []
        limit: RateLimitResult | None = None
        caller = None
        try:
            caller = None if spec.public else await self._authenticate(request)
            if caller is not None and self.server.rate_limiter.enabled:
                limit = await self.server.rate_limiter.hit(caller.user.id)
                headers.extend(limit.encoded_headers(self.server.rate_limiter.limit))
                if not limit.allowed:
                    raise RateLimitedError(limit.retry_after)
            if form is None:
                form = await _form_body(request)
            params = RequestParams(request.query_params, form)
            answer = await spec.handler(Call(request, self.server, params, caller))
            response = answer if isinstance(answer, ApiResponse) else _adapt(answer)
            return _Outcome(response, [*never_cache(), *headers], caller)
        except ApiError as error:
            if self.observer is not None:
                if isinstance(error, UnauthorizedError):
                    self.observer.auth_failed()
                elif isinstance(error, RateLimitedError):
                    self.observer.rate_limited()
            response = json_error(error)
        except ClientDisconnectedError:
            raise
        except StoreUnavailableError as exc:
            if not isinstance(exc, StoreBusyError):
                self.server.changes.store_failed(exc)
            logger.warning("503 for %s %s: %s", method, self.path or request.path, exc)
            response = json_error(ServiceUnavailableError())
        except Exception:
            logger.exception("error serving %s %s", method, self.path or request.path)
            response = json_response(
                {"result": "error", "msg": "Internal server error", "code": "BAD_REQUEST"}, 500
            )
        # A raised error skips Zulip's never-cache wrapper around rest_dispatch: its middleware
        # builds the response, with the rate-limit headers but no Cache-Control or Expires.
        return _Outcome(response, headers, caller)

    def _method_not_allowed(self) -> ApiResponse:
        """As Zulip's ``json_method_not_allowed``: a JSON body (without the final newline) in
        Django's ``HttpResponseNotAllowed``, which keeps HTML's content type."""
        body = orjson.dumps(
            {"result": "error", "msg": "Method Not Allowed", "allowed_methods": self.allowed}
        )
        return ApiResponse(body, 405, encode_headers(self._allow), content_type=DJANGO_HTML)

    async def _authenticate(self, request: ApiRequest) -> Caller:
        """Authenticate, unless the client's address has failed too often of late."""
        if self.session:
            # Zulip's rest_dispatch: Basic credentials count only under /api; without a
            # session, its middleware asks for one.
            raise UnauthorizedError(NOT_LOGGED_IN, scheme="Session")
        throttle = self.server.auth_throttle
        if not throttle.enabled:
            return await authenticate(request, self.server)
        address = request.client_host or ""
        wait = throttle.blocked_for(address)
        if wait:
            raise RateLimitedError(wait)
        try:
            return await authenticate(request, self.server)
        except InvalidApiKeyError:
            await self.server.changes.authentication_failed(address)
            raise


def _adapt(response: Response) -> ApiResponse:
    """A plain Starlette response from a handler, as an ``ApiResponse``."""
    content_type = None
    headers: Headers = []
    for name, value in response.raw_headers:
        if name == b"content-type":
            content_type = (name, value)
        elif name != b"content-length":
            headers.append((name, value))
    return ApiResponse(
        bytes(response.body), response.status_code, headers, content_type=content_type
    )


async def _form_body(request: ApiRequest) -> dict[str, str]:
    """Form fields of a urlencoded or multipart body (as Django parses them); else none."""
    if request.method in ("GET", "HEAD"):
        return {}
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == URLENCODED:
        return parse_form(await request.body())
    if content_type == MULTIPART:
        try:
            return await request.form()
        except ClientDisconnectedError:
            raise
        except Exception:
            raise ApiError("Malformed multipart/form-data request body") from None
    return {}
