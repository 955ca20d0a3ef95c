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

import asyncio
import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
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


@contextlib.contextmanager
def answering_on_signals(before_shutdown: ShutdownHook) -> Iterator[None]:
    """While the app runs under an ASGI server that is not ``PresencedServer`` (a worker of
    ``serve --workers N``, ``uvicorn --factory``, gunicorn's uvicorn worker), run
    ``before_shutdown`` as soon as SIGTERM or SIGINT arrives, after that server's own handler.

    Such a server waits for open connections before it runs the lifespan shutdown; without
    this, parked polls would hold it to its graceful-shutdown timeout and then be cancelled
    into plain-text 500s. Only Python-level handlers installed by the server are wrapped.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Future[None]] = set()

    def release() -> None:
        task = asyncio.ensure_future(before_shutdown())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        handler = signal.getsignal(sig)
        if not callable(handler):
            continue

        def answer(signum: int, frame: Any, handler: Callable[[int, Any], Any] = handler) -> None:
            handler(signum, frame)
            loop.call_soon_threadsafe(release)

        previous[sig] = handler
        signal.signal(sig, answer)
    try:
        yield
    finally:
        for signum, original in previous.items():
            signal.signal(signum, original)


def serve(app: Any, before_shutdown: ShutdownHook, **config: Any) -> None:
    """``uvicorn.run`` for one process, with ``before_shutdown`` hooked in (see above)."""
    run(uvicorn.Config(app, **config), before_shutdown)


def run(config: uvicorn.Config, before_shutdown: ShutdownHook) -> None:
    """Run one process with ``config``, with ``before_shutdown`` hooked in (see above)."""
    server = PresencedServer(config, before_shutdown)
    # uvicorn re-raises the SIGINT it caught once it has stopped: that is the end, not an error.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def run_workers(config: uvicorn.Config) -> None:
    """``config.workers`` processes on one listening socket (uvicorn's supervisor), each
    building its own app; a worker that dies is replaced."""
    from uvicorn.supervisors import Multiprocess

    sock = config.bind_socket()
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[sock]).run()
