"""A load scenario's accounts and the store readings the runner takes between phases, all
through presenced's store API (so they work on either backend)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

from harness.accounts import NewUser, create_accounts, create_realms
from harness.stats import out
from presenced.store.base import RealmRead, Store
from scenarios.model import BEHAVIOURS, Scenario

EXTERNAL_HOST = "presenced.bench"
HISTORY_DAYS_CHECK = 365


@dataclass
class Setup:
    workdir: Path
    credentials: Path
    users: int
    realms: dict[str, int]
    """Subdomain -> realm id."""
    checkers: dict[str, str]
    """Subdomain -> the credentials line (JSON) of the user who does the final full fetch."""
    create_s: float


async def create_scenario_accounts(scenario: Scenario, store: Store, workdir: Path) -> Setup:
    """Realms, users and one key each, through the store API; a credentials file (JSON lines)
    that the generator processes split between them."""
    credentials = workdir / "credentials.jsonl"
    started = time.perf_counter()
    await store.migrate()
    now = time.time()
    realms = await create_realms(store, [r.subdomain for r in scenario.realms], now)
    wanted = [(spec, i, group) for spec in scenario.realms for i, group in enumerate(spec.groups())]
    total = len(wanted)
    next_report = [10_000]

    def progress(done: int) -> None:
        if done >= next_report[0] or done == total:
            out(f"    {done:,}/{total:,} users ({time.perf_counter() - started:.1f} s)")
            next_report[0] += 10_000

    accounts = await create_accounts(
        store,
        [
            NewUser(
                realms[spec.subdomain],
                f"u{i}@{spec.subdomain}.bench.example",
                f"User {i} of {spec.subdomain}",
            )
            for spec, i, _ in wanted
        ],
        now,
        progress=progress,
    )
    checkers: dict[str, str] = {}
    with credentials.open("w", encoding="utf-8") as fh:
        for (spec, i, group), account in zip(wanted, accounts, strict=True):
            line = json.dumps(
                {
                    "user_id": account.user_id,
                    "email": account.delivery_email,
                    "key": account.key,
                    "realm": spec.subdomain,
                    "host": f"{spec.subdomain}.{EXTERNAL_HOST}",
                    "group": group,
                    "behavior": BEHAVIOURS[i % 20] if spec.behaviours else "other",
                }
            )
            fh.write(line + "\n")
            if i == 0:
                checkers[spec.subdomain] = line
    return Setup(workdir, credentials, total, realms, checkers, time.perf_counter() - started)


async def presence_sequence_total(store: Store, realm_ids: list[int]) -> int:
    """The sum of the realms' presence sequences: it grows by one per presence write."""
    total = 0
    for first in range(0, len(realm_ids), 200):
        chunk = realm_ids[first : first + 200]
        values = await asyncio.gather(*(store.realm_presence_sequence(r) for r in chunk))
        total += sum(values)
    return total


async def users_with_presence(store: Store, realm_ids: list[int]) -> int:
    total = 0
    for realm_id in realm_ids:
        total += len(await store.read_realm_presence(RealmRead(realm_id, None, None)))
    return total


PresenceView = dict[str, tuple[int, int, int]]
"""User id (str) -> (active_timestamp, idle_timestamp, last_update_id)."""


async def store_rows(
    store: Store, realm_ids: list[int]
) -> tuple[dict[int, PresenceView], dict[int, int]]:
    """Per realm id: user id -> (active_timestamp, idle_timestamp, last_update_id) as a full
    fetch (history_limit_days=365) should show them; and each realm's presence sequence."""
    since = time.time() - HISTORY_DAYS_CHECK * 86400
    realms: dict[int, PresenceView] = {}
    sequences: dict[int, int] = {}
    for realm_id in realm_ids:
        rows = await store.read_realm_presence(RealmRead(realm_id, None, since))
        view: PresenceView = {}
        for row in rows:
            active, connected = row.last_active_time, row.last_connected_time
            view[str(row.user_id)] = (
                int(row.date_joined if active is None else active),
                int(row.date_joined if connected is None else connected),
                row.last_update_id,
            )
        if view:
            realms[realm_id] = view
        sequences[realm_id] = await store.realm_presence_sequence(realm_id)
    return realms, sequences
