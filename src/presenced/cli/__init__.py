"""Operator commands: ``presenced init | check | realm | user | key | channel | embed |
zuliprc | serve``.

Every mistake an operator can make (a bad flag or setting, an unusable database, an unknown
realm or user) ends in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """The ``presenced`` command. The commands' modules (SQLAlchemy, uvicorn, ...) take a
    moment to import: a Ctrl-C meanwhile ends the command like one at any later stage (exit
    status 130, no traceback)."""
    try:
        from presenced.cli.entry import main as run
    except KeyboardInterrupt:
        return 130
    return run(argv)


__all__ = ["main"]
