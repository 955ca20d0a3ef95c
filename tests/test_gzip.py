"""gzip responses (issue 12 item 5): compressed when the client accepts gzip and the body is
at least 1 KB, decoded by every real client: the ``zulip`` package (requests), headless
Chromium's ``fetch``, and a plain gzip decoder, for every size of presence answer: empty,
small, one cached block, many cached blocks, and the first fetch.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest

from browser import browser_available, chromium
from conftest import Account, Harness
from live import LiveServer, live_server
from presenced.api.compression import accepts_gzip, gzip_pieces
from presenced.keys import PREFIX_LENGTH, generate_api_key, hash_api_key
from presenced.presence.blocks import Block, Piece
from presenced.store.base import PresenceReport, PresenceTimes, PresenceWrite, Role
from presenced.store.factory import open_store

PRESENCE = "/api/v1/users/me/presence"
USERS = 1300
"""Five full 256-entry blocks of the realm index, and a partial one."""


def test_accept_encoding_parsing() -> None:
    assert accepts_gzip("gzip")
    assert accepts_gzip("gzip, deflate, br, zstd")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert accepts_gzip("*")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("identity")
    assert not accepts_gzip("br, deflate")
    assert not accepts_gzip("")


def test_cached_blocks_frame_one_gzip_member() -> None:
    blocks = [Block(b'"%d":{"active_timestamp":%d}' % (i, 1000 + i) * 40) for i in range(5)]
    pieces: list[Piece] = [
        b'{"a":[',
        blocks[0],
        b",",
        blocks[1],
        blocks[2],
        b",",
        b"7",
        blocks[3],
        b"]}\n",
    ]
    expected = b"".join(p.raw if isinstance(p, Block) else p for p in pieces)
    body = gzip_pieces(pieces)
    assert gzip.decompress(body) == expected
    # One member: a decoder that stops at the first member's end still reads everything.
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert decoder.decompress(body) == expected and decoder.eof and not decoder.unused_data
    # The blocks keep their compressed form: a second response reuses it.
    cached = blocks[0].deflated
    assert gzip.decompress(gzip_pieces([blocks[0]])) == blocks[0].raw
    assert blocks[0].deflated is cached


# -- the app in process --------------------------------------------------------------------


def _populate_harness(harness: Harness, count: int) -> Account:
    viewer = harness.account("viewer@zulip.com")
    now = harness.clock()

    async def fill() -> None:
        store = harness.server.store
        realm_id = viewer.user.realm_id
        users = [
            await store.create_user(
                realm_id,
                f"u{i}@zulip.com",
                f"u{i}@zulip.com",
                f"U {i}",
                Role.MEMBER,
                None,
                None,
                now,
            )
            for i in range(count)
        ]
        await asyncio.gather(*(store.record_presence(_report(u.id, realm_id, now)) for u in users))

    harness.run(fill)
    return viewer


def _report(user_id: int, realm_id: int, now: float) -> PresenceReport:
    def write(_: PresenceTimes | None) -> PresenceWrite:
        return PresenceWrite(PresenceTimes(now, now), write=True, became_online=False)

    return PresenceReport(user_id, realm_id, write, None)


def test_in_process_sizes(harness: Harness) -> None:
    viewer = _populate_harness(harness, 600)

    def post(cursor: int, encoding: str) -> httpx.Response:
        return harness.request(
            "POST",
            "/users/me/presence",
            account=viewer,
            data={"status": "idle", "last_update_id": cursor},
            headers={"Accept-Encoding": encoding},
        )

    first = post(-1, "identity")
    assert "content-encoding" not in first.headers
    latest = first.json()["presence_last_update_id"]
    for cursor, compressed in ((-1, True), (1, True), (latest - 1, False), (latest, False)):
        plain = post(cursor, "identity")
        zipped = post(cursor, "gzip")
        assert zipped.json()["presences"] == plain.json()["presences"]
        assert (zipped.headers.get("content-encoding") == "gzip") is compressed, cursor
        if compressed:
            assert zipped.headers["vary"] == "Accept-Encoding"
            assert int(zipped.headers["content-length"]) * 2 < len(plain.content)


# -- real clients against a real server ---------------------------------------------------


@dataclass
class Populated:
    server: LiveServer
    email: str
    api_key: str
    latest: int

    def auth(self) -> tuple[str, str]:
        return (self.email, self.api_key)


def _populate_database(database_url: str, count: int) -> tuple[str, str]:
    """A realm of ``count`` online users, written before the server starts; returns one
    user's credentials."""

    async def fill() -> tuple[str, str]:
        store = open_store(database_url)
        await store.open()
        try:
            now = time.time()
            realm = await store.create_realm("", "Zulip Dev", now)
            users = [
                await store.create_user(
                    realm.id,
                    f"u{i}@zulip.com",
                    f"u{i}@zulip.com",
                    f"U {i}",
                    Role.MEMBER,
                    None,
                    None,
                    now,
                )
                for i in range(count)
            ]
            key = generate_api_key()
            await store.create_api_key(users[0].id, hash_api_key(key), key[:PREFIX_LENGTH], "", now)
            await asyncio.gather(
                *(store.record_presence(_report(u.id, realm.id, now)) for u in users)
            )
            return users[0].delivery_email, key
        finally:
            await store.close()

    return asyncio.run(fill())


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Populated]:
    workdir = tmp_path_factory.mktemp("gzip")
    database_url = f"sqlite:///{workdir / 'presenced.db'}"
    env = {"PRESENCED_DATABASE_URL": database_url, "PRESENCED_RATE_LIMIT_REQUESTS": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "presenced", "init"],
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    email, key = _populate_database(database_url, USERS)
    with live_server(workdir, env, init=False) as server:
        first = httpx.post(
            server.url + PRESENCE,
            data={"status": "idle", "last_update_id": "-1"},
            auth=(email, key),
            headers={"Accept-Encoding": "identity"},
        )
        yield Populated(server, email, key, first.json()["presence_last_update_id"])


def _cases(populated: Populated) -> dict[str, tuple[int, bool]]:
    """Name: (last_update_id, compressed). Update ids run 1..USERS, in blocks of 256."""
    latest = populated.latest
    return {
        "empty": (latest, False),
        "small": (latest - 1, False),
        "one block": (1000, True),
        "many blocks": (1, True),
        "first fetch": (-1, True),
    }


def _identity(populated: Populated, cursor: int) -> dict[str, Any]:
    response = httpx.post(
        populated.server.url + PRESENCE,
        data={"status": "idle", "last_update_id": str(cursor)},
        auth=populated.auth(),
        headers={"Accept-Encoding": "identity"},
    )
    assert "content-encoding" not in response.headers
    body: dict[str, Any] = response.json()
    return body


def test_raw_gzip_bodies(populated: Populated) -> None:
    for name, (cursor, compressed) in _cases(populated).items():
        expected = _identity(populated, cursor)
        with httpx.stream(
            "POST",
            populated.server.url + PRESENCE,
            data={"status": "idle", "last_update_id": str(cursor)},
            auth=populated.auth(),
            headers={"Accept-Encoding": "gzip"},
        ) as response:
            raw = b"".join(response.iter_raw())
        assert (response.headers.get("content-encoding") == "gzip") is compressed, name
        body = gzip.decompress(raw) if compressed else raw
        assert len(raw) == int(response.headers["content-length"])
        decoded = json.loads(body)
        assert decoded["presences"] == expected["presences"], name
        if name == "many blocks":
            assert len(decoded["presences"]) == USERS - 1
            assert len(raw) * 4 < len(body)


def test_zulip_client_decodes_every_size(populated: Populated) -> None:
    client = populated.server.client(populated.email, populated.api_key)
    for name, (cursor, compressed) in _cases(populated).items():
        expected = _identity(populated, cursor)
        result = client.update_presence({"status": "idle", "last_update_id": cursor})
        assert result["result"] == "success", name
        assert result["presences"] == expected["presences"], name
        # requests asked for gzip, as the zulip client always does.
        raw = client.session.post(
            populated.server.url + PRESENCE,
            data={"status": "idle", "last_update_id": str(cursor)},
            auth=populated.auth(),
        )
        assert (raw.headers.get("content-encoding") == "gzip") is compressed, name
        assert raw.json()["presences"] == expected["presences"], name


FETCH = """
const [url, body, auth, done] = arguments;
fetch(url, {method: "POST", body: new URLSearchParams(body),
            headers: {"Authorization": "Basic " + btoa(auth)}})
  .then(async (r) => done({encoding: r.headers.get("content-encoding"), text: await r.text()}))
  .catch((e) => done({error: String(e)}));
"""


@pytest.mark.skipif(not browser_available(), reason="needs Debian's chromium and chromedriver")
def test_browser_decodes_every_size(populated: Populated) -> None:
    with chromium() as driver:
        driver.set_script_timeout(30)
        driver.get(populated.server.url + "/api/v1/server_settings")  # same origin
        for name, (cursor, compressed) in _cases(populated).items():
            expected = _identity(populated, cursor)
            got = driver.execute_async_script(
                FETCH,
                populated.server.url + PRESENCE,
                {"status": "idle", "last_update_id": str(cursor)},
                f"{populated.email}:{populated.api_key}",
            )
            assert "error" not in got, got
            assert (got["encoding"] == "gzip") is compressed, (name, got["encoding"])
            assert json.loads(got["text"])["presences"] == expected["presences"], name
