"""What the event tests share: registering, polling, and counting queues through a harness."""

from __future__ import annotations

from typing import Any

from conftest import Account, Harness
from presenced.events.redis import RedisEventSystem
from presenced.events.system import InProcessEventSystem


def queue_count(harness: Harness) -> int:
    system = harness.server.events
    if isinstance(system, InProcessEventSystem):
        return system.queue_count
    assert isinstance(system, RedisEventSystem)
    return harness.run(system.count_queues)


def register(harness: Harness, account: Account, **params: Any) -> dict[str, Any]:
    response = harness.post("/register", account, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def events(
    harness: Harness, account: Account, queue: dict[str, Any], last_event_id: int = -1, **extra: Any
) -> list[dict[str, Any]]:
    response = harness.get(
        "/events", account, queue_id=queue["queue_id"], last_event_id=last_event_id, **extra
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # Zulip names the queue only in answers that waited.
    assert body.get("queue_id", queue["queue_id"]) == queue["queue_id"]
    result: list[dict[str, Any]] = body["events"]
    return result


def pending(harness: Harness, account: Account, queue: dict[str, Any]) -> list[dict[str, Any]]:
    return events(harness, account, queue, dont_block=True)
