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
            logger.warning("health check %r took more than %.1f s", name, self.timeout_secs)
            return False
        except Exception as exc:
            logger.warning("health check %r failed: %s", name, exc)
            return False
        return True
