"""wrk (``/usr/bin/wrk``) against one URL: a Lua script that rotates over users' request
headers, and the figures wrk's ``done`` hook reports (requests, bytes read, latency)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.machine import CLIENT_CPU, pinned

WRK = "/usr/bin/wrk"
RESULT_PREFIX = "WRK_RESULT "

SCRIPT = """
-- Written by bench/harness/wrk.py. Every request is pre-formatted once per thread; each
-- request() hands out the next one, so the users take turns.
local method, path, body = %(method)s, %(path)s, %(body)s
local header_sets = %(header_sets)s
local requests = {}
local turn = 0

function init(args)
  for i, headers in ipairs(header_sets) do
    requests[i] = wrk.format(method, path, headers, body)
  end
end

function request()
  turn = turn %% #requests + 1
  return requests[turn]
end

function done(summary, latency, _requests)
  local e = summary.errors
  io.write(string.format(
    "%(prefix)s{\\"requests\\": %%d, \\"bytes\\": %%d, \\"duration_us\\": %%d, "
      .. "\\"connect_errors\\": %%d, \\"read_errors\\": %%d, \\"write_errors\\": %%d, "
      .. "\\"status_errors\\": %%d, \\"timeouts\\": %%d, \\"p50_us\\": %%d, \\"p99_us\\": %%d, "
      .. "\\"max_us\\": %%d}\\n",
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def _lua_headers(headers: Mapping[str, str]) -> str:
    return (
        "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()) + "}"
    )


def write_script(
    path: Path, method: str, url_path: str, body: str, header_sets: Sequence[Mapping[str, str]]
) -> Path:
    path.write_text(
        SCRIPT
        % {
            "method": _lua_string(method),
            "path": _lua_string(url_path),
            "body": _lua_string(body),
            "header_sets": "{" + ", ".join(_lua_headers(h) for h in header_sets) + "}",
            "prefix": RESULT_PREFIX,
        }
    )
    return path


@dataclass(frozen=True)
class WrkResult:
    requests: int
    bytes: int
    duration_s: float
    errors: int
    """Connect, read, write and timeout errors, and non-2xx/3xx answers."""
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def bytes_per_request(self) -> float:
        """Bytes read from the socket per response: status line, headers and body."""
        return self.bytes / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "requests_per_s": round(self.requests_per_s, 1),
            "bytes_per_request": round(self.bytes_per_request, 1),
        }


def available() -> bool:
    return shutil.which(WRK) is not None


def run_wrk(url: str, script: Path, connections: int, threads: int, duration_s: float) -> WrkResult:
    """One wrk run, pinned to the generators' core."""
    argv = [WRK, "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s"]
    argv += ["-s", str(script), url]
    done = subprocess.run(
        pinned(argv, str(CLIENT_CPU)),
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
    )
    match = re.search(re.escape(RESULT_PREFIX) + r"(\{.*\})", done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr}")
    data = json.loads(match.group(1))
    errors = sum(
        data[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return WrkResult(
        requests=data["requests"],
        bytes=data["bytes"],
        duration_s=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )
