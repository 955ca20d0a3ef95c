"""The rate limiter interface and its answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

RateLimitKey = int | str
"""A user id, or a string such as a client address for other limits."""


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


class RateLimiter(Protocol):
    """A sliding window: a request is allowed while fewer than ``limit`` requests by the same
    key fall in the last ``window`` seconds. Counted across processes where the backend is
    shared; a backend that cannot answer fails open (allows) and says so in the log."""

    limit: int
    window: float

    @property
    def enabled(self) -> bool: ...

    async def hit(self, key: RateLimitKey) -> RateLimitResult: ...

    async def forget_idle(self) -> None:
        """Drop state for keys with no request in the window, to bound memory."""
        ...
