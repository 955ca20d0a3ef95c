"""The uvicorn configuration ``presenced serve`` runs with, built in one place."""

from __future__ import annotations

import logging
import resource
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from presenced.serving.protocol import ConnectionLimits, limited_protocol
from presenced.settings import Settings

logger = logging.getLogger("presenced.serving")

FILE_DESCRIPTOR_HEADROOM = 256
"""Descriptors kept free beyond the connection limit (database, log files, listening socket)."""


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """uvicorn's settings for ``app`` in this process: address, log level, proxies, shutdown,
    and the connection limits.

    uvicorn's own ``limit_concurrency`` stays off: the protocol enforces
    ``max_connections`` and answers in JSON. presenced writes the access log itself
    (``presenced.access``), so uvicorn's is off and its logging is left as configured.
    """
    return uvicorn.Config(
        app, http=limited_protocol(ConnectionLimits.from_settings(settings)), **_common(settings)
    )


def workers_config(settings: Settings) -> uvicorn.Config:
    """The same for ``settings.workers`` processes, each building its own app with the
    ``from_environment`` factory and importing the limited protocol itself."""
    from presenced.serving.worker_protocol import WORKER_PROTOCOL

    return uvicorn.Config(
        "presenced.app:from_environment",
        factory=True,
        workers=settings.workers,
        http=WORKER_PROTOCOL,
        **_common(settings),
    )


def _common(settings: Settings) -> dict[str, Any]:
    return dict(
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,
        # No WebSocket routes: an upgrade request is served as the plain HTTP request it also
        # is (a JSON answer), not refused with uvicorn's bare 403.
        ws="none",
        timeout_keep_alive=settings.keepalive_timeout_secs,
        # Typed int, but uvicorn only hands it to asyncio's timeouts: fractions work.
        timeout_graceful_shutdown=settings.shutdown_timeout_secs,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def raise_open_file_limit(max_connections: int) -> None:
    """Let the process hold ``max_connections`` sockets: raise the soft descriptor limit up to
    the hard one, and warn if even that is too low."""
    wanted = max_connections + FILE_DESCRIPTOR_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted:
        logger.warning(
            "the open file limit (%d) is below PRESENCED_MAX_CONNECTIONS + %d (%d): raise it "
            "(ulimit -n, systemd LimitNOFILE=) or lower PRESENCED_MAX_CONNECTIONS",
            soft,
            FILE_DESCRIPTOR_HEADROOM,
            wanted,
        )
