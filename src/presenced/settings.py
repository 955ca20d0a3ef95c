"""One typed settings object, read once from a config file and the environment.

Every threshold has Zulip's default. Environment variables (``PRESENCED_<NAME>``) override the
optional TOML file named by ``PRESENCED_CONFIG_FILE`` (keys are the lower-case names).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "PRESENCED_"


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
POSITIVE_LIMITS = (
    "max_request_body_bytes",
    "max_header_bytes",
    "max_header_count",
    "header_timeout_secs",
    "body_timeout_secs",
    "keepalive_timeout_secs",
    "max_connections",
)
OTHER_VARIABLES = frozenset({ENV_PREFIX + "CONFIG_FILE"})
"""``PRESENCED_*`` variables that are not settings but are still understood."""


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///presenced.db"
    # PostgreSQL only: connections per process; how long a connect or a statement may take
    # before the request gets a 503 (the database is down or unreachable); and how long a call
    # may wait for a free connection of the pool (a burst larger than the pool queues).
    database_pool_size: int = 8
    database_timeout_secs: float = 3.0
    database_pool_timeout_secs: float = 10.0
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
    # Observability: the access log's format (text or json lines); Prometheus metrics at
    # /metrics for the listed client addresses (IPs or networks, comma-separated), or on a
    # port of their own (metrics_port > 0, bound to metrics_host) instead.
    log_format: str = "text"
    metrics_allow: str = "127.0.0.0/8,::1"
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    # Zulip lets a client ask for a queue that lives a week unpolled; this caps what
    # ``queue_lifespan_secs`` may ask for.
    event_queue_max_lifespan_secs: int = 86400
    # Registering past this many queues reclaims the user's idlest queue.
    event_queue_max_per_user: int = 50
    # Wrong API keys per client address: past this many in the window, 429 (0 = off). High
    # enough for a client's honest mistakes; a guesser goes from thousands a second to this.
    auth_failure_limit: int = 100
    auth_failure_window_secs: int = 60
    # ``presenced serve``.
    host: str = "127.0.0.1"
    port: int = 9991
    workers: int = 1
    log_level: str = "info"
    # Resource limits of the HTTP server (each refusal is a Zulip-style JSON error).
    max_request_body_bytes: int = 1_048_576
    max_header_bytes: int = 16_384
    """The request line and all header names and values together."""
    max_header_count: int = 100
    header_timeout_secs: float = 10.0
    """From connecting (or a request's first byte) to the end of its headers."""
    body_timeout_secs: float = 30.0
    """From the end of a request's headers to the end of its body."""
    keepalive_timeout_secs: int = 20
    """An idle connection between two requests is closed after this long."""
    max_connections: int = 16_000
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
        problem = postgresql_url_problem(self.database_url)
        if problem is not None:
            raise SettingsError(f"PRESENCED_DATABASE_URL is not a valid PostgreSQL URL: {problem}")
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
        if self.database_pool_timeout_secs <= 0:
            raise SettingsError("database_pool_timeout_secs must be positive")
        if self.external_uri_scheme not in ("http", "https"):
            raise SettingsError("external_uri_scheme must be http or https")
        if self.shutdown_timeout_secs <= 0:
            raise SettingsError("shutdown_timeout_secs must be positive")
        if self.health_check_timeout_secs <= 0:
            raise SettingsError("health_check_timeout_secs must be positive")
        if not self.product_name.strip():
            raise SettingsError("product_name must not be empty")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                "PRESENCED_REDIS_URL must start with redis://, rediss:// or unix://, "
                f"not {self.redis_url.split('://')[0]!r}"
            )
        if self.rate_limit_requests < 0 or self.rate_limit_window_secs <= 0:
            raise SettingsError("rate limit settings must be positive (requests 0 = off)")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"log_format must be text or json, not {self.log_format!r}")
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError("metrics_port must be between 0 (off) and 65535")
        if self.metrics_port and self.metrics_port == self.port:
            raise SettingsError(f"metrics_port must differ from port ({self.port})")
        try:
            for item in self.metrics_allow.split(","):
                if item.strip():
                    ipaddress.ip_network(item.strip(), strict=False)
        except ValueError as exc:
            raise SettingsError(f"metrics_allow: {exc}") from None
        for item in self.forwarded_allow_ips.split(","):
            if item.strip() and item.strip() != "*":
                try:
                    ipaddress.ip_network(item.strip(), strict=False)
                except ValueError as exc:
                    raise SettingsError(f"forwarded_allow_ips: {exc}") from None
        host = self.external_host
        if not host or "/" in host or any(c.isspace() for c in host):
            raise SettingsError(
                f"external_host must be a host name with an optional port, such as "
                f"presence.example.com or localhost:9991 (no scheme or path), not {host!r}"
            )
        if self.auth_failure_limit < 0 or self.auth_failure_window_secs <= 0:
            raise SettingsError(
                "auth_failure_limit must not be negative (0 = off) and "
                "auth_failure_window_secs must be positive"
            )
        if self.event_queue_max_lifespan_secs < self.event_queue_idle_timeout_secs:
            raise SettingsError(
                "event_queue_max_lifespan_secs must be at least event_queue_idle_timeout_secs"
            )
        if self.event_queue_max_per_user <= 0:
            raise SettingsError("event_queue_max_per_user must be positive")
        if not 0 < self.port < 65536:
            raise SettingsError(f"port must be between 1 and 65535, not {self.port}")
        if self.workers <= 0:
            raise SettingsError(f"workers must be positive, not {self.workers}")
        if self.log_level.lower() not in LOG_LEVELS:
            raise SettingsError(
                f"log_level must be one of {', '.join(LOG_LEVELS)}, not {self.log_level!r}"
            )
        for name in POSITIVE_LIMITS:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be positive, not {getattr(self, name)!r}")
        return self


def postgresql_url_problem(url: str) -> str | None:
    """What is wrong with a ``postgresql://`` URL's host and port part (the database driver
    would fail on it with a traceback), or None; other URLs are not looked at here."""
    if url.split("://", 1)[0] not in ("postgresql", "postgres"):
        return None
    try:
        hosts = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
    except ValueError as exc:
        return str(exc)
    if "," in hosts:  # libpq's host1,host2: the schema migrations cannot connect to those
        return "one host only, not several"
    port = hosts.rpartition("]")[2] if hosts.startswith("[") else hosts
    number = port.rsplit(":", 1)[1] if ":" in port else ""
    if number and not (number.isascii() and number.isdigit() and 0 < int(number) < 65536):
        return f"the port {number!r} is not a number from 1 to 65535"
    return None


def _coerce(name: str, raw: Any, kind: type) -> Any:
    """``raw`` (an environment string, or a TOML value of its own type) as a ``kind``.

    TOML values must already have the setting's type (an integer may stand for a number), so
    ``port = 1.5`` or ``workers = true`` is refused rather than truncated; numbers are finite.
    """
    if kind is int:
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise SettingsError(f"{name} must be an integer, not {raw!r}")
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, not {raw!r}") from None
    if kind is float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise SettingsError(f"{name} must be a number, not {raw!r}")
        try:
            value = float(raw)
        except (ValueError, OverflowError):
            raise SettingsError(f"{name} must be a number, not {raw!r}") from None
        if not math.isfinite(value):
            raise SettingsError(f"{name} must be a finite number, not {raw!r}")
        return value
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if not isinstance(raw, (int, str)):
            raise SettingsError(f"{name} must be true or false, not {raw!r}")
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, not {raw!r}")
    if not isinstance(raw, str):
        raise SettingsError(f"{name} must be a string, not {raw!r}")
    return raw


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


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """``PRESENCED_*`` environment variables that name no setting (likely typos)."""
    env = os.environ if environ is None else environ
    known = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)} | OTHER_VARIABLES
    return sorted(name for name in env if name.startswith(ENV_PREFIX) and name not in known)


def _field_type(field: dataclasses.Field[Any]) -> type:
    annotation = field.type
    if annotation in ("int", int):
        return int
    if annotation in ("bool", bool):
        return bool
    if annotation in ("float", float):
        return float
    return str
