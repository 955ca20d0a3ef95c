"""What the servers wrote to their logs: warnings, errors, tracebacks and GC records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

GC_PREFIX = "presenced-gc "
"""Lines bench/server_gc_trace/sitecustomize.py writes, one JSON record each."""
GC_TRACE_DIR = Path(__file__).resolve().parents[1] / "server_gc_trace"


@dataclass(frozen=True)
class LogScan:
    lines: int
    tracebacks: int
    flagged_lines: int
    first: list[str]
    """The first noteworthy lines (or the first lines, if none is)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


FLAG_WORDS = ("Traceback", "ERROR", "Error", "Exception", "WARNING", "CRITICAL")


def read_lines(paths: Sequence[Path]) -> list[str]:
    lines: list[str] = []
    for path in paths:
        try:
            lines.extend(path.read_text(errors="replace").splitlines())
        except OSError:
            continue
    return lines


def scan_logs(paths: Sequence[Path]) -> tuple[LogScan, list[dict[str, Any]]]:
    """The servers' log lines (GC records apart) and the GC records."""
    collections: list[dict[str, Any]] = []
    other: list[str] = []
    for line in read_lines(paths):
        if line.startswith(GC_PREFIX):
            collections.append(json.loads(line[len(GC_PREFIX) :]))
        else:
            other.append(line)
    flagged = [line for line in other if any(word in line for word in FLAG_WORDS)]
    scan = LogScan(
        lines=len(other),
        tracebacks=sum("Traceback" in line for line in other),
        flagged_lines=len(flagged),
        first=flagged[:20] or other[:5],
    )
    return scan, collections
