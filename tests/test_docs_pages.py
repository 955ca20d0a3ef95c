"""The API documentation pages, through the real app over HTTP: one page per operation of the
OpenAPI document, the general pages, the organization's URL in every example, the render
cache, and JSON errors for anything else."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from conftest import Harness
from docs_html import page_links, parse_page
from presenced.api.openapi import document
from presenced.settings import load_settings
from presenced.web.docs import docs_routes
from presenced.web.docs.operations import OpenApiDocument
from presenced.web.docs.site import DocsSite

OPERATIONS = list(OpenApiDocument(document()).operations())
ISSUE_SLUGS = [
    "update-presence",
    "get-presence",
    "get-user-presence",
    "register-queue",
    "get-events",
    "delete-queue",
    "get-server-settings",
    "get-own-user",
    "get-users",
    "get-user",
    "update-settings",
    "update-status",
    "get-subscriptions",
    "get-streams",
]
GENERAL_PAGES = {
    "api-keys": "API keys",
    "configuring-python-bindings": "The zuliprc file",
    "http-headers": "HTTP headers and rate limits",
    "rest-error-handling": "Error handling",
    "changelog": "API changelog",
}


def html_page(harness: Harness, path: str, host: str | None = None) -> str:
    headers = {"Host": host or harness.settings.external_host}
    response = harness.client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.text)
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    return response.text


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.slug for op in OPERATIONS])
def test_every_operation_has_a_page(harness: Harness, operation: Any) -> None:
    html = html_page(harness, f"/api/{operation.slug}")
    content = parse_page(html)
    assert "<h1 id=" in html and f">{operation.summary}</h1>" in html.replace("&#x27;", "'")
    endpoint_line = f"{operation.method} http://localhost:9991/api/v1{operation.path}"
    assert endpoint_line in content.code_texts
    for heading in ("Usage examples", "Parameters", "Response", "Return values"):
        assert f">{heading}</h" in html
    assert ">Example response(s)</h4>" in html
    assert sorted(e.language for e in content.examples) == ["curl", "python"]
    for parameter in operation.parameters:
        assert f'id="parameter-{parameter.name}"' in html
    for field in operation.return_values:
        for named in field.children if not field.label else (field,):
            assert named.label in content.code_texts
    for example in operation.responses:
        assert f">{example.status} " in html


def test_the_issue_s_pages_and_the_general_pages_are_served(harness: Harness) -> None:
    index = html_page(harness, "/api/")
    assert html_page(harness, "/api") == index
    linked = page_links(index)
    for slug in [*ISSUE_SLUGS, *(op.slug for op in OPERATIONS), *GENERAL_PAGES]:
        assert slug in linked, slug
        html_page(harness, f"/api/{slug}")
    for slug, title in GENERAL_PAGES.items():
        assert f">{title}</h1>" in html_page(harness, f"/api/{slug}")
    # The index lists the endpoints by section, with the document's tags as sections.
    for section in ("Presence", "Real time events", "Users", "Channels", "Server"):
        assert f">{section}</h2>" in index


def test_the_changelog_lists_the_document_s_changes_by_feature_level(harness: Harness) -> None:
    html = html_page(harness, "/api/changelog")
    assert ">Feature level 263</h2>" in html
    section = html.split(">Feature level 263</h2>", 1)[1].split("<h2", 1)[0]
    assert 'href="/api/update-presence"' in section
    assert "last_update_id" in section
    levels = [int(part.split("</h2>")[0]) for part in html.split(">Feature level ")[1:]]
    assert levels == sorted(levels, reverse=True)


def test_an_endpoint_description_carries_its_changes_note(harness: Harness) -> None:
    """As on Zulip's page (seed 004): the description of update-presence ends with the note of
    feature level 228, which the changelog lists too."""
    page = html_page(harness, "/api/update-presence")
    description = page.split('class="api-endpoint"', 1)[1].split('id="usage-examples"', 1)[0]
    assert "<strong>Changes</strong>: As of Zulip 8.0 (feature level 228)" in description
    changelog = html_page(harness, "/api/changelog")
    section = changelog.split(">Feature level 228</h2>", 1)[1].split("<h2", 1)[0]
    assert 'href="/api/update-presence"' in section


@pytest.mark.parametrize(
    ("base_url", "host", "expected"),
    [
        ("http://testserver", "localhost:9991", "http://localhost:9991"),
        ("https://testserver", "localhost:9991", "https://localhost:9991"),
        ("http://testserver", "lear.localhost:9991", "http://lear.localhost:9991"),
        ("https://testserver", "www.localhost:9991", "https://localhost:9991"),
        ("http://testserver", "127.0.0.1:9991", "http://localhost:9991"),
    ],
)
def test_examples_use_the_organization_url(
    harness: Harness, base_url: str, host: str, expected: str
) -> None:
    """The rule of ``realm_url`` (and ``GET /server_settings``): the organization the host
    names, on the server's external host, with the request's scheme."""
    client = harness.client  # the app's own loop (a pooled database connection is bound to it)
    response = client.get(base_url + "/api/get-user-presence", headers={"Host": host})
    assert response.status_code == 200
    content = parse_page(response.text)
    curl = next(e.text for e in content.examples if e.language == "curl")
    assert curl.startswith(f"curl -sSX GET -G {expected}/api/v1/users/iago@zulip.com/presence")
    assert f"GET {expected}/api/v1/users/{{user_id_or_email}}/presence" in content.code_texts
    settings_url = client.get(base_url + "/api/v1/server_settings", headers={"Host": host}).json()
    if "lear." not in host:  # no such organization: the API refuses, the docs still render
        assert settings_url["realm_url"] == expected


@pytest.fixture
def docs_client() -> Iterator[tuple[TestClient, DocsSite]]:
    settings = load_settings(environ={})
    site = DocsSite(document(), settings.product_name)
    with TestClient(Starlette(routes=docs_routes(settings, site))) as client:
        yield client, site


def test_a_page_is_rendered_once_whatever_the_organization_url(
    docs_client: tuple[TestClient, DocsSite],
) -> None:
    """Any host a client names (a subdomain need not be an organization) is served from the
    one render: varying the host makes no request render a page."""
    client, site = docs_client
    first = client.get("/api/get-presence", headers={"Host": "localhost:9991"})
    again = client.get("/api/get-presence", headers={"Host": "localhost:9991"})
    assert first.content == again.content
    assert site.renders == 1
    for n in range(20):
        other = client.get("/api/get-presence", headers={"Host": f"org{n}.localhost:9991"})
        assert f"http://org{n}.localhost:9991/api/v1/realm/presence" in other.text
    client.head("/api/get-presence", headers={"Host": "lear.localhost:9991"})
    assert site.renders == 1


@pytest.mark.parametrize(
    "url", ["http://localhost:9991", "https://lear.chat.example.com", "https://a-b.example:8443"]
)
def test_served_pages_are_the_pages_rendered_for_their_url(url: str) -> None:
    site = DocsSite(document(), "uKnowva Messenger")
    for slug in site.pages:
        assert site.render(slug, url) == site.render_from_scratch(slug, url), slug


def test_a_new_operation_gets_a_page_with_no_other_change() -> None:
    spec = copy.deepcopy(document())
    spec["paths"]["/users/me/alert_words"] = {
        "get": {
            "operationId": "get-alert-words",
            "summary": "Get all alert words",
            "description": "Alert words of the current user, as presenced keeps them.",
            "tags": ["users"],
            "parameters": [
                {
                    "name": "sorted",
                    "in": "query",
                    "description": "Whether to sort them.",
                    "schema": {"type": "boolean"},
                    "example": True,
                }
            ],
            "responses": {
                "200": {
                    "description": "The words.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "alert_words": {
                                        "type": "array",
                                        "items": {"type": "string"},
                                        "description": "The words.",
                                    }
                                },
                            },
                            "example": {"result": "success", "msg": "", "alert_words": ["x"]},
                        }
                    },
                }
            },
        }
    }
    site = DocsSite(spec, "presenced")
    html = site.render("get-alert-words", "https://chat.example.com")
    assert html is not None
    content = parse_page(html.decode())
    examples = {e.language: e.text for e in content.examples}
    assert 'client.call_endpoint(url="users/me/alert_words", method="GET"' in examples["python"]
    assert examples["curl"] == (
        "curl -sSX GET -G https://chat.example.com/api/v1/users/me/alert_words \\\n"
        "    -u BOT_EMAIL_ADDRESS:BOT_API_KEY \\\n"
        "    --data-urlencode sorted=true"
    )
    assert 'id="parameter-sorted"' in html.decode()
    assert "alert_words" in content.code_texts
    assert "(string)[]" in html.decode()
    index = site.render("index", "https://chat.example.com")
    assert index is not None and 'href="/api/get-alert-words"' in index.decode()


def json_error(response: Any, status: int, msg: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["result"] == "error"
    assert body["msg"] == msg
    return body


@pytest.mark.parametrize(
    "path",
    [
        "/api/no-such-page",
        "/api/api-doc-template",
        "/api/v1",
        "/api/..%2F..%2Fetc%2Fpasswd",
        "/api/" + "x" * 500,
        "/static/docs/nothing.css",
        "/static/docs/..%2Fsite.py",
    ],
)
def test_unknown_pages_and_assets_get_a_json_404(harness: Harness, path: str) -> None:
    body = json_error(harness.client.get(path), 404, "Not Found")
    assert body["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("path", ["/api/", "/api/get-presence", "/static/docs/docs.css"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_other_methods_get_a_json_405(harness: Harness, path: str, method: str) -> None:
    response = harness.client.request(method, path, data={"x": "1"})
    body = json_error(response, 405, "Method Not Allowed")
    assert body["allowed_methods"] == ["GET", "HEAD"]
    assert response.headers["allow"] == "GET, HEAD"


def test_head_and_options(harness: Harness) -> None:
    head = harness.client.head("/api/get-presence")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "text/html; charset=utf-8"
    options = harness.client.options("/api/get-presence")
    assert options.status_code == 204 and options.headers["allow"] == "GET, HEAD"


def test_every_asset_a_page_uses_is_served_by_presenced(harness: Harness) -> None:
    html = html_page(harness, "/api/update-presence")
    assets = parse_page(html).assets
    assert {"/static/docs/docs.css", "/static/docs/pygments.css", "/static/docs/docs.js"} <= set(
        assets
    )
    for url in assets:
        assert url.startswith("/static/docs/"), url  # nothing external
        response = harness.client.get(url)
        assert response.status_code == 200, url
        etag = response.headers["etag"]
        assert harness.client.get(url, headers={"If-None-Match": etag}).status_code == 304
    css = harness.client.get("/static/docs/pygments.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert ".highlight .k" in css.text


@pytest.mark.parametrize(
    "host",
    ['"><script>alert(1)</script>.localhost:9991', "a_b.localhost:9991", "-x.localhost:9991"],
)
def test_a_host_that_names_no_possible_organization_is_refused(harness: Harness, host: str) -> None:
    response = harness.client.get("/api/get-presence", headers={"Host": host})
    assert json_error(response, 400, "Invalid subdomain")["code"] == "BAD_REQUEST"


def test_prose_naming_an_endpoint_links_to_its_page(harness: Harness) -> None:
    html = html_page(harness, "/api/update-presence")
    assert '<a href="/api/update-settings"><code>PATCH /settings</code></a>' in html
