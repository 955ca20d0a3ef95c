"""JSON responses in Zulip's envelope, encoded with orjson and ending with a newline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from presenced.api.errors import ApiError

JSON = "application/json"


def json_response(
    body: Mapping[str, Any], status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_APPEND_NEWLINE),
        status_code=status_code,
        media_type=JSON,
        headers=headers,
    )


def json_success(
    data: Mapping[str, Any] | None = None, ignored_parameters: list[str] | None = None
) -> Response:
    body: dict[str, Any] = {"result": "success", "msg": ""}
    if data:
        body.update(data)
    if ignored_parameters:
        body["ignored_parameters_unsupported"] = ignored_parameters
    return json_response(body)


def json_error(error: ApiError) -> Response:
    """Zulip's order: result, msg, the error's own fields, code (and retry-after last)."""
    body: dict[str, Any] = {"result": "error", "msg": error.msg}
    body.update((k, v) for k, v in error.data.items() if k != "retry-after")
    body["code"] = error.code
    if "retry-after" in error.data:
        body["retry-after"] = error.data["retry-after"]
    return json_response(body, error.status_code, error.headers)
