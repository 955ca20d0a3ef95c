"""Prometheus metrics (issue 9 item 2), scraped from a real ``presenced serve``: requests by
endpoint and status with latency, presence reports and writes, group commits, index entries
with bounded realm labels, event queues and deliveries, rate limits and authentication
failures; open to loopback only by default, or on a port of their own."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from live import LiveServer, free_port, live_server
from presenced.observability.metrics import ServerCollector, ServerGauges
from presenced.settings import SettingsError, load_settings
from redis_support import REDIS_URL, redis_prefix

PRESENCE = "/api/v1/users/me/presence"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    response = httpx.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"PRESENCED_RATE_LIMIT_REQUESTS": "5"}
    with live_server(tmp_path_factory.mktemp("metrics"), env) as server:
        server.cli("realm", "create", "--name", "Zulip Dev")
        yield server


def test_requests_presence_and_commits(live: LiveServer) -> None:
    hamlet = live.user("hamlet@zulip.com", "King Hamlet")
    client = live.client(hamlet["email"], hamlet["api_key"])
    before = scrape(live.url + "/metrics")
    assert client.update_presence({"status": "active"})["result"] == "success"
    assert client.update_presence({"status": "active"})["result"] == "success"  # no write
    after = scrape(live.url + "/metrics")

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    labels = {"endpoint": PRESENCE, "method": "POST", "status": "200"}
    assert delta("presenced_requests_total", **labels) == 2
    assert delta("presenced_request_duration_seconds_count", endpoint=PRESENCE) == 2
    assert delta("presenced_presence_reports_total") == 2
    assert delta("presenced_presence_writes_total") == 1
    assert delta("presenced_group_commit_batch_size_count") >= 1
    assert delta("presenced_group_commit_duration_seconds_count") >= 1
    assert value(after, "presenced_index_entries_total") >= 1
    assert value(after, "presenced_index_realms") >= 1
    assert any(name == "presenced_index_entries" for name, _ in after)


def test_events_rate_limits_and_auth_failures(live: LiveServer) -> None:
    othello = live.user("othello@zulip.com", "Othello")
    auth = (othello["email"], othello["api_key"])
    before = scrape(live.url + "/metrics")
    queue = httpx.post(live.url + "/api/v1/register", auth=auth).json()
    polled = httpx.get(
        live.url + "/api/v1/events",
        params={"queue_id": queue["queue_id"], "last_event_id": "-1", "dont_block": "true"},
        auth=auth,
    )
    assert polled.status_code == 200
    wrong = httpx.get(live.url + "/api/v1/users/me", auth=(othello["email"], "a" * 32))
    assert wrong.status_code == 401
    statuses = [httpx.get(live.url + "/api/v1/users/me", auth=auth).status_code for _ in range(6)]
    assert 429 in statuses
    after = scrape(live.url + "/metrics")

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(after, "presenced_event_queues") >= 1
    assert delta("presenced_events_delivered_total") == len(polled.json()["events"])
    assert delta("presenced_authentication_failures_total") == 1
    assert delta("presenced_rate_limited_requests_total") >= 1
    assert delta(
        "presenced_requests_total", endpoint="/api/v1/users/me", method="GET", status="429"
    )


def test_parked_long_polls(live: LiveServer) -> None:
    iago = live.user("iago@zulip.com", "Iago")
    auth = (iago["email"], iago["api_key"])
    queue = httpx.post(live.url + "/api/v1/register", auth=auth).json()
    params = {"queue_id": queue["queue_id"], "last_event_id": str(queue["last_event_id"])}
    result: list[int] = []

    def poll() -> None:
        try:
            result.append(
                httpx.get(
                    live.url + "/api/v1/events", params=params, auth=auth, timeout=5
                ).status_code
            )
        except httpx.TimeoutException:
            result.append(0)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        deadline = 50
        while deadline and value(scrape(live.url + "/metrics"), "presenced_parked_long_polls") < 1:
            deadline -= 1
            threading.Event().wait(0.1)
        assert deadline, "the poll never showed as parked"
    finally:
        # A presence change by someone else wakes the poll (became online).
        cordelia = live.user("cordelia@zulip.com", "Cordelia")
        live.client(cordelia["email"], cordelia["api_key"]).update_presence({"status": "active"})
        poller.join(timeout=10)
    assert result == [200]


def test_metrics_refused_to_other_addresses(tmp_path: Path) -> None:
    env = {"PRESENCED_METRICS_ALLOW": "10.0.0.0/8"}
    with live_server(tmp_path, env) as server:
        response = httpx.get(server.url + "/metrics")
        assert response.status_code == 403
        body = response.json()
        assert body["result"] == "error" and body["msg"] == "Access denied"


def test_metrics_on_their_own_port(tmp_path: Path) -> None:
    port = free_port()
    env = {"PRESENCED_METRICS_PORT": str(port)}
    with live_server(tmp_path, env) as server:
        assert httpx.get(server.url + "/metrics").status_code == 404
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
        assert ("presenced_index_entries_total", ()) in samples


def test_bad_metrics_settings_are_refused() -> None:
    with pytest.raises(SettingsError, match="metrics_allow"):
        load_settings(environ={"PRESENCED_METRICS_ALLOW": "not-an-address"})
    with pytest.raises(SettingsError, match="metrics_port"):
        load_settings(environ={"PRESENCED_METRICS_PORT": "70000"})
    with pytest.raises(SettingsError, match="log_format"):
        load_settings(environ={"PRESENCED_LOG_FORMAT": "xml"})


def test_realm_labels_are_bounded() -> None:
    sizes = {realm_id: realm_id * 10 for realm_id in range(1, 31)}
    collector = ServerCollector(largest=10)
    with collector.tracking(ServerGauges(index_sizes=lambda: sizes, event_queues=lambda: 3)):
        families = {family.name: family for family in collector.collect()}
    labelled = families["presenced_index_entries"].samples
    assert sorted(int(s.labels["realm_id"]) for s in labelled) == list(range(21, 31))
    assert families["presenced_index_entries_total"].samples[0].value == sum(sizes.values())
    assert families["presenced_index_realms"].samples[0].value == 30
    assert families["presenced_event_queues"].samples[0].value == 3


def test_event_queues_in_redis_are_counted_on_every_process(tmp_path: Path) -> None:
    """With the queues in Redis, each process's gauge shows all of them (within the 5 s the
    count is read in), not 0 or only its own."""
    with contextlib.ExitStack() as stack:
        env = {
            "PRESENCED_REDIS_URL": REDIS_URL,
            "PRESENCED_REDIS_KEY_PREFIX": stack.enter_context(redis_prefix()),
        }
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        database = f"sqlite:///{tmp_path / 'shared.db'}"
        env["PRESENCED_DATABASE_URL"] = database
        first = stack.enter_context(live_server(tmp_path / "a", env))
        second = stack.enter_context(live_server(tmp_path / "b", env))
        first.cli("realm", "create", "--name", "Zulip Dev")
        iago = first.user("iago@zulip.com", "Iago")
        auth = (iago["email"], iago["api_key"])
        for server in (first, first, second):
            assert httpx.post(server.url + "/api/v1/register", auth=auth).status_code == 200
        deadline = time.monotonic() + 15
        counts: list[float] = []
        while time.monotonic() < deadline:
            counts = [
                value(scrape(server.url + "/metrics"), "presenced_event_queues")
                for server in (first, second)
            ]
            if counts == [3, 3]:
                break
            time.sleep(0.5)
        assert counts == [3, 3]


def test_each_worker_serves_its_metrics_on_a_port_of_its_own(tmp_path: Path) -> None:
    """``serve --workers 2`` with PRESENCED_METRICS_PORT=P: the workers take P and P + 1
    (they would all have tried P, and all but one failed to start)."""
    first = free_port()
    with contextlib.ExitStack() as stack:
        env = {
            "PRESENCED_REDIS_URL": REDIS_URL,
            "PRESENCED_REDIS_KEY_PREFIX": stack.enter_context(redis_prefix()),
            "PRESENCED_METRICS_PORT": str(first),
        }
        server = stack.enter_context(live_server(tmp_path, env, serve_args=("--workers", "2")))
        deadline = time.monotonic() + 20
        answered: set[int] = set()
        while answered != {first, first + 1} and time.monotonic() < deadline:
            for port in (first, first + 1):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200:
                        answered.add(port)
            time.sleep(0.2)
        assert answered == {first, first + 1}
        assert "Traceback" not in server.log()


def test_a_taken_metrics_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "HOME": str(tmp_path),
            "PRESENCED_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
            "PRESENCED_METRICS_PORT": str(port),
        }
        done = subprocess.run(
            [sys.executable, "-m", "presenced", "serve", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"presenced: port {port} on 127.0.0.1 is already in use (PRESENCED_METRICS_PORT)"
    ]
