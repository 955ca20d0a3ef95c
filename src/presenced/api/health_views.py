"""``GET /health``: Zulip's route (outside /api/v1, no authentication, no rate limit).

Zulip answers ``{"result": "success", "msg": ""}`` when every service answers, and an error
with code ``SERVER_NOT_READY`` naming the failing service otherwise. Zulip's error status is
500; presenced answers 503 (Service Unavailable), the status load balancers and orchestrators
take to mean "not ready, try another", and adds the machine-readable list ``failed``.
"""

from __future__ import annotations

from starlette.responses import Response

from presenced.api.endpoint import Call
from presenced.api.errors import ApiError
from presenced.api.responses import json_success


class ServerNotReadyError(ApiError):
    status_code = 503
    code = "SERVER_NOT_READY"


async def health(call: Call) -> Response:
    report = await call.server.health.run()
    if not report.healthy:
        names = ", ".join(report.failed)
        raise ServerNotReadyError(f"Cannot query {names}", failed=list(report.failed))
    return json_success()
