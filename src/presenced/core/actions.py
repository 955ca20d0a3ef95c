"""Writes and reads that combine the pure presence rules with the store (Zulip's actions)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from presenced.core.server import Server
from presenced.events.changes import PresenceChange, UserSettingsChange, UserStatusChange
from presenced.presence import read, rules
from presenced.presence.blocks import JoinedJson
from presenced.store.base import (
    PresenceOutcome,
    PresenceReport,
    PresenceRow,
    PresenceRule,
    PresenceTimes,
    PresenceWrite,
    Realm,
    User,
    UserStatus,
)

EMPTY = JoinedJson([b"{}"])


@dataclass(frozen=True, slots=True)
class RealmPresence:
    presences: JoinedJson
    """Pre-encoded JSON in pieces; the response encoder splices it in (compressed blocks too)."""
    last_update_id: int


async def record_report(
    server: Server,
    user: User,
    realm: Realm,
    *,
    active: bool,
    new_user_input: bool,
    now: float,
) -> PresenceOutcome:
    """Record a client's report: presence unless the user is invisible, activity if input.

    Announces the change, as Zulip does, when the row was created or the user became online
    (and the realm has presence on); ordinary refreshes are left to polling.
    """
    settings = server.settings
    presence_rule = (
        partial(
            rules.decide_report,
            active=active,
            now=now,
            min_write_interval=settings.presence_update_min_freq_seconds,
            became_online_after=settings.became_online_threshold_secs,
        )
        if user.presence_enabled
        else None
    )
    interval_rule = await server.activity.record(user.id, now) if new_user_input else None
    if presence_rule is not None and interval_rule is None:
        # Most reports change nothing (the same user's clients ping within 55 s of each
        # other): decide from memory and skip the writer. Stored times only move forward,
        # so a stale view can only make a write look needed, which the writer re-decides.
        current = await server.indexes.stored_times(user)
        if current is not None and not presence_rule(current).write:
            presence_rule = None
    if presence_rule is None and interval_rule is None:
        return PresenceOutcome(created=False, written=False, became_online=False, row=None)
    report = PresenceReport(user.id, user.realm_id, presence_rule, interval_rule)
    outcome = await server.store.record_presence(report)
    if outcome.written and outcome.row is not None:
        await own_write(server, user, outcome.row)
    if (
        outcome.row is not None
        and outcome.written
        and (outcome.created or outcome.became_online)
        and not realm.presence_disabled
    ):
        await publish_presence(server, user, outcome.row)
    return outcome


async def own_write(server: Server, user: User, row: PresenceRow) -> None:
    """A presence write this process committed: into its index now, and announced."""
    server.indexes.own_write(user, row)
    server.indexes.note_sequence(user.realm_id, row.last_update_id)
    await server.changes.presence_committed(user.realm_id, row.last_update_id)


async def publish_presence(server: Server, user: User, row: PresenceRow) -> None:
    change = PresenceChange(
        user_id=user.id,
        email=user.email,
        date_joined=user.date_joined,
        last_active_time=row.last_active_time,
        last_connected_time=row.last_connected_time,
        server_timestamp=server.clock(),
    )
    await server.events.publish(user.realm_id, change)


async def realm_presence(
    server: Server,
    realm: Realm,
    viewer: User,
    *,
    slim: bool,
    cursor: int | None,
    history_limit_days: int | None,
    now: float,
) -> RealmPresence:
    """Everyone's presence in the realm, as the presence endpoints and /register return it
    (spec 2.5), served from the realm's in-memory index."""
    if realm.presence_disabled:
        return RealmPresence(EMPTY, read.NO_UPDATE_ID)
    days = server.settings.presence_history_days_default
    if history_limit_days is not None:
        days = history_limit_days
    since = read.window_start(now, days)
    if history_limit_days == 0:
        return RealmPresence(EMPTY, read.last_update_id(None, cursor))
    only = None
    if server.limits_presence:
        only = (await server.directory.access(realm)).accessible(viewer.id)
    index = await server.indexes.index(realm.id)
    if cursor is not None and cursor > 0:
        found = index.changed_since(cursor, slim, only)
    else:
        found = index.connected_since(since, days, cursor, slim, only)
    return RealmPresence(found.joined, read.last_update_id(found.last_update_id, cursor))


def _backdate(current: PresenceTimes | None, *, before: float, date_joined: float) -> PresenceWrite:
    """Going invisible: move both times back to at most ``before``; no row stays no row.

    A missing time reads as ``date_joined``, which for a user who joined minutes ago would
    still look online; so it is back-dated too (to the earlier of the two). For anyone who
    joined before ``before``, that is exactly what Zulip shows.
    """
    if current is None:
        return PresenceWrite(PresenceTimes(None, None), write=False, became_online=False)

    def capped(value: float | None) -> float:
        return min(date_joined if value is None else value, before)

    times = PresenceTimes(capped(current.last_active_time), capped(current.last_connected_time))
    return PresenceWrite(times, write=times != current, became_online=False)


def _toggle_report(server: Server, user: User, enabled: bool, now: float) -> PresenceReport:
    """The presence rule that goes with an invisible-mode toggle."""
    settings = server.settings
    rule: PresenceRule
    if enabled:
        rule = partial(
            rules.decide_report,
            active=True,
            now=now,
            min_write_interval=settings.presence_update_min_freq_seconds,
            became_online_after=settings.became_online_threshold_secs,
        )
    else:
        rule = partial(
            _backdate, before=now - settings.invisible_backdate_secs, date_joined=user.date_joined
        )
    return PresenceReport(user.id, user.realm_id, rule, None)


async def set_presence_enabled(
    server: Server,
    user: User,
    enabled: bool,
    *,
    now: float,
    status_change: UserStatusChange | None = None,
    toggled: tuple[User, PresenceOutcome] | None = None,
) -> User:
    """Invisible mode (spec 5.1): store the setting, tell the user's clients, then announce
    the user's presence to everyone (forced: even where presence events are off).

    Enabling records the user active now. Disabling back-dates both times so the user looks
    offline at once and "last active" freezes near now. The flag and the presence write are
    one store operation (``toggled``: already done with a status update). ``status_change``
    (the deprecated ``away``) is announced between the two events, in Zulip's order.
    """
    if toggled is None:
        report = _toggle_report(server, user, enabled, now)
        toggled = await server.store.set_presence_enabled(user.id, enabled, report)
    updated, outcome = toggled
    await server.changes.directory_changed()
    await server.events.publish(
        user.realm_id, UserSettingsChange(user.id, "presence_enabled", enabled, user.email)
    )
    if status_change is not None:
        await server.events.publish(user.realm_id, status_change)
    if outcome.written and outcome.row is not None:
        await own_write(server, updated, outcome.row)
    if outcome.row is not None:
        await publish_presence(server, updated, outcome.row)
    return updated


async def update_user_status(
    server: Server,
    user: User,
    *,
    away: bool | None,
    status: UserStatus | None,
    fields: tuple[tuple[str, Any], ...],
    now: float,
) -> None:
    """``POST /users/me/status``: store text/emoji; ``away`` is invisible mode's old name.
    Both are one store operation."""
    change = UserStatusChange(user.id, fields)
    if away is not None:
        toggle = (not away, _toggle_report(server, user, not away, now))
        written = await server.store.set_user_status(status, now, toggle)
        await set_presence_enabled(
            server, user, not away, now=now, status_change=change, toggled=written.toggled
        )
        return
    if status is not None:
        await server.store.set_user_status(status, now)
    await server.events.publish(user.realm_id, change)
