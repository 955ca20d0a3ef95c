"""``POST /register``, ``GET /events`` and ``DELETE /events``."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from presenced import version
from presenced.api.endpoint import Call
from presenced.api.errors import ApiError, ServiceUnavailableError
from presenced.api.responses import json_success
from presenced.core.register import fetch_initial_state
from presenced.events.base import BadEventQueueError, EventsUnavailableError
from presenced.events.formats import PresenceFormat
from presenced.events.queue import EventIdError
from presenced.observability import metrics
from presenced.presence.read import HistoryWindowError, window_start
from presenced.store.base import Role

EVENTS_UNAVAILABLE = "Event queues are unavailable right now; try again shortly."
NARROW_OPERATORS = frozenset({"channel", "stream", "topic", "sender", "is"})


class BadEventQueueIdError(ApiError):
    code = "BAD_EVENT_QUEUE_ID"

    def __init__(self, queue_id: str) -> None:
        super().__init__(f"Bad event queue ID: {queue_id}", queue_id=queue_id)


def _string_list(call: Call, name: str) -> list[str] | None:
    value = call.params.json_value(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise ApiError(f"{name} is not a list")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ApiError(f"{name}[{index}] is not a string")
    return value


# Zulip's ClientCapabilities (a TypedDict): only ``notification_settings_null`` is required;
# the known optional ones must be booleans; any other key is dropped, whatever its value.
CAPABILITIES = (
    "notification_settings_null",
    "bulk_message_deletion",
    "user_avatar_url_field_optional",
    "stream_typing_notifications",
    "user_settings_object",
    "linkifier_url_template",
    "user_list_incomplete",
    "include_deactivated_groups",
    "archived_channels",
    "empty_topic_name",
    "simplified_presence_events",
)


def _capabilities(call: Call) -> dict[str, bool]:
    value = call.params.json_value("client_capabilities", {"notification_settings_null": False})
    if not isinstance(value, dict):
        raise ApiError("client_capabilities is not a dict")
    capabilities: dict[str, bool] = {}
    for key in CAPABILITIES:
        if key not in value:
            if key == "notification_settings_null":
                raise ApiError(
                    f'client_capabilities["{key}"] field is missing: Field required'
                )
            continue
        if not isinstance(value[key], bool):
            raise ApiError(f'client_capabilities["{key}"] is not a boolean')
        capabilities[key] = value[key]
    return capabilities


def _narrow(call: Call, name: str = "narrow") -> list[list[str]]:
    """Zulip's ``list[list[str]]`` of pairs, checked as pydantic does (first error wins)."""
    narrow = call.params.json_value(name, [])
    if not isinstance(narrow, list):
        raise ApiError(f"{name} is not a list")
    for index, term in enumerate(narrow):
        if not isinstance(term, list):
            raise ApiError(f"{name}[{index}] is not a list")
        for position, part in enumerate(term):
            if not isinstance(part, str):
                raise ApiError(f"{name}[{index}][{position}] is not a string")
        if len(term) != 2:
            raise ApiError(f"{name}[{index}] is not a list of two strings")
    return narrow


def _check_narrow_for_events(narrow: list[list[str]]) -> None:
    """The operators an event queue can filter on, as Zulip's ``check_narrow_for_events``."""
    for operator, operand in narrow:
        if operator not in NARROW_OPERATORS:
            raise ApiError(f"Operator {operator} not supported.")
        if operator == "is" and operand == "followed":
            raise ApiError(f"Operand {operand} not supported.")


def _all_public_streams(call: Call) -> bool | None:
    value = call.params.json_value("all_public_streams")
    if value is not None and not isinstance(value, bool):
        raise ApiError("all_public_streams is not a boolean")
    return value


def _idle_timeout(call: Call, lifespan: int | None) -> float | None:
    """Zulip: never less than the default (10 minutes), never more than a week (here: the
    event_queue_max_lifespan_secs setting, a day by default); 0 is the default."""
    if not lifespan:
        return None
    settings = call.server.settings
    default = settings.event_queue_idle_timeout_secs
    return float(min(max(lifespan, default), settings.event_queue_max_lifespan_secs))


async def register(call: Call) -> Response:
    """Create an event queue and return the initial state it starts from."""
    params = call.params
    server = call.server
    # Zulip's typed_endpoint checks its parameters in their (alphabetical) order.
    all_public_streams = _all_public_streams(call)
    params.json_bool("apply_markdown", False)
    capabilities = _capabilities(call)
    client_gravatar = params.json_bool("client_gravatar", True)
    event_types = _string_list(call, "event_types")
    fetch_event_types = _string_list(call, "fetch_event_types")
    include_subscribers = params.optional_string("include_subscribers")
    if include_subscribers not in (None, "true", "false", "partial"):
        raise ApiError("Invalid include_subscribers")
    narrow = _narrow(call)
    history_limit_days = params.json_int("presence_history_limit_days")
    lifespan = params.json_int("queue_lifespan_secs")
    slim_presence = params.json_bool("slim_presence", False)
    if all_public_streams and call.user.role == Role.GUEST:
        raise ApiError("User not authorized for this query")
    _check_narrow_for_events(narrow)
    if lifespan is not None and lifespan < 0:
        raise ApiError("Invalid queue_lifespan_secs")
    if history_limit_days is not None:
        try:
            window_start(server.clock(), history_limit_days)
        except HistoryWindowError:
            raise ApiError("Invalid presence_history_limit_days") from None

    simplified = bool(capabilities.get("simplified_presence_events", False))
    if simplified:
        presence_format = PresenceFormat.MODERN
    elif slim_presence:
        presence_format = PresenceFormat.SLIM
    else:
        presence_format = PresenceFormat.LEGACY
    idle_timeout = _idle_timeout(call, lifespan)

    # The queue first, the state second: a change in between is in the state, on the queue,
    # or both; never in neither.
    try:
        queue = await server.events.register(
            call.user.id,
            call.realm.id,
            None if event_types is None else frozenset(event_types),
            presence_format,
            idle_timeout,
            user_settings_object=capabilities.get("user_settings_object", False),
        )
    except EventsUnavailableError:
        raise ServiceUnavailableError(EVENTS_UNAVAILABLE) from None
    state = await fetch_initial_state(
        server,
        call.user,
        call.realm,
        fetch=fetch_event_types if fetch_event_types is not None else event_types,
        modern_presence=simplified or slim_presence,
        history_limit_days=history_limit_days,
        client_gravatar=client_gravatar,
        user_settings_object=capabilities.get("user_settings_object", False),
    )
    # Zulip's order: the queue and the version first, the state, and last_event_id last
    # (do_events_register adds it after the state is built).
    data: dict[str, Any] = {
        "queue_id": queue.queue_id,
        "zulip_version": version.ZULIP_VERSION,
        "zulip_feature_level": version.API_FEATURE_LEVEL,
        "zulip_merge_base": version.ZULIP_MERGE_BASE,
        **state,
        "last_event_id": queue.last_event_id,
    }
    return json_success(data, ignored_parameters=params.ignored())


# GET /events's flags for a queue it creates (Zulip's get_events_backend, in its order).
QUEUE_FLAGS_BEFORE_EVENT_TYPES = ("apply_markdown", "client_gravatar", "slim_presence")
QUEUE_FLAGS_AFTER_LIFESPAN = (
    "bulk_message_deletion",
    "stream_typing_notifications",
    "pronouns_field_type_supported",
    "linkifier_url_template",
    "user_list_incomplete",
    "include_deactivated_groups",
    "archived_channels",
    "empty_topic_name",
    "simplified_presence_events",
)


async def get_events(call: Call) -> Response:
    """Long-poll. Zulip names the queue only in answers that waited, or that created it."""
    params = call.params
    server, realm = call.server, call.realm
    # Every parameter is checked, in Zulip's order, whether or not a queue is created.
    params.optional_string("user_client")
    last_event_id = params.json_int("last_event_id")
    queue_id = params.optional_string("queue_id")
    flags = {name: params.json_bool(name, False) for name in QUEUE_FLAGS_BEFORE_EVENT_TYPES}
    all_public_streams = params.json_bool("all_public_streams", False)
    event_types = _string_list(call, "event_types")
    dont_block = params.json_bool("dont_block", False)
    narrow = params.json_value("narrow", [])
    if not isinstance(narrow, list):
        raise ApiError("narrow is not a list")
    for index, term in enumerate(narrow):
        if not isinstance(term, list):
            raise ApiError(f"narrow[{index}] is not a list")
        for position, part in enumerate(term):
            if not isinstance(part, str):
                raise ApiError(f"narrow[{index}][{position}] is not a string")
    lifespan = params.json_int("lifespan_secs")
    if lifespan is not None and lifespan < 0:
        raise ApiError("lifespan_secs is too small")
    for name in QUEUE_FLAGS_AFTER_LIFESPAN:
        flags[name] = params.json_bool(name, name == "pronouns_field_type_supported")
    if all_public_streams and call.user.role == Role.GUEST:
        raise ApiError("User not authorized for this query")
    if queue_id is None:
        if not dont_block:
            raise ApiError("Missing 'queue_id' argument")
        if flags["simplified_presence_events"]:
            presence_format = PresenceFormat.MODERN
        elif flags["slim_presence"]:
            presence_format = PresenceFormat.SLIM
        else:
            presence_format = PresenceFormat.LEGACY
        try:
            queue = await server.events.register(
                call.user.id,
                realm.id,
                None if event_types is None else frozenset(event_types),
                presence_format,
                _idle_timeout(call, lifespan),
            )
        except EventsUnavailableError:
            raise ServiceUnavailableError(EVENTS_UNAVAILABLE) from None
        return json_success(
            {"events": [], "queue_id": queue.queue_id}, ignored_parameters=params.ignored()
        )
    if last_event_id is None:
        raise ApiError("Missing 'last_event_id' argument")

    async def load_access_rules() -> None:
        await server.changes.ensure_fresh()
        await server.directory.access(realm)

    try:
        with metrics.PARKED_POLLS.track_inprogress():
            delivery = await server.events.get_events(
                queue_id, call.user.id, last_event_id, dont_block, load_access_rules
            )
    except BadEventQueueError as error:
        raise BadEventQueueIdError(error.queue_id) from None
    except EventsUnavailableError:
        raise ServiceUnavailableError(EVENTS_UNAVAILABLE) from None
    except EventIdError as error:
        raise ApiError(str(error)) from None
    metrics.EVENTS_DELIVERED.inc(len(delivery.events))
    if delivery.waited:
        return json_success({"events": delivery.events, "queue_id": queue_id})
    return json_success({"events": delivery.events}, ignored_parameters=params.ignored())


async def delete_queue(call: Call) -> Response:
    queue_id = call.params.string("queue_id")
    try:
        await call.server.events.delete(queue_id, call.user.id)
    except BadEventQueueError as error:
        raise BadEventQueueIdError(error.queue_id) from None
    except EventsUnavailableError:
        raise ServiceUnavailableError(EVENTS_UNAVAILABLE) from None
    return json_success(ignored_parameters=call.params.ignored())
