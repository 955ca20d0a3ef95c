"""``GET /health``: Zulip's route, outside /api/v1, open to anyone, never rate limited."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import pytest

from conftest import Harness
from live import free_port, live_server
from presenced.settings import SettingsError, load_settings
from redis_support import private_redis


def health(harness: Harness, method: str = "GET", **headers: str) -> tuple[int, dict[str, object]]:
    response = harness.client.request(method, "/health", headers=headers)
    assert response.headers["content-type"] == "application/json"
    assert response.content.endswith(b"\n")
    body: dict[str, object] = response.json()
    return response.status_code, body


def test_healthy_server_answers_zulips_success(harness: Harness) -> None:
    status, body = health(harness)
    assert (status, body) == (200, {"result": "success", "msg": ""})


def test_needs_no_credentials_and_ignores_bad_ones(harness: Harness) -> None:
    assert health(harness, Authorization="Basic bm9ib2R5Ondyb25n")[0] == 200
    assert health(harness, Authorization="Bearer whatever")[0] == 200


def test_is_never_rate_limited(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(rate_limit_requests=2, rate_limit_window_secs=60)
    for _ in range(20):
        response = harness.client.get("/health")
        assert response.status_code == 200
        assert "X-RateLimit-Remaining" not in response.headers


def test_other_methods_get_405(harness: Harness) -> None:
    response = harness.client.post("/health")
    assert response.status_code == 405
    assert response.json()["allowed_methods"] == ["GET", "HEAD"]
    assert harness.client.head("/health").status_code == 200


def test_store_that_cannot_be_queried_answers_503_naming_it(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.run(harness.server.store.close)
    with caplog.at_level(logging.WARNING):
        status, body = health(harness)
    assert status == 503
    assert body == {
        "result": "error",
        "msg": "Cannot query store",
        "failed": ["store"],
        "code": "SERVER_NOT_READY",
    }
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Polled every second while the store is down: one warning, not one per poll.
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert health(harness)[0] == 503
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "'store' failed" in warnings[0].getMessage()
    harness.run(harness.server.store.open)
    assert health(harness)[0] == 200


def test_a_registered_service_that_fails_is_named(harness: Harness) -> None:
    async def refuse() -> None:
        raise ConnectionRefusedError("connection refused")

    harness.server.health.register("redis", refuse)
    status, body = health(harness)
    assert status == 503
    assert body["msg"] == "Cannot query redis"
    assert body["failed"] == ["redis"]


def test_a_check_that_hangs_is_cut_off_at_the_timeout(
    make_harness: Callable[..., Harness],
) -> None:
    harness = make_harness(health_check_timeout_secs=0.05)

    async def hang() -> None:
        await asyncio.Event().wait()

    harness.server.health.register("redis", hang)
    harness.run(harness.server.store.close)
    status, body = health(harness)
    assert status == 503
    assert body["msg"] == "Cannot query store, redis"
    assert body["failed"] == ["store", "redis"]
    harness.run(harness.server.store.open)


def test_health_check_timeout_must_be_positive() -> None:
    with pytest.raises(SettingsError, match="health_check_timeout_secs"):
        load_settings(environ={"PRESENCED_HEALTH_CHECK_TIMEOUT_SECS": "0"})


def test_redis_that_is_down_is_named_by_a_live_server(tmp_path: Path) -> None:
    """``presenced serve`` with Redis: stopping Redis turns ``/health`` into a 503 naming it
    (Zulip's "Cannot query redis"), and it passes again once Redis is back."""
    with private_redis(free_port(), tmp_path) as redis_server:
        env = {"PRESENCED_REDIS_URL": redis_server.url}
        with live_server(tmp_path, env) as server:
            assert httpx.get(server.url + "/health", timeout=10).status_code == 200
            redis_server.stop()
            response = httpx.get(server.url + "/health", timeout=10)
            assert response.status_code == 503
            assert response.json() == {
                "result": "error",
                "msg": "Cannot query redis",
                "failed": ["redis"],
                "code": "SERVER_NOT_READY",
            }
            redis_server.start()
            deadline = time.monotonic() + 30
            while httpx.get(server.url + "/health", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, "health did not pass again"
                time.sleep(0.2)
            log = server.log()
    assert "health check 'redis' failed" in log and "Traceback" not in log, log
