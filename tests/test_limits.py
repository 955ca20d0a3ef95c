"""Resource limits of ``presenced serve``, over real sockets against a real server: each is
a setting, and each refusal is a Zulip-style JSON error, not a dropped connection."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from live import LiveServer, live_server

LIMITS = {
    "PRESENCED_MAX_REQUEST_BODY_BYTES": "4096",
    "PRESENCED_MAX_HEADER_BYTES": "2048",
    "PRESENCED_MAX_HEADER_COUNT": "20",
    "PRESENCED_HEADER_TIMEOUT_SECS": "1",
    "PRESENCED_BODY_TIMEOUT_SECS": "1",
    "PRESENCED_KEEPALIVE_TIMEOUT_SECS": "1",
    "PRESENCED_MAX_CONNECTIONS": "8",
    "PRESENCED_AUTH_FAILURE_LIMIT": "3",
    "PRESENCED_AUTH_FAILURE_WINDOW_SECS": "60",
    "PRESENCED_EVENT_QUEUE_MAX_PER_USER": "2",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("limits"), LIMITS) as live:
        yield live


@pytest.fixture(scope="module")
def credentials(server: LiveServer) -> str:
    server.cli("realm", "create", "--name", "Limits", "--if-missing")
    user = server.user("limits@example.com", "Limits")
    token = base64.b64encode(f"{user['email']}:{user['api_key']}".encode()).decode()
    return f"Basic {token}"


def connect(server: LiveServer) -> socket.socket:
    port = int(server.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], Any]:
    """One HTTP response from ``sock`` (which the server then closes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return status, headers, orjson.loads(body[:length])


def exchange(server: LiveServer, request: bytes) -> tuple[int, dict[str, str], Any]:
    with connect(server) as sock:
        sock.sendall(request)
        return read_response(sock)


def assert_refused(answer: tuple[int, dict[str, str], Any], status: int, msg: str) -> None:
    code, headers, body = answer
    assert code == status, body
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert body["result"] == "error"
    assert body["code"] == "BAD_REQUEST"
    assert msg in body["msg"]


def request_head(path: str, *extra: str, method: str = "GET") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_normal_request_is_served(server: LiveServer) -> None:
    status, _, body = exchange(server, request_head("/api/v1/server_settings"))
    assert status == 200
    assert body["result"] == "success"


def test_a_declared_body_over_the_limit_is_413_before_it_is_sent(
    server: LiveServer, credentials: str
) -> None:
    head = request_head(
        "/api/v1/users/me/presence",
        f"Authorization: {credentials}",
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Length: 100000000",
        method="POST",
    )
    assert_refused(exchange(server, head), 413, "Request body too large (at most 4096 bytes)")


def test_a_chunked_body_over_the_limit_is_413(server: LiveServer, credentials: str) -> None:
    head = request_head(
        "/api/v1/users/me/presence",
        f"Authorization: {credentials}",
        "Content-Type: application/x-www-form-urlencoded",
        "Transfer-Encoding: chunked",
        method="POST",
    )
    chunk = b"1000\r\n" + b"a" * 0x1000 + b"\r\n"
    with connect(server) as sock:
        sock.sendall(head + chunk + chunk)
        assert_refused(read_response(sock), 413, "Request body too large")


def test_too_many_headers_is_431(server: LiveServer) -> None:
    extra = [f"X-Padding-{i}: x" for i in range(25)]
    answer = exchange(server, request_head("/api/v1/server_settings", *extra))
    assert_refused(answer, 431, "Too many request header fields")


def test_headers_too_large_is_431(server: LiveServer) -> None:
    answer = exchange(server, request_head("/api/v1/server_settings", "X-Big: " + "a" * 3000))
    assert_refused(answer, 431, "Request header fields too large")
    answer = exchange(server, request_head("/api/v1/server_settings?q=" + "a" * 3000))
    assert_refused(answer, 431, "Request header fields too large")


def test_a_silent_connection_gets_408(server: LiveServer) -> None:
    with connect(server) as sock:
        assert_refused(read_response(sock), 408, "Timed out waiting for the request headers")


def test_slow_headers_get_408(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /api/v1/server_settings HTTP/1.1\r\nHost: local")
        assert_refused(read_response(sock), 408, "Timed out waiting for the request headers")


def test_a_slow_body_gets_408(server: LiveServer, credentials: str) -> None:
    head = request_head(
        "/api/v1/users/me/presence",
        f"Authorization: {credentials}",
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Length: 100",
        method="POST",
    )
    with connect(server) as sock:
        sock.sendall(head + b"status=act")
        assert_refused(read_response(sock), 408, "Timed out waiting for the request body")


def test_an_idle_keepalive_connection_is_closed(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(request_head("/api/v1/server_settings"))
        status, _, _ = read_response(sock)
        assert status == 200
        sock.settimeout(10)
        assert sock.recv(1) == b""  # closed by the server after the keep-alive timeout


def test_garbage_is_a_json_400(server: LiveServer) -> None:
    answer = exchange(server, b"NOT HTTP AT ALL\r\n\r\n")
    assert_refused(answer, 400, "Invalid HTTP request")


def test_a_websocket_upgrade_is_answered_as_plain_http(
    server: LiveServer, credentials: str
) -> None:
    """presenced serves no WebSocket: an upgrade request gets the route's JSON answer, not
    uvicorn's bare 403, and no warning in the log for each one."""
    upgrade = (
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    )
    status, headers, body = exchange(server, request_head("/health", *upgrade))
    assert (status, body) == (200, {"result": "success", "msg": ""})
    assert headers["content-type"] == "application/json"
    me = request_head("/api/v1/users/me", f"Authorization: {credentials}", *upgrade)
    status, _, body = exchange(server, me)
    assert status == 200 and body["email"] == "limits@example.com", body
    assert "Unsupported upgrade request" not in server.log()


def test_past_the_connection_limit_requests_get_503_and_a_log_line(tmp_path: Path) -> None:
    # A server of its own, whose header timeout cannot close the held connections early.
    env = {**LIMITS, "PRESENCED_HEADER_TIMEOUT_SECS": "120"}
    with live_server(tmp_path, env) as server:
        _past_the_connection_limit(server)


def _past_the_connection_limit(server: LiveServer) -> None:
    held = [connect(server) for _ in range(9)]
    try:
        answer = exchange(server, request_head("/api/v1/server_settings"))
        assert_refused(answer, 503, "Too many open connections")
    finally:
        for sock in held:
            sock.close()
    assert "connection limit reached" in server.log()
    assert "PRESENCED_MAX_CONNECTIONS=8" in server.log()
    # Once they are gone, requests are served again.
    deadline = time.monotonic() + 10
    while exchange(server, request_head("/api/v1/server_settings"))[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_user_holds_at_most_the_queue_cap(server: LiveServer) -> None:
    server.cli("realm", "create", "--name", "Limits", "--if-missing")
    user = server.user("queues@example.com", "Queues")
    client = server.client(user["email"], user["api_key"])
    queues = [client.register(event_types=["presence"])["queue_id"] for _ in range(3)]
    gone = client.get_events(queue_id=queues[0], last_event_id=-1, dont_block=True)
    assert gone["code"] == "BAD_EVENT_QUEUE_ID"
    for queue_id in queues[1:]:
        kept = client.get_events(queue_id=queue_id, last_event_id=-1, dont_block=True)
        assert kept["result"] == "success", kept


def test_limits_are_settings(tmp_path: Path) -> None:
    """A value that is not a positive number is refused at start, with one line."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "presenced", "serve"],
        env={"PRESENCED_MAX_CONNECTIONS": "0", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr == "presenced: max_connections must be positive, not 0\n"


def test_failed_authentication_is_throttled_per_address(server: LiveServer) -> None:
    """Last in this module: it leaves 127.0.0.1 throttled for a minute."""
    server.cli("realm", "create", "--name", "Limits", "--if-missing")
    user = server.user("guesser@example.com", "Guesser")
    wrong = base64.b64encode(b"guesser@example.com:" + b"x" * 32).decode()
    right = base64.b64encode(f"{user['email']}:{user['api_key']}".encode()).decode()
    for _ in range(3):
        status, _, body = exchange(
            server, request_head("/api/v1/users/me", f"Authorization: Basic {wrong}")
        )
        assert status == 401, body
    status, headers, body = exchange(
        server, request_head("/api/v1/users/me", f"Authorization: Basic {right}")
    )
    assert status == 429
    assert body["code"] == "RATE_LIMIT_HIT"
    assert body["msg"] == "API usage exceeded rate limit"
    assert 0 < body["retry-after"] <= 60
    assert headers["retry-after"].isdigit()
    assert 1 <= int(headers["retry-after"]) <= 60
