"""Several real ``presenced serve`` processes sharing one database and one Redis behave as
one server: reports, cursors, events, key revocation, rate limits, and the faults (a process
killed with ``kill -9``, Redis stopping and coming back).

Each test gets its own Redis key prefix (deleted afterwards) and its own database, from the
``shared_database_url`` fixture: a PostgreSQL database, or one SQLite file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

import pg
from live import LiveServer, free_port, live_server
from redis_support import REDIS_URL, PrivateRedis, private_redis, redis_prefix

Credentials = tuple[str, str]
PRESENCE = "/api/v1/users/me/presence"


@pytest.fixture(params=["postgres", "sqlite"])
def shared_database_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The database every process of a test shares: PostgreSQL (the deployment several
    processes are meant for) and one SQLite file (which, with Redis, also works)."""
    if request.param == "postgres":
        with pg.temporary_database(migrated=False) as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'shared.db'}"


@pytest.fixture
def redis_env() -> Iterator[dict[str, str]]:
    with redis_prefix() as prefix:
        yield {"PRESENCED_REDIS_URL": REDIS_URL, "PRESENCED_REDIS_KEY_PREFIX": prefix}


@contextlib.contextmanager
def server_pair(workdir: Path, env: dict[str, str]) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two processes on one database and one Redis; the realm exists (made if need be)."""
    env = {"PRESENCED_EVENT_QUEUE_HEARTBEAT_SECS": "30", **env}
    (workdir / "a").mkdir(parents=True)
    (workdir / "b").mkdir()
    with live_server(workdir / "a", env) as first, live_server(workdir / "b", env) as second:
        if "Zulip Dev" not in first.cli("realm", "list"):
            first.cli("realm", "create", "--name", "Zulip Dev")
        yield first, second


@pytest.fixture
def make_pair(
    tmp_path: Path, shared_database_url: str, redis_env: dict[str, str]
) -> Iterator[Callable[..., tuple[LiveServer, LiveServer]]]:
    with contextlib.ExitStack() as stack:

        def make(**env: str) -> tuple[LiveServer, LiveServer]:
            full = {"PRESENCED_DATABASE_URL": shared_database_url, **redis_env, **env}
            return stack.enter_context(server_pair(tmp_path, full))

        yield make


def account(server: LiveServer, email: str) -> Credentials:
    created = server.user(email, email.split("@")[0].title())
    return created["email"], created["api_key"]


def call(
    server: LiveServer, method: str, path: str, who: Credentials, timeout: float = 10, **data: Any
) -> httpx.Response:
    params = {k: v if isinstance(v, str) else _json(v) for k, v in data.items()}
    if method in ("GET", "DELETE"):
        return httpx.request(method, server.url + path, params=params, auth=who, timeout=timeout)
    return httpx.request(method, server.url + path, data=params, auth=who, timeout=timeout)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["result"] == "success"
    return body


def register(server: LiveServer, who: Credentials) -> dict[str, Any]:
    return ok(call(server, "POST", "/api/v1/register", who, event_types=["presence"]))


def pending(server: LiveServer, who: Credentials, queue_id: str) -> list[dict[str, Any]]:
    body = ok(
        call(
            server,
            "GET",
            "/api/v1/events",
            who,
            queue_id=queue_id,
            last_event_id=-1,
            dont_block=True,
        )
    )
    events: list[dict[str, Any]] = body["events"]
    return events


def test_a_report_through_one_is_seen_through_the_other(
    make_pair: Callable[..., tuple[LiveServer, LiveServer]],
) -> None:
    a, b = make_pair()
    hamlet, othello = account(a, "hamlet@zulip.com"), account(a, "othello@zulip.com")
    queue = register(b, othello)
    cursor = ok(call(b, "POST", PRESENCE, othello, status="active", last_update_id=-1))[
        "presence_last_update_id"
    ]
    ok(call(a, "POST", PRESENCE, hamlet, status="active"))
    # REST, on the other process.
    realm = ok(call(b, "GET", "/api/v1/realm/presence", othello))
    assert set(realm["presences"]) == {"hamlet@zulip.com", "othello@zulip.com"}
    # The cursor, on the other process: only what changed since.
    delta = ok(call(b, "POST", PRESENCE, othello, status="active", last_update_id=cursor))
    assert list(delta["presences"]) == [str(delta_id(b, othello, "hamlet@zulip.com"))]
    assert delta["presence_last_update_id"] > cursor
    # Events, on the other process.
    assert [e.get("email") for e in pending(b, othello, queue["queue_id"])] == [
        "othello@zulip.com",
        "hamlet@zulip.com",
    ]


def delta_id(server: LiveServer, who: Credentials, email: str) -> int:
    users = ok(call(server, "GET", "/api/v1/users", who))["members"]
    return int(next(u["user_id"] for u in users if u["email"] == email))


def test_a_queue_made_on_one_is_polled_on_the_other_and_woken_by_the_first(
    make_pair: Callable[..., tuple[LiveServer, LiveServer]],
) -> None:
    a, b = make_pair()
    hamlet, othello = account(a, "hamlet@zulip.com"), account(a, "othello@zulip.com")
    queue = register(a, othello)
    answers: list[httpx.Response] = []
    poll = threading.Thread(
        target=lambda: answers.append(
            call(
                b,
                "GET",
                "/api/v1/events",
                othello,
                timeout=60,
                queue_id=queue["queue_id"],
                last_event_id=-1,
            )
        )
    )
    poll.start()
    time.sleep(1.0)  # the poll is parked on b (its heartbeat is 30 s away)
    assert poll.is_alive()
    started = time.monotonic()
    ok(call(a, "POST", PRESENCE, hamlet, status="active"))
    poll.join(timeout=20)
    assert not poll.is_alive()
    assert time.monotonic() - started < 10
    body = ok(answers[0])
    assert body["queue_id"] == queue["queue_id"]
    assert [(e["type"], e["email"]) for e in body["events"]] == [("presence", "hamlet@zulip.com")]
    # Acknowledged on a, the event is gone everywhere.
    after = ok(
        call(
            a,
            "GET",
            "/api/v1/events",
            othello,
            queue_id=queue["queue_id"],
            last_event_id=body["events"][-1]["id"],
            dont_block=True,
        )
    )
    assert after["events"] == []
    assert ok(call(b, "DELETE", "/api/v1/events", othello, queue_id=queue["queue_id"]))
    gone = call(a, "GET", "/api/v1/events", othello, queue_id=queue["queue_id"], last_event_id=-1)
    assert gone.status_code == 400
    assert gone.json()["code"] == "BAD_EVENT_QUEUE_ID"


def test_a_revoked_key_is_refused_by_both_within_a_second(
    make_pair: Callable[..., tuple[LiveServer, LiveServer]],
) -> None:
    a, b = make_pair()
    hamlet = account(a, "hamlet@zulip.com")
    for server in (a, b):  # both have it cached
        ok(call(server, "GET", "/api/v1/users/me", hamlet))
    key_id = _key_ids(a, hamlet[0])[0]
    a.cli("key", "revoke", "--email", hamlet[0], "--key-id", str(key_id))
    revoked_at = time.monotonic()
    refused: dict[str, float] = {}
    while len(refused) < 2 and time.monotonic() - revoked_at < 5:
        for server in (a, b):
            if server.url in refused:
                continue
            if call(server, "GET", "/api/v1/users/me", hamlet).status_code == 401:
                refused[server.url] = time.monotonic() - revoked_at
        time.sleep(0.02)
    assert set(refused) == {a.url, b.url}, refused
    assert max(refused.values()) < 1.0, refused


def _key_ids(server: LiveServer, email: str) -> list[int]:
    import json

    return [k["key_id"] for k in json.loads(server.cli("key", "list", "--email", email, "--json"))]


def test_the_rate_limit_is_counted_across_both(
    make_pair: Callable[..., tuple[LiveServer, LiveServer]],
) -> None:
    a, b = make_pair(PRESENCED_RATE_LIMIT_REQUESTS="6", PRESENCED_RATE_LIMIT_WINDOW_SECS="600")
    hamlet = account(a, "hamlet@zulip.com")
    remaining = []
    for server in (a, b, a, b, a, b):
        response = call(server, "GET", "/api/v1/users/me", hamlet)
        assert response.status_code == 200, response.text
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
    assert remaining == [5, 4, 3, 2, 1, 0]
    for server in (a, b):
        refused = call(server, "GET", "/api/v1/users/me", hamlet)
        assert refused.status_code == 429
        assert refused.json()["code"] == "RATE_LIMIT_HIT"
        assert float(refused.headers["retry-after"]) > 500


def test_failed_authentication_is_throttled_on_the_failures_of_both(
    make_pair: Callable[..., tuple[LiveServer, LiveServer]],
) -> None:
    """Key guessing spread over the processes counts once: after 4 failures through a and b
    together, the address is refused (429) by both, even with the right key."""
    a, b = make_pair(PRESENCED_AUTH_FAILURE_LIMIT="4", PRESENCED_AUTH_FAILURE_WINDOW_SECS="60")
    hamlet = account(a, "hamlet@zulip.com")
    wrong = (hamlet[0], "x" * 32)
    for server in (a, b, a, b):
        assert call(server, "GET", "/api/v1/users/me", wrong).status_code == 401
    for server in (a, b):
        refused = call(server, "GET", "/api/v1/users/me", hamlet)
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "RATE_LIMIT_HIT"
        assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_kill_9_of_one_leaves_the_other_serving_its_queues(
    make_pair: Callable[..., tuple[LiveServer, LiveServer]],
) -> None:
    a, b = make_pair()
    hamlet, othello = account(a, "hamlet@zulip.com"), account(a, "othello@zulip.com")
    queue = register(a, othello)
    ok(call(a, "POST", PRESENCE, hamlet, status="active"))  # acknowledged by a
    os.kill(a.process.pid, signal.SIGKILL)
    a.process.wait(timeout=10)
    realm = ok(call(b, "GET", "/api/v1/realm/presence", othello))
    assert "hamlet@zulip.com" in realm["presences"]
    assert [e["email"] for e in pending(b, othello, queue["queue_id"])] == ["hamlet@zulip.com"]
    ok(call(b, "POST", PRESENCE, othello, status="active"))
    assert [e["email"] for e in pending(b, othello, queue["queue_id"])] == [
        "hamlet@zulip.com",
        "othello@zulip.com",
    ]


def test_redis_stopping_and_returning(tmp_path: Path, shared_database_url: str) -> None:
    port = free_port()
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    with private_redis(port, redis_dir) as redis_server:
        env = {
            "PRESENCED_DATABASE_URL": shared_database_url,
            "PRESENCED_REDIS_URL": redis_server.url,
            "PRESENCED_REDIS_KEY_PREFIX": "fault:",
            "PRESENCED_RATE_LIMIT_REQUESTS": "1000",
        }
        with server_pair(tmp_path, env) as (a, b):
            hamlet, othello = account(a, "hamlet@zulip.com"), account(a, "othello@zulip.com")
            queue = register(b, othello)
            redis_server.stop()
            _while_redis_is_down(a, b, hamlet, othello, queue["queue_id"])
            redis_server.start()
            _after_redis_returns(a, b, othello, redis_server)
            for server in (a, b):
                log = server.log()
                assert "Traceback" not in log, log
            # Warned, but not once per request (a dozen went through unchecked).
            warnings = [s.log().count("rate limiting is failing open") for s in (a, b)]
            assert sum(warnings) >= 1 and max(warnings) <= 2, warnings


def _while_redis_is_down(
    a: LiveServer, b: LiveServer, hamlet: Credentials, othello: Credentials, queue_id: str
) -> None:
    # Presence keeps answering, and a report through one is seen through the other.
    report = call(a, "POST", PRESENCE, hamlet, status="active")
    assert report.status_code == 200, report.text
    assert "x-ratelimit-remaining" in report.headers  # allowed: the limit fails open
    deadline = time.monotonic() + 5
    while True:
        realm = ok(call(b, "GET", "/api/v1/realm/presence", othello))
        if "hamlet@zulip.com" in realm["presences"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "hamlet@zulip.com" in realm["presences"]
    # Event queues answer a clear JSON 503, quickly.
    for server, method, path, params in (
        (a, "POST", "/api/v1/register", {}),
        (b, "GET", "/api/v1/events", {"queue_id": queue_id, "last_event_id": -1}),
        (a, "DELETE", "/api/v1/events", {"queue_id": queue_id}),
    ):
        started = time.monotonic()
        response = call(server, method, path, othello, **params)
        assert time.monotonic() - started < 5
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["result"] == "error"
        assert body["code"] == "SERVICE_UNAVAILABLE"
        assert "unavailable" in body["msg"]


def _after_redis_returns(
    a: LiveServer, b: LiveServer, othello: Credentials, redis_server: PrivateRedis
) -> None:
    # Each process finds Redis back on its own (a process whose last call failed waits up to a
    # second before trying again): both must answer before a change made on one is expected
    # on the other, since changes published while Redis is unreachable are not kept.
    for server in (a, b):
        deadline = time.monotonic() + 15
        while True:
            response = call(server, "POST", "/api/v1/register", othello, event_types=["presence"])
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    queue = ok(response)
    # A new user's first report on a reaches the queue on b.
    iago = account(a, "iago@zulip.com")
    ok(call(a, "POST", PRESENCE, iago, status="active"))
    deadline = time.monotonic() + 10
    while True:
        events = pending(b, othello, queue["queue_id"])
        if events or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [e["email"] for e in events] == ["iago@zulip.com"]
    # The rate limit counts across both again.
    remaining = [
        int(call(server, "GET", "/api/v1/users/me", iago).headers["x-ratelimit-remaining"])
        for server in (a, b, a)
    ]
    assert remaining[1] == remaining[0] - 1 and remaining[2] == remaining[0] - 2, remaining


def test_serve_workers_needs_redis(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PRESENCED_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "PRESENCED_REDIS_URL": "",
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "presenced", "serve", "--workers", "2", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "PRESENCED_REDIS_URL" in lines[0] and "PostgreSQL" in lines[0]


def test_serve_workers_on_one_port(
    tmp_path: Path, shared_database_url: str, redis_env: dict[str, str]
) -> None:
    env = {"PRESENCED_DATABASE_URL": shared_database_url, **redis_env}
    with live_server(tmp_path, env, serve_args=("--workers", "2")) as server:
        server.cli("realm", "create", "--name", "Zulip Dev")
        hamlet, othello = account(server, "hamlet@zulip.com"), account(server, "othello@zulip.com")
        queue = register(server, othello)
        ok(call(server, "POST", PRESENCE, hamlet, status="active"))
        # Whichever worker answers, the queue and the report are there.
        for _ in range(6):
            assert [e["email"] for e in pending(server, othello, queue["queue_id"])] == [
                "hamlet@zulip.com"
            ]
            realm = ok(call(server, "GET", "/api/v1/realm/presence", othello))
            assert "hamlet@zulip.com" in realm["presences"]


def test_queues_survive_a_restart_of_every_process(
    tmp_path: Path, shared_database_url: str, redis_env: dict[str, str]
) -> None:
    env = {"PRESENCED_DATABASE_URL": shared_database_url, **redis_env}
    with server_pair(tmp_path / "before", env) as (a, b):
        hamlet, othello = account(a, "hamlet@zulip.com"), account(a, "othello@zulip.com")
        queue = register(a, othello)
        ok(call(b, "POST", PRESENCE, hamlet, status="active"))
    # Every process is gone; new ones on the same database and Redis answer the old queue.
    with server_pair(tmp_path / "after", env) as (c, d):
        assert [e["email"] for e in pending(d, othello, queue["queue_id"])] == ["hamlet@zulip.com"]
        iago = account(c, "iago@zulip.com")
        ok(call(c, "POST", PRESENCE, iago, status="active"))
        assert [e["email"] for e in pending(d, othello, queue["queue_id"])] == [
            "hamlet@zulip.com",
            "iago@zulip.com",
        ]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_answers_parked_polls_on_every_worker(
    tmp_path: Path, redis_env: dict[str, str], sig: signal.Signals
) -> None:
    """``serve --workers 2``: each worker answers its parked polls with a heartbeat at once,
    not with uvicorn's plain-text 500 at the end of the graceful-shutdown timeout."""
    env = {
        **redis_env,
        "PRESENCED_EVENT_QUEUE_HEARTBEAT_SECS": "60",
        "PRESENCED_SHUTDOWN_TIMEOUT_SECS": "30",
    }
    with pg.temporary_database(migrated=False) as url:
        env["PRESENCED_DATABASE_URL"] = url
        with live_server(tmp_path, env, serve_args=("--workers", "2")) as server:
            server.cli("realm", "create", "--name", "Zulip Dev")
            othello = account(server, "othello@zulip.com")
            queues = [register(server, othello)["queue_id"] for _ in range(8)]
            answers: list[httpx.Response] = []

            def park(queue_id: str) -> None:
                answers.append(
                    call(
                        server,
                        "GET",
                        "/api/v1/events",
                        othello,
                        timeout=60,
                        queue_id=queue_id,
                        last_event_id=-1,
                    )
                )

            threads = [threading.Thread(target=park, args=(q,)) for q in queues]
            for thread in threads:
                thread.start()
            time.sleep(1)  # every poll has reached a worker and parked
            started = time.monotonic()
            server.process.send_signal(sig)
            for thread in threads:
                thread.join(timeout=60)
            waited = time.monotonic() - started
            server.process.wait(timeout=30)
            log = server.log()
    assert len(answers) == len(queues)
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json()["events"] == [{"type": "heartbeat", "id": 0}]
    assert waited < 20, waited  # well before the 30 s graceful-shutdown timeout
    assert "Traceback" not in log and "ERROR" not in log, log
