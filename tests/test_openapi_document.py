"""The OpenAPI document itself: valid, complete, closed, with examples that match it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, cast

import orjson
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from conftest import Harness
from openapi_validation import (
    API_PREFIX,
    documented_operations,
    escape_pointer_segment,
    match_template,
    resolve_pointer,
    schema_errors,
    validate_response,
)
from presenced import version
from presenced.api import server_views
from presenced.api.channels_views import DEFAULT_COLOR, stream_dict
from presenced.api.endpoint import Call, Method, RestEndpoint
from presenced.api.errors import (
    ApiError,
    MissingArgumentError,
    RateLimitedError,
    UnauthorizedError,
)
from presenced.api.events_views import NARROW_OPERATORS, BadEventQueueIdError
from presenced.api.openapi import document, document_json
from presenced.api.responses import json_error, json_success
from presenced.api.settings_views import REACTION_TYPES, STATUS_TEXT_MAX
from presenced.app import api_routes
from presenced.core.register import USER_SETTINGS_DEFAULTS
from presenced.core.server import Server
from presenced.core.users import user_dict
from presenced.events.base import everyone_sees_everything
from presenced.events.changes import (
    Change,
    PresenceChange,
    UserSettingsChange,
    UserStatusChange,
)
from presenced.events.formats import PresenceFormat
from presenced.events.queue import EventQueue
from presenced.presence import formats
from presenced.store.base import BotType, Channel, RealmPresenceRow, Role, User

OPENAPI_JSON_RESPONSE = "/paths/~1openapi.json/get/responses/200/content/application~1json/schema"
"""The one schema allowed to be open: the document describing itself."""

SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
SCHEMA_SINGLE = (
    "additionalProperties",
    "unevaluatedProperties",
    "items",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "contentSchema",
)
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
OBJECT_KEYWORDS = (
    "properties",
    "additionalProperties",
    "patternProperties",
    "unevaluatedProperties",
    "propertyNames",
    "required",
    "dependentRequired",
)


# -- walking the document -----------------------------------------------------------------


def _subschemas(pointer: str, schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for keyword in SCHEMA_MAPS:
        for name, sub in schema.get(keyword, {}).items():
            yield f"{pointer}/{keyword}/{escape_pointer_segment(name)}", sub
    for keyword in SCHEMA_SINGLE:
        sub = schema.get(keyword)
        if isinstance(sub, dict):
            yield f"{pointer}/{keyword}", sub
    for keyword in SCHEMA_LISTS:
        for index, sub in enumerate(schema.get(keyword, [])):
            yield f"{pointer}/{keyword}/{index}", sub


def _walk_schema(pointer: str, schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield pointer, schema
    for sub_pointer, sub in _subschemas(pointer, schema):
        yield from _walk_schema(sub_pointer, sub)


def _schema_roots(pointer: str, node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Top-level schemas: components/schemas entries and every ``schema`` of a parameter,
    header or media type. Example values are not descended into."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _schema_roots(f"{pointer}/{index}", item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        child = f"{pointer}/{escape_pointer_segment(key)}"
        if key in ("example", "examples"):
            continue
        if pointer == "/components/schemas" or (key == "schema" and isinstance(value, dict)):
            yield child, value
        else:
            yield from _schema_roots(child, value)


def all_schemas() -> list[tuple[str, dict[str, Any]]]:
    return [found for root in _schema_roots("", document()) for found in _walk_schema(*root)]


def objects_with(key: str) -> Iterator[tuple[str, Any]]:
    """Every dict of the document, outside example values, that has ``key``."""
    return _objects_with(key, "", document())


def _objects_with(key: str, pointer: str, node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _objects_with(key, f"{pointer}/{index}", item)
    elif isinstance(node, dict):
        if key in node:
            yield pointer, node
        for name, value in node.items():
            if name in ("example", "examples", "default", "enum", "const"):
                continue
            yield from _objects_with(key, f"{pointer}/{escape_pointer_segment(name)}", value)


def is_object_schema(schema: dict[str, Any]) -> bool:
    types = schema.get("type")
    if types == "object" or (isinstance(types, list) and "object" in types):
        return True
    return any(keyword in schema for keyword in OBJECT_KEYWORDS)


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for method, template in documented_operations():
        yield method, template, document()["paths"][template][method.lower()]


def concrete_path(template: str) -> str:
    """A request path for a template, with every parameter replaced by a sample value."""
    parts = ["7" if part.startswith("{") else part for part in template.split("/")]
    return API_PREFIX + "/".join(parts)


# -- the document as a whole --------------------------------------------------------------


def test_document_is_valid_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    validate(doc, cls=OpenAPIV31SpecValidator)


def test_info_and_servers() -> None:
    doc = document()
    assert doc["info"]["title"] == "presenced API"
    assert doc["info"]["version"] == "0.1.0"
    assert doc["info"]["x-zulip-feature-level"] == version.API_FEATURE_LEVEL
    assert [server["url"] for server in doc["servers"]] == [API_PREFIX]
    assert doc["security"] == [{"basicAuth": []}]
    assert doc["components"]["securitySchemes"]["basicAuth"]["scheme"] == "basic"


def _example_values(node: Any) -> Iterator[Any]:
    """Every example value in the document (``example``, ``examples`` lists and maps)."""
    if isinstance(node, list):
        for item in node:
            yield from _example_values(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "example":
                yield value
            elif key == "examples" and isinstance(value, list):
                yield from value
            elif key == "examples" and isinstance(value, dict):
                yield from (example["value"] for example in value.values() if "value" in example)
            else:
                yield from _example_values(value)


def test_versions_match_the_code() -> None:
    """The feature level and versions in the prose and in every example are the code's."""
    doc = document()
    expected = {
        "zulip_version": version.ZULIP_VERSION,
        "zulip_merge_base": version.ZULIP_MERGE_BASE,
        "zulip_feature_level": version.API_FEATURE_LEVEL,
    }
    level = f"Zulip {version.ZULIP_VERSION} (API feature level {version.API_FEATURE_LEVEL})"
    assert level in doc["info"]["description"]
    seen = set()
    for value in _example_values(doc):
        if isinstance(value, dict):
            for key, wanted in expected.items():
                if key in value:
                    assert value[key] == wanted, (key, value[key])
                    seen.add(key)
    assert seen == set(expected)


def test_served_document_is_this_document() -> None:
    assert orjson.loads(document_json()) == document()


def test_every_operation_has_id_summary_description_and_tags() -> None:
    declared_tags = {tag["name"] for tag in document()["tags"]}
    ids = []
    for method, template, operation in operations():
        where = f"{method} {template}"
        assert operation.get("operationId"), where
        assert operation.get("summary"), where
        assert operation.get("description"), where
        assert operation.get("tags"), where
        assert set(operation["tags"]) <= declared_tags, where
        assert "200" in operation["responses"], where
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids))


def test_zulip_operation_ids_and_summaries() -> None:
    paths = document()["paths"]
    expected = {
        ("/users/{user_id_or_email}/presence", "get"): (
            "get-user-presence",
            "Get a user's presence",
        ),
        ("/realm/presence", "get"): ("get-presence", "Get presence of all users"),
        ("/users/me/presence", "post"): ("update-presence", "Update your presence"),
        ("/register", "post"): ("register-queue", "Register an event queue"),
        ("/events", "get"): ("get-events", "Get events from an event queue"),
        ("/events", "delete"): ("delete-queue", "Delete an event queue"),
        ("/settings", "patch"): ("update-settings", "Update settings"),
        ("/users/me/status", "post"): ("update-status", "Update your status"),
        ("/users/me/subscriptions", "get"): ("get-subscriptions", "Get subscribed channels"),
        ("/streams", "get"): ("get-streams", "Get all channels"),
    }
    for (template, method), (operation_id, summary) in expected.items():
        operation = paths[template][method]
        assert (operation["operationId"], operation["summary"]) == (operation_id, summary)


def test_public_endpoints_need_no_credentials() -> None:
    for method, template, operation in operations():
        public = template in ("/server_settings", "/openapi.json")
        assert (operation.get("security") == []) == public, f"{method} {template}"
        if not public:
            assert {"400", "401", "405", "429"} <= set(operation["responses"]), template
        else:
            assert "401" not in operation["responses"], template
            assert "429" not in operation["responses"], template


def test_update_presence_parameters() -> None:
    body = document()["paths"]["/users/me/presence"]["post"]["requestBody"]
    media = body["content"]["application/x-www-form-urlencoded"]
    schema = resolve_pointer(media["schema"]["$ref"][1:])
    assert list(schema["properties"]) == [
        "last_update_id",
        "history_limit_days",
        "new_user_input",
        "ping_only",
        "slim_presence",
        "status",
    ]
    assert schema["required"] == ["status"]
    assert schema["properties"]["status"]["enum"] == ["idle", "active"]
    json_encoded = {
        name
        for name, prop in schema["properties"].items()
        if prop["type"] in ("boolean", "integer")
    }
    assert {
        name for name, enc in media["encoding"].items() if enc["contentType"] == "application/json"
    } == json_encoded


def test_register_parameters() -> None:
    """Every parameter of /register but the plain-string ``include_subscribers`` is JSON;
    event type names are free strings (as in Zulip); settings and operators match the code."""
    body = document()["paths"]["/register"]["post"]["requestBody"]
    media = body["content"]["application/x-www-form-urlencoded"]
    schema = resolve_pointer(media["schema"]["$ref"][1:])
    assert "required" not in schema
    assert set(media["encoding"]) == set(schema["properties"]) - {"include_subscribers"}
    assert {enc["contentType"] for enc in media["encoding"].values()} == {"application/json"}
    include_subscribers = schema["properties"]["include_subscribers"]
    assert include_subscribers["type"] == "string"
    assert include_subscribers["enum"] == ["true", "false", "partial"]
    event_type = document()["components"]["schemas"]["EventType"]
    assert event_type["type"] == "string"
    assert "enum" not in event_type and "pattern" not in event_type
    for name in ("event_types", "fetch_event_types"):
        assert not schema_errors(
            f"{media['schema']['$ref'][1:]}/properties/{name}", ["presence", "no_such_type"]
        )
    operator = schema["properties"]["narrow"]["items"]["prefixItems"][0]
    assert set(operator["enum"]) == NARROW_OPERATORS
    capabilities = document()["components"]["schemas"]["ClientCapabilities"]
    assert capabilities["required"] == ["notification_settings_null"]
    assert schema_errors("/components/schemas/ClientCapabilities", {})
    user_settings = document()["components"]["schemas"]["UserSettings"]
    assert set(user_settings["properties"]) == {*USER_SETTINGS_DEFAULTS, "presence_enabled"}
    assert user_settings["required"] == ["presence_enabled"]
    errors = schema_errors("/components/schemas/UserSettings", USER_SETTINGS_DEFAULTS)
    assert errors and "presence_enabled" in errors[0]


def test_deprecation_notes_match_deprecated_flags() -> None:
    """Zulip's rule: a "**Changes**: Deprecated" note if and only if ``deprecated: true``."""
    for pointer, node in objects_with("description"):
        text = node["description"]
        if not isinstance(text, str):  # a property called "description"
            continue
        noted = "**Changes**: Deprecated" in text or "**Deprecated**" in text
        assert noted == bool(node.get("deprecated")), pointer


# -- routes --------------------------------------------------------------------------------


def _routes() -> list[Route]:
    return api_routes(cast(Server, object()))


def test_every_route_is_documented_and_nothing_else() -> None:
    served = []
    for route in _routes():
        endpoint = route.endpoint
        assert isinstance(endpoint, RestEndpoint)
        assert route.path.startswith(API_PREFIX)
        served += [(method, route.path[len(API_PREFIX) :]) for method in endpoint.methods]
    assert sorted(served) == sorted(documented_operations())


def test_path_parameters_are_declared() -> None:
    for method, template, operation in operations():
        declared = {
            param["name"]
            for param in operation.get("parameters", [])
            if "$ref" not in param and param["in"] == "path"
        }
        in_template = {part[1:-1] for part in template.split("/") if part.startswith("{")}
        assert declared == in_template, f"{method} {template}"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/server_settings",
        "/api/v1/openapi.json",
        "/api/v1/users/me/presence",
        "/api/v1/users/7/presence",
        "/api/v1/users/iago@zulip.com/presence",
        "/api/v1/users/me",
        "/api/v1/users",
        "/api/v1/users/7",
        "/api/v1/users/presence",
        "/api/v1/users/iago%40zulip.com",
        "/api/v1/realm/presence",
        "/api/v1/register",
        "/api/v1/events",
        "/api/v1/events/7",
        "/api/v1/settings",
        "/api/v1/users/me/status",
        "/api/v1/users/7/status",
        "/api/v1/users/me/subscriptions",
        "/api/v1/streams",
        "/api/v1/streams/7",
        "/api/v1/users/me/presence/extra",
        "/api/v1/realm",
        "/api/v1/users/",
        "/api/v1/",
        "/api/v2/users",
        "/users/me",
    ],
)
def test_template_matching_agrees_with_the_router(path: str) -> None:
    routed = None
    for route in _routes():
        scope = {"type": "http", "path": path, "root_path": "", "method": "GET"}
        match, _ = route.matches(scope)
        if match is Match.FULL:
            routed = route.path[len(API_PREFIX) :]
            break
    assert match_template(path) == routed
    assert match_template(path + "?slim_presence=true") == routed


# -- closed objects ------------------------------------------------------------------------


def _mixins() -> set[str]:
    """Component schemas that are open on their own (used only inside closed ``allOf``s)."""
    names = set()
    for name, schema in document()["components"]["schemas"].items():
        if is_object_schema(schema) and not (
            "additionalProperties" in schema or "unevaluatedProperties" in schema
        ):
            names.add(name)
    return names


def test_every_object_schema_is_closed() -> None:
    mixins = {f"/components/schemas/{name}" for name in _mixins()}
    checked = 0
    for pointer, schema in all_schemas():
        if not is_object_schema(schema):
            continue
        checked += 1
        if pointer == OPENAPI_JSON_RESPONSE:
            assert schema.get("additionalProperties") is True
            continue
        if pointer in mixins:
            continue
        if "unevaluatedProperties" in schema:
            assert schema["unevaluatedProperties"] is False, pointer
        else:
            assert "additionalProperties" in schema, f"{pointer} allows any property"
            extra = schema["additionalProperties"]
            assert extra is False or isinstance(extra, dict), pointer
    assert checked > 30


def test_open_mixins_are_only_used_inside_closed_compositions() -> None:
    mixins = _mixins()
    assert mixins == {"JsonSuccessBase", "JsonErrorBase", "UserBase", "StreamBase"}
    closed_uses: set[str] = set()
    for pointer, schema in all_schemas():
        for index, member in enumerate(schema.get("allOf", [])):
            if "$ref" in member:
                assert schema.get("unevaluatedProperties") is False, pointer
                closed_uses.add(f"{pointer}/allOf/{index}")
    uses: dict[str, list[str]] = {name: [] for name in mixins}
    for pointer, node in objects_with("$ref"):
        name = node["$ref"].removeprefix("#/components/schemas/")
        if name in uses:
            uses[name].append(pointer)
    for name, pointers in uses.items():
        assert pointers, f"{name} is never used"
        stray = [p for p in pointers if p not in closed_uses]
        assert not stray, f"{name} is used outside a closed allOf: {stray}"


def responses() -> Iterator[tuple[str, str, str, str]]:
    """(METHOD, template, status, pointer of the Response Object after ``$ref``s)."""
    for method, template, operation in operations():
        base = f"/paths/{escape_pointer_segment(template)}/{method.lower()}/responses"
        for status, response in operation["responses"].items():
            pointer = f"{base}/{status}"
            if "$ref" in response:
                pointer = response["$ref"][1:]
            yield method, template, status, pointer


def test_extra_top_level_fields_are_rejected_in_every_response() -> None:
    for method, template, status, pointer in responses():
        if template == "/openapi.json" and status == "200":
            continue
        media = resolve_pointer(pointer)["content"]["application/json"]
        for body in _media_examples(media):
            probe = {**body, "unexpected_field": 1}
            errors = schema_errors(f"{pointer}/content/application~1json/schema", probe)
            assert errors, f"{method} {template} {status} accepts unknown fields"


# -- examples ------------------------------------------------------------------------------


def _media_examples(media: dict[str, Any]) -> list[Any]:
    found = []
    if "example" in media:
        found.append(media["example"])
    for example in media.get("examples", {}).values():
        if "$ref" in example:
            example = resolve_pointer(example["$ref"][1:])
        found.append(example["value"])
    return found


def test_schema_examples_and_defaults_match_their_schema() -> None:
    checked = 0
    for pointer, schema in all_schemas():
        values = list(schema.get("examples", []))
        if "example" in schema:
            values.append(schema["example"])
        if "default" in schema:
            values.append(schema["default"])
        for value in values:
            checked += 1
            errors = schema_errors(pointer, value)
            assert not errors, (pointer, value, errors)
    assert checked > 10


def test_parameter_header_and_request_examples_match_their_schema() -> None:
    checked = 0
    for pointer, node in objects_with("schema"):
        if not isinstance(node["schema"], dict):
            continue
        for value in _media_examples(node):
            checked += 1
            errors = schema_errors(f"{pointer}/schema", value)
            assert not errors, (pointer, value, errors)
    assert checked > 30


def test_response_examples_pass_validate_response() -> None:
    checked = 0
    for method, template, status, pointer in responses():
        content = resolve_pointer(pointer)["content"]
        assert set(content) == {"application/json"}, (method, template, status)
        examples = _media_examples(content["application/json"])
        if template != "/openapi.json":
            assert examples, f"{method} {template} {status} has no example"
        for body in examples:
            checked += 1
            validate_response(method, concrete_path(template), int(status), body)
    assert checked > 40


def test_update_presence_has_modern_and_legacy_examples() -> None:
    media = document()["paths"]["/users/me/presence"]["post"]["responses"]["200"]["content"]
    examples = media["application/json"]["examples"]
    assert {"modern", "legacy"} <= set(examples)
    assert "10" in examples["modern"]["value"]["presences"]
    assert "user@example.com" in examples["legacy"]["value"]["presences"]


# -- validate_response against what the code produces ---------------------------------------


def _body(response: Response) -> Any:
    assert bytes(response.body).endswith(b"\n")
    return orjson.loads(response.body)


def _user(**changes: Any) -> User:
    fields: dict[str, Any] = {
        "id": 7,
        "realm_id": 1,
        "email": "iago@zulip.com",
        "delivery_email": "iago@zulip.com",
        "full_name": "Iago",
        "role": Role.ADMINISTRATOR,
        "bot_type": None,
        "bot_owner_id": None,
        "is_active": True,
        "date_joined": 1_700_000_000.25,
        "presence_enabled": True,
        "timezone": "",
    }
    fields.update(changes)
    return User(**fields)


BOT = {"email": "bot@zulip.com", "role": Role.MEMBER, "bot_type": BotType.GENERIC}
ROWS = [
    RealmPresenceRow(7, "iago@zulip.com", 1_700_000_000.5, 1_700_000_900.9, 1_700_000_950.1, 4),
    RealmPresenceRow(8, "hamlet@zulip.com", 1_700_000_000.0, None, 1_700_000_990.0, 6),
    RealmPresenceRow(9, "cordelia@zulip.com", 1_700_000_000.0, None, None, 2),
]


def format_rows(
    rows: list[RealmPresenceRow], *, slim: bool, activity_offset: float
) -> dict[str, Any]:
    """A realm listing in either format, from the same per-user formats the index encodes."""
    if slim:
        return {
            str(row.user_id): formats.modern(
                row.last_active_time, row.last_connected_time, row.date_joined
            )
            for row in rows
        }
    return {
        row.email: formats.legacy(
            row.last_active_time, row.last_connected_time, row.date_joined, activity_offset
        )
        for row in rows
    }


def _presence_body(slim: bool) -> dict[str, Any]:
    presences = format_rows(ROWS, slim=slim, activity_offset=70)
    data = {
        "server_timestamp": 1_700_001_000.123,
        "presences": presences,
        "presence_last_update_id": 6,
    }
    return cast(dict[str, Any], _body(json_success(data, ["client_name"])))


def test_update_presence_bodies() -> None:
    path = "/api/v1/users/me/presence"
    validate_response("POST", path, 200, _presence_body(slim=True))
    validate_response("POST", path, 200, _presence_body(slim=False))
    validate_response("POST", path, 200, _body(json_success()))
    validate_response("POST", path, 200, _body(json_success(None, ["dont_block"])))
    validate_response("POST", path, 400, _body(json_error(MissingArgumentError("status"))))
    validate_response("POST", path, 400, _body(json_error(ApiError("Invalid status: away"))))
    validate_response("POST", path, 401, _body(json_error(UnauthorizedError("Invalid API key"))))
    validate_response("POST", path, 429, _body(json_error(RateLimitedError(1.234))))
    empty = {"server_timestamp": 1.5, "presences": {}, "presence_last_update_id": -1}
    validate_response("POST", path, 200, _body(json_success(empty)))


def test_update_presence_mixed_formats_are_rejected() -> None:
    body = _presence_body(slim=True)
    body["presences"]["iago@zulip.com"] = _presence_body(slim=False)["presences"]["iago@zulip.com"]
    with pytest.raises(AssertionError, match="does not match"):
        validate_response("POST", "/api/v1/users/me/presence", 200, body)


def test_user_presence_bodies() -> None:
    path = "/api/v1/users/iago@zulip.com/presence?slim_presence=false"
    for now in (1_700_000_960.0, 1_700_009_000.0):
        presence = formats.single_user_legacy(1_700_000_900.9, 1_700_000_950.1, 0, 70, now, 200)
        validate_response("GET", path, 200, _body(json_success({"presence": presence})))
    presence = formats.modern(None, None, 1_700_000_000.5)
    validate_response("GET", path, 200, _body(json_success({"presence": presence}, ["x"])))
    validate_response("GET", path, 400, _body(json_error(ApiError("No such user"))))


def test_realm_presence_bodies() -> None:
    presences = format_rows(ROWS, slim=False, activity_offset=70)
    body = _body(json_success({"server_timestamp": 1_700_001_000.5, "presences": presences}))
    validate_response("GET", "/api/v1/realm/presence", 200, body)
    with pytest.raises(AssertionError, match="does not match"):
        slim = format_rows(ROWS, slim=True, activity_offset=70)
        body = _body(json_success({"server_timestamp": 1.0, "presences": slim}))
        validate_response("GET", "/api/v1/realm/presence", 200, body)


@pytest.mark.parametrize("client_gravatar", [True, False])
def test_user_bodies(client_gravatar: bool) -> None:
    human = user_dict(_user(), client_gravatar=client_gravatar)
    bot = user_dict(_user(id=9, bot_owner_id=7, **BOT), client_gravatar=client_gravatar)
    ownerless = user_dict(_user(id=10, **BOT), client_gravatar=client_gravatar)
    with_profile = {**human, "profile_data": {}}
    validate_response(
        "GET", "/api/v1/users", 200, _body(json_success({"members": [with_profile, bot]}))
    )
    for user in (human, bot, ownerless, with_profile):
        validate_response("GET", "/api/v1/users/7", 200, _body(json_success({"user": user})))
    own = {**user_dict(_user(), client_gravatar=False), "profile_data": {}, "max_message_id": -1}
    validate_response("GET", "/api/v1/users/me", 200, _body(json_success(own)))
    own_bot = {**bot, "max_message_id": -1}
    validate_response("GET", "/api/v1/users/me", 200, _body(json_success(own_bot)))
    with pytest.raises(AssertionError, match="max_message_id"):
        validate_response("GET", "/api/v1/users/me", 200, _body(json_success(human)))
    with pytest.raises(AssertionError, match="does not match"):
        validate_response("GET", "/api/v1/users/7", 200, _body(json_success(own)))


def test_user_enums_match_the_code() -> None:
    fields = document()["components"]["schemas"]["UserBase"]["properties"]
    assert fields["role"]["enum"] == sorted(int(role) for role in Role)
    assert fields["bot_type"]["enum"] == sorted(int(bot_type) for bot_type in BotType)
    # /register describes the current user with Zulip's role flags, not ``role``.
    own = _register_properties()
    assert "role" not in own
    assert {"is_admin", "is_owner", "is_moderator", "is_guest"} <= set(own)


def test_register_user_lists_have_no_is_active() -> None:
    """Zulip drops ``is_active`` from ``realm_users`` entries: the list tells it."""
    listed = {k: v for k, v in user_dict(_user(), client_gravatar=True).items() if k != "is_active"}
    assert not schema_errors("/components/schemas/RealmUser", listed)
    assert schema_errors("/components/schemas/RealmUser", {**listed, "is_active": True})
    assert schema_errors("/components/schemas/User", listed)
    own = _register_properties()
    assert own["realm_users"]["items"]["$ref"] == "#/components/schemas/RealmUser"
    assert own["realm_non_active_users"]["items"]["$ref"] == "#/components/schemas/RealmUser"


@pytest.mark.parametrize("role", list(Role))
def test_every_role(role: Role) -> None:
    user = user_dict(_user(role=role), client_gravatar=False)
    validate_response("GET", "/api/v1/users/7", 200, _body(json_success({"user": user})))


def _request_schema(template: str, method: str) -> dict[str, Any]:
    body = document()["paths"][template][method]["requestBody"]
    media = body["content"]["application/x-www-form-urlencoded"]
    return cast(dict[str, Any], resolve_pointer(media["schema"]["$ref"][1:]))


def test_settings_and_status_parameters_match_the_code() -> None:
    settings = _request_schema("/settings", "patch")
    assert list(settings["properties"]) == ["presence_enabled"]
    status = _request_schema("/users/me/status", "post")
    assert list(status["properties"]) == [
        "away",
        "status_text",
        "emoji_name",
        "emoji_code",
        "reaction_type",
    ]
    assert status["properties"]["away"]["deprecated"] is True
    assert "148" in status["properties"]["away"]["description"]
    assert status["properties"]["reaction_type"]["enum"] == list(REACTION_TYPES)
    assert f"{STATUS_TEXT_MAX} characters" in status["properties"]["status_text"]["description"]
    schemas = document()["components"]["schemas"]
    for name in ("UserStatus", "UserStatusEvent"):
        assert schemas[name]["properties"]["reaction_type"]["enum"] == list(REACTION_TYPES)
    assert schemas["UserStatus"]["properties"]["status_text"]["maxLength"] == STATUS_TEXT_MAX
    media = document()["paths"]["/users/me/status"]["post"]["requestBody"]["content"]
    encoding = media["application/x-www-form-urlencoded"]["encoding"]
    assert set(encoding) == {"away"}


def test_settings_and_status_bodies() -> None:
    for method, path in (("PATCH", "/api/v1/settings"), ("POST", "/api/v1/users/me/status")):
        validate_response(method, path, 200, _body(json_success()))
        validate_response(method, path, 200, _body(json_success(None, ["enable_sounds"])))
        validate_response(method, path, 400, _body(json_error(ApiError("away is not a boolean"))))
        validate_response(
            method, path, 401, _body(json_error(UnauthorizedError("Invalid API key")))
        )
    for message in (
        "Client did not pass any new values.",
        f"status_text is too long (limit: {STATUS_TEXT_MAX} characters)",
        "Invalid emoji type.",
    ):
        error = _body(json_error(ApiError(message)))
        validate_response("POST", "/api/v1/users/me/status", 400, error)
    validate_response("GET", "/api/v1/settings", 405, _method_not_allowed("GET", "PATCH"))


def test_user_status_map() -> None:
    """The shape ``register.user_statuses`` builds; emoji fields come together."""
    emoji = {"emoji_name": "car", "emoji_code": "1f697", "reaction_type": "unicode_emoji"}
    good = {"7": {"away": True}, "8": {"status_text": "Busy", **emoji}, "9": emoji}
    assert not schema_errors("/components/schemas/UserStatusMap", good)
    wrong: list[dict[str, Any]] = [
        {"7": {}},
        {"7": {"away": False}},
        {"7": {"status_text": ""}},
        {"7": {"emoji_name": "car"}},
        {"7": {"status_text": "x" * (STATUS_TEXT_MAX + 1)}},
        {"hamlet@zulip.com": {"away": True}},
        {"7": {"away": True, "presence_enabled": False}},
    ]
    for bad in wrong:
        assert schema_errors("/components/schemas/UserStatusMap", bad), bad


def _channel(**changes: Any) -> Channel:
    fields: dict[str, Any] = {
        "id": 3,
        "realm_id": 1,
        "name": "Verona",
        "description": "A city in Italy",
        "date_created": 1_709_285_400.75,
    }
    fields.update(changes)
    return Channel(**fields)


def test_channel_bodies() -> None:
    """What ``channels_views`` builds, for both endpoints."""
    channels = [stream_dict(_channel()), stream_dict(_channel(id=4, description=""))]
    streams = _body(json_success({"streams": channels}, ["include_public"]))
    validate_response("GET", "/api/v1/streams", 200, streams)
    subscription = {
        **channels[0],
        "color": DEFAULT_COLOR,
        "is_muted": False,
        "in_home_view": True,
        "pin_to_top": False,
    }
    path = "/api/v1/users/me/subscriptions"
    for entry in (subscription, {**subscription, "subscribers": [5, 7]}):
        validate_response("GET", path, 200, _body(json_success({"subscriptions": [entry]})))
    validate_response("GET", path, 200, _body(json_success({"subscriptions": []})))
    with pytest.raises(AssertionError, match="does not match"):
        validate_response("GET", "/api/v1/streams", 200, _body(json_success({"streams": [entry]})))
    error = _body(json_error(ApiError("include_subscribers is not a boolean")))
    validate_response("GET", path, 400, error)
    schemas = document()["components"]["schemas"]
    assert set(schemas["StreamBase"]["required"]) == set(channels[0])


def _queue(presence_format: PresenceFormat) -> EventQueue:
    return EventQueue(
        queue_id="4c1fa0e5d2b94e7a9c3f6b8d1e2a5c70",
        user_id=7,
        realm_id=1,
        event_types=None,
        presence_format=presence_format,
        idle_timeout=600.0,
        created=0.0,
        last_seen=0.0,
        log_position=0,
    )


def _events_body(events: list[dict[str, Any]], *, waited: bool = True) -> dict[str, Any]:
    """What ``get_events`` answers: the queue named after a wait, ignored parameters only
    when answered at once."""
    if waited:
        data = {"events": events, "queue_id": "4c1fa0e5d2b94e7a9c3f6b8d1e2a5c70"}
        return cast(dict[str, Any], _body(json_success(data)))
    return cast(dict[str, Any], _body(json_success({"events": events}, ["client_name"])))


@pytest.mark.parametrize("presence_format", list(PresenceFormat))
def test_event_bodies(presence_format: PresenceFormat) -> None:
    """Every kind of event the queue code makes, in each presence format."""
    joined, seen = 1_700_000_000.0, 1_700_000_990.0
    presence = [
        PresenceChange(8, "hamlet@zulip.com", joined, None, seen, seen + 0.5),
        PresenceChange(9, "cordelia@zulip.com", joined, seen + 5.2, seen + 5.2, seen + 5.7),
    ]
    emoji = (
        ("emoji_name", "calendar"),
        ("emoji_code", "1f4c5"),
        ("reaction_type", "unicode_emoji"),
    )
    changes: list[Change] = [
        *presence,
        UserSettingsChange(7, "presence_enabled", False),
        UserStatusChange(8, (("status_text", "Busy"),)),
        UserStatusChange(8, emoji),
        UserStatusChange(7, (("away", True),)),
        *presence[:1],
    ]
    queue = _queue(presence_format)
    queue.absorb(changes, everyone_sees_everything, 70.0)
    queue.add_heartbeat()
    types = [event["type"] for event in queue.pending]
    assert types.count("presence") == (2 if presence_format is PresenceFormat.MODERN else 3)
    assert {"user_settings", "user_status", "heartbeat"} <= set(types)
    for waited in (True, False):
        body = _events_body(queue.pending, waited=waited)
        validate_response("GET", "/api/v1/events?dont_block=true", 200, body)
    immediate = _body(json_success({"events": queue.pending}))
    validate_response("GET", "/api/v1/events", 200, immediate)
    # A request without queue_id that registered a queue.
    created = _events_body([])
    validate_response("GET", "/api/v1/events?dont_block=true", 200, created)


def test_events_queue_id_and_ignored_parameters_do_not_go_together() -> None:
    """Zulip names the queue only in answers that waited, which list no ignored parameters,
    or that registered a queue (no events; those may list them)."""
    heartbeat = [{"type": "heartbeat", "id": 0}]
    both = {**_events_body(heartbeat), "ignored_parameters_unsupported": ["client_name"]}
    with pytest.raises(AssertionError, match="does not match"):
        validate_response("GET", "/api/v1/events", 200, both)
    created = {**_events_body([]), "ignored_parameters_unsupported": ["client_name"]}
    validate_response("GET", "/api/v1/events?dont_block=true", 200, created)
    without_events = {"result": "success", "msg": "", "queue_id": "x"}
    with pytest.raises(AssertionError, match="does not match"):
        validate_response("GET", "/api/v1/events", 200, without_events)


def test_malformed_events_are_rejected() -> None:
    modern, legacy = _queue(PresenceFormat.MODERN), _queue(PresenceFormat.LEGACY)
    change = PresenceChange(8, "hamlet@zulip.com", 1_700_000_000.0, None, 1_700_000_990.0, 1.5)
    modern.absorb([change], everyone_sees_everything, 70.0)
    legacy.absorb([change], everyone_sees_everything, 70.0)
    mixed = {**legacy.pending[0], "presences": modern.pending[0]["presences"]}
    empty_modern = {**modern.pending[0], "presences": {}}
    no_id = {"type": "heartbeat"}
    for event in (mixed, empty_modern, no_id):
        with pytest.raises(AssertionError, match="does not match"):
            validate_response("GET", "/api/v1/events", 200, _events_body([event]))


def test_event_queue_error_bodies() -> None:
    for method in ("GET", "DELETE"):
        bad = _body(json_error(BadEventQueueIdError("4c1fa0e5d2b94e7a9c3f6b8d1e2a5c70")))
        validate_response(method, "/api/v1/events", 400, bad)
        with pytest.raises(AssertionError, match="does not match"):
            validate_response(method, "/api/v1/events", 400, {**bad, "msg": "Bad queue"})
    # DELETE requires queue_id the usual way; GET answers Zulip's own error, without var_name.
    missing = _body(json_error(MissingArgumentError("queue_id")))
    validate_response("DELETE", "/api/v1/events", 400, missing)
    for message in (
        "Missing 'queue_id' argument",
        "Missing 'last_event_id' argument",
        "Event 5 was not in this queue",
        "An event newer than -1 has already been pruned!",
    ):
        validate_response("GET", "/api/v1/events", 400, _body(json_error(ApiError(message))))
    validate_response("DELETE", "/api/v1/events", 200, _body(json_success(None, ["x"])))
    for message in (
        "event_types[0] is not a string",
        'client_capabilities["notification_settings_null"] field is missing: Field required',
        "Invalid include_subscribers",
        "Operator bogus not supported.",
        "Invalid presence_history_limit_days",
        "Invalid queue_lifespan_secs",
    ):
        invalid = _body(json_error(ApiError(message)))
        validate_response("POST", "/api/v1/register", 400, invalid)


def _register_properties() -> dict[str, Any]:
    media = document()["paths"]["/register"]["post"]["responses"]["200"]["content"]
    return cast(dict[str, Any], media["application/json"]["schema"]["properties"])


def _register_keys() -> set[str]:
    return set(_register_properties())


def test_register_bodies(harness: Harness) -> None:
    """Real /register responses (checked against the document by the harness), and every
    documented field is one the server sends when every event type is fetched."""
    hamlet, iago = harness.account("hamlet@zulip.com"), harness.account("iago@zulip.com")
    othello = harness.account("othello@zulip.com")
    harness.account("bot@zulip.com", bot_type=BotType.GENERIC)
    harness.presence(iago, "active")
    status = {"status_text": "In a meeting", "emoji_name": "calendar", "emoji_code": "1f4c5"}
    assert harness.post("/users/me/status", iago, **status).status_code == 200
    assert harness.post("/users/me/status", othello, away=True).status_code == 200
    assert harness.post("/users/me/status", othello, status_text="Away").status_code == 200
    capabilities = {"notification_settings_null": True, "simplified_presence_events": True}
    combinations: list[dict[str, Any]] = [
        {},
        {"slim_presence": True},
        {"client_capabilities": capabilities},
        {"fetch_event_types": ["presence"], "client_gravatar": False},
        {"fetch_event_types": [], "idle_queue_timeout": 60},
        {"event_types": ["message", "no_such_type"], "include_subscribers": "partial"},
        {"fetch_event_types": ["realm_user", "user_status"], "narrow": [["channel", "Verona"]]},
    ]
    bodies = []
    for params in combinations:
        response = harness.post("/register", hamlet, **params)
        assert response.status_code == 200, response.text
        bodies.append(response.json())
    assert set(bodies[0]) - {"result", "msg"} == _register_keys()
    assert "iago@zulip.com" in bodies[0]["presences"]
    assert str(iago.id) in bodies[1]["presences"]
    assert str(iago.id) in bodies[2]["presences"]
    assert bodies[0]["user_status"] == {
        str(iago.id): {**status, "reaction_type": "unicode_emoji"},
        str(othello.id): {"away": True, "status_text": "Away"},
    }
    assert all("is_active" not in user for user in bodies[0]["realm_users"])
    assert set(bodies[6]) - {"result", "msg"} < _register_keys()


def _server_settings_body(with_realm: bool) -> dict[str, Any]:
    """What ``server_views.server_settings`` builds, field by field."""
    url = "https://chat.example.com"
    data: dict[str, Any] = {
        "authentication_methods": dict.fromkeys(server_views.AUTHENTICATION_METHODS, False),
        "zulip_version": version.ZULIP_VERSION,
        "zulip_merge_base": version.ZULIP_MERGE_BASE,
        "zulip_feature_level": version.API_FEATURE_LEVEL,
        "push_notifications_enabled": False,
        "is_incompatible": False,
        "email_auth_enabled": False,
        "require_email_format_usernames": True,
        "realm_uri": url,
        "realm_url": url,
    }
    if with_realm:
        data.update(realm_name="Example", realm_icon="", realm_description="")
    data["realm_web_public_access_enabled"] = False
    data["external_authentication_methods"] = []
    return cast(dict[str, Any], _body(json_success(data)))


def test_server_bodies() -> None:
    for with_realm in (True, False):
        body = _server_settings_body(with_realm)
        validate_response("GET", "/api/v1/server_settings", 200, body)
    validate_response(
        "GET", "/api/v1/server_settings", 400, _body(json_error(ApiError("Invalid subdomain")))
    )
    validate_response("GET", "/api/v1/openapi.json", 200, orjson.loads(document_json()))


async def _unused_handler(call: Call) -> Response:
    raise AssertionError("not called")


def _method_not_allowed(method: str, served: str) -> Any:
    endpoint = RestEndpoint(cast(Server, None), {served: Method(_unused_handler)})
    scope = {"type": "http", "method": method, "path": "/", "headers": [], "query_string": b""}
    response = asyncio.run(endpoint.respond(Request(scope)))
    assert response.status_code == 405
    assert not bytes(response.body).endswith(b"\n")
    return orjson.loads(response.body)


def test_method_not_allowed_bodies() -> None:
    validate_response("GET", "/api/v1/users/me/presence", 405, _method_not_allowed("GET", "POST"))
    validate_response("POST", "/api/v1/users/7/presence", 405, _method_not_allowed("POST", "GET"))
    validate_response("DELETE", "/api/v1/users", 405, _method_not_allowed("DELETE", "GET"))
    validate_response("HEAD", "/api/v1/users/me/presence", 405, None)


def test_undocumented_requests_fail() -> None:
    not_found = {"result": "error", "msg": "Not Found", "code": "BAD_REQUEST"}
    validate_response("GET", "/api/v1/nowhere", 404, not_found)
    validate_response("GET", "/api/v1/users/", 404, not_found)
    with pytest.raises(AssertionError, match="no documented path"):
        validate_response("GET", "/api/v1/nowhere", 200, {"result": "success", "msg": ""})
    with pytest.raises(AssertionError, match="GET is not documented"):
        validate_response("GET", "/api/v1/users/me/presence", 200, {"result": "success"})
    with pytest.raises(AssertionError, match="status 404 is not documented"):
        validate_response("GET", "/api/v1/users/me", 404, not_found)
    with pytest.raises(AssertionError, match="status 401 is not documented"):
        validate_response("GET", "/api/v1/server_settings", 401, not_found)
    with pytest.raises(AssertionError, match="does not match"):
        validate_response("GET", "/api/v1/users", 405, not_found)


def test_head_and_options() -> None:
    validate_response("HEAD", "/api/v1/users/me", 200, b"")
    validate_response("HEAD", "/api/v1/server_settings", 200, None)
    validate_response("OPTIONS", "/api/v1/users/me/presence", 204, b"")
    with pytest.raises(AssertionError, match="empty body"):
        validate_response("HEAD", "/api/v1/users/me", 200, {"result": "success", "msg": ""})
    with pytest.raises(AssertionError, match="OPTIONS"):
        validate_response("OPTIONS", "/api/v1/users", 200, None)
