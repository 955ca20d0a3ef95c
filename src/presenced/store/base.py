"""The store interface and the plain records it hands upward.

Everything above this package sees only these types; no backend detail leaks out. Times are
UNIX seconds as floats (Zulip keeps microsecond datetimes; float seconds keep that precision).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


class Role(enum.IntEnum):
    """Zulip's role values, as sent in the ``role`` field of user objects."""

    OWNER = 100
    ADMINISTRATOR = 200
    MODERATOR = 300
    MEMBER = 400
    GUEST = 600


class BotType(enum.IntEnum):
    """Zulip's bot types, as sent in the ``bot_type`` field of user objects."""

    GENERIC = 1
    INCOMING_WEBHOOK = 2
    OUTGOING_WEBHOOK = 3
    EMBEDDED = 4


@dataclass(frozen=True, slots=True)
class Realm:
    id: int
    subdomain: str
    name: str
    deactivated: bool
    presence_disabled: bool
    date_created: float
    can_access_all_users_group: str = "everyone"
    """Who may see every user: "everyone", or "members" (guests see only whom they share a
    channel with, when the server limits presence by it)."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    realm_id: int
    email: str
    """The Zulip API email: what presence listings and ``/users/{email}`` use."""
    delivery_email: str
    """The login email: what HTTP Basic authentication takes."""
    full_name: str
    role: Role
    bot_type: BotType | None
    bot_owner_id: int | None
    is_active: bool
    date_joined: float
    presence_enabled: bool
    timezone: str

    @property
    def is_bot(self) -> bool:
        return self.bot_type is not None


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: int
    user_id: int
    label: str
    prefix: str
    """The first characters of the key, enough to tell keys apart in a listing."""
    created_at: float


@dataclass(frozen=True, slots=True)
class Channel:
    id: int
    realm_id: int
    name: str
    description: str
    date_created: float


@dataclass(frozen=True, slots=True)
class UserStatus:
    user_id: int
    status_text: str
    emoji_name: str
    emoji_code: str
    reaction_type: str


@dataclass(frozen=True, slots=True)
class PresenceTimes:
    last_active_time: float | None
    last_connected_time: float | None


@dataclass(frozen=True, slots=True)
class PresenceRow:
    user_id: int
    last_active_time: float | None
    last_connected_time: float | None
    last_update_id: int


@dataclass(frozen=True, slots=True)
class RealmPresenceRow:
    """A presence row with what the formats need of its user."""

    user_id: int
    email: str
    date_joined: float
    last_active_time: float | None
    last_connected_time: float | None
    last_update_id: int


@dataclass(frozen=True, slots=True)
class PresenceWrite:
    """What a presence rule decided for one report: the new times, or no write."""

    times: PresenceTimes
    write: bool
    became_online: bool


PresenceRule = Callable[[PresenceTimes | None], PresenceWrite]
"""Decides a report from the user's stored times (None: no row yet). Pure, called in the write."""


@dataclass(frozen=True, slots=True)
class ActivityInterval:
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class ActivityExtension:
    """Widen the user's interval that starts at ``stored_start`` to [start, end] (never
    narrower than what is stored)."""

    user_id: int
    stored_start: float
    start: float
    end: float


IntervalRule = Callable[[ActivityInterval | None], tuple[bool, ActivityInterval]]
"""Given the user's latest interval: (True, it extended) or (False, a new one to add)."""


@dataclass(frozen=True, slots=True)
class PresenceReport:
    """One client's report, queued for the writer; both rules run inside one transaction."""

    user_id: int
    realm_id: int
    presence_rule: PresenceRule | None
    interval_rule: IntervalRule | None


@dataclass(frozen=True, slots=True)
class PresenceOutcome:
    created: bool
    written: bool
    became_online: bool
    row: PresenceRow | None


@dataclass(frozen=True, slots=True)
class RealmRead:
    """Which rows a realm read wants (see presenced.presence.read)."""

    realm_id: int
    after_update_id: int | None
    connected_since: float | None
    only_user_ids: frozenset[int] | None = None
    """If set, only these users' rows (a guest's accessible set)."""


@dataclass(frozen=True, slots=True)
class SavedEventQueue:
    """One event queue as the event system saved it; ``state`` is the event system's own
    encoding (the store keeps it as it is)."""

    queue_id: str
    realm_id: int
    user_id: int
    state: bytes


@dataclass(frozen=True, slots=True)
class SavedChangeLog:
    """The part of a realm's change log that some saved queue had not read yet."""

    realm_id: int
    changes: bytes


@dataclass(frozen=True, slots=True)
class SavedEventQueues:
    """What the embedded event system leaves in the store between a shutdown and a start."""

    queues: Sequence[SavedEventQueue] = ()
    logs: Sequence[SavedChangeLog] = ()


@dataclass(frozen=True, slots=True)
class EmbedToken:
    """A read-only token for the embeddable presence directory (never the token itself)."""

    id: int
    realm_id: int
    prefix: str
    """The first characters of the token, enough to tell tokens apart in a listing."""
    label: str
    user_ids: frozenset[int] | None
    """The users the token covers; None: the whole organization."""
    origins: tuple[str, ...]
    """Sites (``scheme://host[:port]``) that may frame the page and call the JSON endpoint;
    empty: any site."""
    created_at: float


class StoreError(Exception):
    """A request the store refuses: duplicate names, unknown records."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached (or did not answer in time); the call changed nothing
    that was acknowledged, and a later call may succeed once the database is back."""


class StoreBusyError(StoreUnavailableError):
    """The database is there, but every connection of the pool stayed in use for longer than
    the call may wait: this call is refused, the store is not marked down."""


@dataclass(frozen=True, slots=True)
class ChangeState:
    """What a change feed compares to notice other processes' commits: the directory version
    and every realm's presence sequence, read together."""

    directory_version: int
    presence_sequences: dict[int, int]
    """Realm id to that realm's highest ``last_update_id``."""


@dataclass(frozen=True, slots=True)
class StatusWrite:
    """What ``set_user_status`` stored: the status, and the invisible-mode toggle if asked."""

    status: UserStatus | None
    toggled: tuple[User, PresenceOutcome] | None


class LifecycleStore(Protocol):
    """Opening, closing, the schema, and the hints a change feed polls."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def migrate(self) -> None:
        """Create or upgrade the schema (idempotent)."""
        ...

    async def schema_is_current(self) -> bool: ...

    async def change_state(self) -> ChangeState:
        """The directory version and every realm's presence sequence, in one query."""
        ...

    def may_have_changed(self) -> bool:
        """A cheap hint, without a query: False means no other connection can have committed
        since the last call; True means one may have (or the backend cannot tell cheaply and
        relies on notifications instead, in which case it always answers False)."""
        ...

    async def ping(self) -> None:
        """A cheap round trip through the database (health checks); raises if it fails."""
        ...

    # Saved event queues (the embedded mode's queues, across a restart)
    async def save_event_queues(self, saved: SavedEventQueues) -> None:
        """Replace whatever was saved before with ``saved``, in one transaction."""
        ...

    async def take_event_queues(self) -> SavedEventQueues:
        """What was saved, forgotten in the same transaction (loaded once, never twice)."""
        ...


class RealmStore(Protocol):
    async def create_realm(self, subdomain: str, name: str, now: float) -> Realm: ...

    async def get_realm_by_subdomain(self, subdomain: str) -> Realm | None: ...

    async def get_realm(self, realm_id: int) -> Realm | None: ...

    async def list_realms(self) -> list[Realm]: ...

    async def set_realm_deactivated(self, realm_id: int, deactivated: bool) -> Realm: ...

    async def set_realm_presence_disabled(self, realm_id: int, disabled: bool) -> Realm: ...

    async def set_realm_access_group(self, realm_id: int, group: str) -> Realm: ...

    async def directory_version(self) -> int:
        """A counter every change to realms, users, keys, channels or subscriptions bumps."""
        ...


class ChannelStore(Protocol):
    """Channels and subscriptions (what guest access rules are computed from)."""

    async def create_channel(
        self, realm_id: int, name: str, description: str, now: float
    ) -> Channel: ...

    async def get_channel_by_name(self, realm_id: int, name: str) -> Channel | None: ...

    async def list_channels(self, realm_id: int) -> list[Channel]: ...

    async def subscribe(self, channel_id: int, user_id: int) -> bool:
        """False if already subscribed."""
        ...

    async def unsubscribe(self, channel_id: int, user_id: int) -> bool:
        """False if not subscribed."""
        ...

    async def realm_subscriptions(self, realm_id: int) -> list[tuple[int, int]]:
        """Every (channel id, user id) subscription in the realm."""
        ...


NO_OUTCOME = PresenceOutcome(created=False, written=False, became_online=False, row=None)


class StatusStore(Protocol):
    async def get_user_status(self, user_id: int) -> UserStatus | None: ...

    async def set_user_status(
        self,
        status: UserStatus | None,
        now: float,
        presence: tuple[bool, PresenceReport] | None = None,
    ) -> StatusWrite:
        """Store the status text/emoji and, given ``(enabled, report)`` (the deprecated
        ``away``), the invisible-mode flag and the report's presence rule, in one transaction."""
        ...

    async def realm_user_statuses(self, realm_id: int) -> list[UserStatus]: ...


class UserStore(Protocol):
    async def create_user(
        self,
        realm_id: int,
        email: str,
        delivery_email: str,
        full_name: str,
        role: Role,
        bot_type: BotType | None,
        bot_owner_id: int | None,
        now: float,
    ) -> User: ...

    async def get_user(self, user_id: int) -> User | None: ...

    async def get_user_by_email(self, realm_id: int, email: str) -> User | None:
        """By API email, case-insensitively, active or not."""
        ...

    async def get_user_by_delivery_email(self, realm_id: int, email: str) -> User | None: ...

    async def list_users(self, realm_id: int) -> list[User]: ...

    async def set_user_active(self, user_id: int, active: bool) -> User: ...

    async def set_presence_enabled(
        self, user_id: int, enabled: bool, report: PresenceReport | None = None
    ) -> tuple[User, PresenceOutcome]:
        """Invisible mode: store the flag and apply the report's presence rule (if any) in
        one transaction."""
        ...


class KeyStore(Protocol):
    async def create_api_key(
        self, user_id: int, key_hash: str, prefix: str, label: str, now: float
    ) -> ApiKeyInfo: ...

    async def list_api_keys(self, user_id: int) -> list[ApiKeyInfo]: ...

    async def revoke_api_key(self, user_id: int, key_id: int) -> bool: ...

    async def user_for_key_hash(self, key_hash: str) -> tuple[User, Realm] | None: ...


class PresenceStore(Protocol):
    async def record_presence(self, report: PresenceReport) -> PresenceOutcome:
        """Apply one report durably; concurrent reports are committed together."""
        ...

    async def get_presence(self, user_id: int) -> PresenceRow | None: ...

    async def read_realm_presence(self, query: RealmRead) -> Sequence[RealmPresenceRow]:
        """Rows of active human users of the realm matching the query, by last_update_id."""
        ...

    async def realm_presence_sequence(self, realm_id: int) -> int: ...

    async def activity_intervals(self, user_id: int) -> list[ActivityInterval]: ...

    async def latest_activity_interval(self, user_id: int) -> ActivityInterval | None: ...

    async def extend_activity_intervals(self, extensions: Sequence[ActivityExtension]) -> None:
        """Apply coalesced extensions in one transaction."""
        ...


class EmbedTokenStore(Protocol):
    """Embed tokens. Creating or revoking one bumps the directory version in the same
    transaction, so every process's token cache drops it at its next check."""

    async def create_embed_token(
        self,
        realm_id: int,
        token_hash: str,
        prefix: str,
        label: str,
        user_ids: frozenset[int] | None,
        origins: tuple[str, ...],
        now: float,
    ) -> EmbedToken: ...

    async def list_embed_tokens(self, realm_id: int | None = None) -> list[EmbedToken]:
        """Every token (of one realm if given), oldest first."""
        ...

    async def revoke_embed_token(self, token_id: int) -> bool:
        """False if there is no such token."""
        ...

    async def embed_token_by_hash(self, token_hash: str) -> EmbedToken | None: ...


class Store(
    LifecycleStore,
    RealmStore,
    ChannelStore,
    StatusStore,
    UserStore,
    KeyStore,
    PresenceStore,
    EmbedTokenStore,
    Protocol,
):
    """Durable state: every concern above. Every method is safe to call from the event loop;
    callers that need one concern can name that protocol instead."""
