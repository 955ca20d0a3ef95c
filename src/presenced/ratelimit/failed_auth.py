"""Throttling of failed authentication per client address, so key guessing costs the guesser.

After ``limit`` failures within ``window`` seconds from one address, that address gets
Zulip's rate-limit answer (429 with ``Retry-After``) on every authenticated request, right or
wrong, until the oldest failure leaves the window; the key is not even looked up. Successful
requests cost one dictionary lookup. With several processes, each tells the others of its
failures (the change feed's ``AuthenticationFailed``), so the count is the server's, not one
process's.
"""

from __future__ import annotations

import bisect

from presenced.clock import Clock


class FailedAuthThrottle:
    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, list[float]] = {}
        """The newest ``limit`` failure times of each address, oldest first."""

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def blocked_for(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: it may now)."""
        failures = self._failures.get(address)
        if failures is None or len(failures) < self.limit:
            return 0.0
        now = self._clock()
        while failures and failures[0] <= now - self.window:
            del failures[0]
        if len(failures) < self.limit:
            return 0.0
        return max(failures[0] + self.window - now, 0.0)

    def failed(self, address: str, at: float | None = None) -> float:
        """Count a failure (at ``at``: another process's; default now); returns its time."""
        when = self._clock() if at is None else at
        failures = self._failures.setdefault(address, [])
        bisect.insort(failures, when)  # another process's may arrive late
        del failures[: -self.limit]
        return when

    def forget_idle(self) -> None:
        """Drop addresses with no failure in the window, to bound memory."""
        cutoff = self._clock() - self.window
        for address in [a for a, log in self._failures.items() if not log or log[-1] <= cutoff]:
            del self._failures[address]
