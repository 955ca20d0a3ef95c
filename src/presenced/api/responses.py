"""JSON responses in Zulip's envelope, encoded with orjson and ending with a newline.

``ApiResponse`` is a Starlette ``Response`` in type only: it keeps its headers as pre-encoded
bytes and writes itself straight to the ASGI ``send``, gzip-compressed when the client accepts
it and the body is large enough. Pre-encoded ``JoinedJson`` values (a realm's presences) are
spliced into the envelope as pieces, so their cached blocks keep their compressed form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from presenced.api.compression import GZIP_MIN_BYTES, accepts_gzip, gzip_pieces
from presenced.api.errors import ApiError
from presenced.presence.blocks import Block, JoinedJson, Piece

JSON = "application/json"
Headers = list[tuple[bytes, bytes]]

CONTENT_TYPE_JSON = (b"content-type", JSON.encode())
GZIPPED = (b"content-encoding", b"gzip")
VARY = (b"vary", b"Accept-Encoding")
_SPLICE = orjson.Fragment(b"\x00")
"""Stands for a spliced value in orjson's output (which never holds a raw NUL byte)."""


def encode_headers(headers: Mapping[str, str] | None) -> Headers:
    if not headers:
        return []
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]


class ApiResponse(Response):
    """A status, a body (bytes, or pieces to join or compress) and pre-encoded headers."""

    def __init__(
        self,
        body: bytes = b"",
        status_code: int = 200,
        headers: Headers | None = None,
        *,
        content_type: tuple[bytes, bytes] | None = CONTENT_TYPE_JSON,
        pieces: list[Piece] | None = None,
    ) -> None:
        self.status_code = status_code
        self.extra_headers: Headers = headers if headers is not None else []
        self.content_type = content_type
        self.pieces = pieces
        self._body = body
        self.background = None

    @property
    def body(self) -> bytes:
        if self.pieces is not None:
            self._body = b"".join(p.raw if isinstance(p, Block) else p for p in self.pieces)
            self.pieces = None
        return self._body

    @body.setter
    def body(self, value: bytes) -> None:
        self._body = value
        self.pieces = None

    def size(self) -> int:
        if self.pieces is not None:
            return sum(len(piece) for piece in self.pieces)
        return len(self._body)

    async def send_to(self, send: Send, gzip: bool, headers: Headers) -> int:
        """Write the response; ``headers`` go after the response's own. Returns the status."""
        status = self.status_code
        all_headers = list(headers)
        if self.content_type is not None:
            all_headers.append(self.content_type)
        all_headers.extend(self.extra_headers)
        if gzip and self.size() >= GZIP_MIN_BYTES:
            body = gzip_pieces(self.pieces if self.pieces is not None else [self._body])
            all_headers.append(GZIPPED)
            all_headers.append(VARY)
        else:
            body = self.body
        if status != 204 and status >= 200:
            all_headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": status, "headers": all_headers})
        await send({"type": "http.response.body", "body": body})
        return status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As a plain Starlette response (routes outside the lean path)."""
        accept = b""
        for name, value in scope.get("headers", ()):
            if name == b"accept-encoding":
                accept = value
                break
        await self.send_to(send, accepts_gzip(accept.decode("latin-1")), [])


def _splice_default(spliced: list[JoinedJson]) -> Any:
    def default(value: Any) -> Any:
        if isinstance(value, JoinedJson):
            if any(isinstance(piece, Block) for piece in value.pieces):
                spliced.append(value)
                return _SPLICE
            return orjson.Fragment(value.encoded)
        raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")

    return default


def json_response(
    body: Mapping[str, Any], status_code: int = 200, headers: Mapping[str, str] | None = None
) -> ApiResponse:
    spliced: list[JoinedJson] = []
    encoded = orjson.dumps(body, default=_splice_default(spliced), option=orjson.OPT_APPEND_NEWLINE)
    if not spliced:
        return ApiResponse(encoded, status_code, encode_headers(headers))
    around = encoded.split(b"\x00")
    pieces: list[Piece] = [around[0]]
    for joined, after in zip(spliced, around[1:], strict=True):
        pieces.extend(joined.pieces)
        pieces.append(after)
    return ApiResponse(status_code=status_code, headers=encode_headers(headers), pieces=pieces)


def json_success(
    data: Mapping[str, Any] | None = None, ignored_parameters: list[str] | None = None
) -> ApiResponse:
    body: dict[str, Any] = {"result": "success", "msg": ""}
    if data:
        body.update(data)
    if ignored_parameters:
        body["ignored_parameters_unsupported"] = ignored_parameters
    return json_response(body)


def json_error(error: ApiError) -> ApiResponse:
    """Zulip's order: result, msg, the error's own fields, code (and retry-after last)."""
    body: dict[str, Any] = {"result": "error", "msg": error.msg}
    body.update((k, v) for k, v in error.data.items() if k != "retry-after")
    body["code"] = error.code
    if "retry-after" in error.data:
        body["retry-after"] = error.data["retry-after"]
    return json_response(body, error.status_code, error.headers)
