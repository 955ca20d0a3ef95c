"""The documentation's routes: ``/api/`` (the index), ``/api/<page>``, and its assets under
``/static/docs/``. Only ``GET`` and ``HEAD`` are served; anything else gets the API's JSON
errors (404, 405), never an HTML error page or a traceback."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from presenced.api.openapi import document
from presenced.api.responses import json_response
from presenced.realms import realm_url, subdomain_for_host
from presenced.settings import Settings
from presenced.web.docs.assets import Asset, load_assets
from presenced.web.docs.site import INDEX_PAGE, DocsSite
from presenced.web.methods import refuse_other_methods

HTML = "text/html; charset=utf-8"
PAGE_HEADERS = {
    # Everything a page needs comes from this server; nothing inline runs.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
ASSET_CACHE = "public, max-age=3600"
_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class AnyMethod:
    """An endpoint that sees every method (Starlette would answer unlisted ones itself, in
    plain text), so that it can refuse them with the API's JSON 405."""

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)


def _respond(request: Request, body: bytes, media_type: str, headers: dict[str, str]) -> Response:
    if request.method == "HEAD":
        return Response(None, media_type=media_type, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def docs_site(settings: Settings, spec: dict[str, Any] | None = None) -> DocsSite:
    """The site for the OpenAPI document the server serves (or ``spec``)."""
    return DocsSite(spec if spec is not None else document(), settings.product_name)


def docs_routes(settings: Settings, site: DocsSite | None = None) -> list[BaseRoute]:
    """The documentation's routes (``site`` defaults to the served document's)."""
    site = site or docs_site(settings)
    assets = load_assets()

    async def page(request: Request) -> Response:
        refused = refuse_other_methods(request)
        if refused is not None:
            return refused
        slug = request.path_params.get("slug", INDEX_PAGE)
        subdomain = subdomain_for_host(request.headers.get("host", ""), settings.external_host)
        if subdomain and not _SUBDOMAIN.match(subdomain):
            # The URL goes into every example: only what could be a real organization's.
            error = {"result": "error", "msg": "Invalid subdomain", "code": "BAD_REQUEST"}
            return json_response(error, 400)
        url = realm_url(subdomain, settings.external_host, request.url.scheme)
        html = site.render(slug, url)
        if html is None:
            raise HTTPException(404)
        return _respond(request, html, HTML, PAGE_HEADERS)

    async def asset(request: Request) -> Response:
        refused = refuse_other_methods(request)
        if refused is not None:
            return refused
        found: Asset | None = assets.get(request.path_params["name"])
        if found is None:
            raise HTTPException(404)
        headers = {
            "ETag": found.etag,
            "Cache-Control": ASSET_CACHE,
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        return _respond(request, found.body, found.media_type, headers)

    return [
        Route("/api", AnyMethod(page)),
        Route("/api/", AnyMethod(page)),
        Route("/api/{slug}", AnyMethod(page)),
        Route("/static/docs/{name}", AnyMethod(asset)),
    ]
