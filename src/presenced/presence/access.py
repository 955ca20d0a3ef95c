"""Who may see whom when guests' access is limited (spec 5.3). Pure data and rules.

presenced has no messages, so "shares a channel" is the whole of Zulip's rule: a guest who may
not see everyone sees themself and the active subscribers of the channels they are in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from presenced.store.base import Realm, Role, User

EVERYONE = "everyone"
MEMBERS = "members"
ACCESS_GROUPS = (EVERYONE, MEMBERS)


@dataclass(frozen=True)
class RealmAccess:
    group: str
    guests: frozenset[int]
    bots: frozenset[int]
    channels_of: dict[int, frozenset[int]] = field(default_factory=dict)
    """user -> the channels they are subscribed to (active users only)."""
    members_of: dict[int, frozenset[int]] = field(default_factory=dict)
    """channel -> its active subscribers."""

    @classmethod
    def build(
        cls, realm: Realm, users: Iterable[User], subscriptions: Iterable[tuple[int, int]]
    ) -> RealmAccess:
        active = {u.id: u for u in users if u.is_active}
        channels_of: defaultdict[int, set[int]] = defaultdict(set)
        members_of: defaultdict[int, set[int]] = defaultdict(set)
        for channel_id, user_id in subscriptions:
            if user_id in active:
                channels_of[user_id].add(channel_id)
                members_of[channel_id].add(user_id)
        return cls(
            group=realm.can_access_all_users_group,
            guests=frozenset(u.id for u in active.values() if u.role == Role.GUEST),
            bots=frozenset(u.id for u in active.values() if u.is_bot),
            channels_of={u: frozenset(c) for u, c in channels_of.items()},
            members_of={c: frozenset(m) for c, m in members_of.items()},
        )

    def can_access_all(self, viewer: int) -> bool:
        return viewer not in self.guests or self.group == EVERYONE

    def restricted(self, target: int) -> bool:
        return target not in self.bots and self.group != EVERYONE

    def can_access(self, viewer: int, target: int) -> bool:
        if viewer == target or not self.restricted(target) or self.can_access_all(viewer):
            return True
        return any(target in self.members_of[c] for c in self.channels_of.get(viewer, ()))

    def accessible(self, viewer: int) -> frozenset[int] | None:
        """The users ``viewer`` may see; None when that is everyone."""
        if self.can_access_all(viewer):
            return None
        seen = {viewer}
        for channel in self.channels_of.get(viewer, ()):
            seen |= self.members_of[channel]
        return frozenset(seen)
