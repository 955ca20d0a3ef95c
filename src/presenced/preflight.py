"""Operator-facing checks run before a command touches the database or the network.

Each returns a one-line explanation of a problem, or None: the CLI prints the line instead of
the traceback the driver would raise (``unable to open database file``) and ``presenced
check`` runs them all, in the spirit of Zulip's ``checkconfig``.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from presenced.settings import Settings
from presenced.store.base import StoreError
from presenced.store.factory import sqlite_path


def database_problem(database_url: str, *, create: bool) -> str | None:
    """Why the SQLite file of ``database_url`` cannot be used (``create``: or created)."""
    try:
        raw = sqlite_path(database_url)
    except StoreError as exc:
        return str(exc)
    if raw is None:
        return None  # another backend: its driver's errors are already clear
    path = Path(raw)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        return f"the database directory {directory} does not exist (PRESENCED_DATABASE_URL)"
    if path.exists():
        if not path.is_file():
            return f"the database path {path} is not a file"
        if not os.access(path, os.R_OK):
            return f"the database file {path} is not readable"
        if not os.access(path, os.W_OK):
            return f"the database file {path} is read-only; presenced needs to write to it"
        if not os.access(directory, os.W_OK | os.X_OK):
            return (
                f"the database directory {directory} is not writable; SQLite needs to create "
                f"{path.name}-wal beside the database"
            )
        return None
    if not create:
        return f"the database file {path} does not exist: run `presenced init`"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"cannot create the database in {directory}: the directory is not writable"
    return None


def port_problem(host: str, port: int, setting: str = "PRESENCED_PORT, --port") -> str | None:
    """Why ``serve`` could not listen on host:port (``setting`` names where the port is set)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot resolve the host {host!r} to listen on: {exc.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use ({setting})"
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def workers_problem(settings: Settings) -> str | None:
    """Several processes share their state through PostgreSQL and Redis; without Redis each
    would keep its own event queues, rate limits and caches."""
    if settings.workers > 1 and not settings.redis_url:
        return (
            f"{settings.workers} workers need PostgreSQL and Redis to share their state: set "
            "PRESENCED_DATABASE_URL=postgresql://... and PRESENCED_REDIS_URL=redis://... "
            "(or run one worker, PRESENCED_WORKERS=1)"
        )
    return None


def metrics_port_problem(settings: Settings) -> str | None:
    """Why the metrics listeners of ``PRESENCED_METRICS_PORT`` could not start (it would fail
    the app's startup with a traceback instead): one port per worker, P to P+N-1."""
    if not settings.metrics_port:
        return None
    ports = range(settings.metrics_port, settings.metrics_port + settings.workers)
    if settings.workers > 1 and settings.port in ports:
        return (
            f"PRESENCED_METRICS_PORT={settings.metrics_port} gives the {settings.workers} workers "
            f"the metrics ports {ports[0]}-{ports[-1]}, which include the server's port "
            f"{settings.port}"
        )
    for port in ports:
        problem = port_problem(settings.metrics_host, port, "PRESENCED_METRICS_PORT")
        if problem is not None:
            return problem
    return None
