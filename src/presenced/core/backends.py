"""Plugs in the backends the settings ask for: the embedded set (SQLite, in-process events and
rate limits, no feed) or the shared one (PostgreSQL and Redis)."""

from __future__ import annotations

from presenced.clock import Clock
from presenced.core.server import Server
from presenced.events.base import EventSettings, EventSystem
from presenced.events.system import InProcessEventSystem
from presenced.feed.base import ChangeFeed, LocalChangeFeed
from presenced.ratelimit.base import RateLimiter
from presenced.ratelimit.memory import InMemoryRateLimiter
from presenced.settings import Settings, SettingsError
from presenced.store.base import Store
from presenced.store.factory import store_for


def event_settings(settings: Settings) -> EventSettings:
    return EventSettings(
        heartbeat_secs=settings.event_queue_heartbeat_secs,
        default_idle_timeout_secs=settings.event_queue_idle_timeout_secs,
        activity_offset_secs=settings.presence_legacy_event_offset_for_activity_seconds,
    )


def build_server(settings: Settings, clock: Clock, store: Store | None = None) -> Server:
    feed: ChangeFeed
    rate_limiter: RateLimiter
    events: EventSystem
    if settings.redis_url:
        raise SettingsError("PRESENCED_REDIS_URL is set, but this build has no Redis backend")
    feed = LocalChangeFeed()
    rate_limiter = InMemoryRateLimiter(
        settings.rate_limit_requests, settings.rate_limit_window_secs, clock
    )
    events = InProcessEventSystem(event_settings(settings), clock)
    return Server(
        settings=settings,
        store=store or store_for(settings),
        clock=clock,
        feed=feed,
        rate_limiter=rate_limiter,
        events=events,
    )
