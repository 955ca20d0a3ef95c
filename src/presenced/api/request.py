"""The request as the REST endpoints read it, straight from the ASGI scope.

Only what Zulip's conventions use, each computed on first use: headers (one pass over the
scope's list), the query string, the body. Multipart bodies, rare in API clients, are handed to
Starlette's parser.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import Message, Receive, Scope

from presenced.api.params import form_text


class ClientDisconnectedError(Exception):
    """The client went away before its request body was complete."""


class ApiRequest:
    __slots__ = ("_body", "_headers", "method", "path", "path_params", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.path_params: dict[str, Any] = scope.get("path_params", {})
        self._headers: dict[str, str] | None = None
        self._body: bytes | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Lower-case names; the first of repeated headers wins (as Starlette's ``get``)."""
        if self._headers is None:
            self._headers = {
                name.decode("latin-1"): value.decode("latin-1")
                for name, value in reversed(self.scope["headers"])
            }
        return self._headers

    @property
    def query_params(self) -> dict[str, str]:
        """As Starlette reads them: the last of repeated names wins."""
        query: bytes = self.scope.get("query_string", b"")
        if not query:
            return {}
        return dict(parse_qsl(form_text(query), keep_blank_values=True))

    @property
    def scheme(self) -> str:
        scheme: str = self.scope.get("scheme", "http")
        return scheme

    @property
    def client_host(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else ""

    async def body(self) -> bytes:
        if self._body is None:
            chunks = []
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnectedError
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            self._body = b"".join(chunks)
        return self._body

    async def form(self) -> dict[str, str]:
        """A multipart body's text fields, parsed by Starlette (python-multipart)."""
        body = await self.body()
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        form = await Request(self.scope, replay).form()
        try:
            return {name: value for name, value in form.items() if isinstance(value, str)}
        finally:
            await form.close()
