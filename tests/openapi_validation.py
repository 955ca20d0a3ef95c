"""Check API responses against the OpenAPI document the server serves (``openapi.yaml``).

``validate_response(method, path, status, body)`` maps a concrete request path (as sent, with
the ``/api/v1`` prefix and possibly a query string) to its documented path template, finds the
response the document declares for the method and status (falling back to ``NXX`` and then
``default`` keys), and validates the decoded JSON body with a Draft 2020-12 validator that
resolves ``#/components/...`` references within the whole document.

Literal path segments win over templated ones, as in the server's routing: ``/users/me`` is
``/users/me``, not ``/users/{user_id}``. A templated segment matches any non-empty segment.

Responses accepted without being documented for the request (their bodies are still checked):

- 404 for a path that matches no documented template, or lies outside ``/api/v1``: the app's
  not-found handler answers with a generic error, checked against ``JsonError``.
- 405 for any path and method: the method is not served there; the body is checked against
  ``MethodNotAllowedError``.
- ``HEAD`` wherever ``GET`` is documented: the status must be documented for ``GET``, and the
  body must be empty (pass ``None``, ``b""`` or ``""``).
- ``OPTIONS`` on a documented path: 204 with an empty body.

Anything else (an undocumented path, method or status) fails with an ``AssertionError``.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from presenced.api.openapi import document

API_PREFIX = "/api/v1"
DOCUMENT_URI = "urn:presenced:openapi"
JSON = "application/json"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
NOT_FOUND_SCHEMA = "/components/schemas/JsonError"
METHOD_NOT_ALLOWED_SCHEMA = "/components/schemas/MethodNotAllowedError"
_TEMPLATED = re.compile(r"\{[^{}/]+\}")
_EMPTY_BODIES: tuple[Any, ...] = (None, b"", "")


def escape_pointer_segment(segment: str) -> str:
    """One JSON Pointer segment (RFC 6901)."""
    return segment.replace("~", "~0").replace("/", "~1")


def resolve_pointer(pointer: str) -> Any:
    """The document node at a JSON Pointer such as ``/components/schemas/User``."""
    node: Any = document()
    if pointer == "":
        return node
    for raw in pointer.lstrip("/").split("/"):
        segment = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(segment)] if isinstance(node, list) else node[segment]
    return node


@functools.cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = DRAFT202012.create_resource(document())
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    return registry


@functools.cache
def _validator(pointer: str) -> Any:
    ref = f"{DOCUMENT_URI}#{quote(pointer, safe='/~')}"
    return Draft202012Validator({"$ref": ref}, registry=_registry())


def schema_errors(pointer: str, instance: Any) -> list[str]:
    """Why ``instance`` does not match the schema at ``pointer`` (empty if it does).

    The most relevant error comes first; ``$ref``s are resolved within the whole document.
    """
    errors = list(_validator(pointer).iter_errors(instance))
    if not errors:
        return []
    best = best_match(errors)
    lines = [f"at {best.json_path}: {best.message}"]
    lines += [f"at {e.json_path}: {e.message}" for e in errors if e is not best]
    return lines


def _templates() -> list[str]:
    return list(document()["paths"])


def match_template(path: str) -> str | None:
    """The documented template for a concrete ``/api/v1/...`` path (query string allowed)."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith(API_PREFIX + "/"):
        return None
    segments = path[len(API_PREFIX) + 1 :].split("/")
    best: tuple[tuple[int, ...], str] | None = None
    for template in _templates():
        parts = template[1:].split("/")
        if len(parts) != len(segments):
            continue
        rank: list[int] = []
        for part, segment in zip(parts, segments, strict=True):
            if _TEMPLATED.fullmatch(part):
                if not segment:
                    break
                rank.append(1)
            elif part == segment:
                rank.append(0)
            else:
                break
        else:
            key = (tuple(rank), template)
            if best is None or key < best:
                best = key
    return None if best is None else best[1]


def documented_operations() -> list[tuple[str, str]]:
    """Every documented (METHOD, path template) pair, in document order."""
    return [
        (method.upper(), template)
        for template, item in document()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    ]


def _response_pointer(template: str, method: str, status: int) -> str | None:
    """Pointer to the Response Object for the status (after following a ``$ref``)."""
    operation = f"/paths/{escape_pointer_segment(template)}/{method.lower()}"
    responses: dict[str, Any] = resolve_pointer(operation)["responses"]
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            pointer = f"{operation}/responses/{key}"
            break
    else:
        return None
    while "$ref" in (response := resolve_pointer(pointer)):
        ref: str = response["$ref"]
        assert ref.startswith("#/"), f"external reference {ref!r} at {pointer}"
        pointer = ref[1:]
    return pointer


def _fail(method: str, path: str, status: int, problem: str, body: Any) -> AssertionError:
    shown = repr(body)
    if len(shown) > 2000:
        shown = shown[:2000] + "..."
    return AssertionError(f"{method} {path} -> {status}: {problem}\nbody: {shown}")


def _check_schema(pointer: str, method: str, path: str, status: int, body: Any) -> None:
    errors = schema_errors(pointer, body)
    if errors:
        detail = "\n  ".join(errors[:10])
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        problem = f"body does not match the schema at #{pointer}:\n  {detail}{more}"
        raise _fail(method, path, status, problem, body)


def validate_response(method: str, path: str, status: int, body: Any) -> None:
    """Assert that ``body`` (decoded JSON) is what the document allows for this request.

    ``path`` is the request path as sent, e.g. ``/api/v1/users/me/presence`` or
    ``/api/v1/users/5/presence?slim_presence=true``.
    """
    method = method.upper()
    template = match_template(path)
    operations = {} if template is None else document()["paths"][template]

    if status == 405 and method.lower() not in operations:
        if method == "HEAD" and body in _EMPTY_BODIES:
            return
        _check_schema(METHOD_NOT_ALLOWED_SCHEMA, method, path, status, body)
        return
    if template is None:
        if status != 404:
            raise _fail(method, path, status, "no documented path matches", body)
        if method == "HEAD" and body in _EMPTY_BODIES:
            return
        _check_schema(NOT_FOUND_SCHEMA, method, path, status, body)
        return

    lookup_method = method
    if method == "HEAD" and "head" not in operations and "get" in operations:
        lookup_method = "GET"
    elif method == "OPTIONS" and "options" not in operations:
        if status != 204 or body not in _EMPTY_BODIES:
            raise _fail(method, path, status, "OPTIONS must answer 204 with no body", body)
        return
    if lookup_method.lower() not in operations:
        problem = f"{method} is not documented for {template}"
        raise _fail(method, path, status, problem, body)

    pointer = _response_pointer(template, lookup_method, status)
    if pointer is None:
        problem = f"status {status} is not documented for {lookup_method} {template}"
        raise _fail(method, path, status, problem, body)
    content: dict[str, Any] | None = resolve_pointer(pointer).get("content")
    if method == "HEAD" or not content:
        if body not in _EMPTY_BODIES:
            raise _fail(method, path, status, "expected an empty body", body)
        return
    if JSON not in content:
        raise _fail(method, path, status, f"no {JSON} content documented", body)
    schema_pointer = f"{pointer}/content/{escape_pointer_segment(JSON)}/schema"
    _check_schema(schema_pointer, method, path, status, body)
