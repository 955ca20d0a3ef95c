"""The bare framework baseline: a Starlette app that only parses the presence form and answers
a small JSON document, with no authentication, store, index or middleware.

``bench/bare_framework.py`` runs it under uvicorn beside ``presenced serve`` and drives both
with the same wrk load, so the ratio between them shows what presenced's own work costs.
Run it by hand with::

    .venv/bin/python -m uvicorn --app-dir bench bare_app:app --host 127.0.0.1 --port 9992
"""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def presence(request: Request) -> JSONResponse:
    form = await request.form()
    status = form.get("status")
    if status not in ("active", "idle"):
        return JSONResponse(
            {"result": "error", "msg": "Invalid status: ''", "code": "BAD_REQUEST"}, 400
        )
    now = time.time()
    return JSONResponse(
        {
            "result": "success",
            "msg": "",
            "presences": {"1": {"active_timestamp": int(now), "idle_timestamp": int(now)}},
            "server_timestamp": now,
            "presence_last_update_id": 1,
        }
    )


app = Starlette(routes=[Route("/api/v1/users/me/presence", presence, methods=["POST"])])
