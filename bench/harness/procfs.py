"""Readings from /proc: process CPU time and memory, per-CPU busy time, TCP socket states.

Every function reads the kernel's counters once; callers take two readings and subtract.
Figures for several server processes (``--workers N``, or N separate servers) are sums.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, all its threads, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # utime, stime (14, 15)


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process in seconds (clock-tick resolution)."""
    user, system = process_cpu(pid)
    return user + system


def cpu_seconds(pid: int) -> float:
    """CPU seconds a process has run, all threads, to the nanosecond (schedstat) where the
    kernel offers it, else in clock ticks (utime + stime)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return sum(process_cpu(pid))
    return total / 1e9


def memory_kib(pid: int | str = "self") -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc/<pid>/status."""
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size from /proc/<pid>/status, in KiB."""
    rss, _hwm = memory_kib(pid)
    if not rss:
        raise RuntimeError(f"no VmRSS for {pid}")
    return rss


def allowed_cpus(pid: int) -> str:
    """The process's Cpus_allowed_list (what taskset / sched_setaffinity left it)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return "?"


def descendants(pid: int) -> list[int]:
    """The process and every live process below it (uvicorn's workers under its supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_jiffies() -> dict[str, list[int]]:
    """Per-CPU jiffies from /proc/stat: user nice system idle iowait irq softirq steal."""
    result = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            result[name] = [int(v) for v in values[:8]]  # guest time is already in user
    return result


def cpu_busy(before: dict[str, list[int]], after: dict[str, list[int]]) -> dict[str, float]:
    """Fraction of each CPU that was busy (not idle or iowait) between two readings."""
    busy = {}
    for name, now in after.items():
        delta = [b - a for a, b in zip(before.get(name, now), now, strict=True)]
        total = sum(delta)
        busy[name] = round((total - delta[3] - delta[4]) / total, 3) if total else 0.0
    return busy


@dataclass(frozen=True)
class CpuKinds:
    """Seconds of each kind of CPU time over all CPUs between two /proc/stat readings."""

    user: float
    system: float
    irq_softirq: float
    steal: float


def cpu_kinds(before: dict[str, list[int]], after: dict[str, list[int]]) -> CpuKinds:
    delta = [0] * 8
    for name, now in after.items():
        for i, (a, b) in enumerate(zip(before.get(name, now), now, strict=True)):
            delta[i] += b - a
    return CpuKinds(
        user=(delta[0] + delta[1]) / CLK_TCK,
        system=delta[2] / CLK_TCK,
        irq_softirq=(delta[5] + delta[6]) / CLK_TCK,
        steal=delta[7] / CLK_TCK,
    )


def loadavg() -> list[str]:
    """The 1, 5 and 15 minute load averages."""
    return Path("/proc/loadavg").read_text().split()[:3]


def tcp_server_state(ports: Iterable[int]) -> tuple[int, int]:
    """(accept-queue length of the listening sockets, ESTABLISHED sockets) on these ports."""
    wanted = set(ports)
    backlog = established = 0
    with open("/proc/net/tcp") as fh:
        next(fh)
        for line in fh:
            parts = line.split()
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            if local_port not in wanted:
                continue
            if parts[3] == "0A":  # LISTEN: rx_queue is the accept backlog
                backlog += int(parts[4].split(":")[1], 16)
            elif parts[3] == "01":
                established += 1
    return backlog, established


@dataclass(frozen=True)
class Snapshot:
    """Server processes' CPU and memory, and every CPU's jiffies, at one moment."""

    at: float
    cpu_s: float
    """utime + stime summed over the processes: clock ticks, but complete (threads that have
    exited still count, which schedstat's per-thread figures would miss)."""
    rss_kib: int
    """VmRSS summed over the processes."""
    hwm_kib: int
    """VmHWM summed over the processes (an upper bound on their joint peak)."""
    cpus: dict[str, list[int]]
    processes: int


def snapshot(pids: Sequence[int]) -> Snapshot:
    cpu = 0.0
    rss = hwm = 0
    counted = 0
    for pid in pids:
        try:
            cpu += proc_cpu_s(pid)
            r, h = memory_kib(pid)
        except (OSError, ValueError):
            continue  # a worker that just exited
        rss += r
        hwm += h
        counted += 1
    return Snapshot(time.monotonic(), cpu, rss, hwm, cpu_jiffies(), counted)


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """utime + stime of each process that still exists."""
    result = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            result[pid] = proc_cpu_s(pid)
    return result


def cpu_growth(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the processes of ``after`` used since ``before`` (a process that started in
    between counts from zero)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
