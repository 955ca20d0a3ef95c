"""The documentation's view of the OpenAPI document: operations, their parameters, responses
and return values, with ``$ref``s resolved and ``allOf`` merged.

Everything a page shows comes from here, so an operation, parameter or field added to the
document appears on its page with no other change.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
ENVELOPE_FIELDS = frozenset({"result", "msg", "ignored_parameters_unsupported"})
MAX_DEPTH = 5
"""How deep the return values list goes into nested objects (the document may recurse)."""

_NO_EXAMPLE = object()
_KEY_LABEL = re.compile(r'^\s*(`?\{[^}`]+\}`?(?:\s+or\s+`?"?[\w-]+"?`?)*):\s*')


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str
    """``path``, ``query`` or ``body``."""
    required: bool
    schema: dict[str, Any]
    description: str
    deprecated: bool
    example: Any
    has_example: bool
    json_encoded: bool
    """Sent as JSON text (lists, objects, and parameters declared with ``application/json``)."""

    type_name: str


@dataclass(frozen=True)
class ResponseExample:
    status: str
    response_description: str
    """What responses with this status mean (the same for all of that status's examples)."""
    title: str
    """What this example shows, if the document says (its description or summary)."""
    value: Any


@dataclass(frozen=True)
class Field:
    """One entry of the "Return values" list."""

    label: str
    type_name: str
    description: str
    deprecated: bool
    children: tuple[Field, ...] = ()
    alternatives: tuple[Field, ...] = ()
    values: tuple[Any, ...] = ()
    """The values the field may take, when the schema lists them (``const``, ``enum``)."""


@dataclass(frozen=True)
class Operation:
    slug: str
    """The ``operationId``, which is the page's URL slug."""
    method: str
    path: str
    summary: str
    description: str
    tag: str
    needs_auth: bool
    deprecated: bool
    parameters: tuple[Parameter, ...]
    request_example: dict[str, Any] | None
    """The first named example of the request body, if the document gives one."""
    responses: tuple[ResponseExample, ...]
    return_values: tuple[Field, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def endpoint_name(self) -> str:
        """Zulip's macro argument form, ``/path:method``."""
        return f"{self.path}:{self.method.lower()}"

    def example_arguments(self) -> list[tuple[Parameter, Any]]:
        """The non-path parameters an example sends, with their values.

        A request body with named examples uses the first one (a set of values meant to go
        together); otherwise every parameter with an example, and every required one, is sent.
        """
        if self.request_example is not None:
            by_name = {p.name: p for p in self.parameters}
            query = [
                (p, p.example)
                for p in self.parameters
                if p.location == "query" and (p.has_example or p.required)
            ]
            body = [
                (by_name[name], value)
                for name, value in self.request_example.items()
                if name in by_name
            ]
            return query + body
        return [
            (p, p.example)
            for p in self.parameters
            if p.location != "path" and (p.required or (p.has_example and not p.deprecated))
        ]

    def path_arguments(self) -> list[tuple[Parameter, Any]]:
        return [(p, p.example) for p in self.parameters if p.location == "path"]

    def example_path(self) -> str:
        """The path with its path parameters replaced by their examples."""
        path = self.path
        for parameter, value in self.path_arguments():
            path = path.replace("{" + parameter.name + "}", str(value))
        return path


class OpenApiDocument:
    """Resolves references within one OpenAPI document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, node: Any) -> Any:
        seen: set[str] = set()
        while isinstance(node, dict) and "$ref" in node:
            ref: str = node["$ref"]
            if ref in seen or not ref.startswith("#/"):
                break
            seen.add(ref)
            target: Any = self.document
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def merged(self, schema: Any) -> dict[str, Any]:
        """The schema with ``$ref`` resolved and ``allOf`` members merged into it."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return {}
        if "allOf" not in schema:
            return schema
        result: dict[str, Any] = {}
        for member in schema["allOf"]:
            sub = self.merged(member)
            for key, value in sub.items():
                if key == "properties":
                    result.setdefault("properties", {}).update(value)
                elif key == "required":
                    result.setdefault("required", []).extend(value)
                else:
                    result.setdefault(key, value)
        for key, value in schema.items():
            if key == "allOf":
                continue
            if key == "properties":
                result.setdefault("properties", {}).update(value)
            elif key == "required":
                result.setdefault("required", []).extend(value)
            else:
                result[key] = value
        return result

    def operations(self) -> Iterator[Operation]:
        for path, item in self.document.get("paths", {}).items():
            shared = item.get("parameters", [])
            for method in HTTP_METHODS:
                if method in item:
                    yield self._operation(path, method, item[method], shared)

    def _operation(
        self, path: str, method: str, raw: dict[str, Any], shared: list[Any]
    ) -> Operation:
        parameters = [self._parameter(p) for p in [*shared, *raw.get("parameters", [])]]
        request_example: dict[str, Any] | None = None
        body = self.resolve(raw.get("requestBody", {})).get("content", {})
        for content_type in (FORM, "multipart/form-data"):
            if content_type in body:
                media = body[content_type]
                parameters += self._body_parameters(media)
                examples = media.get("examples") or {}
                if examples:
                    first = self.resolve(next(iter(examples.values())))
                    request_example = dict(first.get("value") or {})
                elif isinstance(media.get("example"), dict):
                    request_example = dict(media["example"])
                break
        # Deprecated parameters come last, as on Zulip's pages.
        parameters.sort(key=lambda p: p.deprecated)
        security = raw.get("security", self.document.get("security", []))
        return Operation(
            slug=raw.get("operationId") or _slug(path, method),
            method=method.upper(),
            path=path,
            summary=raw.get("summary") or f"{method.upper()} {path}",
            description=raw.get("description", ""),
            tag=(raw.get("tags") or ["other"])[0],
            needs_auth=bool(security),
            deprecated=bool(raw.get("deprecated")),
            parameters=tuple(parameters),
            request_example=request_example,
            responses=tuple(self._response_examples(raw)),
            return_values=tuple(self._return_values(raw)),
            raw=raw,
        )

    def _parameter(self, raw: Any) -> Parameter:
        raw = self.resolve(raw)
        schema: dict[str, Any] = raw.get("schema", {})
        json_encoded = False
        example: Any = _example_of(raw)
        if "content" in raw and JSON in raw["content"]:
            media = raw["content"][JSON]
            schema = media.get("schema", {})
            json_encoded = True
            if example is _NO_EXAMPLE:
                example = _example_of(media)
        schema = self.merged(schema)
        if example is _NO_EXAMPLE:
            example = _example_of(schema)
        has_example = example is not _NO_EXAMPLE
        return Parameter(
            name=raw["name"],
            location=raw.get("in", "query"),
            required=bool(raw.get("required")),
            schema=schema,
            description=raw.get("description", "") or schema.get("description", ""),
            deprecated=bool(raw.get("deprecated") or schema.get("deprecated")),
            example=example if has_example else default_example(schema),
            has_example=has_example,
            json_encoded=json_encoded or schema.get("type") in ("array", "object"),
            type_name=type_name(schema, self.resolve),
        )

    def _body_parameters(self, media: dict[str, Any]) -> list[Parameter]:
        schema = self.merged(media.get("schema", {}))
        required = set(schema.get("required", []))
        encoding = media.get("encoding", {})
        parameters = []
        for name, raw_property in schema.get("properties", {}).items():
            prop = self.merged(raw_property)
            example = _example_of(prop)
            has_example = example is not _NO_EXAMPLE
            content_type = encoding.get(name, {}).get("contentType", "")
            parameters.append(
                Parameter(
                    name=name,
                    location="body",
                    required=name in required,
                    schema=prop,
                    description=prop.get("description", ""),
                    deprecated=bool(prop.get("deprecated")),
                    example=example if has_example else default_example(prop),
                    has_example=has_example,
                    json_encoded=prop.get("type") in ("array", "object")
                    or (content_type == JSON and prop.get("type") != "string"),
                    type_name=type_name(prop, self.resolve),
                )
            )
        return parameters

    def _response_examples(self, raw: dict[str, Any]) -> Iterator[ResponseExample]:
        for status, response in sorted(raw.get("responses", {}).items()):
            response = self.resolve(response)
            media = response.get("content", {}).get(JSON)
            if not media:
                continue
            meaning = response.get("description", "").strip()
            examples = media.get("examples") or {}
            if examples:
                for example in map(self.resolve, examples.values()):
                    title = example.get("description") or example.get("summary") or ""
                    yield ResponseExample(status, meaning, title.strip(), example.get("value"))
            elif "example" in media:
                yield ResponseExample(status, meaning, "", media["example"])

    def _return_values(self, raw: dict[str, Any]) -> list[Field]:
        response = self.resolve(raw.get("responses", {}).get("200", {}))
        media = response.get("content", {}).get(JSON)
        if not media:
            return []
        schema = self.merged(media.get("schema", {}))
        if "properties" not in schema:
            # One of several response shapes: each with its description and fields.
            return [
                Field(
                    label="",
                    type_name=type_name(alt, self.resolve),
                    description=alt.get("description", ""),
                    deprecated=bool(alt.get("deprecated")),
                    children=tuple(self._top_fields(alt)),
                )
                for alt in map(self.merged, schema.get("oneOf", []) + schema.get("anyOf", []))
            ]
        return self._top_fields(schema)

    def _top_fields(self, schema: dict[str, Any]) -> list[Field]:
        return [
            self._field(name, prop, 0, frozenset())
            for name, prop in schema.get("properties", {}).items()
            if name not in ENVELOPE_FIELDS
        ]

    def _field(self, label: str, raw: Any, depth: int, seen: frozenset[str]) -> Field:
        ref = raw.get("$ref") if isinstance(raw, dict) else None
        if ref:
            seen = seen | {ref}
        schema = self.merged(raw)
        description = schema.get("description", "")
        if isinstance(raw, dict) and raw.get("description"):
            description = raw["description"]
        children: list[Field] = []
        alternatives: list[Field] = []
        if depth < MAX_DEPTH:
            children = self._children(schema, depth, seen)
            items = self.merged(schema.get("items", {})) if schema.get("type") == "array" else {}
            members = [
                member
                for source in (schema, items)
                for key in ("oneOf", "anyOf")
                for member in source.get(key, [])
            ]
            for member in members:
                member_ref = member.get("$ref") if isinstance(member, dict) else None
                if member_ref in seen:
                    continue
                alt = self.merged(member)
                alt_seen = seen | ({member_ref} if member_ref else set())
                alternatives.append(
                    Field(
                        label="",
                        type_name=type_name(alt, self.resolve),
                        description=alt.get("description", ""),
                        deprecated=bool(alt.get("deprecated")),
                        children=tuple(self._children(alt, depth, alt_seen)),
                    )
                )
        values = tuple([schema["const"]] if "const" in schema else schema.get("enum", []))
        return Field(
            label=label,
            type_name=type_name(schema, self.resolve),
            description=description,
            deprecated=bool(schema.get("deprecated")),
            children=tuple(children),
            alternatives=tuple(alternatives),
            values=values,
        )

    def _children(self, schema: dict[str, Any], depth: int, seen: frozenset[str]) -> list[Field]:
        children = [
            self._field(name, prop, depth + 1, seen)
            for name, prop in schema.get("properties", {}).items()
        ]
        items = schema.get("items")
        if isinstance(items, dict) and items.get("$ref") not in seen:
            merged = self.merged(items)
            children += [
                self._field(name, prop, depth + 1, seen | {items.get("$ref", "")})
                for name, prop in merged.get("properties", {}).items()
            ]
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra and extra.get("$ref") not in seen:
            entry = self._field("{key}", extra, depth + 1, seen)
            # Zulip's convention: a map entry's description starts with its key's label,
            # "`{user_email}`: ..." or "`{client_name}` or `"aggregated"`: ...".
            match = _KEY_LABEL.match(entry.description)
            if match:
                entry = dataclasses.replace(
                    entry,
                    label=match.group(1).replace("`", ""),
                    description=entry.description[match.end() :],
                )
            children.append(entry)
        return children


def _example_of(node: dict[str, Any]) -> Any:
    if "example" in node:
        return node["example"]
    examples = node.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    if isinstance(examples, dict) and examples:
        first = next(iter(examples.values()))
        if isinstance(first, dict) and "value" in first:
            return first["value"]
    return _NO_EXAMPLE


def default_example(schema: dict[str, Any]) -> Any:
    """Zulip's fallbacks for a parameter without an example: 1, "demo", false."""
    if "default" in schema:
        return copy.deepcopy(schema["default"])
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "integer" or kind == "number":
        return 1
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return "demo"


def type_name(schema: Any, resolve: Callable[[Any], Any] = lambda node: node) -> str:
    """A short type, as Zulip's pages show it: ``integer``, ``(string)[]``, ``a | b``."""
    schema = resolve(schema)
    if not isinstance(schema, dict):
        return ""
    for key in ("oneOf", "anyOf"):
        if key in schema:
            names = []
            for member in schema[key]:
                name = type_name(member, resolve)
                if name and name not in names:
                    names.append(name)
            return " | ".join(names)
    if "allOf" in schema and "type" not in schema:
        return type_name(schema["allOf"][0], resolve)
    kind = schema.get("type", "")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind == "array":
        return f"({type_name(schema.get('items', {}), resolve) or 'object'})[]"
    if not kind and ("properties" in schema or "additionalProperties" in schema):
        return "object"
    return str(kind) or "object"


def _slug(path: str, method: str) -> str:
    words = [w.strip("{}") for w in path.split("/") if w]
    return "-".join([method, *words])
