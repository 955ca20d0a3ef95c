"""``presenced embed create | list | revoke``: real CLI processes against the running app's
database, so their changes reach its caches as an operator's would."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from typing import Any

from conftest import Account, Harness
from presenced.store.factory import sqlite_path
from presenced.web.embed.tokens import token_hash


def run_cli(harness: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PRESENCED_DATABASE_URL": harness.settings.database_url,
        "PRESENCED_EXTERNAL_HOST": "people.example:9991",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-m", "presenced", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def cli_json(harness: Harness, *args: str) -> Any:
    result = run_cli(harness, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def refused(harness: Harness, *args: str) -> str:
    result = run_cli(harness, *args)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("presenced: ")
    return result.stderr


def test_create_list_revoke(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    hamlet, othello = zulip_realm["hamlet"], zulip_realm["othello"]
    made = cli_json(
        harness,
        "embed",
        "create",
        "--label",
        "HR directory",
        "--users",
        f"{hamlet.email}, {othello.email}",
        "--origin",
        "https://Intranet.Example/people",
        "--origin",
        "http://localhost:8080",
    )
    token = made["token"]
    assert made["url"] == f"http://people.example:9991/embed/directory?token={token}"
    assert made["user_ids"] == sorted([hamlet.id, othello.id])
    assert made["origins"] == ["https://intranet.example", "http://localhost:8080"]
    # It works at once, and only its people are shown.
    response = harness.client.get("/embed/presence.json", params={"token": token})
    assert response.status_code == 200, response.text
    assert {p["email"] for p in response.json()["people"]} == {hamlet.email, othello.email}

    whole = run_cli(harness, "embed", "create")
    assert whole.returncode == 0, whole.stderr
    lines = dict(line.split(": ", 1) for line in whole.stdout.splitlines())
    assert lines["url"].endswith("?token=" + lines["token"])

    listed = cli_json(harness, "embed", "list")
    assert [t["token_id"] for t in listed] == [made["token_id"], int(lines["token_id"])]
    assert listed[0]["label"] == "HR directory"
    assert listed[1]["user_ids"] is None
    text = run_cli(harness, "embed", "list").stdout
    # Never the token itself, in a listing or in the database.
    path = sqlite_path(harness.settings.database_url)
    for secret in (token, lines["token"]):
        assert secret not in text and secret not in json.dumps(listed)
        found = harness.run(harness.server.store.embed_token_by_hash, token_hash(secret))
        assert found is not None and found.prefix == secret[:4]
        if path is not None:  # the whole SQLite file, byte for byte
            with sqlite3.connect(path) as db:
                dumped = "\n".join(db.iterdump())
            assert secret not in dumped

    assert run_cli(harness, "embed", "revoke", str(made["token_id"])).returncode == 0
    response = harness.client.get("/embed/presence.json", params={"token": token})
    assert response.status_code == 401
    assert run_cli(harness, "embed", "revoke", lines["token"]).returncode == 0
    assert cli_json(harness, "embed", "list") == []


def test_origins_are_normalized(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    made = cli_json(
        harness,
        "embed",
        "create",
        "--origin",
        "HTTPS://Intranet.Example:443/people",
        "http://[::1]:8080",
        "https://bücher.example",
    )
    assert made["origins"] == [
        "https://intranet.example",
        "http://[::1]:8080",
        "https://xn--bcher-kva.example",
    ]


def test_refusals(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    assert "no user 'nobody@zulip.com'" in refused(
        harness, "embed", "create", "--users", "nobody@zulip.com"
    )
    assert "is a bot" in refused(harness, "embed", "create", "--users", "default-bot@zulip.com")
    assert run_cli(harness, "user", "deactivate", "--email", "othello@zulip.com").returncode == 0
    assert "othello@zulip.com is deactivated" in refused(
        harness, "embed", "create", "--users", "hamlet@zulip.com,othello@zulip.com"
    )
    assert "names nobody" in refused(harness, "embed", "create", "--users", " , ")
    assert "not an http(s) origin" in refused(harness, "embed", "create", "--origin", "ftp://x")
    assert "not an http(s) origin" in refused(harness, "embed", "create", "--origin", "intranet")
    # Nothing but a host may reach the CSP header (a space or ";" would widen frame-ancestors
    # or add a directive), and a malformed bracketed host is a refusal, not a traceback.
    for origin in (
        "https://a.example *",
        "https://a.example;script-src *",
        "https://[zz]",
        "http://[::1",
    ):
        assert "not an http(s) origin" in refused(harness, "embed", "create", "--origin", origin)
    assert "realm 'nowhere' does not exist" in refused(
        harness, "embed", "create", "--realm", "nowhere"
    )
    assert "no embed token with id 99" in refused(harness, "embed", "revoke", "99")
    assert "no such embed token" in refused(harness, "embed", "revoke", "not-a-token")
    assert cli_json(harness, "embed", "list") == []
