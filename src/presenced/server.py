"""The long-lived parts a running server shares: settings, store, clock, caches, events."""

from __future__ import annotations

from dataclasses import dataclass, field

from presenced.api.auth_throttle import FailedAuthThrottle
from presenced.api.ratelimit import RateLimiter
from presenced.clock import Clock
from presenced.directory import Directory
from presenced.events.changes import Change, PresenceChange, UserSettingsChange
from presenced.events.queue import EventQueue
from presenced.events.system import EventSettings, InProcessEventSystem
from presenced.indexes import PresenceIndexes
from presenced.settings import Settings
from presenced.store.base import Store


@dataclass
class Server:
    settings: Settings
    store: Store
    clock: Clock
    rate_limiter: RateLimiter = field(init=False)
    auth_throttle: FailedAuthThrottle = field(init=False)
    directory: Directory = field(init=False)
    indexes: PresenceIndexes = field(init=False)
    events: InProcessEventSystem = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        self.rate_limiter = RateLimiter(
            settings.rate_limit_requests, settings.rate_limit_window_secs, self.clock
        )
        self.auth_throttle = FailedAuthThrottle(
            settings.auth_failure_limit, settings.auth_failure_window_secs, self.clock
        )
        self.directory = Directory(self.store)
        self.indexes = PresenceIndexes(self.store, settings, self.directory)
        self.events = InProcessEventSystem(
            EventSettings(
                heartbeat_secs=settings.event_queue_heartbeat_secs,
                default_idle_timeout_secs=settings.event_queue_idle_timeout_secs,
                max_queues_per_user=settings.event_queue_max_per_user,
                activity_offset_secs=settings.presence_legacy_event_offset_for_activity_seconds,
            ),
            self.clock,
            self.may_see,
        )

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
