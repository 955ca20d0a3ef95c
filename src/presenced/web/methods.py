"""The methods the HTML side serves: ``GET`` and ``HEAD``. ``OPTIONS`` and every other method
are answered as the API answers them (``204`` with ``Allow``; Zulip's JSON ``405`` with
``allowed_methods``), so the documentation, the embed and the API agree."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from presenced.api.responses import json_response

READ_METHODS = ("GET", "HEAD")


def refuse_other_methods(request: Request) -> Response | None:
    """None for GET/HEAD; otherwise the answer to OPTIONS (204) or to any other method."""
    if request.method in READ_METHODS:
        return None
    allow = {"Allow": ", ".join(READ_METHODS)}
    if request.method == "OPTIONS":
        return Response(status_code=204, headers=allow)
    body = {"result": "error", "msg": "Method Not Allowed", "allowed_methods": list(READ_METHODS)}
    return json_response(body, 405, allow)
