"""``presenced serve`` processes for a benchmark, answering together as one server.

With ``workers > 1`` there are two ways, chosen by ``workers_mode``:

- ``flag``: one ``presenced serve --workers N`` (N processes on one port);
- ``processes``: N ``presenced serve`` processes on N ports; the load generator sends each
  request to the next port in turn (its own round robin);
- ``auto`` (the default): ``flag`` if ``presenced serve --help`` offers ``--workers`` and the
  servers get Redis (serve refuses ``--workers N`` without it), else ``processes``.

Server figures are sums over every process: each started process and, for ``--workers``,
the workers below it (found in /proc at each reading, so respawned workers count too).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from harness.machine import SERVER_CPU, pinned, raise_nofile_limit, reset_affinity
from harness.procfs import (
    Snapshot,
    cpu_seconds,
    descendants,
    memory_kib,
    process_cpu,
    snapshot,
)

HOST = "127.0.0.1"
WORKERS_MODES = ("auto", "flag", "processes")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@functools.cache
def serve_supports_workers() -> bool:
    """Whether this presenced's ``serve`` takes ``--workers``."""
    done = subprocess.run(
        [sys.executable, "-m", "presenced", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return "--workers" in done.stdout


@dataclass(frozen=True)
class ServerOptions:
    workers: int = 1
    workers_mode: str = "auto"
    log_level: str | None = "warning"
    """``--log-level``; None: serve's default (info, with the access log)."""
    cpus: str | None = str(SERVER_CPU)
    """taskset CPU list for the servers; None: not pinned."""
    env: Mapping[str, str] = field(default_factory=dict)
    """PRESENCED_* settings (the database URL, ...); other PRESENCED_* variables are dropped."""
    pythonpath: Sequence[str] = ()
    raise_nofile: bool = False
    """Raise the servers' soft file limit to the hard limit (many parked long-polls)."""

    def resolved_mode(self) -> str:
        if self.workers == 1:
            return "single"
        if self.workers_mode == "auto":
            # serve refuses --workers N > 1 without shared state (Redis): N separate
            # processes on one SQLite file still share the store, so fall back to those.
            shared = "PRESENCED_REDIS_URL" in self.env
            return "flag" if shared and serve_supports_workers() else "processes"
        return self.workers_mode


def server_env(options: ServerOptions) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    env.update(options.env)
    if options.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([*options.pythonpath, env.get("PYTHONPATH", "")])
    return env


def _child_setup(raise_nofile: bool) -> Callable[[], None]:
    def setup() -> None:
        if raise_nofile:
            raise_nofile_limit()
        reset_affinity()

    return setup


class ServerGroup:
    """The started processes, their ports and logs; stop() ends them (also on errors)."""

    def __init__(self, options: ServerOptions, workdir: Path) -> None:
        self.options = options
        self.mode = options.resolved_mode()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self.logs: list[Path] = []
        self.argvs: list[list[str]] = []
        count = options.workers if self.mode == "processes" else 1
        env = server_env(options)
        try:
            for i in range(count):
                port = free_port()
                argv = [sys.executable, "-m", "presenced", "serve", "--host", HOST]
                argv += ["--port", str(port)]
                if options.log_level is not None:
                    argv += ["--log-level", options.log_level]
                if self.mode == "flag":
                    argv += ["--workers", str(options.workers)]
                argv = pinned(argv, options.cpus)
                log_path = workdir / ("server.log" if count == 1 else f"server-{i}.log")
                with log_path.open("wb") as log:
                    proc = subprocess.Popen(
                        argv,
                        cwd=workdir,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        preexec_fn=_child_setup(options.raise_nofile),
                    )
                self.procs.append(proc)
                self.ports.append(port)
                self.logs.append(log_path)
                self.argvs.append(argv)
        except BaseException:
            self.stop()
            raise

    @property
    def base_urls(self) -> list[str]:
        return [f"http://{HOST}:{port}" for port in self.ports]

    @property
    def base_url(self) -> str:
        """The first process's URL (for the checks, which need no round robin)."""
        return self.base_urls[0]

    def pids(self) -> list[int]:
        """Every live server process: the started ones and their workers."""
        live = [proc.pid for proc in self.procs if proc.poll() is None]
        if self.mode != "flag":
            return live  # no workers below them: no need to walk /proc
        found: list[int] = []
        for pid in live:
            found.extend(descendants(pid))
        return found

    def snapshot(self) -> Snapshot:
        return snapshot(self.pids())

    def cpu_seconds(self) -> float:
        """CPU seconds of every server process, to the nanosecond where the kernel offers it."""
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(OSError, ValueError):
                total += cpu_seconds(pid)
        return total

    def process_cpu(self) -> tuple[float, float]:
        """(user, system) CPU seconds summed over every server process."""
        user = system = 0.0
        for pid in self.pids():
            with contextlib.suppress(OSError, ValueError):
                u, s = process_cpu(pid)
                user += u
                system += s
        return user, system

    def rss_kib(self) -> int:
        """VmRSS summed over every server process."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError, ValueError):
                total += memory_kib(pid)[0]
        return total

    def check_running(self) -> None:
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-1500:].strip()
                raise RuntimeError(
                    f"the server exited with status {proc.returncode}; its log ends:\n{tail}"
                )

    async def wait_ready(self, limit: float = 60.0) -> float:
        """Seconds until every port answers GET /api/v1/server_settings (and, with --workers,
        until all N workers are up)."""
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for base in self.base_urls:
                while True:
                    self.check_running()
                    if time.perf_counter() - started > limit:
                        raise RuntimeError(
                            f"the server did not answer /api/v1/server_settings within {limit} s"
                        )
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        async with session.get(base + "/api/v1/server_settings") as resp:
                            if resp.status == 200:
                                await resp.read()
                                break
                    await asyncio.sleep(0.1)
        if self.mode == "flag":
            while len(self.pids()) < self.options.workers + 1:
                if time.perf_counter() - started > limit:
                    break
                await asyncio.sleep(0.1)
        return time.perf_counter() - started

    def wait_idle(self, limit: float = 60.0) -> float:
        """Until the servers' CPU time stops moving (stragglers of cancelled requests done)."""
        started = time.monotonic()
        last = self.snapshot().cpu_s
        quiet = 0
        while time.monotonic() - started < limit and quiet < 2:
            time.sleep(0.5)
            now = self.snapshot().cpu_s
            quiet = quiet + 1 if now - last <= 0.02 else 0
            last = now
        return time.monotonic() - started

    def stop(self) -> list[str]:
        """SIGTERM, then SIGKILL after 10 s; how each process ended."""
        return [stop_process(proc) for proc in self.procs]


def stop_process(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is not None:
        return f"had already exited with status {proc.returncode}"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "killed: still running 10 s after SIGTERM"
    if proc.returncode == -signal.SIGTERM:
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        return "stopped on SIGTERM (status -15: uvicorn re-raises it after shutting down)"
    return f"exited with status {proc.returncode} after SIGTERM"
