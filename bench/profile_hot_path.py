"""Profile the presence hot path in-process with pyinstrument.

Run: ``python bench/profile_hot_path.py [--users 1000] [--requests 5000]``. Creates a realm of
``--users`` users in a temporary SQLite database, brings every user online (first call with
``last_update_id=-1``), then profiles ``--requests`` pings that follow the cursor protocol
(80 % active, 10 % idle, 5 % ping-only, 5 % legacy), sent through the ASGI app without a
network in between, and prints where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from pathlib import Path

import httpx2 as httpx
from pyinstrument import Profiler
from starlette.applications import Starlette

from harness.accounts import NewUser, create_accounts, create_realms
from presenced.app import create_app
from presenced.settings import load_settings
from presenced.store.base import Store


async def run(users: int, requests: int, seed: int) -> None:
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="presenced-profile-"))
    settings = load_settings(
        environ={}, database_url=f"sqlite:///{workdir / 'profile.db'}", rate_limit_requests=0
    )
    app = create_app(settings)
    server = app.state.server
    try:
        elapsed, profiler = await profile(app, server.store, users, requests, rng)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{requests} requests in {elapsed:.2f} s: {requests / elapsed:.0f} requests/s in-process")
    print(profiler.output_text(unicode=False, color=False, show_all=False))


async def profile(
    app: Starlette, store: Store, users: int, requests: int, rng: random.Random
) -> tuple[float, Profiler]:
    async with app.router.lifespan_context(app):
        now = time.time()
        realms = await create_realms(store, [""], now)
        wanted = [NewUser(realms[""], f"user{i}@example.com", f"User {i}") for i in range(users)]
        auth = [a.authorization for a in await create_accounts(store, wanted, now)]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:9991") as c:
            cursors = []
            for header in auth:
                response = await c.post(
                    "/api/v1/users/me/presence",
                    data={"status": "active", "last_update_id": "-1"},
                    headers={"Authorization": header},
                )
                cursors.append(response.json()["presence_last_update_id"])
            profiler = Profiler(async_mode="enabled")
            started = time.perf_counter()
            profiler.start()
            for _ in range(requests):
                i = rng.randrange(users)
                roll = rng.random()
                data = {"status": "idle" if 0.8 <= roll < 0.9 else "active"}
                if roll >= 0.95:
                    data["slim_presence"] = "false"
                else:
                    data["last_update_id"] = str(cursors[i])
                if 0.9 <= roll < 0.95:
                    data["ping_only"] = "true"
                response = await c.post(
                    "/api/v1/users/me/presence", data=data, headers={"Authorization": auth[i]}
                )
                body = response.json()
                if "presence_last_update_id" in body and "last_update_id" in data:
                    cursors[i] = body["presence_last_update_id"]
            profiler.stop()
            return time.perf_counter() - started, profiler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(run(args.users, args.requests, args.seed))


if __name__ == "__main__":
    main()
