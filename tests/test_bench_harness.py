"""The benchmark harness (bench/harness) against the real thing: PostgreSQL databases and
Redis keys it creates are gone afterwards, its server groups start and stop real
``presenced serve`` processes, the load generator sends each request to the next of several
servers, and bench/bare_framework.py runs wrk end to end."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from harness.backends import BackendChoice, bench_backend  # noqa: E402
from harness.servers import ServerGroup, ServerOptions  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"


async def bench_databases() -> list[str]:
    asyncpg = importlib.import_module("asyncpg")  # untyped; imported as the harness does
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database")
    finally:
        await conn.close()
    return [row["datname"] for row in rows]


def test_postgres_database_and_redis_keys_are_removed(tmp_path: Path) -> None:
    async def scenario() -> None:
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            async with bench_backend(BackendChoice("postgres", True), tmp_path) as backend:
                name = backend.database_url.rsplit("/", 1)[1]
                assert name in await bench_databases()
                prefix = backend.redis_prefix
                assert prefix is not None
                env = backend.server_env()
                assert env["PRESENCED_REDIS_KEY_PREFIX"] == prefix
                assert env["PRESENCED_DATABASE_URL"].startswith("postgresql://")
                for i in range(1500):  # more than one SCAN batch
                    await client.set(f"{prefix}key{i}", "x")
            assert name not in await bench_databases()
            assert [k async for k in client.scan_iter(match=prefix + "*")] == []
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_server_group_of_separate_processes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with bench_backend(BackendChoice(), tmp_path) as backend:
            store = await backend.open_store()
            try:
                await store.migrate()
            finally:
                await store.close()
            options = ServerOptions(
                workers=2, workers_mode="processes", cpus=None, env=backend.server_env()
            )
            group = ServerGroup(options, tmp_path)
            try:
                await group.wait_ready()
                assert group.mode == "processes"
                assert len(set(group.ports)) == 2
                assert len(group.pids()) == 2
                for base in group.base_urls:
                    answer = httpx.get(base + "/api/v1/server_settings")
                    assert answer.status_code == 200
                assert group.snapshot().processes == 2
            finally:
                group.stop()
            assert all(proc.poll() is not None for proc in group.procs)
            assert group.pids() == []

    asyncio.run(scenario())


def test_bare_framework_compares_presenced_with_the_bare_app() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "bench/bare_framework.py",
            *("--rounds", "1", "--duration", "1", "--warmup", "1", "--server-cpus", "none"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "presenced / bare Starlette:" in done.stdout
    assert "Traceback" not in done.stderr


def test_load_generator_sends_requests_to_each_server_in_turn(tmp_path: Path) -> None:
    from harness.generators import LoadGenerators
    from scenarios.load_runner import generator_specs
    from scenarios.load_setup import EXTERNAL_HOST, create_scenario_accounts
    from scenarios.model import Phase, RealmSpec, Scenario

    scenario = Scenario(
        "T",
        "ten users, one call each",
        (RealmSpec("t", 10, "all"),),
        (Phase("first calls", "each", "auto", 1, 60.0),),
        connections=2,
    )

    async def scenario_run() -> None:
        async with bench_backend(BackendChoice(), tmp_path) as backend:
            store = await backend.open_store()
            try:
                setup = await create_scenario_accounts(scenario, store, tmp_path)
            finally:
                await store.close()
            env = {
                **backend.server_env(),
                "PRESENCED_RATE_LIMIT_REQUESTS": "0",
                "PRESENCED_EXTERNAL_HOST": EXTERNAL_HOST,
            }
            options = ServerOptions(
                workers=2, workers_mode="processes", log_level="info", cpus=None, env=env
            )
            group = ServerGroup(options, tmp_path)
            gens: LoadGenerators | None = None
            try:
                await group.wait_ready()
                specs = generator_specs(setup, scenario, group.base_urls, 1, "identity")
                gens = LoadGenerators(specs, tmp_path)
                gens.expect("READY", 60)
                gens.go(time.monotonic() + 0.3)
                gens.expect("DONE", 60)
                gens.expect("RESULT", 60)
                [result] = gens.results()
            finally:
                if gens is not None:
                    gens.close()
                group.stop()
        assert result["phases"][0]["ok"] == 10
        assert result["phases"][0]["errors"] == {}
        served = [
            log.read_text().count("POST /api/v1/users/me/presence HTTP/1.1") for log in group.logs
        ]
        assert served == [5, 5]

    asyncio.run(scenario_run())
