"""Zulip's per-user API rate limit ("api_by_user": 200 requests per 60 s), in memory.

A sliding log: a request is allowed while fewer than ``limit`` requests fall in the last
``window`` seconds. Responses carry X-RateLimit-Limit/-Remaining/-Reset like Zulip's.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from presenced.clock import Clock


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    allowed: bool
    remaining: int
    reset_at: float
    retry_after: float

    def headers(self, limit: int) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(int(self.reset_at)),
        }

    def encoded_headers(self, limit: int) -> list[tuple[bytes, bytes]]:
        """The same headers, as ASGI sends them."""
        return [
            (b"x-ratelimit-limit", b"%d" % limit),
            (b"x-ratelimit-remaining", b"%d" % self.remaining),
            (b"x-ratelimit-reset", b"%d" % int(self.reset_at)),
        ]


class RateLimiter:
    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._log: dict[int, deque[float]] = {}

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def hit(self, user_id: int) -> RateLimitResult:
        now = self._clock()
        log = self._log.setdefault(user_id, deque())
        while log and log[0] <= now - self.window:
            log.popleft()
        if len(log) >= self.limit:
            free_at = log[0] + self.window
            return RateLimitResult(False, 0, log[-1] + self.window, max(free_at - now, 0.0))
        log.append(now)
        return RateLimitResult(True, self.limit - len(log), now + self.window, 0.0)

    def forget_idle(self) -> None:
        """Drop users with no request in the window, to bound memory."""
        cutoff = self._clock() - self.window
        for user_id in [u for u, log in self._log.items() if not log or log[-1] <= cutoff]:
            del self._log[user_id]
