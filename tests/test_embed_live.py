"""The embed against a real ``presenced serve``: what reaches the operator's terminal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx2 as httpx

from live import live_server


def test_tokens_stay_out_of_the_access_log(tmp_path: Path) -> None:
    with live_server(tmp_path) as live:
        live.cli("realm", "create", "--name", "Acme")
        live.user("ada@acme.test", "Ada Lovelace")
        token = json.loads(live.cli("embed", "create", "--json"))["token"]
        response = httpx.get(f"{live.url}/embed/presence.json", params={"token": token})
        assert response.status_code == 200
        page = httpx.get(f"{live.url}/embed/directory", params={"token": token, "theme": "x"})
        assert page.status_code == 400
        deadline = time.monotonic() + 5  # the access log is flushed every 0.2 s
        while "/embed/presence.json" not in (log := live.log()) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert "/embed/presence.json" in log  # the requests are in the access log...
    assert token not in log  # ...and the token is not (it logs no query strings)
    assert "Traceback" not in log
