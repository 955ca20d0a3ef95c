"""Embed tokens travel in URLs (an iframe's ``src``), so access logs would record them: this
filter blanks them out of uvicorn's access log lines."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"(\btoken=)[^&\s]+")


def redact(text: str) -> str:
    return _TOKEN.sub(r"\1[redacted]", text)


class RedactEmbedTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Filter the access log (call before uvicorn configures logging; filters survive it)."""
    logging.getLogger("uvicorn.access").addFilter(RedactEmbedTokens())
