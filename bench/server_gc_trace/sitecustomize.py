"""Logs the server's garbage collections, for ``events_fanout.py --trace-server-gc``.

The benchmark puts this directory on the server's PYTHONPATH; Python imports
``sitecustomize`` at startup. Each collection becomes one stderr line:
``presenced-gc {"gen": 2, "ms": 212.0, "collected": 0, "t": <unix time at the end>}``;
generation-0 collections only if they took 1 ms or more. Only ``presenced serve`` is traced.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from typing import Any

PREFIX = "presenced-gc "


def _install() -> None:
    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        elapsed_ms = (time.perf_counter() - started[0]) * 1000
        if info["generation"] == 0 and elapsed_ms < 1.0:
            return  # young collections are many and short: only the slow ones are logged
        record = {
            "gen": info["generation"],
            "ms": round(elapsed_ms, 2),
            "collected": info["collected"],
            "t": round(time.time(), 4),
        }
        sys.stderr.write(PREFIX + json.dumps(record) + "\n")
        sys.stderr.flush()

    gc.callbacks.append(callback)


if "presenced" in sys.orig_argv and "serve" in sys.orig_argv:
    _install()
