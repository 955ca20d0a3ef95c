"""The embed's HTTP endpoints against the real app: who is shown, in which state, and every
refusal in Zulip's error envelope."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx

from conftest import Account, Harness
from embed_helpers import make_token
from presenced.store.base import BotType


def presence_json(harness: Harness, token: str, **headers: str) -> httpx.Response:
    return harness.client.get("/embed/presence.json", params={"token": token}, headers=headers)


def people(harness: Harness, token: str) -> dict[str, dict[str, Any]]:
    response = presence_json(harness, token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"] == "success"
    return {p["email"]: p for p in body["people"]}


def assert_embed_error(response: httpx.Response, status: int, msg: str, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["result"], body["msg"], body["code"]) == ("error", msg, code)


def test_lists_covered_humans_with_zulip_states(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    token, _ = make_token(harness)
    harness.account("visitor@other.org", realm="other")
    harness.presence(zulip_realm["othello"], "active")
    harness.clock.advance(harness.settings.offline_threshold_secs + 50)
    harness.presence(zulip_realm["othello"], "idle")  # here, but last active long ago
    harness.presence(zulip_realm["hamlet"], "active")
    now = harness.clock()
    harness.set_times(zulip_realm["bot"], now, now)  # bots cannot report; a stored row anyway
    shown = people(harness, token)
    # Bots are never shown, nor anyone of another organization.
    assert set(shown) == {
        "hamlet@zulip.com",
        "othello@zulip.com",
        "iago@zulip.com",
        "cordelia@zulip.com",
    }
    assert shown["hamlet@zulip.com"]["presence"] == "active"
    assert shown["othello@zulip.com"]["presence"] == "idle"
    assert shown["iago@zulip.com"]["presence"] == "offline"
    assert shown["iago@zulip.com"]["active_timestamp"] is None
    assert shown["hamlet@zulip.com"]["full_name"] == "King Hamlet"
    assert set(shown["hamlet@zulip.com"]) == {
        "user_id",
        "full_name",
        "email",
        "active_timestamp",
        "idle_timestamp",
        "presence",
    }
    # Time alone: past the offline threshold everyone looks offline.
    harness.clock.advance(harness.settings.offline_threshold_secs + 1)
    assert {p["presence"] for p in people(harness, token).values()} == {"offline"}


def test_invisible_deactivated_and_token_users(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    hamlet, othello = zulip_realm["hamlet"], zulip_realm["othello"]
    token, _ = make_token(harness, user_ids=frozenset({hamlet.id, othello.id}))
    harness.presence(hamlet)
    harness.presence(othello)
    assert set(people(harness, token)) == {hamlet.email, othello.email}
    response = harness.request(
        "PATCH", "/settings", account=hamlet, data={"presence_enabled": False}
    )
    assert response.status_code == 200, response.text
    assert people(harness, token)[hamlet.email]["presence"] == "offline"
    harness.run(harness.server.store.set_user_active, othello.id, False)
    assert set(people(harness, token)) == {hamlet.email}


def test_realm_with_presence_disabled_shows_everyone_offline(
    harness: Harness, zulip_realm: dict[str, Account]
) -> None:
    token, _ = make_token(harness)
    harness.presence(zulip_realm["hamlet"])
    harness.run(harness.server.store.set_realm_presence_disabled, harness.realm().id, True)
    shown = people(harness, token)
    assert {p["presence"] for p in shown.values()} == {"offline"}
    assert {p["active_timestamp"] for p in shown.values()} == {None}


def test_bad_tokens_and_parameters(harness: Harness, zulip_realm: dict[str, Account]) -> None:
    token, record = make_token(harness)
    for path in ("/embed/presence.json", "/embed/directory", "/embed/stream"):
        assert_embed_error(
            harness.client.get(path), 400, "Missing 'token' argument", "REQUEST_VARIABLE_MISSING"
        )
        for bad in ("nope", "x" * 32, "'; DROP TABLE users; --", "é" * 40):
            assert_embed_error(
                harness.client.get(path, params={"token": bad}),
                401,
                "Invalid or revoked embed token",
                "UNAUTHORIZED",
            )
        # Other methods get the API's answers (Zulip's 405 body, OPTIONS 204), as the docs do.
        for method in ("POST", "PATCH", "DELETE"):
            refused = harness.client.request(method, path, params={"token": token})
            assert refused.status_code == 405, refused.text
            assert refused.headers["allow"] == "GET, HEAD"
            assert refused.json() == {
                "result": "error",
                "msg": "Method Not Allowed",
                "allowed_methods": ["GET", "HEAD"],
            }
        options = harness.client.options(path, params={"token": token})
        assert (options.status_code, options.headers["allow"]) == (204, "GET, HEAD")
    head = harness.client.head("/embed/stream", params={"token": token})
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert_embed_error(
        harness.client.get("/embed/directory", params={"token": token, "theme": "neon"}),
        400,
        "Invalid theme: use light or dark",
        "BAD_REQUEST",
    )
    # A revoked token stops working on the next request, and the API keys are not tokens.
    assert harness.run(harness.server.store.revoke_embed_token, record.id)
    assert_embed_error(
        presence_json(harness, token), 401, "Invalid or revoked embed token", "UNAUTHORIZED"
    )
    assert_embed_error(
        presence_json(harness, zulip_realm["hamlet"].api_key),
        401,
        "Invalid or revoked embed token",
        "UNAUTHORIZED",
    )


def test_deactivated_realm_refuses_its_tokens(harness: Harness) -> None:
    harness.account("someone@other.org", realm="other")
    token, _ = make_token(harness, realm="other")
    assert set(people(harness, token)) == {"someone@other.org"}
    harness.run(harness.server.store.set_realm_deactivated, harness.realm("other").id, True)
    assert_embed_error(
        presence_json(harness, token), 401, "Invalid or revoked embed token", "UNAUTHORIZED"
    )


def test_origins_limit_framing_and_reading(harness: Harness) -> None:
    harness.account("hamlet@zulip.com")
    open_token, _ = make_token(harness)
    token, _ = make_token(harness, origins=("https://intranet.example",))

    response = presence_json(harness, open_token, origin="https://anywhere.example")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    page = harness.client.get("/embed/directory", params={"token": open_token})
    assert "frame-ancestors *" in page.headers["content-security-policy"]

    allowed = presence_json(harness, token, origin="https://intranet.example")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://intranet.example"
    assert_embed_error(
        presence_json(harness, token, origin="https://evil.example"),
        403,
        "This embed token may not be used from this site",
        "BAD_REQUEST",
    )
    page = harness.client.get("/embed/directory", params={"token": token})
    assert page.status_code == 200
    assert page.headers["content-security-policy"].endswith(
        "frame-ancestors https://intranet.example"
    )


def test_directory_page_is_self_contained(harness: Harness) -> None:
    harness.account("hamlet@zulip.com")
    token, _ = make_token(harness)
    for theme in ("light", "dark"):
        page = harness.client.get("/embed/directory", params={"token": token, "theme": theme})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-store"
        assert f'data-theme="{theme}"' in page.text
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        nonce = csp.split("'nonce-")[1].split("'")[0]
        assert page.text.count(f'nonce="{nonce}"') == 2
        # No external assets: nothing to fetch but the page itself and its stream.
        # (The icon is an empty data: URL, so that browsers do not ask for /favicon.ico.)
        assert page.text.count("href=") == page.text.count('href="data:,"') == 1
        assert "src=" not in page.text and "@import" not in page.text and "url(" not in page.text
        assert len(page.content) < 12_000
    script = harness.client.get("/embed/presence.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "data-presenced-user" in script.text


def test_bot_reports_never_reach_the_json(harness: Harness) -> None:
    bot = harness.account("bot@zulip.com", bot_type=BotType.GENERIC)
    token, _ = make_token(harness, user_ids=frozenset({bot.id}))
    harness.set_times(bot, harness.clock(), harness.clock())
    assert people(harness, token) == {}
