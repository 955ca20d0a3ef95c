"""Zulip's error envelope: ``{"result": "error", "msg": ..., "code": ..., **data}``."""

from __future__ import annotations

import math
from typing import Any


class ApiError(Exception):
    """An error the client caused; rendered as Zulip renders a JsonableError."""

    status_code = 400
    code = "BAD_REQUEST"

    def __init__(self, msg: str, **data: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.data = data
        self.headers: dict[str, str] = {}


class MissingArgumentError(ApiError):
    code = "REQUEST_VARIABLE_MISSING"

    def __init__(self, var_name: str) -> None:
        super().__init__(f"Missing '{var_name}' argument", var_name=var_name)


class UnauthorizedError(ApiError):
    """Every HTTP Basic failure: 401 with a challenge, whatever the cause."""

    status_code = 401
    code = "UNAUTHORIZED"

    def __init__(self, msg: str, scheme: str = "Basic") -> None:
        super().__init__(msg)
        self.headers = {"WWW-Authenticate": f'{scheme} realm="zulip"'}


class InvalidApiKeyError(UnauthorizedError):
    """A well-formed key that opens no account (or another user's): what guessing keys gets,
    and the only failure the failed-authentication throttle counts. A missing or malformed
    header costs no lookup, and a right key for a deactivated account is not a guess."""

    def __init__(self) -> None:
        super().__init__("Invalid API key")


class RateLimitedError(ApiError):
    """Zulip's body gives the wait in (fractional) seconds; the ``Retry-After`` header takes
    whole seconds (RFC 9110), rounded up so that a client that obeys it is let through."""

    status_code = 429
    code = "RATE_LIMIT_HIT"

    def __init__(self, retry_after: float) -> None:
        retry_after = round(retry_after, 3)
        super().__init__("API usage exceeded rate limit", **{"retry-after": retry_after})
        self.headers = {"Retry-After": str(max(math.ceil(retry_after), 1))}


class NotFoundError(ApiError):
    status_code = 404
    code = "BAD_REQUEST"


class ServiceUnavailableError(ApiError):
    """A backend (the database, Redis) cannot be reached: nothing was changed; retry later."""

    status_code = 503
    code = "SERVICE_UNAVAILABLE"

    def __init__(
        self, msg: str = "Service temporarily unavailable: the database cannot be reached"
    ) -> None:
        super().__init__(msg)
        self.headers = {"Retry-After": "5"}
