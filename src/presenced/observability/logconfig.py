"""Logging set up with ``logging.config.dictConfig``: plain text or JSON lines on stderr.

The access log (logger ``presenced.access``) replaces uvicorn's: one INFO line per request with
the client address, method, route template, status, latency, user id and realm; never a key,
an ``Authorization`` header or a query string. Its arguments are formatted only when a handler
writes the line, so a level that filters it out costs one level check per request.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

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
        "class": "logging.StreamHandler",
        "formatter": log_format if log_format in LOG_FORMATS else "text",
        "stream": "ext://sys.stderr",
    }
    quiet = {"handlers": [], "level": "WARNING", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
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
