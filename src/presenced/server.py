"""The long-lived parts a running server shares: settings, store, clock, rate limiter."""

from __future__ import annotations

from dataclasses import dataclass, field

from presenced.api.ratelimit import RateLimiter
from presenced.clock import Clock
from presenced.settings import Settings
from presenced.store.base import Store


@dataclass
class Server:
    settings: Settings
    store: Store
    clock: Clock
    rate_limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.rate_limiter = RateLimiter(
            self.settings.rate_limit_requests, self.settings.rate_limit_window_secs, self.clock
        )
