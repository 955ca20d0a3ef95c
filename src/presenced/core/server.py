"""The long-lived parts a running server shares: settings, store, clock, caches, events.

Every backend is held through its interface (store, change feed, event system, rate limiter),
so the embedded and the shared (PostgreSQL + Redis) deployments differ only in what
``open_backends`` (``core/backends.py``) plugs in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from presenced.clock import Clock
from presenced.core.activity import ActivityIntervals
from presenced.core.changes import ChangeTracker
from presenced.core.directory import Directory
from presenced.core.indexes import PresenceIndexes
from presenced.events.base import EventSystem
from presenced.events.changes import Change, PresenceChange, UserSettingsChange
from presenced.events.queue import EventQueue
from presenced.feed.base import ChangeFeed
from presenced.health import HealthChecks
from presenced.ratelimit.base import RateLimiter
from presenced.ratelimit.failed_auth import FailedAuthThrottle
from presenced.settings import Settings
from presenced.store.base import Store


@dataclass
class Server:
    settings: Settings
    store: Store
    clock: Clock
    feed: ChangeFeed
    rate_limiter: RateLimiter
    events: EventSystem
    auth_throttle: FailedAuthThrottle = field(init=False)
    directory: Directory = field(init=False)
    indexes: PresenceIndexes = field(init=False)
    changes: ChangeTracker = field(init=False)
    activity: ActivityIntervals = field(init=False)
    health: HealthChecks = field(init=False)
    """Named checks behind ``GET /health``; services (Redis, ...) register their own."""

    def __post_init__(self) -> None:
        settings = self.settings
        self.auth_throttle = FailedAuthThrottle(
            settings.auth_failure_limit, settings.auth_failure_window_secs, self.clock
        )
        self.directory = Directory(self.store)
        self.indexes = PresenceIndexes(self.store, settings, self.directory)
        self.changes = ChangeTracker(
            self.store,
            self.feed,
            self.directory,
            self.indexes,
            settings.change_poll_interval_secs,
            self.auth_throttle,
        )
        self.activity = ActivityIntervals(self.store, settings.activity_interval_flush_secs)
        self.events.set_visibility(self.may_see)
        self.health = HealthChecks(settings.health_check_timeout_secs)
        self.health.register("store", self.store.ping)

    @property
    def limits_presence(self) -> bool:
        return self.settings.can_access_all_users_group_limits_presence

    def may_see(self, queue: EventQueue, change: Change) -> bool:
        """Whether a queue's user may be told of a change (invariant 1).

        Presence follows guests' access limits only when the server setting says so; user
        status always does, as in Zulip. Fails closed if the realm's rules are not loaded
        (the events view loads them before reading a queue).
        """
        if isinstance(change, UserSettingsChange):
            return change.user_id == queue.user_id
        if isinstance(change, PresenceChange) and not self.limits_presence:
            return True
        access = self.directory.cached_access(queue.realm_id)
        return access is not None and access.can_access(queue.user_id, change.user_id)
