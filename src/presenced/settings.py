"""One typed settings object, read once from a config file and the environment.

Every threshold has Zulip's default. Environment variables (``PRESENCED_<NAME>``) override the
optional TOML file named by ``PRESENCED_CONFIG_FILE`` (keys are the lower-case names).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "PRESENCED_"


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///presenced.db"
    # PostgreSQL only: connections per process, and how long a connect or a statement may
    # take before the request gets a 503 (the database is down or unreachable).
    database_pool_size: int = 8
    database_timeout_secs: float = 3.0
    external_host: str = "localhost:9991"
    # The scheme clients reach the server with (Zulip's EXTERNAL_URI_SCHEME): "https" behind a
    # TLS proxy. It goes into the zuliprc files the CLI writes; requests themselves take theirs
    # from the proxy's X-Forwarded-Proto (see forwarded_allow_ips).
    external_uri_scheme: str = "http"
    presence_ping_interval_secs: int = 60
    offline_threshold_secs: int = 200
    presence_update_min_freq_seconds: int = 55
    presence_history_days_default: int = 14
    presence_legacy_event_offset_for_activity_seconds: int = 70
    # Zulip's default rule "api_by_user": 200 requests per 60 seconds; 0 turns it off.
    rate_limit_requests: int = 200
    rate_limit_window_secs: int = 60
    realm_name_default: str = "presenced"
    # The product's name in the prose of the API documentation (never in code or identifiers).
    product_name: str = "presenced"
    # Zulip's CAN_ACCESS_ALL_USERS_GROUP_LIMITS_PRESENCE: limit guests' presence data and events
    # to the users they may see (off by default, as in Zulip).
    can_access_all_users_group_limits_presence: bool = False
    # Event queues (Zulip: heartbeat after 45 s of silence, queues kept 10 minutes unpolled).
    event_queue_heartbeat_secs: float = 45.0
    event_queue_idle_timeout_secs: int = 600
    event_queue_longpoll_timeout_secs: int = 90
    # Several processes: Redis carries change notices, event queues and rate-limit counters.
    redis_url: str = ""
    redis_key_prefix: str = "presenced:"
    # How often each process checks the store for changes it was not told of (the fallback
    # behind the change feed: a lost notice delays a change by at most this long).
    change_poll_interval_secs: float = 1.0
    # new_user_input: extensions of a user's activity interval are written together, at most
    # this long after they were reported (0: one write per report, as Zulip does).
    activity_interval_flush_secs: float = 30.0
    # Shutdown: parked long-polls are answered at once; other requests in flight get this long.
    shutdown_timeout_secs: float = 10.0
    # Behind a reverse proxy: the addresses whose X-Forwarded-For/-Proto headers are believed
    # (uvicorn's forwarded_allow_ips: comma-separated addresses or networks, or "*").
    forwarded_allow_ips: str = "127.0.0.1"
    # GET /health: each check (store, services) must answer within this many seconds.
    health_check_timeout_secs: float = 2.0

    @property
    def became_online_threshold_secs(self) -> int:
        """An active report makes a user 'become online' when the last one is older than this."""
        return self.offline_threshold_secs - self.presence_ping_interval_secs - 10

    @property
    def invisible_backdate_secs(self) -> int:
        """How far going invisible back-dates a user's presence (Zulip: 200 + 55 + 10)."""
        return self.offline_threshold_secs + self.presence_update_min_freq_seconds + 10

    def validate(self) -> Settings:
        if self.presence_ping_interval_secs <= 0:
            raise SettingsError("presence_ping_interval_secs must be positive")
        if 3 * self.presence_ping_interval_secs + 20 > self.offline_threshold_secs:
            raise SettingsError(
                "offline_threshold_secs must be at least 3 * presence_ping_interval_secs + 20"
            )
        if self.presence_update_min_freq_seconds < 0:
            raise SettingsError("presence_update_min_freq_seconds must not be negative")
        if self.presence_history_days_default < 0:
            raise SettingsError("presence_history_days_default must not be negative")
        if not 0 < self.event_queue_heartbeat_secs < self.event_queue_longpoll_timeout_secs:
            raise SettingsError(
                "event_queue_heartbeat_secs must be positive and below the long-poll timeout"
            )
        if self.event_queue_idle_timeout_secs <= 0:
            raise SettingsError("event_queue_idle_timeout_secs must be positive")
        if not 0 <= self.activity_interval_flush_secs <= 60:
            raise SettingsError("activity_interval_flush_secs must be between 0 and 60")
        if self.change_poll_interval_secs <= 0:
            raise SettingsError("change_poll_interval_secs must be positive")
        if self.database_pool_size <= 0:
            raise SettingsError("database_pool_size must be positive")
        if self.database_timeout_secs <= 0:
            raise SettingsError("database_timeout_secs must be positive")
        if self.external_uri_scheme not in ("http", "https"):
            raise SettingsError("external_uri_scheme must be http or https")
        if self.shutdown_timeout_secs <= 0:
            raise SettingsError("shutdown_timeout_secs must be positive")
        if self.health_check_timeout_secs <= 0:
            raise SettingsError("health_check_timeout_secs must be positive")
        if not self.product_name.strip():
            raise SettingsError("product_name must not be empty")
        if self.rate_limit_requests < 0 or self.rate_limit_window_secs <= 0:
            raise SettingsError("rate limit settings must be positive (requests 0 = off)")
        return self


def _coerce(name: str, raw: Any, kind: type) -> Any:
    if kind is int:
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{name} must be an integer, not {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, not {raw!r}")
    return str(raw)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings from the config file, the environment, then explicit overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    kinds = {f.name: _field_type(f) for f in dataclasses.fields(Settings)}
    config_file = env.get(ENV_PREFIX + "CONFIG_FILE")
    if config_file:
        try:
            with open(config_file, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config file {config_file}: {exc}") from None
        for key, raw in data.items():
            if key not in kinds:
                raise SettingsError(f"unknown setting {key!r} in {config_file}")
            values[key] = _coerce(key, raw, kinds[key])
    for name, kind in kinds.items():
        raw_env = env.get(ENV_PREFIX + name.upper())
        if raw_env is not None and raw_env != "":
            values[name] = _coerce(ENV_PREFIX + name.upper(), raw_env, kind)
    values.update(overrides)
    return Settings(**values).validate()


def _field_type(field: dataclasses.Field[Any]) -> type:
    annotation = field.type
    if annotation in ("int", int):
        return int
    if annotation in ("bool", bool):
        return bool
    if annotation in ("float", float):
        return float
    return str
