"""After a load scenario: did any change get lost or reordered?

A full fetch per realm (last_update_id=-1, 365 days) is compared with the store's rows, and
each auditor's view (built only from the deltas it received) with the same rows.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from presenced.store.base import Store
from scenarios.load_setup import HISTORY_DAYS_CHECK, Setup, store_rows


@dataclass(frozen=True)
class Consistency:
    realms_checked: int
    realms_disagreeing: int
    realm_problems: list[str]
    auditors_checked: int
    auditors_disagreeing: int
    auditor_problems: list[str]
    cursor_regressions: int
    ok: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def full_fetch(
    session: aiohttp.ClientSession, base: str, checker: dict[str, Any]
) -> dict[str, Any]:
    token = base64.b64encode(f"{checker['email']}:{checker['key']}".encode()).decode()
    form = {
        "status": "active",
        "new_user_input": "false",
        "slim_presence": "true",
        "last_update_id": "-1",
        "history_limit_days": str(HISTORY_DAYS_CHECK),
    }
    headers = {"Authorization": "Basic " + token, "Host": checker["host"]}
    async with session.post(base + "/api/v1/users/me/presence", data=form, headers=headers) as resp:
        body: dict[str, Any] = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"full fetch as {checker['email']}: {resp.status} {body}")
        return body


async def check_consistency(
    setup: Setup, store: Store, base: str, parts: list[dict[str, Any]]
) -> Consistency:
    checkers = {sub: json.loads(line) for sub, line in setup.checkers.items()}
    fetched: dict[str, dict[str, Any]] = {}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        gate = asyncio.Semaphore(8)

        async def one(sub: str) -> None:
            async with gate:
                fetched[sub] = await full_fetch(session, base, checkers[sub])

        await asyncio.gather(*(one(sub) for sub in checkers))
    realms, sequences = await store_rows(store, list(setup.realms.values()))
    bad_realms: list[str] = []
    for sub, body in fetched.items():
        realm_id = setup.realms[sub]
        expected = {uid: (a, i) for uid, (a, i, _) in realms.get(realm_id, {}).items()}
        got = {
            uid: (e["active_timestamp"], e["idle_timestamp"])
            for uid, e in body["presences"].items()
        }
        problems = []
        if got != expected:
            missing = len(expected.keys() - got.keys())
            extra = len(got.keys() - expected.keys())
            differ = sum(1 for uid in got.keys() & expected.keys() if got[uid] != expected[uid])
            problems.append(f"{missing} missing, {extra} extra, {differ} differ")
        if body["presence_last_update_id"] != sequences.get(realm_id):
            problems.append(
                f"presence_last_update_id {body['presence_last_update_id']} != sequence "
                f"{sequences.get(realm_id)}"
            )
        if problems:
            bad_realms.append(f"{sub}: " + "; ".join(problems))
    # Auditors: rows written after an auditor's last sync may be newer than its view, but only
    # rows of users who pinged after the generators stopped (the auditors and the checkers).
    late_writers = {str(c["user_id"]) for c in checkers.values()}
    for part in parts:
        late_writers.update(str(a["user_id"]) for a in part["auditors"])
    audited = 0
    bad_auditors: list[str] = []
    for part in parts:
        for auditor in part["auditors"]:
            audited += 1
            rows = realms.get(setup.realms[auditor["realm"]], {})
            view = {uid: tuple(v) for uid, v in (auditor["view"] or {}).items()}
            cursor = auditor["cursor"] if auditor["cursor"] is not None else -1
            wrong = []
            for uid, (active, idle, update_id) in rows.items():
                if view.get(uid) == (active, idle):
                    continue
                if update_id > cursor and uid in late_writers:
                    continue
                wrong.append(uid)
            unknown = [uid for uid in view if uid not in rows]
            if wrong or unknown:
                bad_auditors.append(
                    f"user {auditor['user_id']} ({auditor['realm']}): {len(wrong)} rows differ"
                    f" or missing (e.g. {wrong[:3]}), {len(unknown)} extra"
                )
    regressions = sum(ph["cursor_regressions"] for part in parts for ph in part["phases"])
    return Consistency(
        realms_checked=len(fetched),
        realms_disagreeing=len(bad_realms),
        realm_problems=bad_realms[:10],
        auditors_checked=audited,
        auditors_disagreeing=len(bad_auditors),
        auditor_problems=bad_auditors[:10],
        cursor_regressions=regressions,
        ok=not bad_realms and not bad_auditors and regressions == 0 and audited > 0,
    )
