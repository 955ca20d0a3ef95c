"""One process's connection to Redis: the client, key names under the prefix, and a breaker.

The breaker makes an outage cheap: after a failure, callers are told at once that Redis is
unavailable (for ``retry_secs``) instead of each waiting on a connection attempt, so presence
requests that publish an event or hit the rate limiter do not slow down while Redis is away.
Once the pause is over, the next call tries again, so service comes back by itself.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

__all__ = ["RedisError", "RedisLink", "ThrottledWarning"]

CONNECT_TIMEOUT_SECS = 2.0
COMMAND_TIMEOUT_SECS = 5.0
"""Longer than any blocking read the event reader makes (2 s)."""


class RedisLink:
    def __init__(self, url: str, prefix: str, *, retry_secs: float = 1.0) -> None:
        self.url = url
        self.prefix = prefix
        self.retry_secs = retry_secs
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECS,
            socket_timeout=COMMAND_TIMEOUT_SECS,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=30,
        )
        self._down_until = 0.0

    def key(self, *parts: object) -> str:
        """A key under the deployment's prefix: ``key("q", queue_id)`` -> ``presenced:q:...``."""
        return self.prefix + ":".join(str(p) for p in parts)

    @property
    def available(self) -> bool:
        """False for a short while after a failure (callers then fail fast)."""
        return time.monotonic() >= self._down_until

    def failed(self) -> None:
        self._down_until = time.monotonic() + self.retry_secs

    def succeeded(self) -> None:
        self._down_until = 0.0

    async def check(self) -> None:
        """Raise ``RedisError`` if Redis does not answer a PING."""
        try:
            await self.client.ping()
        except RedisError:
            self.failed()
            raise
        self.succeeded()

    async def close(self) -> None:
        await self.client.aclose()


class ThrottledWarning:
    """A warning logged at most once per ``interval`` seconds (an outage hits every request),
    saying how many times it happened in between."""

    def __init__(self, logger: logging.Logger, interval: float = 30.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last = -float("inf")
        self._suppressed = 0

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._suppressed += 1
            return
        if self._suppressed:
            message += f" ({self._suppressed} more since the last warning)"
        self._last = now
        self._suppressed = 0
        self.logger.warning(message, *args)
