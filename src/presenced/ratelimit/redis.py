"""The sliding-window rate limit counted in Redis, so every process counts the same requests.

One round trip per request: a Lua script over a sorted set per key (one member per allowed
request, scored by its time) drops what left the window, counts, and admits or refuses. If
Redis cannot answer, the request is allowed (fail open) and a warning is logged, at most once
every few seconds.
"""

from __future__ import annotations

import itertools
import logging
import uuid

from presenced.clock import Clock
from presenced.ratelimit.base import RateLimitKey, RateLimitResult
from presenced.redislink import RedisError, RedisLink, ThrottledWarning

logger = logging.getLogger("presenced.ratelimit")

# KEYS[1]: the key's sorted set. ARGV: now, now - window, limit, a unique member, window (ms).
# Scores travel as strings both ways: Lua would print numbers with 14 digits only.
HIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  return {0, 0, first[2], last[2]}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1, tonumber(ARGV[3]) - count - 1}
"""


class RedisRateLimiter:
    def __init__(self, link: RedisLink, limit: int, window: float, clock: Clock) -> None:
        self.link = link
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hit = link.client.register_script(HIT)
        self._members = itertools.count()
        self._process = uuid.uuid4().hex[:12]
        self._warn = ThrottledWarning(logger)

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    async def hit(self, key: RateLimitKey) -> RateLimitResult:
        now = self._clock()
        allowed = RateLimitResult(True, self.limit - 1, now + self.window, 0.0)
        if not self.link.available:
            self._fail_open("Redis is unavailable")
            return allowed
        try:
            reply = await self._hit(
                keys=[self.link.key("rl", key)],
                args=[
                    repr(now),
                    repr(now - self.window),
                    self.limit,
                    f"{now!r}:{self._process}:{next(self._members)}",
                    max(1, int(self.window * 1000)),
                ],
            )
        except RedisError as exc:
            self.link.failed()
            self._fail_open(str(exc))
            return allowed
        if reply[0] == 1:
            return RateLimitResult(True, int(reply[1]), now + self.window, 0.0)
        first, last = float(reply[2]), float(reply[3])
        return RateLimitResult(False, 0, last + self.window, max(first + self.window - now, 0.0))

    def _fail_open(self, reason: str) -> None:
        self._warn("rate limiting is failing open (requests are allowed unchecked): %s", reason)

    async def forget_idle(self) -> None:
        """Nothing to do: each key expires in Redis a window after its last request."""
        return None

    async def check(self) -> None:
        await self.link.check()
