"""Invariant 1 under random realms: nothing reveals what a viewer may not see.

Random users (members, guests, a bot), channels, invisible flags, reports, toggles and
subscription changes. After every step, every viewer reads presence through every endpoint and
format and drains every event queue; nothing may show an invisible user's fresh presence, a bot,
a user of another realm, or (with the server setting on) a user a limited guest may not see.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Account, Harness
from presenced.store.base import BotType, Role

OFFLINE = 200
counter = itertools.count()


@dataclass
class Person:
    account: Account
    guest: bool
    invisible: bool = False
    queues: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class World:
    harness: Harness
    limits: bool
    members_only: bool
    people: list[Person]
    bot: Account
    outsider: Account
    channels: list[int]
    subscriptions: set[tuple[int, int]]

    def accessible(self, viewer: Person) -> set[int] | None:
        """What the viewer may see, computed independently of the server; None: everyone."""
        if not (self.limits and self.members_only and viewer.guest):
            return None
        mine = {c for c, u in self.subscriptions if u == viewer.account.id}
        return {viewer.account.id} | {u for c, u in self.subscriptions if c in mine}

    def person(self, user_id: int) -> Person | None:
        return next((p for p in self.people if p.account.id == user_id), None)


people_spec = st.lists(st.tuples(st.booleans(), st.booleans()), min_size=2, max_size=5)
step = st.one_of(
    st.tuples(st.just("report"), st.integers(0, 4), st.booleans(), st.sampled_from([1, 60, 300])),
    st.tuples(st.just("toggle"), st.integers(0, 4), st.booleans(), st.just(1)),
    st.tuples(st.just("subscribe"), st.integers(0, 4), st.integers(0, 1), st.just(1)),
    st.tuples(st.just("outsider"), st.just(0), st.booleans(), st.just(1)),
)


@pytest.fixture(params=[True, False], ids=["limits-on", "limits-off"])
def limited_harness(
    request: pytest.FixtureRequest, make_harness: Callable[..., Harness]
) -> Harness:
    return make_harness(
        can_access_all_users_group_limits_presence=request.param, event_queue_heartbeat_secs=0.1
    )


def build(harness: Harness, spec: list[tuple[bool, bool]], members_only: bool) -> World:
    sub = f"r{next(counter)}"
    realm = harness.realm(sub)
    store = harness.server.store
    if members_only:
        harness.run(store.set_realm_access_group, realm.id, "members")
    people = []
    for i, (guest, invisible) in enumerate(spec):
        account = harness.account(
            f"p{i}@{sub}.example", realm=sub, role=Role.GUEST if guest else Role.MEMBER
        )
        people.append(Person(account, guest, invisible))
    bot = harness.account(f"bot@{sub}.example", realm=sub, bot_type=BotType.GENERIC)
    outsider = harness.account(f"out@{sub}.elsewhere", realm=sub + "x")
    channels = [harness.run(store.create_channel, realm.id, f"c{i}", "", 0.0).id for i in range(2)]
    subscriptions = set()
    for i, person in enumerate(people):
        channel = channels[i % 2]
        harness.run(store.subscribe, channel, person.account.id)
        subscriptions.add((channel, person.account.id))
    world = World(
        harness,
        harness.settings.can_access_all_users_group_limits_presence,
        members_only,
        people,
        bot,
        outsider,
        channels,
        subscriptions,
    )
    for person in people:
        if person.invisible:
            patch(world, person, enabled=False)
    for person in people:
        for params in (
            {},
            {"slim_presence": True},
            {
                "client_capabilities": {
                    "notification_settings_null": False,
                    "simplified_presence_events": True,
                }
            },
        ):
            # Long-lived: the steps move the clock on, and these polls never wait.
            response = harness.post(
                "/register", person.account, queue_lifespan_secs=86400, **params
            )
            assert response.status_code == 200
            person.queues.append(response.json())
            check_listing(world, person, response.json()["presences"])
    return world


def patch(world: World, person: Person, *, enabled: bool) -> None:
    response = world.harness.request(
        "PATCH",
        "/settings",
        account=person.account,
        data={"presence_enabled": "true" if enabled else "false"},
    )
    assert response.status_code == 200
    person.invisible = not enabled


def entries(presences: dict[str, Any]) -> Iterator[tuple[str, list[int]]]:
    """(key, timestamps) for each entry of a presences map in any format."""
    for key, value in presences.items():
        if "active_timestamp" in value:
            yield key, [value["active_timestamp"], value["idle_timestamp"]]
        else:
            yield key, [value[client]["timestamp"] for client in value]


def check_subject(world: World, viewer: Person, key: str | int, stamps: list[int]) -> None:
    now = world.harness.clock()
    subject = next(
        (p for p in world.people if key in (p.account.id, str(p.account.id), p.account.email)),
        None,
    )
    assert subject is not None, f"{key} is not a human of this realm (bot or outsider)"
    allowed = world.accessible(viewer)
    assert allowed is None or subject.account.id in allowed, (
        f"guest {viewer.account.email} saw {subject.account.email}"
    )
    if subject.invisible and subject is not viewer:
        assert all(now - ts > OFFLINE for ts in stamps), "an invisible user looks online"


def check_listing(world: World, viewer: Person, presences: dict[str, Any]) -> None:
    for key, stamps in entries(presences):
        check_subject(world, viewer, key, stamps)


def observe(world: World) -> None:
    harness = world.harness
    for viewer in world.people:
        account = viewer.account
        # Observing reports the viewer idle; that is the viewer's own presence, which is fine.
        check_listing(world, viewer, harness.presence(account, "idle")["presences"])
        body = harness.presence(account, "idle", last_update_id=-1, history_limit_days=3650)
        check_listing(world, viewer, body["presences"])
        check_listing(world, viewer, harness.get("/realm/presence", account).json()["presences"])
        targets = [p.account.id for p in world.people] + [world.outsider.id, world.bot.id]
        for target in targets:
            response = harness.get(f"/users/{target}/presence", account)
            if response.status_code == 200:
                single = response.json()["presence"]
                check_subject(world, viewer, target, [single["website"]["timestamp"]])
    # Drained after everyone's reads: all of those events predate the next step's changes.
    for viewer in world.people:
        drain(world, viewer)
    check_listing_for_bot(world)


def drain(world: World, viewer: Person) -> None:
    harness = world.harness
    for queue in viewer.queues:
        response = harness.get(
            "/events",
            viewer.account,
            queue_id=queue["queue_id"],
            last_event_id=queue.get("acknowledged", -1),
            dont_block=True,
        )
        assert response.status_code == 200
        events = response.json()["events"]
        for event in events:
            if event["type"] != "presence":
                continue
            if "presences" in event:
                check_listing(world, viewer, event["presences"])
            else:
                check_subject(
                    world, viewer, event["user_id"], [event["presence"]["website"]["timestamp"]]
                )
        if events:
            queue["acknowledged"] = events[-1]["id"]


def check_listing_for_bot(world: World) -> None:
    presences = world.harness.get("/realm/presence", world.bot).json()["presences"]
    for key, _ in entries(presences):
        assert key != world.bot.email
        assert key != world.outsider.email


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=people_spec, members_only=st.booleans(), steps=st.lists(step, max_size=8))
def test_nothing_reveals_what_a_viewer_may_not_see(
    limited_harness: Harness,
    spec: list[tuple[bool, bool]],
    members_only: bool,
    steps: list[tuple[str, int, Any, int]],
) -> None:
    world = build(limited_harness, spec, members_only)
    harness = world.harness
    observe(world)
    for kind, index, arg, gap in steps:
        harness.clock.advance(gap)
        person = world.people[index % len(world.people)]
        if kind == "report":
            harness.presence(person.account, "active" if arg else "idle", ping_only=True)
        elif kind == "toggle":
            patch(world, person, enabled=bool(arg))
        elif kind == "subscribe":
            channel = world.channels[arg]
            key = (channel, person.account.id)
            if key in world.subscriptions:
                harness.run(harness.server.store.unsubscribe, *key)
                world.subscriptions.discard(key)
            else:
                harness.run(harness.server.store.subscribe, *key)
                world.subscriptions.add(key)
        else:
            harness.presence(world.outsider, "active" if arg else "idle", ping_only=True)
        observe(world)
