"""Running the app under uvicorn, with parked long-polls answered before shutdown waits.

uvicorn's shutdown closes the listening sockets, asks every connection to close once its
response is sent, waits (up to ``timeout_graceful_shutdown``) for connections to finish, then
cancels what is left, and only then runs the lifespan shutdown. A parked long-poll holds its
connection for up to a heartbeat interval, so waiting for it would either stall the shutdown or,
at the timeout, cancel it into a plain-text 500 and a logged traceback. The hook below runs
first, as soon as the signal has stopped the main loop: it stops new connections and
keep-alive, then releases every parked poll with a proper Zulip answer (pending events or a
heartbeat), so that uvicorn's own wait is short and the lifespan can save the queues.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

STARTUP_FAILURE = 3
"""uvicorn's exit status when the server could not start (the port is taken, ...)."""
ShutdownHook = Callable[[], Awaitable[None]]


class PresencedServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, before_shutdown: ShutdownHook) -> None:
        super().__init__(config)
        self.before_shutdown = before_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await self.before_shutdown()
        await super().shutdown(sockets)


def serve(app: Any, before_shutdown: ShutdownHook, **config: Any) -> None:
    """``uvicorn.run`` for one process, with ``before_shutdown`` hooked in (see above)."""
    server = PresencedServer(uvicorn.Config(app, **config), before_shutdown)
    # uvicorn re-raises the SIGINT it caught once it has stopped: that is the end, not an error.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
