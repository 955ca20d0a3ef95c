"""Limits on what one user may hold (event queues, their lifespans) and what a bad key costs,
through HTTP against the real app."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from conftest import BACKENDS, Account, Harness, assert_error


def register(harness: Harness, account: Account, **params: Any) -> str:
    response = harness.post("/register", account, **params)
    assert response.status_code == 200, response.text
    queue_id: str = response.json()["queue_id"]
    return queue_id


def poll(harness: Harness, account: Account, queue_id: str) -> int:
    response = harness.get("/events", account, queue_id=queue_id, last_event_id=-1, dont_block=True)
    return response.status_code


async def _expire(harness: Harness) -> int:
    return await harness.server.events.expire_idle()


@pytest.mark.parametrize("harness_backends", BACKENDS, indirect=True)
def test_a_user_past_the_queue_cap_loses_the_idlest_queue(
    make_harness: Callable[..., Harness],
) -> None:
    harness = make_harness(event_queue_max_per_user=3)
    hamlet, othello = harness.account("hamlet@zulip.com"), harness.account("othello@zulip.com")
    theirs = register(harness, othello)
    queues = []
    for _ in range(3):
        queues.append(register(harness, hamlet))
        harness.clock.advance(10)
    # The first queue has gone unpolled longest (only polls that wait count, as in Zulip).
    queues.append(register(harness, hamlet))
    response = harness.get("/events", hamlet, queue_id=queues[0], last_event_id=-1, dont_block=True)
    assert_error(response, 400, f"Bad event queue ID: {queues[0]}", "BAD_EVENT_QUEUE_ID")
    for queue_id in queues[1:]:
        assert poll(harness, hamlet, queue_id) == 200
    # Other users' queues are not touched.
    assert poll(harness, othello, theirs) == 200


def test_queue_lifespan_has_a_ceiling(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(event_queue_max_lifespan_secs=3600)
    hamlet = harness.account("hamlet@zulip.com")
    queue_id = register(harness, hamlet, queue_lifespan_secs=7 * 86400)
    harness.clock.advance(3599)
    assert harness.run(_expire, harness) == 0
    harness.clock.advance(2)
    assert harness.run(_expire, harness) == 1
    assert poll(harness, hamlet, queue_id) == 400


def _basic(email: str, key: str) -> dict[str, str]:
    token = base64.b64encode(f"{email}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_failed_authentication_is_throttled(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(auth_failure_limit=3, auth_failure_window_secs=60)
    hamlet = harness.account("hamlet@zulip.com")
    iago = harness.account("iago@zulip.com")
    harness.run(harness.server.store.set_user_active, iago.id, False)
    wrong = _basic(hamlet.email, "x" * 32)
    # Only wrong keys count, not the mistakes that are no guess (Zulip answers those 401
    # however often they come): no header, a malformed key, a deactivated account's own key.
    for _ in range(5):
        response = harness.request("GET", "/users/me")
        assert response.status_code == 401
        response = harness.request("GET", "/users/me", headers=_basic(hamlet.email, "short"))
        assert_error(response, 401, "Malformed API key", "UNAUTHORIZED")
        response = harness.get("/users/me", iago)
        assert_error(response, 401, "Account is deactivated", "UNAUTHORIZED")
    for _ in range(3):
        harness.clock.advance(10)
        response = harness.request("GET", "/users/me", headers=wrong)
        assert_error(response, 401, "Invalid API key", "UNAUTHORIZED")
    # The right key is refused too while the address is throttled: guessing learns nothing.
    response = harness.get("/users/me", hamlet)
    body = assert_error(response, 429, "API usage exceeded rate limit", "RATE_LIMIT_HIT")
    assert body["retry-after"] == 40.0
    assert response.headers["Retry-After"] == "40"
    harness.clock.advance(40.5)
    assert harness.get("/users/me", hamlet).status_code == 200
    # Public endpoints are never throttled.
    harness.clock.advance(-40.5)
    assert harness.request("GET", "/server_settings").status_code == 200


def test_retry_after_is_whole_seconds(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(rate_limit_requests=1, rate_limit_window_secs=60)
    hamlet = harness.account("hamlet@zulip.com")
    assert harness.get("/users/me", hamlet).status_code == 200
    harness.clock.advance(0.25)
    response = harness.get("/users/me", hamlet)
    body = assert_error(response, 429, "API usage exceeded rate limit", "RATE_LIMIT_HIT")
    assert body["retry-after"] == 59.75
    assert response.headers["Retry-After"] == "60"
