"""A page's live feed over the real event system, read event by event: what it forwards,
what it filters, and that its queue goes when the page does."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

import pytest
from sse_starlette import ServerSentEvent

from conftest import BACKENDS, Account, Harness
from embed_helpers import make_token
from presenced.events.changes import PresenceChange
from presenced.events.system import InProcessEventSystem
from presenced.web.embed import queues
from presenced.web.embed.grants import Grants
from presenced.web.embed.people import SharedIndexes
from presenced.web.embed.stream import Feed


async def next_event(events: AsyncGenerator[ServerSentEvent, None]) -> tuple[str, dict[str, Any]]:
    """The next named event (comments, which browsers ignore, are skipped)."""
    event = await anext(events)
    while event.event is None and event.comment is not None:
        event = await anext(events)
    assert event.event is not None and isinstance(event.data, str)
    data: dict[str, Any] = json.loads(event.data)
    return event.event, data


async def finished(events: AsyncGenerator[ServerSentEvent, None]) -> bool:
    try:
        await anext(events)
    except StopAsyncIteration:
        return True
    return False


def queue_count(harness: Harness) -> int:
    events = harness.server.events
    assert isinstance(events, InProcessEventSystem)
    return events.queue_count


def open_feed(harness: Harness, token: str) -> AsyncGenerator[ServerSentEvent, None]:
    server = harness.server
    feed = Feed(server, Grants(server), SharedIndexes(server))

    async def start() -> AsyncGenerator[ServerSentEvent, None]:
        grant = await feed.grants.resolve(token)
        assert grant is not None
        return feed.events(token, grant)

    return harness.run(start)


def test_feed_forwards_covered_changes_and_stops_when_revoked(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    hamlet, othello, bot = zulip_realm["hamlet"], zulip_realm["othello"], zulip_realm["bot"]
    token, record = make_token(harness)
    queues_before = queue_count(harness)
    events = open_feed(harness, token)

    name, snapshot = harness.run(next_event, events)
    assert name == "snapshot"
    assert queue_count(harness) == queues_before + 1
    assert snapshot["offline_threshold_secs"] == harness.settings.offline_threshold_secs
    assert {p["email"] for p in snapshot["people"]} == {
        "hamlet@zulip.com",
        "othello@zulip.com",
        "iago@zulip.com",
        "cordelia@zulip.com",
    }

    # A bot's change in the realm's log is never forwarded; a human's is.
    async def publish_bot_change() -> None:
        now = harness.clock()
        await harness.server.events.publish(
            bot.user.realm_id,
            PresenceChange(bot.id, bot.email, bot.user.date_joined, now, now, now),
        )

    harness.run(publish_bot_change)
    harness.presence(hamlet)
    name, update = harness.run(next_event, events)
    assert name == "presence"
    assert set(update["presences"]) == {str(hamlet.id)}
    assert update["presences"][str(hamlet.id)]["active_timestamp"] == int(harness.clock())

    # A directory change that leaves the people as they are (a new API key) sends no new list.
    harness.run(
        harness.server.store.create_api_key, hamlet.id, "0" * 64, "0000", "x", harness.clock()
    )
    harness.clock.advance(harness.settings.offline_threshold_secs)
    harness.presence(othello)
    name, update = harness.run(next_event, events)
    assert name == "presence" and set(update["presences"]) == {str(othello.id)}

    # Deactivating someone sends the new list.
    harness.run(harness.server.store.set_user_active, othello.id, False)
    while True:
        name, data = harness.run(next_event, events)
        if name == "snapshot":
            break
    assert othello.email not in {p["email"] for p in data["people"]}

    harness.run(harness.server.store.revoke_embed_token, record.id)
    while name != "revoked":
        name, data = harness.run(next_event, events)
    assert harness.run(finished, events)
    assert queue_count(harness) == queues_before


def test_closing_a_page_deletes_its_queue(harness: Harness) -> None:
    harness.account("hamlet@zulip.com")
    token, _ = make_token(harness)
    before = queue_count(harness)
    pages = [open_feed(harness, token) for _ in range(3)]
    for page in pages:
        assert harness.run(next_event, page)[0] == "snapshot"
    assert queue_count(harness) == before + 3
    for page in pages:
        harness.run(page.aclose)
    assert queue_count(harness) == before


@pytest.mark.parametrize("harness_backends", BACKENDS, indirect=True)
def test_pages_are_not_held_to_the_per_user_queue_cap(
    make_harness: Callable[..., Harness],
) -> None:
    """Every page's queue belongs to the one embed viewer: under the per-user cap the page past
    it would reclaim another page's queue, which would reopen and reclaim the next, without
    end. A user's own queues stay capped."""
    harness = make_harness(event_queue_max_per_user=2)
    hamlet = harness.account("hamlet@zulip.com")
    realm = harness.realm()
    server = harness.server
    pages = [harness.run(queues.open_queue, server, realm) for _ in range(5)]
    for page in pages:  # every page's queue is still there
        harness.run(server.events.get_events, page.queue_id, queues.EMBED_VIEWER_ID, None, True)
    registered = [harness.post("/register", hamlet).json()["queue_id"] for _ in range(3)]
    answers = [
        harness.get("/events", hamlet, queue_id=q, last_event_id=-1, dont_block=True).json()
        for q in registered
    ]
    assert [a.get("code") for a in answers].count("BAD_EVENT_QUEUE_ID") == 1, answers
