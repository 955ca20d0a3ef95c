"""The CPU cost of the access log and the metrics on the presence hot path, in process.

Run: ``python bench/pipeline_cost.py [--requests 20000] 2>/dev/null``. Drives
``POST /users/me/presence`` (``status=active&last_update_id=-1``, 10 users, rate limit off)
straight through the ASGI app, with no network or server in between, in three modes taken in
turns: everything on (access log written to stderr, metrics), metrics only (access log filtered
by level) and neither (no observer). Prints CPU microseconds per request for each; divide the
differences by a full request's CPU (from wrk against ``presenced serve``) for the share.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import sys
import tempfile
import time
from pathlib import Path

from starlette.types import Message

from presenced.api.endpoint import RestEndpoint
from presenced.app import create_app
from presenced.keys import PREFIX_LENGTH, generate_api_key, hash_api_key
from presenced.observability.logconfig import configure_logging
from presenced.observability.requests import RequestRecorder
from presenced.settings import load_settings
from presenced.store.base import Role

BODY = b"status=active&last_update_id=-1"


async def run(requests: int, rounds: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="presenced-cost-"))
    settings = load_settings(
        environ={}, database_url=f"sqlite:///{workdir / 'cost.db'}", rate_limit_requests=0
    )
    configure_logging("text", "info")
    app = create_app(settings)
    server = app.state.server
    async with app.router.lifespan_context(app):
        store = server.store
        realm = await store.create_realm("", "Cost", time.time())
        headers: list[list[tuple[bytes, bytes]]] = []
        for i in range(10):
            user = await store.create_user(
                realm.id, f"u{i}@x.com", f"u{i}@x.com", f"U{i}", Role.MEMBER, None, None, 0.0
            )
            key = generate_api_key()
            await store.create_api_key(user.id, hash_api_key(key), key[:PREFIX_LENGTH], "", 0.0)
            token = base64.b64encode(f"u{i}@x.com:{key}".encode())
            headers.append(
                [
                    (b"host", b"localhost:9991"),
                    (b"authorization", b"Basic " + token),
                    (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", str(len(BODY)).encode()),
                ]
            )
        endpoints = [
            endpoint
            for route in app.routes
            if isinstance(endpoint := getattr(route, "endpoint", None), RestEndpoint)
        ]
        recorder = RequestRecorder()
        access = logging.getLogger("presenced.access")

        async def receive() -> Message:
            return {"type": "http.request", "body": BODY, "more_body": False}

        async def send(message: Message) -> None:
            pass

        async def drive(count: int) -> float:
            started = time.process_time()
            for i in range(count):
                scope = {
                    "type": "http",
                    "method": "POST",
                    "path": "/api/v1/users/me/presence",
                    "query_string": b"",
                    "headers": headers[i % 10],
                    "client": ("127.0.0.1", 50000),
                    "scheme": "http",
                    "root_path": "",
                }
                await app(scope, receive, send)
            return (time.process_time() - started) / count * 1e6

        def mode(name: str) -> None:
            for endpoint in endpoints:
                endpoint.observer = None if name == "neither" else recorder
            access.setLevel(logging.INFO if name == "log+metrics" else logging.WARNING)

        await drive(2000)
        results: dict[str, list[float]] = {"log+metrics": [], "metrics": [], "neither": []}
        for _ in range(rounds):
            for name, values in results.items():
                mode(name)
                values.append(await drive(requests))
        for name, values in results.items():
            best = min(values)
            print(f"{name:12} {best:7.1f} us CPU/request (best of {rounds})", file=sys.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.rounds))


if __name__ == "__main__":
    main()
