"""HTTP Basic authentication with Zulip's checks, in Zulip's order and with its messages."""

from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass

from presenced.api.errors import ApiError, InvalidApiKeyError, UnauthorizedError
from presenced.api.request import ApiRequest
from presenced.core.server import Server
from presenced.keys import has_api_key_format, hash_api_key
from presenced.realms import subdomain_for_host
from presenced.store.base import BotType, Realm, User

NOT_LOGGED_IN = "Not logged in: API authentication or user session required"


@dataclass(frozen=True, slots=True)
class Caller:
    user: User
    realm: Realm


_subdomain_for_host = functools.lru_cache(maxsize=1024)(subdomain_for_host)
"""Clients send a handful of distinct hosts; the parse (a regex) runs once per host."""


def request_subdomain(request: ApiRequest, server: Server) -> str:
    host = request.headers.get("host", "")
    return _subdomain_for_host(host, server.settings.external_host)


def basic_credentials(header: str) -> tuple[str, str]:
    """(email, api key) from an ``Authorization: Basic ...`` header value."""
    parts = header.split()
    if len(parts) != 2:
        raise UnauthorizedError("Invalid authorization header for basic auth")
    scheme, credentials = parts
    if scheme.lower() != "basic":
        raise ApiError("This endpoint requires HTTP basic authentication.")
    try:
        email, api_key = base64.b64decode(credentials).decode("utf-8").split(":")
    except (ValueError, binascii.Error):
        raise UnauthorizedError("Invalid authorization header for basic auth") from None
    return email, api_key


async def authenticate(request: ApiRequest, server: Server) -> Caller:
    header = request.headers.get("authorization")
    if header is None:
        raise UnauthorizedError(NOT_LOGGED_IN)
    email, api_key = basic_credentials(header)
    # As Zulip's validate_api_key: whitespace around either part is forgiven.
    email, api_key = email.strip(), api_key.strip()
    if not has_api_key_format(api_key):
        raise UnauthorizedError("Malformed API key")
    await server.changes.ensure_fresh()
    found = await server.directory.caller(hash_api_key(api_key))
    if found is None:
        raise InvalidApiKeyError()
    user, realm = found
    if email.lower() != user.delivery_email.lower():
        raise InvalidApiKeyError()
    if realm.deactivated:
        raise UnauthorizedError("This organization has been deactivated")
    if not user.is_active:
        raise UnauthorizedError("Account is deactivated")
    if realm.subdomain != request_subdomain(request, server):
        raise UnauthorizedError("Account is not associated with this subdomain")
    if user.bot_type == BotType.INCOMING_WEBHOOK:
        raise UnauthorizedError("This API is not available to incoming webhook bots.")
    return Caller(user=user, realm=realm)
