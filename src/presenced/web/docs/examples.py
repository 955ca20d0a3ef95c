"""The text of the usage examples: Python with the ``zulip`` package, and curl.

Each example is exactly what a user copies: the credentials are Zulip's placeholders (a
``~/zuliprc`` file for Python, ``BOT_EMAIL_ADDRESS:BOT_API_KEY`` for curl) and the URL is the
organization's. Values come from the OpenAPI document's examples.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from presenced.web.docs.operations import Operation, Parameter

PYTHON_PREAMBLE = """#!/usr/bin/env python3

import zulip

# Pass the path to your zuliprc file here.
client = zulip.Client(config_file="~/zuliprc")
"""
CURL_CREDENTIALS = "BOT_EMAIL_ADDRESS:BOT_API_KEY"


@dataclass(frozen=True)
class Binding:
    """How the ``zulip`` package calls an operation.

    ``style`` is ``none`` (no parameters), ``request`` (one dict argument), ``kwargs``
    (keyword arguments) or ``positional`` (the single parameter's value as the argument).
    Path parameters are passed first, positionally.
    """

    method: str
    style: str


BINDINGS: dict[str, Binding] = {
    "get-server-settings": Binding("get_server_settings", "none"),
    "get-user-presence": Binding("get_user_presence", "none"),
    "get-presence": Binding("get_realm_presence", "none"),
    "update-presence": Binding("update_presence", "request"),
    "register-queue": Binding("register", "kwargs"),
    "get-events": Binding("get_events", "kwargs"),
    "delete-queue": Binding("deregister", "positional"),
    "get-own-user": Binding("get_profile", "request"),
    "get-users": Binding("get_users", "request"),
    "get-user": Binding("get_user_by_id", "kwargs"),
    "get-subscriptions": Binding("get_subscriptions", "request"),
    "get-streams": Binding("get_streams", "kwargs"),
}
"""Operations the ``zulip`` package has a method for; any other one is called with
``client.call_endpoint``, so a new operation gets a working example with no change here."""


def python_literal(value: Any, indent: int = 0) -> str:
    """``value`` as Python source (``True``, double-quoted strings, one entry a line for
    non-empty dicts)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(item, indent) for item in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        pad = " " * (indent + 4)
        lines = [
            f"{pad}{python_literal(str(k))}: {python_literal(v, indent + 4)},"
            for k, v in value.items()
        ]
        return "{\n" + "\n".join(lines) + "\n" + " " * indent + "}"
    return repr(value)


def _path_value(parameter: Parameter, value: Any) -> str:
    if parameter.schema.get("type") == "integer" or (
        isinstance(value, str) and value.isdigit() and parameter.name.endswith("_id")
    ):
        return str(int(value))
    return python_literal(value)


def python_example(operation: Operation) -> str:
    arguments = operation.example_arguments()
    values = {parameter.name: value for parameter, value in arguments}
    lines = [PYTHON_PREAMBLE, f"# {operation.summary}."]
    binding = BINDINGS.get(operation.slug)
    path_args = [_path_value(p, v) for p, v in operation.path_arguments()]
    if binding is None:
        call_args = [
            f'url="{operation.example_path().lstrip("/")}"',
            f'method="{operation.method}"',
        ]
        if values:
            lines.append(f"request = {python_literal(values)}")
            call_args.append("request=request")
        call = f"client.call_endpoint({', '.join(call_args)})"
    elif binding.style == "request" and values:
        lines.append(f"request = {python_literal(values)}")
        call = f"client.{binding.method}({', '.join([*path_args, 'request'])})"
    elif binding.style == "kwargs":
        kwargs = [f"{name}={python_literal(value)}" for name, value in values.items()]
        call = f"client.{binding.method}({', '.join([*path_args, *kwargs])})"
    elif binding.style == "positional" and values:
        positional = [python_literal(value) for value in values.values()]
        call = f"client.{binding.method}({', '.join([*path_args, *positional])})"
    else:
        call = f"client.{binding.method}({', '.join(path_args)})"
    if len(call) > 90 and binding is not None and binding.style == "kwargs" and values:
        inner = ",\n".join(f"    {name}={python_literal(v, 4)}" for name, v in values.items())
        head = ", ".join(path_args)
        call = f"client.{binding.method}(\n" + (f"    {head},\n" if head else "") + inner + ",\n)"
    lines.append(f"result = {call}")
    lines.append("print(result)")
    return "\n".join(lines)


def curl_value(parameter: Parameter, value: Any) -> str:
    if isinstance(value, str) and not parameter.json_encoded:
        return value
    return json.dumps(value, ensure_ascii=False)


def curl_example(operation: Operation, api_url: str) -> str:
    url = f"{api_url}/v1{operation.example_path()}"
    if operation.method == "GET":
        first = f"curl -sSX GET -G {url}"
    else:
        first = f"curl -sSX {operation.method} {url}"
    lines = [first]
    if operation.needs_auth:
        lines.append(f"    -u {CURL_CREDENTIALS}")
    for parameter, value in operation.example_arguments():
        pair = f"{parameter.name}={curl_value(parameter, value)}"
        lines.append(f"    --data-urlencode {shlex.quote(pair)}")
    return " \\\n".join(lines)
