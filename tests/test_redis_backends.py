"""What only the Redis backends have: where their keys go, what they do with a log entry they
cannot read, and how they behave when Redis cannot be reached (through HTTP, one process; the
multi-process cases are in test_multiprocess.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from conftest import Harness, assert_error
from embed_helpers import make_token
from live import free_port
from presenced.feed.base import DirectoryChanged, Notice, PresenceCommitted
from presenced.feed.redis import RedisChangeFeed
from presenced.redislink import RedisLink
from presenced.settings import SettingsError, load_settings
from redis_support import REDIS_URL, prefix_keys, redis_prefix
from tcp_proxy import tcp_proxy

UNAVAILABLE = "Event queues are unavailable right now; try again shortly."


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_prefix() as value:
        yield value


def redis_harness(make_harness: Callable[..., Harness], prefix: str, **extra: Any) -> Harness:
    return make_harness(redis_url=REDIS_URL, redis_key_prefix=prefix, **extra)


def test_every_key_is_under_the_prefix(make_harness: Callable[..., Harness], prefix: str) -> None:
    harness = redis_harness(make_harness, prefix, rate_limit_requests=100)
    hamlet, othello = harness.account("hamlet@zulip.com"), harness.account("othello@zulip.com")
    queue = harness.post("/register", othello, event_types='["presence"]').json()
    harness.presence(hamlet, "active")
    realm_id = hamlet.user.realm_id
    keys = {k.decode().removeprefix(prefix) for k in prefix_keys(REDIS_URL, prefix)}
    assert {
        f"q:{queue['queue_id']}",
        "queues",
        f"rq:{realm_id}",
        "realms",
        f"log:{realm_id}",
        f"rl:{hamlet.id}",
        f"rl:{othello.id}",
    } <= keys


def test_a_malformed_log_entry_is_skipped(
    make_harness: Callable[..., Harness], prefix: str
) -> None:
    harness = redis_harness(make_harness, prefix, event_queue_heartbeat_secs=0.2)
    hamlet, othello = harness.account("hamlet@zulip.com"), harness.account("othello@zulip.com")
    queue = harness.post("/register", othello, event_types='["presence"]').json()
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.xadd(f"{prefix}log:{hamlet.user.realm_id}", {"c": b"not json"})
    finally:
        client.close()
    harness.presence(hamlet, "active")
    response = harness.get("/events", othello, queue_id=queue["queue_id"], last_event_id=-1)
    assert response.status_code == 200, response.text
    assert [e["user_id"] for e in response.json()["events"]] == [hamlet.id]


def test_without_redis_events_answer_503_and_presence_keeps_working(
    make_harness: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    harness = make_harness(redis_url=nowhere, rate_limit_requests=100)
    hamlet, othello = harness.account("hamlet@zulip.com"), harness.account("othello@zulip.com")
    with caplog.at_level(logging.WARNING, logger="presenced"):
        for _ in range(5):
            body = harness.presence(hamlet, "active")
            assert "hamlet@zulip.com" in body["presences"]
        response = harness.get("/realm/presence", othello)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "100"  # allowed: fails open
        for method, path, params in (
            ("POST", "/register", {}),
            ("GET", "/events", {"queue_id": "abc", "last_event_id": "-1"}),
            ("GET", "/events", {"dont_block": "true"}),
            ("DELETE", "/events", {"queue_id": "abc"}),
        ):
            if method == "GET":
                response = harness.request(method, path, account=othello, params=params)
            else:
                response = harness.request(method, path, account=othello, data=params)
            assert_error(response, 503, UNAVAILABLE, "SERVICE_UNAVAILABLE")
            assert response.headers["retry-after"] == "5"
    fail_open = [r for r in caplog.records if "rate limiting is failing open" in r.getMessage()]
    assert len(fail_open) == 1  # once, not once per request
    assert not any(r.exc_info for r in caplog.records)


def test_without_redis_an_embed_stream_answers_503_without_a_traceback(
    make_harness: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    """The page's stream needs an event queue: with Redis out of reach it is refused before
    it starts, as ``/register`` is, and the page (which falls back to presence.json, still
    served) tries again later."""
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    harness = make_harness(redis_url=nowhere)
    harness.account("hamlet@zulip.com")
    token, _ = make_token(harness)
    with caplog.at_level(logging.WARNING, logger="presenced"):
        response = harness.client.get("/embed/stream", params={"token": token})
        assert_error(response, 503, UNAVAILABLE, "SERVICE_UNAVAILABLE")
        assert response.headers["retry-after"] == "5"
        listed = harness.client.get("/embed/presence.json", params={"token": token})
        assert listed.status_code == 200, listed.text
    assert not any(r.exc_info for r in caplog.records)


def test_a_redis_url_that_is_not_one_is_refused_without_showing_it() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={"PRESENCED_REDIS_URL": "http://user:secret@example.com"})
    assert "redis://" in str(refused.value)
    assert "secret" not in str(refused.value)
    for url in ("redis://127.0.0.1:6379/0", "rediss://:secret@example.com:6380/1"):
        assert load_settings(environ={"PRESENCED_REDIS_URL": url}).redis_url == url


def test_change_notices_reach_other_processes_coalesced_and_not_their_sender(
    prefix: str,
) -> None:
    """Two feeds on one channel, as two processes have: each hears the other's notices, once
    per batch with the highest sequence per realm, and never its own."""

    async def scenario() -> tuple[list[Notice], list[Notice]]:
        first_link, second_link = RedisLink(REDIS_URL, prefix), RedisLink(REDIS_URL, prefix)
        first, second = RedisChangeFeed(first_link), RedisChangeFeed(second_link)
        heard_first: list[Notice] = []
        heard_second: list[Notice] = []
        await first.start(heard_first.append)
        await second.start(heard_second.append)
        try:
            for _ in range(100):  # until the second is subscribed
                await first.publish(DirectoryChanged())
                if heard_second:
                    break
                await asyncio.sleep(0.05)
            heard_second.clear()
            await asyncio.gather(
                first.publish(PresenceCommitted(1, 5)),
                first.publish(PresenceCommitted(1, 7)),
                first.publish(PresenceCommitted(2, 3)),
            )
            await second.publish(PresenceCommitted(9, 1))
            for _ in range(100):
                if PresenceCommitted(1, 7) in heard_second and heard_first:
                    break
                await asyncio.sleep(0.05)
        finally:
            await first.close()
            await second.close()
            await first_link.close()
            await second_link.close()
        return heard_first, heard_second

    heard_first, heard_second = asyncio.run(scenario())
    assert heard_first == [PresenceCommitted(9, 1)]
    assert PresenceCommitted(1, 7) in heard_second
    assert PresenceCommitted(1, 5) not in heard_second  # coalesced into 7
    assert PresenceCommitted(2, 3) in heard_second
    assert PresenceCommitted(9, 1) not in heard_second


def test_a_change_lost_while_redis_is_unreachable_ends_its_realms_queues(
    make_harness: Callable[..., Harness], prefix: str
) -> None:
    """A change that could not be appended is never silently skipped: once Redis answers
    again (here with no request to this process), the realm's queues are ended, so their
    clients re-register and fetch the state that includes it."""
    with tcp_proxy("127.0.0.1", 6379) as proxy:
        harness = make_harness(
            redis_url=f"redis://127.0.0.1:{proxy.port}/0",
            redis_key_prefix=prefix,
            rate_limit_requests=0,
        )
        hamlet, othello = harness.account("hamlet@zulip.com"), harness.account("othello@zulip.com")
        queue = harness.post("/register", othello, event_types='["presence"]').json()
        queue_key = f"{prefix}q:{queue['queue_id']}"
        direct = redis.Redis.from_url(REDIS_URL)
        try:
            assert direct.exists(queue_key) == 1
            proxy.cut()
            harness.presence(hamlet, "active")  # answered; its event cannot be appended
            proxy.restore()
            deadline = time.monotonic() + 10
            while direct.exists(queue_key) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert direct.exists(queue_key) == 0
        finally:
            direct.close()
        response = harness.get("/events", othello, queue_id=queue["queue_id"], last_event_id=-1)
        assert_error(
            response, 400, f"Bad event queue ID: {queue['queue_id']}", "BAD_EVENT_QUEUE_ID"
        )
        # The client's next registration sees the change and hears of later ones.
        fresh = harness.post("/register", othello, event_types='["presence"]').json()
        assert "hamlet@zulip.com" in fresh["presences"]
        harness.presence(othello, "active")
        events = harness.get(
            "/events", othello, queue_id=fresh["queue_id"], last_event_id=-1, dont_block="true"
        ).json()["events"]
        assert [e["email"] for e in events] == ["othello@zulip.com"]
