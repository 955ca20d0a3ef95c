"""The access log (issue 9 item 3): one line per request from a real ``presenced serve``, with
user id, realm, route template, status and latency; text or JSON lines; never a key; bad input
and client disconnects are not errors; uvicorn's own access log is off."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from live import LiveServer, live_server
from redis_support import REDIS_URL, redis_prefix

PRESENCE = "/api/v1/users/me/presence"


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"PRESENCED_LOG_FORMAT": "json", "PRESENCED_RATE_LIMIT_REQUESTS": "0"}
    with live_server(tmp_path_factory.mktemp("json-log"), env) as server:
        server.cli("realm", "create", "--name", "Zulip Dev")
        yield server


def json_lines(server: LiveServer) -> list[dict[str, Any]]:
    lines = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def access_lines(server: LiveServer) -> list[dict[str, Any]]:
    return [line for line in json_lines(server) if line["logger"] == "presenced.access"]


def test_json_lines_carry_the_fields(json_server: LiveServer) -> None:
    hamlet = json_server.user("hamlet@zulip.com", "King Hamlet")
    othello = json_server.user("othello@zulip.com", "Othello")
    key = hamlet["api_key"]
    client = json_server.client(hamlet["email"], key)
    assert client.update_presence({"status": "active"})["result"] == "success"
    path = f"/api/v1/users/{othello['user_id']}/presence"
    lookup = httpx.get(json_server.url + path, auth=(hamlet["email"], key))
    assert lookup.status_code == 400  # othello never reported
    wait_for(
        lambda: (
            {PRESENCE, "/api/v1/users/{user_id_or_email}/presence"}
            <= {line["endpoint"] for line in access_lines(json_server)}
        ),
        "access lines",
    )
    lines = access_lines(json_server)
    report = next(line for line in lines if line["endpoint"] == PRESENCE)
    assert report["method"] == "POST" and report["status"] == 200
    assert report["user_id"] == hamlet["user_id"]
    assert report["realm"] == "" and isinstance(report["realm_id"], int)
    assert report["client"] == "127.0.0.1"
    assert isinstance(report["latency_ms"], float) and report["latency_ms"] >= 0
    assert report["level"] == "INFO"
    template = next(line for line in lines if line["status"] == 400)
    assert template["endpoint"] == "/api/v1/users/{user_id_or_email}/presence"
    assert template["level"] == "INFO"  # bad input is not an error
    log = json_server.log()
    assert key not in log
    assert "Authorization" not in log and "Basic " not in log
    assert '" 200' not in log and "HTTP/1.1" not in log  # uvicorn's access log is off


def test_failures_are_logged_without_credentials(json_server: LiveServer) -> None:
    wrong = "a" * 32
    response = httpx.post(
        json_server.url + PRESENCE + "?api_key=" + wrong,
        data={"status": "active"},
        auth=("nobody@zulip.com", wrong),
    )
    assert response.status_code == 401
    unknown = httpx.get(json_server.url + "/api/v1/nowhere/" + wrong)
    assert unknown.status_code == 404
    wait_for(lambda: any(x["status"] == 404 for x in access_lines(json_server)), "404 line")
    lines = access_lines(json_server)
    refused = [x for x in lines if x["status"] == 401]
    assert refused and refused[-1]["user_id"] == "-" and refused[-1]["level"] == "INFO"
    assert next(x for x in lines if x["status"] == 404)["endpoint"] == "<unmatched>"
    assert wrong not in json_server.log()


def test_client_disconnect_mid_body_is_not_an_error(json_server: LiveServer) -> None:
    hamlet = json_server.user("cordelia@zulip.com", "Cordelia")
    port = int(json_server.url.rsplit(":", 1)[1])
    token = base64.b64encode(f"{hamlet['email']}:{hamlet['api_key']}".encode()).decode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST " + PRESENCE.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
            b"Authorization: Basic " + token.encode() + b"\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000\r\n\r\nstatus=act"
        )
        time.sleep(0.3)
    wait_for(lambda: any(x["status"] == 499 for x in access_lines(json_server)), "499 line")
    levels = {line["level"] for line in json_lines(json_server)}
    assert levels <= {"INFO", "WARNING"}, levels
    assert "Traceback" not in json_server.log()


def test_text_lines(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        server.cli("realm", "create", "--name", "Zulip Dev")
        iago = server.user("iago@zulip.com", "Iago")
        client = server.client(iago["email"], iago["api_key"])
        assert client.update_presence({"status": "idle"})["result"] == "success"
        wait_for(lambda: f"POST {PRESENCE} 200" in server.log(), "text access line")
        line = next(x for x in server.log().splitlines() if f"POST {PRESENCE} 200" in x)
        assert " INFO presenced.access: 127.0.0.1 " in line
        assert f"user={iago['user_id']} realm_id=" in line and line.endswith("realm=")
        assert iago["api_key"] not in server.log()


def test_warning_level_writes_no_access_lines(tmp_path: Path) -> None:
    with live_server(tmp_path, serve_args=("--log-level", "warning")) as server:
        server.cli("realm", "create", "--name", "Zulip Dev")
        iago = server.user("iago@zulip.com", "Iago")
        client = server.client(iago["email"], iago["api_key"])
        assert client.update_presence({"status": "idle"})["result"] == "success"
        assert httpx.get(server.url + "/api/v1/nowhere").status_code == 404
        assert "presenced.access" not in server.log()


@pytest.mark.parametrize("serve_args", [(), ("--workers", "2")], ids=["one-process", "workers"])
def test_sigterm_right_after_requests_keeps_every_line(
    tmp_path: Path, serve_args: tuple[str, ...]
) -> None:
    """Lines still in the buffer when SIGTERM arrives reach the log: uvicorn ends a process
    stopped by a signal by re-raising it, and a worker with ``os._exit``, so nothing at exit
    would write them."""
    with contextlib.ExitStack() as stack:
        env = {"PRESENCED_RATE_LIMIT_REQUESTS": "0"}
        if serve_args:  # workers share their state through Redis
            env["PRESENCED_REDIS_URL"] = REDIS_URL
            env["PRESENCED_REDIS_KEY_PREFIX"] = stack.enter_context(redis_prefix())
        server = stack.enter_context(live_server(tmp_path, env, serve_args=serve_args))
        server.cli("realm", "create", "--name", "Zulip Dev")
        iago = server.user("iago@zulip.com", "Iago")
        with httpx.Client(auth=(iago["email"], iago["api_key"])) as client:
            for _ in range(20):
                reply = client.post(server.url + PRESENCE, data={"status": "active"})
                assert reply.status_code == 200
        server.process.terminate()
        server.process.wait(timeout=15)
        assert server.log().count(f"POST {PRESENCE} 200 ") == 20
        # The last lines before exit, written within the flusher's interval of it.
        assert "Application shutdown complete." in server.log()
        assert "Traceback" not in server.log()
