"""Invariant 3 against real processes: every report the server acknowledged is in the store
after ``kill -9`` and a restart."""

from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path

import httpx2 as httpx

from live import live_server

USERS = 4
ENV = {
    # Every report rewrites the stored times, so each acknowledgement is a distinct write.
    "PRESENCED_PRESENCE_UPDATE_MIN_FREQ_SECONDS": "0",
    "PRESENCED_RATE_LIMIT_REQUESTS": "0",
}


def test_acknowledged_reports_survive_kill_9(tmp_path: Path) -> None:
    acknowledged: dict[str, float] = {}
    credentials: dict[str, tuple[str, str]] = {}
    with live_server(tmp_path, ENV) as server:
        server.cli("realm", "create", "--name", "Durable")
        for n in range(USERS):
            user = server.user(f"user{n}@example.com", f"User {n}")
            credentials[user["email"]] = (user["email"], user["api_key"])
        stop = threading.Event()
        lock = threading.Lock()

        def report(email: str) -> None:
            with httpx.Client(base_url=server.url, auth=credentials[email], timeout=5) as client:
                while not stop.is_set():
                    sent_at = time.time()
                    try:
                        response = client.post(
                            "/api/v1/users/me/presence",
                            data={"status": "active", "ping_only": "true"},
                        )
                    except httpx.TransportError:
                        return  # the server is gone
                    if response.status_code == 200:
                        with lock:
                            acknowledged[email] = sent_at

        threads = [threading.Thread(target=report, args=(email,)) for email in credentials]
        started = time.time()
        for thread in threads:
            thread.start()
        while len(acknowledged) < USERS or time.time() - started < 1.5:
            time.sleep(0.05)
        # Reports are in flight: kill the server without a chance to flush anything.
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        final = dict(acknowledged)
    with live_server(tmp_path, ENV) as restarted:
        for email, acked_at in final.items():
            response = httpx.get(
                f"{restarted.url}/api/v1/users/{email}/presence",
                auth=credentials[email],
                timeout=10,
            )
            assert response.status_code == 200, response.text
            stored = response.json()["presence"]["aggregated"]["timestamp"]
            # The last acknowledged report (made after ``sent_at``) was committed before it
            # was answered.
            assert stored >= math.floor(acked_at), (email, stored, acked_at)
