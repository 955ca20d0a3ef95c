"""A schemathesis run against a real server's own ``/api/v1/openapi.json``, authenticated:
generated valid and invalid requests for every operation. Zero 5xx, and every response as the
document says (status, headers, body): the document is exactly as strict as the server."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from live import LiveServer, live_server

EXAMPLES_PER_OPERATION = 25
"""Per operation and mode; keeps the whole run well under a minute."""

LOOKUPS = {"/users/{user_id}", "/users/{user_id_or_email}/presence", "/events"}
"""Operations where a well-formed request may name what does not exist (a user, a queue):
Zulip answers those with 400, which no schema can foresee, so only there a valid request
may be refused."""


@schemathesis.serializer("application/x-www-form-urlencoded")
def zulip_form(ctx: Any, value: Any) -> bytes:
    """Form fields as Zulip clients send them (and as the document's ``encoding`` says):
    strings as they are, every other value as JSON."""
    if isinstance(value, Mapping):
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
        return urlencode(fields).encode()
    return json.dumps(value).encode()


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        # Generated requests come fast: no rate limits in the way of the checks.
        "PRESENCED_RATE_LIMIT_REQUESTS": "0",
        "PRESENCED_AUTH_FAILURE_LIMIT": "0",
        "PRESENCED_EVENT_QUEUE_HEARTBEAT_SECS": "0.5",
    }
    with live_server(tmp_path_factory.mktemp("fuzz"), env) as live:
        live.cli("realm", "create", "--name", "Fuzz")
        yield live


@pytest.fixture(scope="module")
def authorization(fuzzed_server: LiveServer) -> str:
    user = fuzzed_server.user("fuzz@example.com", "Fuzz", "--role", "owner")
    fuzzed_server.user("other@example.com", "Other")
    token = base64.b64encode(f"{user['email']}:{user['api_key']}".encode()).decode()
    return f"Basic {token}"


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: LiveServer) -> Any:
    schema = schemathesis.openapi.from_url(fuzzed_server.url + "/api/v1/openapi.json")
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=EXAMPLES_PER_OPERATION,
        deterministic=True,
    )
    return schema


def fuzz(operation: Any, mode: GenerationMode, authorization: str) -> None:
    @given(operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        excluded = [positive_data_acceptance] if operation.path in LOOKUPS else []
        if mode is GenerationMode.NEGATIVE:
            # On the wire every form or query value is a string, and parameters the server
            # does not know are accepted and listed as ignored (as in Zulip): many
            # "invalid" requests are indistinguishable from valid ones. Negative cases
            # check the answers (no 5xx, documented statuses and bodies), not rejection.
            excluded.append(negative_data_rejection)
        case.call_and_validate(
            headers={"Authorization": authorization}, excluded_checks=excluded, timeout=10
        )

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # no parameters: no invalid request to make


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests(api_schema: Any, authorization: str, mode: GenerationMode) -> None:
    """Every operation, one after the other; a failure names the operation and the case."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:
        try:
            fuzz(operation, mode, authorization)
        except Exception as exc:
            raise AssertionError(f"{operation.method.upper()} {operation.path}: {exc}") from exc
