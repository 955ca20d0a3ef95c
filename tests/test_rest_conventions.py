"""Zulip's REST conventions (spec 2.0): authentication, parameters, envelope, routing."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import httpx2 as httpx
import orjson
import pytest
from starlette.types import Message

from conftest import BACKENDS, Account, Harness, assert_error
from presenced.api.auth import NOT_LOGGED_IN
from presenced.api.request import ApiRequest
from presenced.store.base import BotType

PRESENCE = "/users/me/presence"


def basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


# Authentication: every row of the table in spec 2.0, in Zulip's order of checks.


def test_no_credentials(harness: Harness) -> None:
    response = harness.request("POST", PRESENCE, data={"status": "active"})
    assert_error(
        response, 401, "Not logged in: API authentication or user session required", "UNAUTHORIZED"
    )
    assert response.headers["www-authenticate"] == 'Basic realm="zulip"'


def test_scheme_is_not_basic(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    response = harness.request("GET", "/realm/presence", headers={"Authorization": "Bearer abcdef"})
    assert_error(response, 400, "This endpoint requires HTTP basic authentication.")


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"a:b:c").decode(),
        "Basic x y",
    ],
)
def test_undecodable_header(harness: Harness, header: str) -> None:
    response = harness.request("GET", "/realm/presence", headers={"Authorization": header})
    assert_error(response, 401, "Invalid authorization header for basic auth", "UNAUTHORIZED")
    assert response.headers["www-authenticate"] == 'Basic realm="zulip"'


@pytest.mark.parametrize("key", ["short", "x" * 33, "a" * 31 + "!", ""])
def test_malformed_key(harness: Harness, zulip_realm: dict[str, Account], key: str) -> None:
    response = harness.request("GET", "/realm/presence", headers=basic(f"hamlet@zulip.com:{key}"))
    assert_error(response, 401, "Malformed API key", "UNAUTHORIZED")


def test_unknown_key_and_wrong_email(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    hamlet = zulip_realm["hamlet"]
    response = harness.request(
        "GET", "/realm/presence", headers=basic("hamlet@zulip.com:" + "a" * 32)
    )
    assert_error(response, 401, "Invalid API key", "UNAUTHORIZED")
    response = harness.request(
        "GET", "/realm/presence", headers=basic(f"othello@zulip.com:{hamlet.api_key}")
    )
    assert_error(response, 401, "Invalid API key", "UNAUTHORIZED")
    # The email is compared case-insensitively.
    response = harness.request(
        "GET", "/realm/presence", headers=basic(f"HAMLET@Zulip.com:{hamlet.api_key}")
    )
    assert response.status_code == 200


def test_basic_auth_takes_the_delivery_email(harness: Harness) -> None:
    account = harness.account("user10@zulip.testserver", delivery_email="real@example.com")
    response = harness.request(
        "GET", "/realm/presence", headers=basic(f"user10@zulip.testserver:{account.api_key}")
    )
    assert_error(response, 401, "Invalid API key", "UNAUTHORIZED")
    assert harness.get("/realm/presence", account).status_code == 200


def test_deactivated_realm(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    hamlet = zulip_realm["hamlet"]
    harness.run(harness.server.store.set_realm_deactivated, hamlet.user.realm_id, True)
    harness.run(harness.server.store.set_user_active, hamlet.id, False)
    response = harness.get("/realm/presence", hamlet)
    assert_error(response, 401, "This organization has been deactivated", "UNAUTHORIZED")


def test_deactivated_user(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    hamlet = zulip_realm["hamlet"]
    harness.run(harness.server.store.set_user_active, hamlet.id, False)
    response = harness.post(PRESENCE, hamlet, status="active")
    assert_error(response, 401, "Account is deactivated", "UNAUTHORIZED")
    assert harness.presence_row(hamlet) is None


def test_wrong_subdomain(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    hamlet = zulip_realm["hamlet"]
    outsider = harness.account("starnine@mit.edu", realm="zephyr")
    response = harness.request("GET", "/realm/presence", account=hamlet, subdomain="zephyr")
    assert_error(response, 401, "Account is not associated with this subdomain", "UNAUTHORIZED")
    response = harness.request("GET", "/realm/presence", account=outsider, subdomain="")
    assert_error(response, 401, "Account is not associated with this subdomain", "UNAUTHORIZED")
    assert harness.get("/realm/presence", outsider).status_code == 200


@pytest.mark.parametrize(
    "host", ["127.0.0.1:9991", "localhost", "LOCALHOST:9991", "www.localhost:9991"]
)
def test_root_realm_hosts(harness: Harness, zulip_realm: dict[str, Account], host: str) -> None:
    response = harness.request(
        "GET", "/realm/presence", account=zulip_realm["hamlet"], headers={"Host": host}
    )
    assert response.status_code == 200


def test_incoming_webhook_bot(harness: Harness) -> None:
    bot = harness.account("webhook-bot@zulip.com", bot_type=BotType.INCOMING_WEBHOOK)
    response = harness.get("/realm/presence", bot)
    assert_error(
        response, 401, "This API is not available to incoming webhook bots.", "UNAUTHORIZED"
    )


def test_bots_may_not_report_presence(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    bot = zulip_realm["bot"]
    response = harness.post(PRESENCE, bot, status="active")
    assert_error(response, 400, "This endpoint does not accept bot requests.")
    # The bot refusal comes before any parameter check.
    response = harness.post(PRESENCE, bot, ping_only="nope")
    assert_error(response, 400, "This endpoint does not accept bot requests.")


# Parameters


def test_missing_status(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    response = harness.post(PRESENCE, zulip_realm["hamlet"])
    body = assert_error(response, 400, "Missing 'status' argument", "REQUEST_VARIABLE_MISSING")
    assert body["var_name"] == "status"
    assert list(body) == ["result", "msg", "var_name", "code"]


def assert_refused_parameter(
    harness: Harness, account: Account, name: str, raw: str, msg: str
) -> None:
    """A presence report with one bad parameter: Zulip's 400, and nothing recorded."""
    response = harness.request(
        "POST", PRESENCE, account=account, data={"status": "active", name: raw}
    )
    assert_error(response, 400, msg)
    assert harness.presence_row(account) is None


@pytest.mark.parametrize("name", ["ping_only", "new_user_input", "slim_presence"])
@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("True", "is not valid JSON"),
        ("yes", "is not valid JSON"),
        ("", "is not valid JSON"),
        ("1", "is not a boolean"),
        ("0", "is not a boolean"),
        ("null", "is not a boolean"),
        ('"true"', "is not a boolean"),
    ],
)
def test_boolean_parameters(
    harness: Harness, zulip_realm: dict[str, Account], name: str, raw: str, problem: str
) -> None:
    assert_refused_parameter(harness, zulip_realm["hamlet"], name, raw, f"{name} {problem}")


@pytest.mark.parametrize("name", ["last_update_id", "history_limit_days"])
@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("abc", "is not valid JSON"),
        ("NaN-ish", "is not valid JSON"),
        ("1.5", "is not an integer"),
        ("1e3", "is not an integer"),
        ("true", "is not an integer"),
        ("null", "is not an integer"),
        ('"5"', "is not an integer"),
        ("NaN", "is not an integer"),
    ],
)
def test_integer_parameters(
    harness: Harness, zulip_realm: dict[str, Account], name: str, raw: str, problem: str
) -> None:
    assert_refused_parameter(harness, zulip_realm["hamlet"], name, raw, f"{name} {problem}")


def test_json_values_allow_whitespace(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    body = harness.presence(zulip_realm["hamlet"], "active", ping_only=" true ")
    assert body == {"result": "success", "msg": ""}


def test_parameter_order_of_checks(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Zulip 11's view (zerver/views/presence.py, update_active_status_backend) declares its
    parameters alphabetically, and typed_endpoint reports the first failure in declaration
    order: each bad parameter in turn, then a missing status, then the status value."""
    hamlet = zulip_realm["hamlet"]
    data = {
        "history_limit_days": "x",
        "last_update_id": "x",
        "new_user_input": "x",
        "ping_only": "x",
        "slim_presence": "x",
    }
    for name in list(data):
        response = harness.request("POST", PRESENCE, account=hamlet, data=data)
        assert_error(response, 400, f"{name} is not valid JSON")
        data[name] = "1" if name in ("last_update_id", "history_limit_days") else "false"
    response = harness.request("POST", PRESENCE, account=hamlet, data=data)
    assert_error(response, 400, "Missing 'status' argument", "REQUEST_VARIABLE_MISSING")
    response = harness.request("POST", PRESENCE, account=hamlet, data={**data, "status": "x"})
    assert_error(response, 400, "Invalid status: x")
    assert harness.presence_row(hamlet) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("history_limit_days", 10**30),
        ("history_limit_days", 10**7),
        ("history_limit_days", -(10**7)),
        ("last_update_id", 10**30),
        ("last_update_id", -(2**63) - 1),
        ("last_update_id", 2**64),
    ],
)
def test_absurd_integers_are_refused(
    harness: Harness, zulip_realm: dict[str, Account], name: str, value: int
) -> None:
    hamlet = zulip_realm["hamlet"]
    response = harness.post(PRESENCE, hamlet, status="active", **{name: value})
    assert_error(response, 400, f"Invalid {name}")
    assert harness.presence_row(hamlet) is None


def test_large_but_valid_integers(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    hamlet = zulip_realm["hamlet"]
    body = harness.presence(hamlet, "active", history_limit_days=700_000, last_update_id=2**63 - 1)
    assert body["presences"] == {}
    assert body["presence_last_update_id"] == 2**63 - 1
    # Past Zulip's unsigned 64-bit column, Django 5 finds no row (an overflowing lookup is an
    # empty result), so Zulip echoes the cursor; so does presenced, up to 2**64 - 1.
    for cursor in (2**63, 2**64 - 1):
        body = harness.presence(hamlet, "active", last_update_id=cursor)
        assert body["presences"] == {}
        assert body["presence_last_update_id"] == cursor
    body = harness.presence(hamlet, "active", history_limit_days=-5)
    assert body["presences"] == {}
    # Out of range is refused even when ping-only (Zulip would ignore it there), so that the
    # API document can say exactly what is accepted.
    response = harness.post(
        PRESENCE, hamlet, status="active", ping_only=True, history_limit_days=10**30
    )
    assert_error(response, 400, "Invalid history_limit_days")


def test_negative_cursor_is_echoed(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    hamlet = zulip_realm["hamlet"]
    harness.run(harness.server.store.set_presence_enabled, hamlet.id, False)
    body = harness.presence(hamlet, "active", last_update_id=-5)
    assert body["presences"] == {}
    assert body["presence_last_update_id"] == -5


def test_parameters_from_query_string_and_body(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    hamlet = zulip_realm["hamlet"]
    response = harness.request(
        "POST", PRESENCE, account=hamlet, params={"status": "active", "slim_presence": "true"}
    )
    assert response.status_code == 200
    assert str(hamlet.id) in response.json()["presences"]
    response = harness.request(
        "POST", PRESENCE, account=hamlet, params={"status": "nonsense"}, data={"status": "idle"}
    )
    assert response.status_code == 200


def test_ignored_parameters_unsupported(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    hamlet = zulip_realm["hamlet"]
    response = harness.request(
        "POST",
        PRESENCE,
        account=hamlet,
        params={"zebra": "1", "dont_block": "true"},
        data={"status": "active", "apple": "x", "client": "website"},
    )
    assert response.json()["ignored_parameters_unsupported"] == ["apple", "dont_block", "zebra"]
    assert list(response.json())[-1] == "ignored_parameters_unsupported"
    assert "ignored_parameters_unsupported" not in harness.presence(hamlet, "active")
    ping = harness.presence(hamlet, "active", ping_only=True, extra=1)
    assert ping == {"result": "success", "msg": "", "ignored_parameters_unsupported": ["extra"]}
    error = harness.post(PRESENCE, hamlet, status="bogus", extra=1)
    assert "ignored_parameters_unsupported" not in error.json()
    realm = harness.get("/realm/presence", hamlet, dont_block=True).json()
    assert "ignored_parameters_unsupported" not in realm
    single = harness.get(f"/users/{hamlet.id}/presence", hamlet, dont_block=True).json()
    assert single["ignored_parameters_unsupported"] == ["dont_block"]


def test_json_request_body_is_not_parameters(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    response = harness.client.post(
        "/api/v1/users/me/presence",
        content=b'{"status": "active"}',
        headers={
            "Authorization": zulip_realm["hamlet"].authorization(),
            "Content-Type": "application/json",
        },
    )
    assert_error(response, 400, "Missing 'status' argument", "REQUEST_VARIABLE_MISSING")


def test_multipart_body(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    response = harness.client.post(
        "/api/v1/users/me/presence",
        files={"status": (None, "active"), "slim_presence": (None, "true")},
        headers={"Authorization": zulip_realm["hamlet"].authorization()},
    )
    assert response.status_code == 200, response.text
    assert str(zulip_realm["hamlet"].id) in response.json()["presences"]


# Routing


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", PRESENCE, ["POST"]),
        ("DELETE", PRESENCE, ["POST"]),
        ("POST", "/users/8/presence", ["GET", "HEAD"]),
        ("POST", "/realm/presence", ["GET", "HEAD"]),
        ("PATCH", "/users/me", ["GET", "HEAD"]),
    ],
)
def test_method_not_allowed_before_auth(
    harness: Harness, method: str, path: str, allowed: list[str]
) -> None:
    response = harness.request(method, path)
    assert response.status_code == 405
    assert response.json() == {
        "result": "error",
        "msg": "Method Not Allowed",
        "allowed_methods": allowed,
    }
    assert response.headers["allow"] == ", ".join(allowed)
    # zerver/lib/response.py json_method_not_allowed: HttpResponseNotAllowed keeps Django's
    # default content type, and its JSON body has no final newline.
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == orjson.dumps(response.json())


def test_options(harness: Harness) -> None:
    response = harness.request("OPTIONS", "/realm/presence")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, HEAD"
    assert response.content == b""
    # A bare Django HttpResponse(status=204): it still names Django's default content type.
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert harness.request("OPTIONS", PRESENCE).headers["allow"] == "POST"


def test_head(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    response = harness.request("HEAD", "/realm/presence", account=zulip_realm["hamlet"])
    assert response.status_code == 200
    assert response.content == b""


def test_unknown_route(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    response = harness.client.get("/api/v1/nonexistent")
    assert response.status_code == 404
    assert response.json()["result"] == "error"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/realm/presence/"),
        ("POST", "/api/v1/users/me/presence/"),
        ("GET", "/api/v1/users/8/presence/"),
        ("GET", "/api/v1//realm/presence"),
    ],
)
def test_trailing_slash_is_not_found(
    harness: Harness, zulip_realm: dict[str, Account], method: str, path: str
) -> None:
    """Django matches paths exactly (it only ever appends a slash): no redirect to the route."""
    response = harness.client.request(
        method,
        path,
        data={"status": "active"} if method == "POST" else None,
        headers={"Authorization": zulip_realm["hamlet"].authorization()},
    )
    assert response.status_code == 404, response.headers
    assert response.json() == {"result": "error", "msg": "Not Found", "code": "BAD_REQUEST"}
    assert harness.presence_row(zulip_realm["hamlet"]) is None


def test_plus_and_at_in_path(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    plus = harness.account("iago+x@zulip.com")
    harness.presence(plus, "active")
    body = harness.get("/users/iago+x@zulip.com/presence", zulip_realm["hamlet"]).json()
    assert body["presence"]["aggregated"]["status"] == "active"


# Rate limiting


@pytest.mark.parametrize("harness_backends", BACKENDS, indirect=True)
def test_rate_limit(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(rate_limit_requests=3, rate_limit_window_secs=60)
    hamlet = harness.account("hamlet@zulip.com")
    remaining = []
    for _ in range(3):
        response = harness.get("/realm/presence", hamlet)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "3"
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
        assert int(response.headers["x-ratelimit-reset"]) == int(harness.clock() + 60)
        harness.clock.advance(1)
    assert remaining == [2, 1, 0]
    response = harness.get("/realm/presence", hamlet)
    body = assert_error(response, 429, "API usage exceeded rate limit", "RATE_LIMIT_HIT")
    assert body["retry-after"] == pytest.approx(57.0)
    assert list(body)[-2:] == ["code", "retry-after"]
    assert float(response.headers["retry-after"]) == pytest.approx(57.0)
    assert response.headers["x-ratelimit-remaining"] == "0"
    # Other users have their own budget; time frees this one.
    assert harness.get("/realm/presence", harness.account("iago@zulip.com")).status_code == 200
    harness.clock.advance(57)
    assert harness.get("/realm/presence", hamlet).status_code == 200


# Envelope


def test_envelope(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    response = harness.post(PRESENCE, zulip_realm["hamlet"], status="active")
    assert response.headers["content-type"] == "application/json"
    assert response.content.endswith(b"}\n")
    assert list(response.json())[:2] == ["result", "msg"]
    assert "no-store" in response.headers["cache-control"]


def test_raised_errors_carry_no_cache_headers(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    """Zulip's never-cache headers come from a wrapper around rest_dispatch (zerver/lib/rest.py)
    that sees only returned responses; a raised error is rendered later by JsonErrorHandler."""
    hamlet = zulip_realm["hamlet"]
    for response in (
        harness.post(PRESENCE, hamlet, status="nonsense"),
        harness.post(PRESENCE, hamlet),
        harness.request("GET", "/realm/presence"),
        harness.get("/users/nobody@zulip.com/presence", hamlet),
    ):
        assert response.status_code in (400, 401), response.text
        assert "cache-control" not in response.headers
        assert "expires" not in response.headers
    returned: list[Callable[[], httpx.Response]] = [
        lambda: harness.post(PRESENCE, hamlet, status="active"),
        lambda: harness.request("PATCH", PRESENCE),
        lambda: harness.request("OPTIONS", PRESENCE),
    ]
    for send in returned:
        before = int(time.time())
        response = send()
        after = time.time()
        assert response.headers["cache-control"] == (
            "max-age=0, no-cache, no-store, must-revalidate, private"
        )
        # Django's add_never_cache_headers: Expires is the time of the response, an HTTP date.
        expires = parsedate_to_datetime(response.headers["expires"])
        assert before <= expires.timestamp() <= after


# Findings of the compatibility audit against Zulip 11's code.


def test_whitespace_around_credentials_is_forgiven(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    """zerver/decorator.py validate_api_key strips the email and the key before its checks."""
    hamlet = zulip_realm["hamlet"]
    for credentials in (
        f" hamlet@zulip.com :{hamlet.api_key}\n",
        f"hamlet@zulip.com:\t{hamlet.api_key} ",
    ):
        response = harness.request("GET", "/realm/presence", headers=basic(credentials))
        assert response.status_code == 200, (credentials, response.text)
    response = harness.request("GET", "/realm/presence", headers=basic("hamlet@zulip.com: x "))
    assert_error(response, 401, "Malformed API key", "UNAUTHORIZED")


def test_method_field_of_a_post_form_chooses_the_handler(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    """zerver/lib/rest.py: ``method`` in a POST form body overrides the request's method."""
    hamlet = zulip_realm["hamlet"]
    harness.presence(hamlet, "active")
    # (Straight through the client: the OpenAPI check would refuse an undocumented POST.)
    response = harness.client.post(
        f"/api/v1/users/{hamlet.id}/presence",
        data={"method": "GET"},
        headers={"Authorization": hamlet.authorization()},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["presence"]["aggregated"]["status"] == "active"
    # Nothing consumes the field itself, so Zulip lists it as ignored.
    assert body["ignored_parameters_unsupported"] == ["method"]
    response = harness.request(
        "POST", PRESENCE, account=hamlet, data={"method": "GET", "status": "idle"}
    )
    assert response.status_code == 405
    assert response.json()["allowed_methods"] == ["POST"]
    # Only a form field counts: in the query string it is an ordinary parameter.
    response = harness.request(
        "POST", PRESENCE, account=hamlet, params={"method": "GET"}, data={"status": "active"}
    )
    assert response.status_code == 200
    assert response.json()["ignored_parameters_unsupported"] == ["method"]


def test_head_is_listed_after_the_declared_methods(harness: Harness) -> None:
    """rest.py adds HEAD to a GET route with ``setdefault``, after the route's own methods."""
    response = harness.request("PATCH", "/events")
    assert response.status_code == 405
    assert response.json()["allowed_methods"] == ["GET", "DELETE", "HEAD"]
    assert response.headers["allow"] == "GET, DELETE, HEAD"


def test_presence_responses_keep_zulips_key_order(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    """zerver/lib/presence.py: ``presences`` before ``server_timestamp``; a legacy entry has
    ``aggregated`` before ``website`` (views/presence.py keeps that order for one user)."""
    hamlet = zulip_realm["hamlet"]
    legacy = harness.presence(hamlet, "active")
    assert list(legacy) == [
        "result",
        "msg",
        "presences",
        "server_timestamp",
        "presence_last_update_id",
    ]
    entry = legacy["presences"][hamlet.email]
    assert list(entry) == ["aggregated", "website"]
    assert list(entry["aggregated"]) == ["client", "status", "timestamp"]
    assert list(entry["website"]) == ["client", "status", "timestamp", "pushable"]
    modern = harness.presence(hamlet, "active", last_update_id=-1)
    assert list(modern)[2:] == ["presences", "server_timestamp", "presence_last_update_id"]
    assert list(modern["presences"][str(hamlet.id)]) == ["active_timestamp", "idle_timestamp"]
    realm = harness.get("/realm/presence", hamlet).json()
    assert list(realm) == ["result", "msg", "presences", "server_timestamp"]
    assert list(realm["presences"][hamlet.email]) == ["aggregated", "website"]
    single = harness.get(f"/users/{hamlet.id}/presence", hamlet).json()
    assert list(single["presence"]) == ["aggregated", "website"]
    assert list(single["presence"]["aggregated"]) == ["status", "timestamp"]


def test_raw_bytes_decode_as_django_does(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    """Django's QueryDict: UTF-8, else ISO-8859-1, for the query string and the form body."""
    headers = {
        "Authorization": zulip_realm["hamlet"].authorization(),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    for raw in ("é".encode(), "é".encode("iso-8859-1")):
        response = harness.client.post(
            "/api/v1/users/me/presence", content=b"status=" + raw, headers=headers
        )
        assert_error(response, 400, "Invalid status: é")
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    for raw in ("é".encode(), "é".encode("iso-8859-1")):
        request = ApiRequest({**scope, "query_string": b"status=" + raw}, _no_body)
        assert request.query_params == {"status": "é"}


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/json/users/me/presence"),
        ("GET", "/json/users/8/presence"),
        ("GET", "/json/realm/presence"),
    ],
)
def test_json_paths_ask_for_a_session(
    harness: Harness, zulip_realm: dict[str, Account], method: str, path: str
) -> None:
    """Zulip serves the API under /json/ for its web app's session; Basic credentials count
    only under /api (rest_dispatch), so without a session its middleware answers 401."""
    hamlet = zulip_realm["hamlet"]
    for headers in ({}, {"Authorization": hamlet.authorization()}):
        response = harness.client.request(
            method, path, data={"status": "active"} if method == "POST" else None, headers=headers
        )
        body = assert_error(response, 401, NOT_LOGGED_IN, "UNAUTHORIZED")
        assert list(body) == ["result", "msg", "code"]
        assert response.headers["www-authenticate"] == 'Session realm="zulip"'
    assert harness.presence_row(hamlet) is None
    # Routing still comes first.
    other = "GET" if method == "POST" else "POST"
    response = harness.client.request(other, path)
    assert response.status_code == 405
    assert response.json()["allowed_methods"] == (["POST"] if method == "POST" else ["GET", "HEAD"])
