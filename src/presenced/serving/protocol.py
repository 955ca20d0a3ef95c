"""uvicorn's httptools protocol with resource limits that answer in Zulip's JSON envelope.

uvicorn bounds none of these by itself (its concurrency limit answers in plain text, and a
connection that never sends a byte is never closed), so each is enforced here, where the
bytes arrive, before any of them reaches the application:

- the request line and headers: total size and count (431), time to arrive (408);
- the body: size (413, from ``Content-Length`` at once, or as chunks arrive), time (408);
- open connections: past the maximum, requests get 503 and one log line says so;
- any request the parser rejects: 400 in JSON rather than uvicorn's plain text.

An idle keep-alive connection is still closed silently after ``keepalive_timeout_secs``, as
HTTP expects (a client cannot tell an unsolicited answer from the answer to its next request).
The hot path pays a few integer additions per header and one timer per body, nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from presenced.settings import Settings

logger = logging.getLogger("presenced.serving")

CONNECTION_LOG_INTERVAL_SECS = 10.0
"""While the connection limit holds, say so at most this often."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_body_bytes: int
    max_header_bytes: int
    max_header_count: int
    header_timeout: float
    body_timeout: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_body_bytes=settings.max_request_body_bytes,
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            header_timeout=settings.header_timeout_secs,
            body_timeout=settings.body_timeout_secs,
            max_connections=settings.max_connections,
        )


class Refusal(Exception):
    """Raised inside a parser callback to stop parsing and answer with an error."""

    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg


class _ConnectionLimitLog:
    """One warning when the connection limit is reached, then one per interval."""

    def __init__(self) -> None:
        self.refused = 0
        self.last_logged = -CONNECTION_LOG_INTERVAL_SECS

    def refuse(self, open_connections: int, limit: int) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self.last_logged >= CONNECTION_LOG_INTERVAL_SECS:
            logger.warning(
                "connection limit reached: %d open connections (PRESENCED_MAX_CONNECTIONS=%d); "
                "%d request(s) refused with 503",
                open_connections,
                limit,
                self.refused,
            )
            self.refused = 0
            self.last_logged = now


def error_response(status: int, msg: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A complete HTTP/1.1 response carrying Zulip's error envelope, closing the connection."""
    body = orjson.dumps({"result": "error", "msg": msg, "code": "BAD_REQUEST"})
    lines = [STATUS_LINE[status]]
    for name, value in default_headers:
        lines += [name, b": ", value, b"\r\n"]
    lines += [
        b"content-type: application/json\r\n",
        b"content-length: ",
        str(len(body)).encode(),
        b"\r\nconnection: close\r\n\r\n",
        body,
    ]
    return b"".join(lines)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits: ConnectionLimits
    connection_log: _ConnectionLimitLog

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._header_count = 0
        self._body_bytes = 0
        self._expects_body = False
        self._in_body = False
        self._over_capacity = False
        self._refused = False

    # Connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._over_capacity = True
        self._timer = self.loop.call_later(self.limits.header_timeout, self._on_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            refusal = exc.__context__
            if isinstance(refusal, Refusal):
                self._refuse(refusal.status, refusal.msg)
            else:
                self._refuse(400, "Invalid HTTP request")

    def _unsupported_upgrade_warning(self) -> None:
        """An upgrade request (WebSocket, h2c) is served as plain HTTP; a client sending many
        must not fill the log with uvicorn's warnings about them."""

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, msg.rstrip("."))

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = self._header_count = self._body_bytes = 0
        self._expects_body = self._in_body = False
        if self._timer is None:
            self._timer = self.loop.call_later(self.limits.header_timeout, self._on_timeout)

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)
        if self._header_bytes > self.limits.max_header_bytes:
            raise Refusal(431, "Request header fields too large")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_bytes += len(name) + len(value)
        limits = self.limits
        if self._header_bytes > limits.max_header_bytes:
            raise Refusal(431, "Request header fields too large")
        if self._header_count > limits.max_header_count:
            raise Refusal(431, "Too many request header fields")
        if len(name) == 14 and name.lower() == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise Refusal(400, "Invalid Content-Length header") from None
            if length > limits.max_body_bytes:
                raise self._body_too_large()
            self._expects_body = length > 0
        elif len(name) == 17 and name.lower() == b"transfer-encoding":
            self._expects_body = True
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_timer()
        if self._over_capacity:
            self.connection_log.refuse(len(self.connections), self.limits.max_connections)
            raise Refusal(503, "Too many open connections; try again later")
        super().on_headers_complete()
        if self._expects_body:
            self._in_body = True
            self._timer = self.loop.call_later(self.limits.body_timeout, self._on_timeout)

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body_bytes:
            raise self._body_too_large()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        if self._timer is not None:
            self._cancel_timer()
        super().on_message_complete()

    # Refusals

    def _body_too_large(self) -> Refusal:
        return Refusal(413, f"Request body too large (at most {self.limits.max_body_bytes} bytes)")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timeout(self) -> None:
        self._timer = None
        if self._in_body:
            self._refuse(408, "Timed out waiting for the request body")
        else:
            self._refuse(408, "Timed out waiting for the request headers")

    def _refuse(self, status: int, msg: str) -> None:
        """Answer with ``status`` unless a response is under way, then close."""
        self._refused = True
        self._cancel_timer()
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:
                self.transport.close()
                return
            # The application is waiting for the rest of the body: it now hears of a
            # disconnect, and anything it sends goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.write(error_response(status, msg, self.server_state.default_headers))
        self.transport.close()


def limited_protocol(limits: ConnectionLimits) -> type[LimitedHttpToolsProtocol]:
    """A protocol class for uvicorn's ``http`` option with these limits."""
    return type(
        "PresencedHttpProtocol",
        (LimitedHttpToolsProtocol,),
        {"limits": limits, "connection_log": _ConnectionLimitLog()},
    )
