"""Request parameters the way Zulip reads them.

Values come from the form body or the query string (the body wins). Booleans and integers are
JSON text. Booleans and integers (the hot path) are decoded with orjson; whatever orjson
refuses or reads differently from Python's ``json`` (Zulip's decoder: ``NaN``, integers beyond
64 bits, which orjson reads as floats) is decoded again with ``json``, as are lists and objects,
so every value parses as it does in Zulip; nesting too deep for the decoder is invalid JSON
like any other. Values are checked strictly. Every name read is
remembered, so a success response can list the rest in ``ignored_parameters_unsupported``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from presenced.api.errors import ApiError, MissingArgumentError

_UNSET: Any = object()
MAX_ID = 2**63 - 1
"""No stored ID is larger (SQLite's and PostgreSQL's 64-bit integers)."""


def path_id(raw: str) -> int | None:
    """An ID given in a URL path, or None if no stored ID could be that large. Checked before
    ``int()``, which refuses strings of more than 4,300 digits with an exception."""
    if len(raw) > 19:
        return None
    value = int(raw)
    return value if value <= MAX_ID else None


def form_text(raw: bytes) -> str:
    """A query string or form body as Django's ``QueryDict`` decodes it: UTF-8, or ISO-8859-1
    when the bytes are not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("iso-8859-1")


def parse_form(body: bytes) -> dict[str, str]:
    """As ``parse_qsl(keep_blank_values=True)`` reads it; a body with nothing to unquote (the
    usual ``status=active&last_update_id=12``) is only split."""
    text = form_text(body)
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    fields = {}
    for item in text.split("&"):
        if item:
            name, _, value = item.partition("=")
            fields[name] = value
    return fields


class RequestParams:
    def __init__(self, query: Mapping[str, str], body: Mapping[str, str]) -> None:
        self._values: dict[str, str] = {**query, **body}
        # Zulip's request logging consumes ``client`` on every request.
        self._used: set[str] = {"client"}

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def ignored(self) -> list[str]:
        return sorted(set(self._values) - self._used)

    def _raw(self, name: str) -> str | None:
        self._used.add(name)
        return self._values.get(name)

    def string(self, name: str) -> str:
        raw = self._raw(name)
        if raw is None:
            raise MissingArgumentError(name)
        return raw

    def optional_string(self, name: str) -> str | None:
        return self._raw(name)

    def _scalar(self, name: str, raw: str) -> Any:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._json(name, raw)
        return self._json(name, raw) if type(value) is float else value

    def _json(self, name: str, raw: str) -> Any:
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise ApiError(f"{name} is not valid JSON") from None

    def json_bool(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        value = self._scalar(name, raw)
        if not isinstance(value, bool):
            raise ApiError(f"{name} is not a boolean")
        return value

    def json_int(self, name: str) -> int | None:
        raw = self._raw(name)
        if raw is None:
            return None
        value = self._scalar(name, raw)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError(f"{name} is not an integer")
        return value

    def json_value(self, name: str, default: Any = None) -> Any:
        raw = self._raw(name)
        if raw is None:
            return default
        return self._json(name, raw)
