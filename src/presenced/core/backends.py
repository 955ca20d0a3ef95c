"""Plugs in the backends the settings ask for: the embedded set (SQLite, in-process events and
rate limits, no feed) or the shared one (PostgreSQL and Redis)."""

from __future__ import annotations

import asyncio
import contextlib

from presenced.clock import Clock
from presenced.core.server import Server
from presenced.events.base import EventSettings, EventSystem
from presenced.events.redis import RedisEventSystem
from presenced.events.system import InProcessEventSystem
from presenced.feed.base import ChangeFeed, DirectoryChanged, LocalChangeFeed
from presenced.feed.redis import RedisChangeFeed
from presenced.ratelimit.base import RateLimiter
from presenced.ratelimit.memory import InMemoryRateLimiter
from presenced.ratelimit.redis import RedisRateLimiter
from presenced.redislink import RedisLink
from presenced.settings import Settings, SettingsError
from presenced.store.base import Store
from presenced.store.factory import store_for


def event_settings(settings: Settings) -> EventSettings:
    return EventSettings(
        heartbeat_secs=settings.event_queue_heartbeat_secs,
        default_idle_timeout_secs=settings.event_queue_idle_timeout_secs,
        max_queues_per_user=settings.event_queue_max_per_user,
        activity_offset_secs=settings.presence_legacy_event_offset_for_activity_seconds,
    )


def build_server(settings: Settings, clock: Clock, store: Store | None = None) -> Server:
    feed: ChangeFeed
    rate_limiter: RateLimiter
    events: EventSystem
    if settings.redis_url:
        link = open_redis(settings)
        redis_feed = RedisChangeFeed(link)
        feed = redis_feed
        rate_limiter = RedisRateLimiter(
            link, settings.rate_limit_requests, settings.rate_limit_window_secs, clock
        )
        # Closed last (the app closes the feed, then the events), so it owns the link.
        events = RedisEventSystem(link, event_settings(settings), clock)
    else:
        redis_feed = None
        feed = LocalChangeFeed()
        rate_limiter = InMemoryRateLimiter(
            settings.rate_limit_requests, settings.rate_limit_window_secs, clock
        )
        events = InProcessEventSystem(event_settings(settings), clock)
    server = Server(
        settings=settings,
        store=store or store_for(settings),
        clock=clock,
        feed=feed,
        rate_limiter=rate_limiter,
        events=events,
    )
    if redis_feed is not None:
        redis_feed.resync = server.changes.check_store
        # Zulip's /health pings Redis too ("Cannot query redis").
        server.health.register("redis", link.check)
    return server


def open_redis(settings: Settings) -> RedisLink:
    """The Redis connection the settings name (``redis://``, ``rediss://``, ``unix://``)."""
    try:
        return RedisLink(settings.redis_url, settings.redis_key_prefix)
    except ValueError as exc:
        raise SettingsError(f"PRESENCED_REDIS_URL is not a Redis URL: {exc}") from None


async def announce_directory_change(settings: Settings) -> bool:
    """Tell every running server that the directory changed (the CLI, after a command that
    changes it); False if there is no Redis to tell, or it did not answer (the servers' own
    periodic store check then finds the change)."""
    if not settings.redis_url:
        return False
    link = open_redis(settings)
    try:
        return await RedisChangeFeed(link).send_now(DirectoryChanged())
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await link.close()
