"""Named health checks: the store's, and any service's that registers one (Redis, ...).

A check is an async callable that returns when its part can serve and raises otherwise. Checks
run concurrently, each bounded by a timeout, so that ``GET /health`` stays cheap enough to
poll every second and answers even when a part hangs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

logger = logging.getLogger("presenced.health")

Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HealthReport:
    failed: tuple[str, ...]
    """Names of the checks that raised or timed out, in registration order."""

    @property
    def healthy(self) -> bool:
        return not self.failed


class HealthChecks:
    def __init__(self, timeout_secs: float) -> None:
        self.timeout_secs = timeout_secs
        self._checks: dict[str, Check] = {}
        self._failing: set[str] = set()
        """Checks that failed last time: a failure is logged when it starts, not every poll."""

    def register(self, name: str, check: Check) -> None:
        """Add (or replace) the check called ``name``."""
        self._checks[name] = check

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._checks)

    async def run(self) -> HealthReport:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_one(name, self._checks[name]) for name in names))
        return HealthReport(tuple(name for name, ok in zip(names, results, strict=True) if not ok))

    async def _run_one(self, name: str, check: Check) -> bool:
        try:
            async with asyncio.timeout(self.timeout_secs):
                await check()
        except TimeoutError:
            self._failed(name, f"no answer within {self.timeout_secs:g} s")
            return False
        except Exception as exc:
            self._failed(name, str(exc) or type(exc).__name__)
            return False
        if name in self._failing:
            self._failing.discard(name)
            logger.info("health check %r passes again", name)
        return True

    def _failed(self, name: str, why: str) -> None:
        if name not in self._failing:
            self._failing.add(name)
            logger.warning("health check %r failed: %s", name, why)
