"""Tests against the machine's Redis: a unique key prefix per test, its keys deleted after.

Never FLUSHALL/FLUSHDB: other tests and other deployments share this Redis. A private
``redis-server`` (for tests that stop Redis) runs on a free port with no persistence.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

REDIS_URL = "redis://127.0.0.1:6379/0"


def unique_prefix() -> str:
    return f"presenced-test:{uuid.uuid4().hex[:12]}:"


def prefix_keys(url: str, prefix: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return list(client.scan_iter(match=prefix + "*", count=1000))
    finally:
        client.close()


def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (SCAN MATCH, never a flush)."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


def require_redis(url: str = REDIS_URL) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is needed for this test (.ci/run starts it): {exc}")
    finally:
        client.close()


@contextlib.contextmanager
def redis_prefix(url: str = REDIS_URL) -> Iterator[str]:
    require_redis(url)
    prefix = unique_prefix()
    try:
        yield prefix
    finally:
        delete_prefix(url, prefix)


@dataclass
class PrivateRedis:
    """A ``redis-server`` of this test's own, which it may stop and start again."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is needed for this test (.ci/run installs it)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def private_redis(port: int, workdir: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(port, workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
