"""The online backup of ``docs/deployment.md``: taken while a live server writes, it is a
consistent database another server starts on, with every report acknowledged before it."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest

from deployment_docs import command, replace
from live import live_server

pytestmark = pytest.mark.skipif(shutil.which("sqlite3") is None, reason="no sqlite3 tool")


def test_online_backup_while_serving_restores_to_a_working_server(tmp_path: Path) -> None:
    live_dir, restored_dir = tmp_path / "live", tmp_path / "restored"
    live_dir.mkdir()
    restored_dir.mkdir()
    backup = command(".backup")
    backup = replace(backup, "/var/lib/presenced/presenced.db", str(live_dir / "presenced.db"))
    backup = replace(
        backup, "/var/backups/presenced/presenced.db", str(restored_dir / "presenced.db")
    )
    with live_server(live_dir) as server:
        server.cli("realm", "create", "--name", "Zulip Dev")
        user = server.user("hamlet@zulip.com", "King Hamlet")
        reported = httpx.post(
            server.url + "/api/v1/users/me/presence",
            data={"status": "active"},
            auth=(user["email"], user["api_key"]),
            timeout=30,
        )
        assert reported.status_code == 200, reported.text
        done = subprocess.run(shlex.split(backup), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    check = subprocess.run(
        ["sqlite3", str(restored_dir / "presenced.db"), "PRAGMA integrity_check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.strip() == "ok"
    with live_server(restored_dir, init=False) as restored:
        presence = httpx.get(
            f"{restored.url}/api/v1/users/{user['user_id']}/presence",
            auth=(user["email"], user["api_key"]),
            timeout=30,
        )
        assert presence.status_code == 200, presence.text
        assert presence.json()["presence"]["aggregated"]["status"] == "active"
