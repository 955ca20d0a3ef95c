"""Clean shutdown and restart with real ``presenced serve`` processes.

On SIGTERM or SIGINT every parked long-poll gets a Zulip answer (a heartbeat, or its pending
events) before the process exits; the event queues are saved to the store and served again by
the next process, so clients carry on with their old queue id and ``last_event_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from conftest import FakeClock, Harness, make_settings
from live import LiveServer, free_port, live_server
from presenced.app import create_app
from presenced.store.base import SavedChangeLog, SavedEventQueue, SavedEventQueues

PARKED_POLLS = 20
# Long enough that no poll is answered by its heartbeat before the signal.
ENV = {
    "PRESENCED_EVENT_QUEUE_HEARTBEAT_SECS": "60",
    "PRESENCED_EVENT_QUEUE_LONGPOLL_TIMEOUT_SECS": "90",
}


def auth(user: dict[str, Any]) -> tuple[str, str]:
    return (user["email"], user["api_key"])


def register(server: LiveServer, user: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        server.url + "/api/v1/register",
        data={"event_types": '["presence"]'},
        auth=auth(user),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def poll(
    url: str, user: dict[str, Any], queue_id: str, last_event_id: int, *, dont_block: bool = False
) -> httpx.Response:
    return httpx.get(
        url + "/api/v1/events",
        params={
            "queue_id": queue_id,
            "last_event_id": str(last_event_id),
            "dont_block": "true" if dont_block else "false",
        },
        auth=auth(user),
        timeout=60,
    )


def report(server: LiveServer, user: dict[str, Any], status: str = "active") -> None:
    response = httpx.post(
        server.url + "/api/v1/users/me/presence",
        data={"status": status},
        auth=auth(user),
        timeout=30,
    )
    assert response.status_code == 200, response.text


def established_connections(port: int) -> int:
    """Server-side TCP connections on ``port`` that are open (from /proc/net/tcp)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            next(fh)
            for line in fh:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # ESTABLISHED
                    count += 1
    return count


def wait_for(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def stop(server: LiveServer, sig: signal.Signals) -> int:
    server.process.send_signal(sig)
    try:
        return server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
        raise AssertionError("the server did not stop within 20 s of " + sig.name) from None


def assert_clean_log(log: str) -> None:
    assert "Traceback" not in log, log
    assert " ERROR" not in log and "ERROR:" not in log, log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_parked_polls_are_answered_and_queues_survive_a_restart(
    tmp_path: Path, sig: signal.Signals
) -> None:
    port = free_port()
    with live_server(tmp_path, ENV, port=port) as first:
        first.cli("realm", "create", "--name", "Zulip Dev")
        watcher = first.user("watcher@zulip.com", "Watcher")
        reporter = first.user("reporter@zulip.com", "Reporter")
        idle = register(first, watcher)  # never polled before the restart
        parked = [register(first, watcher) for _ in range(PARKED_POLLS)]
        report(first, reporter)  # acknowledged: in every queue's log, read by none yet
        url = f"http://127.0.0.1:{port}"
        for q in parked:  # each reads the report (id 0), then parks on the next poll
            events = poll(url, watcher, q["queue_id"], -1).json()["events"]
            assert [e["type"] for e in events] == ["presence"]
        before = established_connections(port)
        with ThreadPoolExecutor(PARKED_POLLS) as pool:
            futures = [pool.submit(poll, url, watcher, q["queue_id"], 0) for q in parked]
            wait_for(lambda: established_connections(port) >= before + PARKED_POLLS, "parked polls")
            time.sleep(0.5)  # let the server read the requests it has accepted
            status = stop(first, sig)
            answers = [f.result(timeout=30) for f in futures]
        assert status in (0, -sig.value)
        log = first.log()
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        body = answer.json()
        assert body["result"] == "success"
        assert body["events"] == [{"type": "heartbeat", "id": 1}]
    assert_clean_log(log)

    with live_server(tmp_path, ENV, init=False, port=port) as second:
        # The queue nobody polled still has the report it had not read.
        events = poll(second.url, watcher, idle["queue_id"], -1, dont_block=True).json()
        assert [(e["type"], e["id"], e["user_id"]) for e in events["events"]] == [
            ("presence", 0, reporter["user_id"])
        ]
        # The parked ones carry on after their heartbeat, and hear of new changes.
        for q in parked:
            answer = poll(second.url, watcher, q["queue_id"], 1, dont_block=True)
            assert answer.status_code == 200, answer.text
            assert answer.json()["events"] == []
        other = second.user("other@zulip.com", "Other")
        report(second, other)
        events = poll(second.url, watcher, parked[0]["queue_id"], 1).json()["events"]
        assert [(e["type"], e["id"], e["user_id"]) for e in events] == [
            ("presence", 2, other["user_id"])
        ]
        # The report acknowledged before the restart is in the store.
        presence = httpx.get(
            f"{second.url}/api/v1/users/{reporter['user_id']}/presence",
            auth=auth(watcher),
            timeout=30,
        ).json()
        assert presence["presence"]["aggregated"]["status"] == "active"


class StopWatching(Exception):
    pass


def test_zulip_call_on_each_event_carries_on_across_a_restart(tmp_path: Path) -> None:
    port = free_port()
    env = {"PRESENCED_EVENT_QUEUE_HEARTBEAT_SECS": "2"}
    received: queue.Queue[dict[str, Any]] = queue.Queue()
    stopping = threading.Event()
    registrations: list[str] = []

    def on_event(event: dict[str, Any]) -> None:
        if stopping.is_set():
            raise StopWatching
        received.put(event)

    with live_server(tmp_path, env, port=port) as first:
        first.cli("realm", "create", "--name", "Zulip Dev")
        watcher = first.user("watcher@zulip.com", "Watcher")
        alice = first.user("alice@zulip.com", "Alice")
        bob = first.user("bob@zulip.com", "Bob")
        client = first.client(watcher["email"], watcher["api_key"])
        original_register = client.register

        def counting_register(*args: Any, **kwargs: Any) -> dict[str, Any]:
            result: dict[str, Any] = original_register(*args, **kwargs)
            registrations.append(result.get("queue_id", ""))
            return result

        client.register = counting_register

        def watch() -> None:
            with contextlib.suppress(StopWatching):
                client.call_on_each_event(on_event, event_types=["presence"])

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        try:
            wait_for(lambda: registrations, "the client to register")
            report(first, alice)
            first_event = received.get(timeout=30)
            assert first_event["user_id"] == alice["user_id"]
            stop(first, signal.SIGTERM)
            assert_clean_log(first.log())

            with live_server(tmp_path, env, init=False, port=port) as second:
                report(second, bob)
                second_event = received.get(timeout=60)
                assert second_event["user_id"] == bob["user_id"]
                assert second_event["id"] > first_event["id"]
                assert len(registrations) == 1, registrations
                stopping.set()  # the next event ends the client's loop
                report(second, second.user("carol@zulip.com", "Carol"))
                thread.join(timeout=30)
                assert not thread.is_alive()
                assert_clean_log(second.log())
        finally:
            stopping.set()


def test_every_kind_of_unread_change_survives_a_restart_in_process(tmp_path: Path) -> None:
    """The lifespan saves at shutdown and loads at start: the log tail a queue had not read
    (presence, user status, user settings) comes back with the queue, in the same order and
    with the same ids."""
    settings = make_settings(tmp_path)
    clock = FakeClock()

    def start() -> tuple[TestClient, Harness]:
        app = create_app(settings, clock=clock)
        client = TestClient(app, base_url="http://localhost:9991")
        client.__enter__()
        return client, Harness(client, app.state.server, clock)

    client, harness = start()
    try:
        hamlet = harness.account("hamlet@zulip.com")
        othello = harness.account("othello@zulip.com")
        registered = harness.post(
            "/register",
            hamlet,
            event_types=["presence", "user_status", "user_settings"],
            client_capabilities={
                "notification_settings_null": True,
                "simplified_presence_events": True,
            },
        ).json()
        harness.presence(othello)
        assert harness.post("/users/me/status", othello, status_text="on a boat").status_code == 200
        settings_change = harness.request(
            "PATCH", "/settings", account=hamlet, data={"presence_enabled": False}
        )
        assert settings_change.status_code == 200
        expected = harness.get(
            "/events", hamlet, queue_id=registered["queue_id"], last_event_id=-1, dont_block=True
        ).json()["events"]
        assert [e["type"] for e in expected] == ["presence", "user_status", "user_settings"]
        # A second queue, never read: its unread log tail is what the restart must keep.
        unread = harness.post("/register", hamlet, event_types=["user_status"]).json()
        assert harness.post("/users/me/status", othello, status_text="ashore").status_code == 200
    finally:
        client.__exit__(None, None, None)

    client, harness = start()
    try:
        again = harness.get(
            "/events", hamlet, queue_id=registered["queue_id"], last_event_id=-1, dont_block=True
        ).json()["events"]
        ashore = {"type": "user_status", "user_id": othello.id, "status_text": "ashore"}
        assert again == [*expected, {**ashore, "id": 3}]
        tail = harness.get(
            "/events", hamlet, queue_id=unread["queue_id"], last_event_id=-1, dont_block=True
        ).json()["events"]
        assert tail == [{**ashore, "id": 0}]
        # Loaded once: the store forgot them when they were loaded.
        left = harness.run(harness.server.store.take_event_queues)
        assert (list(left.queues), list(left.logs)) == ([], [])
    finally:
        client.__exit__(None, None, None)


def test_saved_state_this_version_cannot_read_is_dropped_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Queues saved by another version (or damaged) are skipped with a warning; their clients
    get BAD_EVENT_QUEUE_ID and register again, and the server starts as usual."""
    settings = make_settings(tmp_path)
    clock = FakeClock()
    app = create_app(settings, clock=clock)
    with TestClient(app, base_url="http://localhost:9991") as client:
        harness = Harness(client, app.state.server, clock)
        hamlet = harness.account("hamlet@zulip.com")
        good = harness.post("/register", hamlet, event_types=["presence"]).json()
    # Damage what the shutdown saved: one more queue in an unknown format, and a broken log.
    store = app.state.server.store

    async def damage() -> None:
        await store.open()
        saved = await store.take_event_queues()
        await store.save_event_queues(
            SavedEventQueues(
                [*saved.queues, SavedEventQueue("from-the-future", 1, hamlet.id, b'{"v": 99}')],
                [SavedChangeLog(2, b"not json")],
            )
        )
        await store.close()

    asyncio.run(damage())
    app = create_app(settings, clock=clock)
    with (
        caplog.at_level(logging.WARNING),
        TestClient(app, base_url="http://localhost:9991") as client,
    ):
        harness = Harness(client, app.state.server, clock)
        ok = harness.get(
            "/events", hamlet, queue_id=good["queue_id"], last_event_id=-1, dont_block=True
        )
        assert ok.status_code == 200, ok.text
        bad = harness.get(
            "/events", hamlet, queue_id="from-the-future", last_event_id=-1, dont_block=True
        )
        assert bad.status_code == 400
        assert bad.json()["code"] == "BAD_EVENT_QUEUE_ID"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("from-the-future" in w for w in warnings), warnings
    assert any("unreadable saved change log" in w for w in warnings), warnings
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_reports_in_flight_at_sigterm_are_answered_and_kept(tmp_path: Path) -> None:
    """Reports keep coming while the server stops: each gets a JSON answer or no connection
    at all (never a plain-text 500), and every one acknowledged is in the store afterwards."""
    port = free_port()
    env = {"PRESENCED_RATE_LIMIT_REQUESTS": "0"}
    with live_server(tmp_path, env, port=port) as first:
        first.cli("realm", "create", "--name", "Zulip Dev")
        users = [first.user(f"user{i}@zulip.com", f"User {i}") for i in range(6)]
        acknowledged: set[int] = set()
        answers: list[httpx.Response] = []
        started = threading.Barrier(len(users) + 1)

        def keep_reporting(user: dict[str, Any]) -> None:
            started.wait()
            with httpx.Client(base_url=first.url, auth=auth(user), timeout=30) as client:
                while True:
                    try:
                        response = client.post(
                            "/api/v1/users/me/presence", data={"status": "active"}
                        )
                    except httpx.TransportError:
                        return
                    answers.append(response)
                    if response.status_code == 200:
                        acknowledged.add(user["user_id"])

        threads = [threading.Thread(target=keep_reporting, args=(u,)) for u in users]
        for thread in threads:
            thread.start()
        started.wait()
        wait_for(lambda: len(answers) >= 3 * len(users), "reports before the signal")
        stop(first, signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=30)
        assert_clean_log(first.log())
    for response in answers:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
    with live_server(tmp_path, env, init=False, port=port) as second:
        for user in users:
            if user["user_id"] not in acknowledged:
                continue
            presence = httpx.get(
                f"{second.url}/api/v1/users/{user['user_id']}/presence",
                auth=auth(users[0]),
                timeout=30,
            ).json()
            assert presence["presence"]["aggregated"]["status"] == "active", presence


def test_a_second_ctrl_c_stops_at_once_without_a_traceback(tmp_path: Path) -> None:
    """An impatient operator presses Ctrl-C twice: uvicorn stops at once, which cuts the
    lifespan short; that is what was asked, so the terminal shows no traceback."""
    port = free_port()
    with live_server(tmp_path, ENV, port=port) as server:
        server.cli("realm", "create", "--name", "Zulip Dev")
        watcher = server.user("watcher@zulip.com", "Watcher")
        queues = [register(server, watcher) for _ in range(5)]
        url = f"http://127.0.0.1:{port}"
        before = established_connections(port)
        with ThreadPoolExecutor(len(queues)) as pool:
            futures = [pool.submit(poll, url, watcher, q["queue_id"], -1) for q in queues]
            wait_for(lambda: established_connections(port) >= before + len(queues), "parked polls")
            time.sleep(0.5)  # let the server read the requests it has accepted
            server.process.send_signal(signal.SIGINT)
            time.sleep(0.02)  # the second press lands while the first one's shutdown runs
            server.process.send_signal(signal.SIGINT)
            status = server.process.wait(timeout=20)
            answers = [f.result(timeout=30) for f in futures]
        log = server.log()
    assert status in (0, -signal.SIGINT.value)
    assert all(answer.status_code == 200 for answer in answers)
    assert_clean_log(log)
