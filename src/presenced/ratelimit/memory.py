"""The rate limiter of a single process: a sliding log per key, in memory."""

from __future__ import annotations

from collections import deque

from presenced.clock import Clock
from presenced.ratelimit.base import RateLimitKey, RateLimitResult


class InMemoryRateLimiter:
    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._log: dict[RateLimitKey, deque[float]] = {}

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    async def hit(self, key: RateLimitKey) -> RateLimitResult:
        now = self._clock()
        log = self._log.get(key)
        if log is None:
            log = self._log[key] = deque()
        while log and log[0] <= now - self.window:
            log.popleft()
        if len(log) >= self.limit:
            free_at = log[0] + self.window
            return RateLimitResult(False, 0, log[-1] + self.window, max(free_at - now, 0.0))
        log.append(now)
        return RateLimitResult(True, self.limit - len(log), now + self.window, 0.0)

    async def forget_idle(self) -> None:
        cutoff = self._clock() - self.window
        for key in [k for k, log in self._log.items() if not log or log[-1] <= cutoff]:
            del self._log[key]
