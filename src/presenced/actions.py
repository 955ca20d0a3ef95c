"""Writes and reads that combine the pure presence rules with the store (Zulip's actions)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from presenced.presence import read, rules
from presenced.server import Server
from presenced.store.base import PresenceOutcome, PresenceReport, Realm, User


@dataclass(frozen=True, slots=True)
class RealmPresence:
    presences: dict[str, Any]
    last_update_id: int


async def record_report(
    server: Server, user: User, *, active: bool, new_user_input: bool, now: float
) -> PresenceOutcome:
    """Record a client's report: presence unless the user is invisible, activity if input."""
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
    interval_rule = partial(rules.extend_activity, now=now) if new_user_input else None
    if presence_rule is None and interval_rule is None:
        return PresenceOutcome(created=False, written=False, became_online=False, row=None)
    report = PresenceReport(user.id, user.realm_id, presence_rule, interval_rule)
    return await server.store.record_presence(report)


async def realm_presence(
    server: Server,
    realm: Realm,
    *,
    slim: bool,
    cursor: int | None,
    history_limit_days: int | None,
    now: float,
) -> RealmPresence:
    """Everyone's presence in the realm, as the presence endpoints and /register return it."""
    if realm.presence_disabled:
        return RealmPresence({}, read.NO_UPDATE_ID)
    plan = read.plan_realm_read(
        realm.id,
        cursor=cursor,
        history_limit_days=history_limit_days,
        default_history_days=server.settings.presence_history_days_default,
        now=now,
    )
    rows = [] if plan.query is None else await server.store.read_realm_presence(plan.query)
    presences = read.format_rows(
        rows,
        slim=slim,
        activity_offset=server.settings.presence_legacy_event_offset_for_activity_seconds,
    )
    return RealmPresence(presences, read.last_update_id(rows, cursor))
