"""The OpenAPI 3.1 document describing every endpoint presenced serves (``openapi.yaml``)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson
import yaml

SPEC_PATH = Path(__file__).with_name("openapi.yaml")


@functools.cache
def document() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as fh:
        loaded: dict[str, Any] = yaml.safe_load(fh)
    return loaded


@functools.cache
def document_json() -> bytes:
    return orjson.dumps(document(), option=orjson.OPT_APPEND_NEWLINE)
