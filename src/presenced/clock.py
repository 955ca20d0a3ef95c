"""The time source, passed down explicitly so tests can drive it."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> float:
        """Seconds since the UNIX epoch, as a float."""
        ...


def system_clock() -> float:
    return time.time()
