"""``GET /server_settings`` (no authentication, as in Zulip) and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from presenced import version
from presenced.api import openapi
from presenced.api.auth import request_subdomain
from presenced.api.endpoint import Call
from presenced.api.errors import ApiError
from presenced.api.responses import ApiResponse, json_success
from presenced.realms import ROOT_SUBDOMAIN, realm_url

AUTHENTICATION_METHODS = (
    "password",
    "dev",
    "email",
    "ldap",
    "remoteuser",
    "github",
    "azuread",
    "gitlab",
    "apple",
    "google",
    "saml",
    "openid connect",
)


async def server_settings(call: Call) -> Response:
    """Credentials are ignored; realm fields describe the realm the Host names."""
    server = call.server
    subdomain = request_subdomain(call.request, server)
    realm = await server.store.get_realm_by_subdomain(subdomain)
    if realm is None and subdomain != ROOT_SUBDOMAIN:
        raise ApiError("Invalid subdomain")
    url = realm_url(subdomain, server.settings.external_host, call.request.scheme)
    data: dict[str, Any] = {
        # presenced has no login flow: keys come from the operator (``presenced user create``).
        "authentication_methods": dict.fromkeys(AUTHENTICATION_METHODS, False),
        "zulip_version": version.ZULIP_VERSION,
        "zulip_merge_base": version.ZULIP_MERGE_BASE,
        "zulip_feature_level": version.API_FEATURE_LEVEL,
        "push_notifications_enabled": False,
        "is_incompatible": False,
        "email_auth_enabled": False,
        "require_email_format_usernames": True,
        "realm_uri": url,
        "realm_url": url,
    }
    if realm is not None:
        data.update(realm_name=realm.name, realm_icon="", realm_description="")
    data["realm_web_public_access_enabled"] = False
    data["external_authentication_methods"] = []
    return json_success(data)


async def openapi_document(call: Call) -> Response:
    return ApiResponse(openapi.document_json())
