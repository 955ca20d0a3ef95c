"""A real ``presenced serve`` process, set up with the CLI, driven by real clients.

The unmodified ``zulip`` package from PyPI and the curl commands of Zulip's documentation
(the seeds), with only the host and the credentials changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zulip

import pg
from live import LiveServer, live_server
from openapi_validation import validate_response
from redis_support import REDIS_URL, redis_prefix
from round_robin import round_robin_proxy


@pytest.fixture(scope="module", params=["one process", "two processes behind a round-robin proxy"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One ``presenced serve`` on its SQLite file; or, as the deployment for several
    processes is meant to run, two on one PostgreSQL database and one Redis behind a proxy
    that sends each request to the next: every test here must pass on both."""
    workdir = tmp_path_factory.mktemp("live")
    if request.param == "one process":
        with live_server(workdir) as server:
            server.cli("realm", "create", "--name", "Zulip Dev")
            yield server
        return
    with contextlib.ExitStack() as stack:
        prefix = stack.enter_context(redis_prefix())
        database = stack.enter_context(pg.temporary_database(migrated=False))
        env = {
            "PRESENCED_DATABASE_URL": database,
            "PRESENCED_REDIS_URL": REDIS_URL,
            "PRESENCED_REDIS_KEY_PREFIX": prefix,
        }
        (workdir / "a").mkdir()
        (workdir / "b").mkdir()
        first = stack.enter_context(live_server(workdir / "a", env))
        second = stack.enter_context(live_server(workdir / "b", env))
        url = stack.enter_context(round_robin_proxy(workdir / "proxy", [first.url, second.url]))
        first.cli("realm", "create", "--name", "Zulip Dev")
        yield dataclasses.replace(first, url=url)


def checked(method: str, path: str, result: dict[str, Any], status: int = 200) -> dict[str, Any]:
    validate_response(method, path, status, result)
    return result


def test_zulip_client_presence(live: LiveServer) -> None:
    iago = live.user("iago@zulip.com", "Iago", "--role", "admin")
    hamlet = live.user("hamlet@zulip.com", "King Hamlet")
    bot = live.user("bot@zulip.com", "A bot", "--bot")
    iago_client = live.client(iago["email"], iago["api_key"])
    hamlet_client = live.client(hamlet["email"], hamlet["api_key"])
    bot_client = live.client(bot["email"], bot["api_key"])
    assert iago_client.zulip_version == "11.0"
    assert iago_client.feature_level >= 419

    modern = checked(
        "POST",
        "/api/v1/users/me/presence",
        iago_client.update_presence(
            {"status": "active", "ping_only": False, "new_user_input": False, "last_update_id": -1}
        ),
    )
    assert modern["result"] == "success"
    assert set(modern["presences"]) == {str(iago["user_id"])}
    cursor = modern["presence_last_update_id"]
    assert cursor >= 1

    legacy = checked(
        "POST", "/api/v1/users/me/presence", hamlet_client.update_presence({"status": "idle"})
    )
    assert set(legacy["presences"]) == {"iago@zulip.com", "hamlet@zulip.com"}
    assert legacy["presences"]["iago@zulip.com"]["aggregated"]["status"] == "active"

    delta = iago_client.update_presence({"status": "active", "last_update_id": cursor})
    assert set(delta["presences"]) == {str(hamlet["user_id"])}
    assert delta["presence_last_update_id"] > cursor

    realm = checked("GET", "/api/v1/realm/presence", bot_client.get_realm_presence())
    assert set(realm["presences"]) == {"iago@zulip.com", "hamlet@zulip.com"}

    by_email = checked(
        "GET",
        "/api/v1/users/hamlet@zulip.com/presence",
        iago_client.get_user_presence("hamlet@zulip.com"),
    )
    assert by_email["presence"]["website"]["status"] in ("active", "idle")
    by_id = iago_client.get_user_presence(str(hamlet["user_id"]))
    assert by_id["presence"] == by_email["presence"]
    missing = iago_client.get_user_presence("nobody@zulip.com")
    assert missing == {"result": "error", "msg": "No such user", "code": "BAD_REQUEST"}

    refused = bot_client.update_presence({"status": "active"})
    assert refused["msg"] == "This endpoint does not accept bot requests."


def test_zuliprc_keys_and_revocation(live: LiveServer, tmp_path: Path) -> None:
    live.user("cordelia@zulip.com", "Cordelia")
    rc = tmp_path / "zuliprc"
    rc.write_text(live.cli("zuliprc", "--email", "cordelia@zulip.com", "--site", live.url))
    client = zulip.Client(config_file=str(rc))
    assert client.update_presence({"status": "active", "ping_only": True})["result"] == "success"
    profile = checked("GET", "/api/v1/users/me", client.get_profile())
    assert profile["email"] == "cordelia@zulip.com"
    members = checked("GET", "/api/v1/users", client.get_members())
    assert "cordelia@zulip.com" in {m["email"] for m in members["members"]}

    keys = json.loads(live.cli("key", "list", "--email", "cordelia@zulip.com", "--json"))
    assert len(keys) == 2
    zuliprc_key = keys[-1]["key_id"]
    live.cli("key", "revoke", "--email", "cordelia@zulip.com", "--key-id", str(zuliprc_key))
    revoked = client.get_realm_presence()
    assert revoked["msg"] == "Invalid API key"

    fresh = live.cli("key", "create", "--email", "cordelia@zulip.com", "--label", "laptop").strip()
    assert len(fresh) == 32
    client2 = live.client("cordelia@zulip.com", fresh)
    assert client2.get_realm_presence()["result"] == "success"

    live.cli("user", "deactivate", "--email", "cordelia@zulip.com")
    assert client2.get_realm_presence()["msg"] == "Account is deactivated"


# The curl commands of Zulip's pages (shared/seeds), verbatim but for host and credentials.
SEED_CURLS = {
    "update-presence": """curl -sSX POST https://garlic.sandwich.net/api/v1/users/me/presence \\
    -u BOT_EMAIL_ADDRESS:BOT_API_KEY \\
    --data-urlencode last_update_id=5 \\
    --data-urlencode history_limit_days=365 \\
    --data-urlencode new_user_input=false \\
    --data-urlencode ping_only=false \\
    --data-urlencode slim_presence=false \\
    --data-urlencode status=active""",
    "get-presence": """curl -sSX GET -G https://legion.zulipchat.com/api/v1/realm/presence \\
    -u BOT_EMAIL_ADDRESS:BOT_API_KEY""",
    "get-user-presence-2020": """curl -X GET https://hrms-new.chat.convergenceservices.in/api/v1/users/<email>/presence \\
-u BOT_EMAIL_ADDRESS:BOT_API_KEY""",
    "get-user-presence": """curl -sSX GET -G https://example.zulipchat.com/api/v1/users/iago@zulip.com/presence \\
    -u BOT_EMAIL_ADDRESS:BOT_API_KEY""",
}


@pytest.mark.parametrize("name", sorted(SEED_CURLS))
def test_seed_curl_commands(live: LiveServer, name: str) -> None:
    with contextlib.suppress(AssertionError):  # created by an earlier test
        live.cli("user", "create", "--email", "iago@zulip.com", "--full-name", "Iago")
    key = live.cli("key", "create", "--email", "iago@zulip.com").strip()
    iago = zulip.Client(email="iago@zulip.com", api_key=key, site=live.url)
    iago.update_presence({"status": "active"})
    command = SEED_CURLS[name].replace("<email>", "iago@zulip.com")
    for host in (
        "https://garlic.sandwich.net",
        "https://legion.zulipchat.com",
        "https://hrms-new.chat.convergenceservices.in",
        "https://example.zulipchat.com",
    ):
        command = command.replace(host, live.url)
    command = command.replace("BOT_EMAIL_ADDRESS:BOT_API_KEY", f"iago@zulip.com:{key}")
    argv = shlex.split(command.replace("\\\n", " "))
    result = subprocess.run(argv, capture_output=True, timeout=30, check=True)
    body = json.loads(result.stdout)
    assert body["result"] == "success", body
    path = next(a for a in argv if a.startswith(live.url))[len(live.url) :]
    method = argv[next(i for i, a in enumerate(argv) if a.startswith("-") and a.endswith("X")) + 1]
    checked(method, path, body)


def test_call_on_each_event_receives_presence_and_reregisters(live: LiveServer) -> None:
    """The client's own event loop: a presence event from another user's first report; after
    its queue is deleted, it registers a new one by itself and keeps receiving."""
    watcher = live.user("watcher@zulip.com", "Watcher")
    first = live.user("first@zulip.com", "First Reporter")
    second = live.user("second@zulip.com", "Second Reporter")
    client = live.client(watcher["email"], watcher["api_key"])
    queue_ids: list[str] = []
    received: list[dict[str, Any]] = []
    register = client.register

    def recording_register(*args: Any, **kwargs: Any) -> Any:
        result = register(*args, **kwargs)
        queue_ids.append(result["queue_id"])
        return result

    client.register = recording_register
    thread = threading.Thread(
        target=client.call_on_each_event, args=(received.append, ["presence"]), daemon=True
    )
    thread.start()

    def wait_for(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 20
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    wait_for(lambda: len(queue_ids) == 1, "the first registration")
    live.client(first["email"], first["api_key"]).update_presence({"status": "active"})
    wait_for(lambda: any(e.get("user_id") == first["user_id"] for e in received), "an event")
    event = next(e for e in received if e.get("user_id") == first["user_id"])
    assert event["type"] == "presence"
    assert event["email"] == "first@zulip.com"
    assert event["presence"]["website"]["status"] == "active"

    other = live.client(watcher["email"], watcher["api_key"])
    assert other.deregister(queue_ids[0])["result"] == "success"
    wait_for(lambda: len(queue_ids) == 2, "a new registration")
    live.client(second["email"], second["api_key"]).update_presence({"status": "idle"})
    wait_for(lambda: any(e.get("user_id") == second["user_id"] for e in received), "an event")
