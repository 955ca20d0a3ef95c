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
from presenced.presence.read import HistoryWindowError, window_start

EVENTS_UNAVAILABLE = "Event queues are unavailable right now; try again shortly."
NARROW_OPERATORS = frozenset({"channel", "stream", "topic", "sender", "is"})
MAX_QUEUE_LIFESPAN_SECS = 7 * 86400


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


def _capabilities(call: Call) -> dict[str, Any]:
    """Zulip requires ``notification_settings_null`` once any capability is given; unknown
    capabilities are ignored."""
    value = call.params.json_value("client_capabilities", {"notification_settings_null": False})
    if not isinstance(value, dict):
        raise ApiError("client_capabilities is not a dict")
    if "notification_settings_null" not in value:
        raise ApiError(
            'client_capabilities["notification_settings_null"] field is missing: Field required'
        )
    for key, flag in value.items():
        if not isinstance(flag, bool):
            raise ApiError(f'client_capabilities["{key}"] is not a boolean')
    return value


def _narrow(call: Call) -> None:
    narrow = call.params.json_value("narrow", [])
    if not isinstance(narrow, list):
        raise ApiError("narrow is not a list")
    for index, term in enumerate(narrow):
        if not (
            isinstance(term, list) and len(term) == 2 and all(isinstance(t, str) for t in term)
        ):
            raise ApiError(f"narrow[{index}] is not a list of two strings")
        if term[0] not in NARROW_OPERATORS:
            raise ApiError(f"Operator {term[0]} not supported.")


async def register(call: Call) -> Response:
    """Create an event queue and return the initial state it starts from."""
    params = call.params
    server = call.server
    params.json_bool("apply_markdown", False)
    client_gravatar = params.json_bool("client_gravatar", True)
    include_subscribers = params.optional_string("include_subscribers")
    if include_subscribers not in (None, "true", "false", "partial"):
        raise ApiError("Invalid include_subscribers")
    slim_presence = params.json_bool("slim_presence", False)
    history_limit_days = params.json_int("presence_history_limit_days")
    capabilities = _capabilities(call)
    event_types = _string_list(call, "event_types")
    fetch_event_types = _string_list(call, "fetch_event_types")
    params.json_value("all_public_streams")
    lifespan = params.json_int("queue_lifespan_secs")
    _narrow(call)
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
    # Zulip: never less than the default (10 minutes), never more than a week.
    idle_timeout = None
    if lifespan:
        default = server.settings.event_queue_idle_timeout_secs
        idle_timeout = float(min(max(lifespan, default), MAX_QUEUE_LIFESPAN_SECS))

    # The queue first, the state second: a change in between is in the state, on the queue,
    # or both; never in neither.
    queue = await server.events.register(
        call.user.id,
        call.realm.id,
        None if event_types is None else frozenset(event_types),
        presence_format,
        idle_timeout,
    )
    state = await fetch_initial_state(
        server,
        call.user,
        call.realm,
        fetch=fetch_event_types if fetch_event_types is not None else event_types,
        modern_presence=simplified or slim_presence,
        history_limit_days=history_limit_days,
        client_gravatar=client_gravatar,
    )
    data: dict[str, Any] = {
        "queue_id": queue.queue_id,
        "last_event_id": queue.last_event_id,
        "zulip_version": version.ZULIP_VERSION,
        "zulip_feature_level": version.API_FEATURE_LEVEL,
        "zulip_merge_base": version.ZULIP_MERGE_BASE,
        **state,
    }
    return json_success(data, ignored_parameters=params.ignored())


async def get_events(call: Call) -> Response:
    """Long-poll. Zulip names the queue only in answers that waited, or that created it."""
    params = call.params
    server, realm = call.server, call.realm
    queue_id = params.optional_string("queue_id")
    last_event_id = params.json_int("last_event_id")
    dont_block = params.json_bool("dont_block", False)
    if queue_id is None:
        if not dont_block:
            raise ApiError("Missing 'queue_id' argument")
        event_types = _string_list(call, "event_types")
        queue = await server.events.register(
            call.user.id,
            realm.id,
            None if event_types is None else frozenset(event_types),
            PresenceFormat.SLIM
            if params.json_bool("slim_presence", False)
            else PresenceFormat.LEGACY,
            None,
        )
        return json_success({"events": [], "queue_id": queue.queue_id})
    if last_event_id is None:
        raise ApiError("Missing 'last_event_id' argument")

    async def load_access_rules() -> None:
        await server.changes.ensure_fresh()
        await server.directory.access(realm)

    try:
        delivery = await server.events.get_events(
            queue_id, call.user.id, last_event_id, dont_block, load_access_rules
        )
    except BadEventQueueError as error:
        raise BadEventQueueIdError(error.queue_id) from None
    except EventsUnavailableError:
        raise ServiceUnavailableError(EVENTS_UNAVAILABLE) from None
    except EventIdError as error:
        raise ApiError(str(error)) from None
    if delivery.waited:
        return json_success({"events": delivery.events, "queue_id": queue_id})
    return json_success({"events": delivery.events}, ignored_parameters=params.ignored())


async def delete_queue(call: Call) -> Response:
    queue_id = call.params.string("queue_id")
    try:
        await call.server.events.delete(queue_id, call.user.id)
    except BadEventQueueError as error:
        raise BadEventQueueIdError(error.queue_id) from None
    return json_success(ignored_parameters=call.params.ignored())
