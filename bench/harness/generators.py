"""The load-generator processes (bench/loadgen.py) and the line protocol they speak.

Each process gets a JSON spec (users, phases, the servers' base URLs) and answers, one line
per step: READY, then DONE <phase> after each GO <t0>, then RESULT <path>. A reader thread per
process turns its stdout into a queue, so one process's later lines wait for the next call.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.machine import CLIENT_CPU, pinned

BENCH_DIR = Path(__file__).resolve().parents[1]
REPO = BENCH_DIR.parent
LOADGEN = BENCH_DIR / "loadgen.py"


def share(total: int, p: int, procs: int) -> int:
    """Process p's share of ``total`` split over ``procs`` processes."""
    return total // procs + (1 if p < total % procs else 0)


class LoadGenerators:
    def __init__(self, specs: Sequence[dict[str, Any]], workdir: Path) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.lines: queue.Queue[tuple[int, str]] = queue.Queue()
        self.logs: list[Path] = []
        self.outputs: list[Path] = []
        self.backlog: list[list[str]] = [[] for _ in specs]
        for p, spec in enumerate(specs):
            output = workdir / f"loadgen-{p}.json"
            spec_path = workdir / f"loadgen-{p}-spec.json"
            spec_path.write_text(json.dumps({**spec, "out": str(output)}))
            log_path = workdir / f"loadgen-{p}.log"
            self.logs.append(log_path)
            self.outputs.append(output)
            argv = pinned([sys.executable, str(LOADGEN), str(spec_path)], str(CLIENT_CPU))
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    cwd=REPO,
                )
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(p, proc), daemon=True).start()

    def _read(self, p: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.put((p, line.rstrip("\n")))
        self.lines.put((p, "EOF"))

    def expect(self, word: str, timeout: float) -> list[str]:
        """The next line of every process, which must start with ``word``, within ``timeout``
        seconds (a process's later lines wait in its backlog for the next call)."""
        deadline = time.monotonic() + timeout
        got: dict[int, str] = {}
        while len(got) < len(self.procs):
            for p, backlog in enumerate(self.backlog):
                if p in got or not backlog:
                    continue
                line = backlog.pop(0)
                if not line.startswith(word):
                    tail = self.logs[p].read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"generator {p}: {line!r} instead of {word}:\n{tail}")
                got[p] = line
            if len(got) == len(self.procs):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"generators: no {word} within {timeout:.0f} s")
            with contextlib.suppress(queue.Empty):
                p, line = self.lines.get(timeout=left)
                self.backlog[p].append(line)
        return [got[p] for p in sorted(got)]

    def go(self, t0: float) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(f"GO {t0!r}\n")
            proc.stdin.flush()

    def results(self) -> list[dict[str, Any]]:
        """What each process wrote after RESULT."""
        return [json.loads(path.read_bytes()) for path in self.outputs]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    if proc.stdin is not None:
                        proc.stdin.close()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
