"""Test harness: the real app over a real store (a SQLite file, or a PostgreSQL database),
driven through HTTP.

Time is the one thing tests control directly: the app takes a clock, and a FakeClock lets a
test say "56 seconds later" without sleeping. Every response is checked against the OpenAPI
document, as Zulip's own test client does.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

import pg
from openapi_validation import validate_response
from presenced.app import create_app
from presenced.core.server import Server
from presenced.keys import PREFIX_LENGTH, generate_api_key, hash_api_key
from presenced.settings import Settings, load_settings
from presenced.store.base import (
    BotType,
    PresenceReport,
    PresenceRow,
    PresenceTimes,
    PresenceWrite,
    Realm,
    Role,
    User,
)
from redis_support import REDIS_URL, redis_prefix

T = TypeVar("T")

START = 1_780_000_000.0
"""Where fake time starts (mid 2026)."""
DAY = 86400.0


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass(frozen=True)
class Account:
    """A user as a test holds it: the record and a working API key."""

    user: User
    api_key: str
    subdomain: str

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def email(self) -> str:
        return self.user.email

    def authorization(self) -> str:
        token = base64.b64encode(f"{self.user.delivery_email}:{self.api_key}".encode()).decode()
        return f"Basic {token}"


LIFECYCLE = frozenset({"open", "close", "migrate", "ping"})
"""Store calls that change no data (so no change notice follows them)."""


class Harness:
    def __init__(self, client: TestClient, server: Server, clock: FakeClock) -> None:
        self.client = client
        self.server = server
        self.clock = clock
        self.settings: Settings = server.settings
        self._realms: dict[str, Realm] = {}

    # Running store calls on the app's own event loop

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Call ``fn`` on the app's loop. A direct store call stands for another process (the
        CLI, another server) changing the database: its change notice is then delivered, as
        the change feed would (SQLite's own hint would find it anyway; PostgreSQL has none)."""
        portal = self.client.portal
        assert portal is not None
        result = portal.call(fn, *args)
        if getattr(fn, "__self__", None) is self.server.store and fn.__name__ not in LIFECYCLE:
            portal.call(self.server.changes.check_store)
        return result

    def other_process_committed(self) -> None:
        """Another process (the CLI, another server) committed to the database. SQLite's own
        hint finds that on the next request; with PostgreSQL the notice comes from the change
        feed (Redis) or the periodic check, within a second: here it is delivered at once."""
        if not self.settings.database_url.startswith("sqlite"):
            self.run(self.server.changes.check_store)

    # Fixtures of data

    def realm(self, subdomain: str = "", name: str = "Zulip Dev") -> Realm:
        if subdomain not in self._realms:
            self._realms[subdomain] = self.run(
                self.server.store.create_realm, subdomain, name, self.clock()
            )
        return self._realms[subdomain]

    def account(
        self,
        email: str,
        *,
        realm: str = "",
        full_name: str | None = None,
        role: Role = Role.MEMBER,
        bot_type: BotType | None = None,
        delivery_email: str | None = None,
        date_joined: float | None = None,
    ) -> Account:
        realm_record = self.realm(realm)
        user = self.run(
            self.server.store.create_user,
            realm_record.id,
            email,
            delivery_email or email,
            full_name or email.split("@")[0].title(),
            role,
            bot_type,
            None,
            self.clock() if date_joined is None else date_joined,
        )
        key = generate_api_key()
        self.run(
            self.server.store.create_api_key,
            user.id,
            hash_api_key(key),
            key[:PREFIX_LENGTH],
            "test",
            self.clock(),
        )
        return Account(user=user, api_key=key, subdomain=realm)

    def refresh(self, account: Account) -> Account:
        user = self.run(self.server.store.get_user, account.id)
        assert user is not None
        return Account(user=user, api_key=account.api_key, subdomain=account.subdomain)

    def presence_row(self, account: Account) -> PresenceRow | None:
        return self.run(self.server.store.get_presence, account.id)

    def set_times(self, account: Account, active: float | None, connected: float | None) -> None:
        """Overwrite a user's stored times through the store's own write path."""

        def overwrite(_: PresenceTimes | None) -> PresenceWrite:
            return PresenceWrite(PresenceTimes(active, connected), write=True, became_online=False)

        report = PresenceReport(account.id, account.user.realm_id, overwrite, None)
        self.run(self.server.store.record_presence, report)

    # HTTP

    def host_for(self, subdomain: str) -> str:
        host = self.settings.external_host
        return f"{subdomain}.{host}" if subdomain else host

    def request(
        self,
        method: str,
        path: str,
        *,
        account: Account | None = None,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        subdomain: str | None = None,
    ) -> httpx.Response:
        if subdomain is None:
            subdomain = account.subdomain if account else ""
        all_headers = {"Host": self.host_for(subdomain)}
        if account is not None:
            all_headers["Authorization"] = account.authorization()
        all_headers.update(headers or {})
        response = self.client.request(
            method,
            "/api/v1" + path,
            params=_encode(params),
            data=_encode(data),
            headers=all_headers,
        )
        check_response(method, response)
        return response

    def get(self, path: str, account: Account | None = None, **params: Any) -> httpx.Response:
        return self.request("GET", path, account=account, params=params)

    def post(self, path: str, account: Account | None = None, **data: Any) -> httpx.Response:
        return self.request("POST", path, account=account, data=data)

    def presence(self, account: Account, status: str = "active", **data: Any) -> dict[str, Any]:
        """``POST /users/me/presence``, asserting success; returns the JSON body."""
        response = self.post("/users/me/presence", account, status=status, **data)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _encode(values: dict[str, Any] | None) -> dict[str, str] | None:
    """Encode parameters as the ``zulip`` client does: strings raw, everything else as JSON."""
    if values is None:
        return None
    import json

    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def check_response(method: str, response: httpx.Response) -> None:
    """Every response: Zulip's envelope and the OpenAPI document."""
    path = response.request.url.path
    if method == "HEAD" or response.status_code == 204:
        return
    if response.status_code == 405:
        # Zulip's json_method_not_allowed: Django's HttpResponseNotAllowed (HTML's content
        # type) with a JSON body that has no final newline.
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert not response.content.endswith(b"\n")
    else:
        assert response.headers["content-type"] == "application/json", response.headers
        assert response.content.endswith(b"\n")
    body = response.json()
    if path.startswith("/api/v1/openapi.json"):
        return
    if response.status_code != 405:
        assert body["result"] == ("success" if response.status_code == 200 else "error")
        assert "msg" in body
        assert list(body)[:2] == ["result", "msg"]
    validate_response(method, path, response.status_code, body)


def assert_error(
    response: httpx.Response, status: int, msg: str, code: str = "BAD_REQUEST"
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["result"] == "error"
    assert body["msg"] == msg
    assert body["code"] == code
    return body


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'presenced.db'}",
        "rate_limit_requests": 0,
    }
    values.update(overrides)
    return load_settings(environ={}, **values)


BACKENDS = ["embedded", "redis"]


@pytest.fixture
def harness_backends(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Settings that choose the harness's backends: embedded, unless a module or test
    parametrises this fixture indirectly over ``BACKENDS``; ``"redis"`` adds the machine's
    Redis under a key prefix of the test's own, whose keys are deleted afterwards."""
    if getattr(request, "param", "embedded") == "redis":
        with redis_prefix() as prefix:
            yield {"redis_url": REDIS_URL, "redis_key_prefix": prefix}
    else:
        yield {}


STORES = ("sqlite", "postgres")


@pytest.fixture(scope="module")
def module_postgres() -> Iterator[str]:
    """One PostgreSQL database per test module (creating one per test is slow); each test
    empties it first."""
    with pg.temporary_database() as url:
        yield url


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which backend the harness runs on: every harness test runs on both."""
    kind: str = request.param
    return kind


@pytest.fixture
def make_harness(
    tmp_path: Path,
    store_kind: str,
    harness_backends: dict[str, Any],
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Harness]]:
    clients: list[TestClient] = []
    extra_databases: list[str] = []

    def database_url() -> str | None:
        if store_kind == "sqlite":
            return None  # make_settings' file in the harness's own directory
        if not clients:
            url: str = request.getfixturevalue("module_postgres")
            pg.empty_tables(url)
            return url
        # A second harness in one test gets a database of its own, as with SQLite.
        extra_databases.append(pg.create_database(migrated=False))
        return extra_databases[-1]

    def make(**overrides: Any) -> Harness:
        url = database_url()
        if url is not None:
            overrides.setdefault("database_url", url)
        overrides = {**harness_backends, **overrides}
        settings = make_settings(tmp_path / f"h{len(clients)}", **overrides)
        (tmp_path / f"h{len(clients)}").mkdir()
        clock = FakeClock()
        app = create_app(settings, clock=clock)
        client = TestClient(app, base_url="http://localhost:9991")
        client.__enter__()
        clients.append(client)
        return Harness(client, app.state.server, clock)

    yield make
    for client in clients:
        client.__exit__(None, None, None)
    for url in extra_databases:
        pg.drop_database(url)


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()


@pytest.fixture
def fast(make_harness: Callable[..., Harness]) -> Harness:
    """A harness whose heartbeats come after 0.2 s, so long-polls end quickly."""
    return make_harness(event_queue_heartbeat_secs=0.2)


@pytest.fixture
def zulip_realm(harness: Harness) -> dict[str, Account]:
    """A realm like Zulip's test realm: humans, an admin, a bot."""
    return {
        "hamlet": harness.account("hamlet@zulip.com", full_name="King Hamlet"),
        "othello": harness.account("othello@zulip.com", full_name="Othello, the Moor of Venice"),
        "iago": harness.account("iago@zulip.com", full_name="Iago", role=Role.ADMINISTRATOR),
        "cordelia": harness.account("cordelia@zulip.com", full_name="Cordelia, Lear's daughter"),
        "bot": harness.account(
            "default-bot@zulip.com", full_name="Default bot", bot_type=BotType.GENERIC
        ),
    }
