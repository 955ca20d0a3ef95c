"""Hostile input gets a 4xx in Zulip's envelope, never a 500: JSON nested deeper than any
parser should recurse, integers too large for the store, user IDs of thousands of digits."""

from __future__ import annotations

import pytest

from conftest import Account, Harness

DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
HUGE = "9" * 4000
BIG = str(2**70)

JSON_PARAMETERS = [
    ("POST", "/users/me/presence", "ping_only"),
    ("POST", "/users/me/presence", "new_user_input"),
    ("POST", "/users/me/presence", "slim_presence"),
    ("POST", "/users/me/presence", "last_update_id"),
    ("POST", "/users/me/presence", "history_limit_days"),
    ("GET", "/users/hamlet@zulip.com/presence", "slim_presence"),
    ("POST", "/register", "apply_markdown"),
    ("POST", "/register", "client_gravatar"),
    ("POST", "/register", "slim_presence"),
    ("POST", "/register", "presence_history_limit_days"),
    ("POST", "/register", "client_capabilities"),
    ("POST", "/register", "event_types"),
    ("POST", "/register", "fetch_event_types"),
    ("POST", "/register", "all_public_streams"),
    ("POST", "/register", "queue_lifespan_secs"),
    ("POST", "/register", "narrow"),
    ("GET", "/events", "last_event_id"),
    ("GET", "/events", "dont_block"),
    ("GET", "/events", "event_types"),
    ("GET", "/events", "slim_presence"),
    ("PATCH", "/settings", "presence_enabled"),
    ("POST", "/users/me/status", "away"),
    ("GET", "/users/me/subscriptions", "include_subscribers"),
    ("GET", "/users", "client_gravatar"),
    ("GET", "/users", "include_custom_profile_fields"),
    ("GET", "/users/1", "client_gravatar"),
    ("GET", "/users/1", "include_custom_profile_fields"),
]


def _send(harness: Harness, account: Account, method: str, path: str, **values: str) -> int:
    base = {"status": "active"} if path == "/users/me/presence" else {}
    if path == "/events" and "dont_block" not in values:
        base["dont_block"] = "true"
    fields = {**base, **values}
    if method in ("GET", "DELETE"):
        response = harness.request(method, path, account=account, params=fields)
    else:
        response = harness.request(method, path, account=account, data=fields)
    return response.status_code


@pytest.mark.parametrize(("method", "path", "name"), JSON_PARAMETERS)
@pytest.mark.parametrize("value", [DEEP, DEEP_OBJECT, HUGE, BIG, "-" + BIG, "1e999", "NaN"])
def test_json_parameters_refuse_hostile_values(
    harness: Harness,
    zulip_realm: dict[str, Account],
    method: str,
    path: str,
    name: str,
    value: str,
) -> None:
    hamlet = zulip_realm["hamlet"]
    status = _send(harness, hamlet, method, path, **{name: value})
    assert 200 <= status < 500
    # Nothing changed: hamlet is as he was (no report stored by a refused request).
    if status >= 400 and path == "/users/me/presence":
        assert harness.presence_row(hamlet) is None


@pytest.mark.parametrize(
    "path",
    [
        "/users/" + "1" * 5000,
        "/users/" + "1" * 5000 + "/presence",
        "/users/" + BIG,
        "/users/" + BIG + "/presence",
        "/users/-" + BIG + "/presence",
        "/users/" + "9" * 19,
    ],
)
def test_huge_user_ids_are_unknown_users(
    harness: Harness, zulip_realm: dict[str, Account], path: str
) -> None:
    response = harness.get(path, zulip_realm["hamlet"])
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "BAD_REQUEST"
