"""The bare-framework baseline of issue 12: a Starlette app that only parses the presence form
and answers a small JSON document, for a side-by-side with ``presenced serve``.

Run: ``uvicorn --app-dir bench bare_starlette:app --port 9992 --no-access-log``, then the same
wrk command against both (``wrk -t1 -c16 -d5s -s post.lua http://127.0.0.1:PORT``, with a
``post.lua`` that POSTs ``status=active&last_update_id=-1`` to ``/api/v1/users/me/presence``
with an ``Authorization`` header; the bare app ignores the header).
"""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def presence(request: Request) -> Response:
    form = await request.form()
    body: dict[str, object] = {
        "result": "success",
        "msg": "",
        "presences": {},
        "status": form.get("status"),
    }
    return Response(orjson.dumps(body), media_type="application/json")


app = Starlette(routes=[Route("/api/v1/users/me/presence", presence, methods=["POST"])])
