"""The machine and the code under test: CPU pinning, the file limit, a speed calibration,
and which presenced sources were measured."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import platform
import resource
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import presenced

CLIENT_CPU = 0
"""The load generators' core."""
SERVER_CPU = 1
"""The servers' core."""
ALL_CPUS = frozenset(os.sched_getaffinity(0))
"""The CPUs this process may use before it pins itself (the servers start from these)."""
PIN = {CLIENT_CPU, SERVER_CPU} <= ALL_CPUS
"""Pin the load generator and the server to a core each (needs CPUs 0 and 1)."""


def pinned(argv: list[str], cpus: str | None) -> list[str]:
    """``argv`` under ``taskset -c cpus`` when pinning is possible (cpus None: not pinned)."""
    if cpus is not None and PIN and shutil.which("taskset"):
        return ["taskset", "-c", cpus, *argv]
    return argv


def reset_affinity() -> None:
    """In a child before exec: undo this process's own pinning (taskset then narrows it)."""
    os.sched_setaffinity(0, ALL_CPUS)


@contextlib.contextmanager
def pinned_to_client_cpu() -> Iterator[list[int]]:
    """This process on the generators' core for the duration; yields the CPUs it may use."""
    before = os.sched_getaffinity(0)
    if PIN:
        os.sched_setaffinity(0, {CLIENT_CPU})
    try:
        yield sorted(os.sched_getaffinity(0))
    finally:
        os.sched_setaffinity(0, before)


def raise_nofile_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (each parked long-poll holds a socket)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def calibrate() -> float:
    """Milliseconds for a fixed piece of pure-Python work, best of 5: the machine's speed now.
    On a shared VM it drifts with the host's load; compare it across runs before the figures."""
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i * i % 7
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 2)


@dataclass(frozen=True)
class MachineInfo:
    nproc: str
    cpu_model: str
    memory: str
    python: str
    kernel: str
    pinning: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def machine() -> MachineInfo:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    free = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        text = subprocess.run(["free", "-h"], capture_output=True, text=True, timeout=10).stdout
        free = next((ln for ln in text.splitlines() if ln.startswith("Mem:")), "")
        free = " ".join(free.split())
    return MachineInfo(
        nproc=str(len(os.sched_getaffinity(0)) or os.cpu_count()),
        cpu_model=model,
        memory=free,
        python=platform.python_version(),
        kernel=platform.release(),
        pinning=(
            f"servers on CPU {SERVER_CPU}, generators on CPU {CLIENT_CPU} (taskset)"
            if PIN
            else "not pinned"
        ),
    )


@dataclass(frozen=True)
class SourceIdentity:
    """Which presenced was measured: the commit, uncommitted changes, a digest of the sources."""

    path: str
    commit: str | None
    uncommitted_files: int
    sources_sha256: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def source_identity() -> SourceIdentity:
    package = Path(presenced.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".yaml"):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())

    def git(*argv: str) -> str:
        try:
            done = subprocess.run(
                ["git", *argv], cwd=package, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    return SourceIdentity(
        path=str(package),
        commit=git("rev-parse", "--short", "HEAD") or None,
        uncommitted_files=len(git("status", "--porcelain", "--", ".").splitlines()),
        sources_sha256=digest.hexdigest()[:16],
    )
