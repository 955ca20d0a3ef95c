"""``PRESENCED_PRODUCT_NAME`` changes the documentation's prose and nothing else: rendered
with two names, every page is identical once the name is substituted back, and no code block
or inline code (``import zulip``, ``zulip.Client``, ``ZulipMobile``, ``presenced serve``)
changes."""

from __future__ import annotations

import copy

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from docs_html import parse_page
from presenced.api.openapi import document
from presenced.settings import load_settings
from presenced.web.docs import docs_routes
from presenced.web.docs.site import DocsSite

WHITE_LABEL = "uKnowva Messenger"
URL = "https://hrms-new.chat.convergenceservices.in"
PLAIN = DocsSite(document(), "presenced")
BRANDED = DocsSite(document(), WHITE_LABEL)


def rendered(site: DocsSite, slug: str) -> str:
    html = site.render(slug, URL)
    assert html is not None
    return html.decode()


@pytest.mark.parametrize("slug", sorted(PLAIN.pages))
def test_the_name_changes_the_prose_and_nothing_else(slug: str) -> None:
    plain, branded = rendered(PLAIN, slug), rendered(BRANDED, slug)
    assert branded.replace(WHITE_LABEL, "presenced") == plain
    assert WHITE_LABEL in branded  # the title, at least
    plain_code, branded_code = parse_page(plain), parse_page(branded)
    assert branded_code.code_texts == plain_code.code_texts
    assert [e.text for e in branded_code.examples] == [e.text for e in plain_code.examples]
    assert not any(WHITE_LABEL in text for text in branded_code.code_texts)


def test_prose_from_the_document_and_the_pages_is_renamed() -> None:
    get_settings = rendered(BRANDED, "get-server-settings")
    assert f"{WHITE_LABEL} has no interactive login" in get_settings
    assert f"<title>Get server settings | {WHITE_LABEL} API documentation</title>" in get_settings
    keys = rendered(BRANDED, "api-keys")
    assert f"{WHITE_LABEL} has no login page" in keys
    assert any("$ presenced key create" in t for t in parse_page(keys).code_texts)
    headers = parse_page(rendered(BRANDED, "http-headers")).code_texts
    assert any(text.startswith("ZulipMobile/") for text in headers)
    python = next(e.text for e in parse_page(rendered(BRANDED, "get-presence")).examples)
    assert "import zulip\n" in python and "zulip.Client(" in python
    # Where the prose means the product, as seed 001's "recently interacted with uKnowva
    # Messenger at the time in the timestamp" (Zulip versions and Zulip's clients stay Zulip).
    user_presence = rendered(BRANDED, "get-user-presence")
    assert f"was using {WHITE_LABEL} at the time of" in user_presence
    assert f"somewhere outside {WHITE_LABEL} (a staff directory" in user_presence
    assert f"who has used {WHITE_LABEL} in the last" in rendered(BRANDED, "get-presence")
    assert f"who have used {WHITE_LABEL} recently" in rendered(BRANDED, "update-presence")


def test_identifiers_in_descriptions_survive_the_name() -> None:
    """The seed's white-labelled page turned ``ZulipDesktop`` into "uKnowva MessengerDesktop";
    here inline code, code blocks and link targets keep their text."""
    spec = copy.deepcopy(document())
    operation = spec["paths"]["/realm/presence"]["get"]
    operation["description"] = (
        "Client names such as `ZulipMobile` or `presenced-cli`, as presenced reports them. "
        "See [the presenced guide](https://example.com/presenced/guide).\n\n"
        "```\npresenced serve\n```\n"
    )
    html = DocsSite(spec, WHITE_LABEL).render("get-presence", URL)
    assert html is not None
    text = html.decode()
    assert f"as {WHITE_LABEL} reports them" in text
    assert "<code>ZulipMobile</code>" in text and "<code>presenced-cli</code>" in text
    assert f'href="https://example.com/presenced/guide">the {WHITE_LABEL} guide</a>' in text
    assert "presenced serve\n" in parse_page(text).code_texts


def test_the_setting_reaches_the_served_pages() -> None:
    settings = load_settings(environ={"PRESENCED_PRODUCT_NAME": WHITE_LABEL})
    assert settings.product_name == WHITE_LABEL
    assert load_settings(environ={}).product_name == "presenced"
    with TestClient(Starlette(routes=docs_routes(settings))) as client:
        page = client.get("/api/get-user-presence").text
    assert f'<a class="brand" href="/api/">{WHITE_LABEL} <span>' in page
