"""Every usage example on the served documentation pages runs against a live server.

Zulip's ``tools/test-api`` discipline, applied to the pages as served: the examples are taken
from the HTML of a real ``presenced serve``, the test user's credentials are put in (a
``~/zuliprc`` for Python, ``BOT_EMAIL_ADDRESS:BOT_API_KEY`` for curl), objects the examples
name (an event queue, a user ID) are created and their real IDs put in, and then Python runs
through the real ``zulip`` package in a subprocess and curl through a real curl. Every
response must be a success and match the OpenAPI document.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from docs_html import Example, page_links, parse_page
from live import LiveServer, live_server
from openapi_validation import validate_response
from presenced.api.openapi import document
from presenced.web.docs.operations import OpenApiDocument, Operation

OPERATIONS = {op.slug: op for op in OpenApiDocument(document()).operations()}
EXAMPLE_QUEUE_ID = "4c1fa0e5d2b94e7a9c3f6b8d1e2a5c70"
"""The queue ID the document's examples use; replaced by a real queue's."""
CREDENTIALS = "BOT_EMAIL_ADDRESS:BOT_API_KEY"


@dataclass
class DocsServer:
    live: LiveServer
    home: Path
    """The test user's HOME, holding the ``zuliprc`` the Python examples name."""
    email: str
    api_key: str
    user_ids: dict[str, int]

    def page(self, slug: str) -> str:
        response = httpx.get(f"{self.live.url}/api/{slug}", timeout=30)
        assert response.status_code == 200, (slug, response.text)
        assert response.headers["content-type"].startswith("text/html")
        return response.text

    def new_queue(self) -> str:
        result = self.live.client(self.email, self.api_key).register(event_types=["presence"])
        assert result["result"] == "success", result
        queue_id: str = result["queue_id"]
        return queue_id


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocsServer]:
    workdir = tmp_path_factory.mktemp("docs-examples")
    with live_server(workdir) as live:
        live.cli("realm", "create", "--name", "Zulip Dev")
        iago = live.user("iago@zulip.com", "Iago", "--role", "administrator")
        hamlet = live.user("hamlet@zulip.com", "King Hamlet")
        home = workdir / "home"
        home.mkdir()
        (home / "zuliprc").write_text(
            f"[api]\nemail={iago['email']}\nkey={iago['api_key']}\nsite={live.url}\n"
        )
        # The presence examples read someone's presence (iago's, in get-user-presence): as in
        # Zulip's curl test, record one first.
        for user in (iago, hamlet):
            live.client(user["email"], user["api_key"]).update_presence({"status": "active"})
        yield DocsServer(
            live=live,
            home=home,
            email=iago["email"],
            api_key=iago["api_key"],
            user_ids={"iago@zulip.com": iago["user_id"], "hamlet@zulip.com": hamlet["user_id"]},
        )


def real_values(server: DocsServer, operation: Operation) -> dict[str, str]:
    """The example values that must name real objects, and what to put in their place
    (Zulip's ``curl_param_value_generators``)."""
    values: dict[str, str] = {}
    for parameter, example in operation.path_arguments():
        if parameter.name == "user_id":
            values[str(example)] = str(server.user_ids["hamlet@zulip.com"])
    if any(value == EXAMPLE_QUEUE_ID for _, value in operation.example_arguments()):
        values[EXAMPLE_QUEUE_ID] = server.new_queue()
    return values


def substitute_path(operation: Operation, values: dict[str, str]) -> str:
    path = operation.example_path()
    for old, new in values.items():
        path = "/".join(new if segment == old else segment for segment in path.split("/"))
    return "/api/v1" + path


def run_python(server: DocsServer, example: Example, values: dict[str, str]) -> Any:
    code = example.text
    for old, new in values.items():
        code = code.replace(f'"{old}"', f'"{new}"').replace(f"({old}", f"({new}")
        code = code.replace(f"/{old}", f"/{new}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZULIP_")}
    env["HOME"] = str(server.home)
    script = server.home / "example.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{code}\n{done.stderr}"
    return ast.literal_eval(done.stdout.strip())


def run_curl(
    server: DocsServer, operation: Operation, example: Example, values: dict[str, str]
) -> Any:
    assert (CREDENTIALS in example.text) == operation.needs_auth, example.text
    command = example.text.replace(CREDENTIALS, f"{server.email}:{server.api_key}")
    for old, new in values.items():
        command = command.replace(old, new)
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command}\n{done.stderr}"
    return json.loads(done.stdout)


def check_success(operation: Operation, path: str, body: Any) -> None:
    assert isinstance(body, dict)
    if "result" in body:
        assert body["result"] == "success", body
    validate_response(operation.method, path, 200, body)


@pytest.mark.parametrize("slug", sorted(OPERATIONS))
def test_examples_on_the_page_run(docs_server: DocsServer, slug: str) -> None:
    operation = OPERATIONS[slug]
    examples = parse_page(docs_server.page(slug)).examples
    assert sorted(e.language for e in examples) == ["curl", "python"], slug
    for example in examples:
        assert docs_server.live.url + "/api/v1" in example.text or example.language == "python"
        values = real_values(docs_server, operation)
        path = substitute_path(operation, values)
        if example.language == "python":
            body = run_python(docs_server, example, values)
        else:
            body = run_curl(docs_server, operation, example, values)
        check_success(operation, path, body)


def test_every_example_on_every_page_is_on_an_operation_page(docs_server: DocsServer) -> None:
    """Prose pages hold no runnable example this test would miss; every page is linked from
    the index."""
    slugs = page_links(docs_server.page(""))
    assert set(OPERATIONS) <= set(slugs)
    for slug in slugs:
        examples = parse_page(docs_server.page(slug)).examples
        if slug not in OPERATIONS:
            assert examples == [], slug
