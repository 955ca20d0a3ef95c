"""The steady-state presence request makes no store round trip (issue: "no store round trip on
a steady-state request"): every statement the embedded store runs is traced by SQLite itself,
and a minute of ordinary pings by a warmed-up realm must run none but the ``data_version``
check that tells it no other connection committed."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest

from conftest import Harness


def traced_statements(harness: Harness) -> list[str]:
    store = harness.server.store
    reader = getattr(store, "_reader", None)
    if not isinstance(reader, sqlite3.Connection):
        pytest.skip("the statement trace is SQLite's")
    statements: list[str] = []
    reader.set_trace_callback(statements.append)
    return statements


def test_steady_state_pings_make_no_store_query(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness()
    if not harness.settings.database_url.startswith("sqlite"):
        pytest.skip("the statement trace is SQLite's")
    people = [harness.account(f"user{i}@zulip.com") for i in range(5)]
    cursors = {}
    for person in people:  # first reports: rows written, callers cached
        cursors[person.id] = harness.presence(person, "active", last_update_id=-1)[
            "presence_last_update_id"
        ]
    for person in people:  # the writes above are noticed once
        cursors[person.id] = harness.presence(person, "active", last_update_id=cursors[person.id])[
            "presence_last_update_id"
        ]
    statements = traced_statements(harness)
    for _ in range(3):
        harness.clock.advance(10)  # within the minimum write interval: nothing to write
        for person in people:
            body = harness.presence(person, "active", last_update_id=cursors[person.id])
            assert body["presences"] == {}
            cursors[person.id] = body["presence_last_update_id"]
    assert statements, "the trace saw nothing: is it on the reader connection?"
    assert set(statements) == {"PRAGMA data_version"}, statements
