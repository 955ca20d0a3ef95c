"""Logging set up with ``logging.config.dictConfig``: plain text or JSON lines on stderr.

The access log (logger ``presenced.access``) replaces uvicorn's: one INFO line per request with
the client address, method, route template, status, latency, user id and realm; never a key,
an ``Authorization`` header or a query string. Its arguments are formatted only when a handler
writes the line, so a level that filters it out costs one level check per request.
"""

from __future__ import annotations

import datetime
import logging
import logging.config
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

ACCESS_LOGGER = "presenced.access"
LOG_FORMATS = ("text", "json")
ACCESS_FORMAT = "%s %s %s %d %.1fms user=%s realm_id=%s realm=%s"
ACCESS_FIELDS = (
    "client",
    "method",
    "endpoint",
    "status",
    "latency_ms",
    "user_id",
    "realm_id",
    "realm",
)
"""The access line's arguments, in order: the JSON formatter names them."""


class AccessRecord(logging.LogRecord):
    """A log record with only what an access line uses computed per request.

    ``LogRecord.__init__`` derives a dozen fields (source file, module, thread, process, task)
    that an access line never prints; here they are class-level constants, so any formatter
    still finds every standard attribute.
    """

    pathname = filename = "(access)"
    module = "access"
    lineno = 0
    funcName = "(access)"
    stack_info = None
    thread = threadName = process = None
    processName = taskName = None

    def __init__(
        self,
        name: str,
        level: int,
        pathname: str,
        lineno: int,
        msg: object,
        args: Any,
        exc_info: Any,
        func: str | None = None,
        sinfo: str | None = None,
        **_: Any,
    ) -> None:
        now = time.time_ns()
        self.name = name
        self.msg = msg
        self.args = args
        self.levelno = level
        self.levelname = logging.getLevelName(level)
        self.exc_info = exc_info
        self.exc_text = None
        self.created = now / 1e9
        self.msecs = (now % 1_000_000_000) // 1_000_000
        self.relativeCreated = (now - _STARTED_NS) / 1e6


_STARTED_NS = time.time_ns()


class AccessLogger(logging.Logger):
    """The ``presenced.access`` logger: makes ``AccessRecord``s, and its plain ``info`` calls
    go straight to the handlers (no caller lookup: access lines have no source location)."""

    def info(
        self,
        msg: object,
        *args: object,
        exc_info: Any = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        if exc_info is not None or stack_info or extra is not None:
            super().info(
                msg,
                *args,
                exc_info=exc_info,
                stack_info=stack_info,
                stacklevel=stacklevel,
                extra=extra,
            )
        elif self.isEnabledFor(logging.INFO):
            self.handle(AccessRecord(self.name, logging.INFO, "", 0, msg, args, None))

    def makeRecord(
        self,
        name: str,
        level: int,
        fn: str,
        lno: int,
        msg: object,
        args: Any,
        exc_info: Any,
        func: str | None = None,
        extra: Any = None,
        sinfo: str | None = None,
    ) -> logging.LogRecord:
        return AccessRecord(name, level, fn, lno, msg, args, exc_info, func, sinfo)


def access_logger() -> logging.Logger:
    """The access logger, created as an ``AccessLogger`` on first use."""
    existing = logging.Logger.manager.loggerDict.get(ACCESS_LOGGER)
    if isinstance(existing, logging.Logger):
        return existing
    previous = logging.getLoggerClass()
    logging.setLoggerClass(AccessLogger)
    try:
        return logging.getLogger(ACCESS_LOGGER)
    finally:
        logging.setLoggerClass(previous)


class BufferedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to stderr through a buffer of its own, flushed at least every
    ``FLUSH_INTERVAL`` seconds, at once for WARNING and above, and on close.

    Python's stderr is line-buffered: one system call per line, the largest part of an access
    line's cost under load. Once shutdown begins, ``write_through`` turns the buffer off: a
    process stopped by SIGTERM ends with uvicorn re-raising the signal (and a worker with
    ``os._exit``), so neither ``close`` nor the flusher would get to write the last lines.
    """

    FLUSH_INTERVAL = 0.2
    _instances: ClassVar[weakref.WeakSet[BufferedStderrHandler]] = weakref.WeakSet()

    def __init__(self) -> None:
        stream = open(  # noqa: SIM115 - the handler keeps it open
            sys.stderr.fileno(),
            "w",
            buffering=1 << 16,
            encoding="utf-8",
            errors="backslashreplace",
            closefd=False,
        )
        super().__init__(stream)
        self._closed = threading.Event()
        self._write_through = False
        self._flusher = threading.Thread(target=self._flush_often, daemon=True)
        self._flusher.start()
        BufferedStderrHandler._instances.add(self)

    @classmethod
    def write_through(cls) -> None:
        """Flush every such handler, and from now on write each line as it comes."""
        for handler in list(cls._instances):
            handler._write_through = True
            handler.flush()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + "\n")
            if self._write_through or record.levelno >= logging.WARNING:
                self.stream.flush()
        except Exception:
            self.handleError(record)

    def _flush_often(self) -> None:
        while not self._closed.wait(self.FLUSH_INTERVAL):
            self.flush()

    def close(self) -> None:
        self._closed.set()
        self.flush()
        super().close()


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message>``; the time text is built once per second."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        line = (
            f"{self._stamp},{int(record.msecs):03d} {record.levelname} {record.name}: "
            f"{record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line; access lines carry their fields as keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
        }
        if record.name == ACCESS_LOGGER and isinstance(record.args, tuple):
            entry.update(zip(ACCESS_FIELDS, record.args, strict=False))
            entry["latency_ms"] = round(float(entry["latency_ms"]), 3)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(log_format: str = "text", level: str = "info") -> dict[str, Any]:
    """The dictConfig for ``presenced serve``: presenced's and uvicorn's loggers on one handler,
    uvicorn's access log off (presenced writes its own)."""
    level_name = level.upper()
    handler = {
        "()": BufferedStderrHandler,
        "formatter": log_format if log_format in LOG_FORMATS else "text",
    }
    quiet = {"handlers": [], "level": "WARNING", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"()": TextFormatter},
            "json": {"()": JsonFormatter},
        },
        "handlers": {"default": handler},
        "loggers": {
            "presenced": {"handlers": ["default"], "level": level_name, "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level_name, "propagate": False},
            "uvicorn.error": {"level": level_name},
            "uvicorn.access": quiet,
        },
    }


def configure_logging(log_format: str = "text", level: str = "info") -> None:
    """Apply ``logging_config``, and skip the per-record work nothing here prints (the
    caller's source line, thread and process names), as the logging docs advise."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    logging.config.dictConfig(logging_config(log_format, level))
