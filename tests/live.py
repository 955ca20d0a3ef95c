"""Real ``presenced serve`` processes for tests: started with the CLI's own commands, set up
with the CLI, and stopped (with their log shown on failure) when the test is done."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import zulip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "presenced", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def user(self, email: str, full_name: str, *extra: str) -> dict[str, Any]:
        created: dict[str, Any] = json.loads(
            self.cli("user", "create", "--email", email, "--full-name", full_name, "--json", *extra)
        )
        return created

    def client(self, email: str, api_key: str) -> Any:
        return zulip.Client(email=email, api_key=api_key, site=self.url)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/api/v1/server_settings", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


@contextlib.contextmanager
def live_server(
    workdir: Path,
    env: Mapping[str, str] | None = None,
    *,
    init: bool = True,
    serve_args: tuple[str, ...] = (),
    port: int | None = None,
) -> Iterator[LiveServer]:
    """``presenced serve`` on a free port (SQLite in ``workdir`` unless ``env`` names another
    database), after ``presenced init``."""
    port = port or free_port()
    full_env = {
        **os.environ,
        "PRESENCED_DATABASE_URL": f"sqlite:///{workdir / 'presenced.db'}",
        "PRESENCED_EXTERNAL_HOST": f"localhost:{port}",
        "HOME": str(workdir),
        **(env or {}),
    }
    if init:
        done = subprocess.run(
            [sys.executable, "-m", "presenced", "init"],
            env=full_env,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "presenced", "serve", "--port", str(port), *serve_args],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://localhost:{port}"
            wait_until_serving(url, process, log_path)
            yield LiveServer(url=url, env=full_env, process=process, log_path=log_path)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
