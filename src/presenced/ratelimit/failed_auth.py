"""Throttling of failed authentication per client address, so key guessing costs the guesser.

After ``limit`` failures within ``window`` seconds from one address, that address gets
Zulip's rate-limit answer (429 with ``Retry-After``) on every authenticated request, right or
wrong, until the oldest failure leaves the window; the key is not even looked up. Successful
requests cost one dictionary lookup.
"""

from __future__ import annotations

from collections import deque

from presenced.clock import Clock


class FailedAuthThrottle:
    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

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
            failures.popleft()
        if len(failures) < self.limit:
            return 0.0
        return max(failures[0] + self.window - now, 0.0)

    def failed(self, address: str) -> None:
        failures = self._failures.setdefault(address, deque(maxlen=self.limit))
        failures.append(self._clock())

    def forget_idle(self) -> None:
        """Drop addresses with no failure in the window, to bound memory."""
        cutoff = self._clock() - self.window
        for address in [a for a, log in self._failures.items() if not log or log[-1] <= cutoff]:
            del self._failures[address]
