"""Operator commands: ``presenced init | check | realm | user | key | channel | embed |
zuliprc | serve``.

Every mistake an operator can make (a bad flag or setting, an unusable database, an unknown
realm or user) ends in one line on stderr and a non-zero exit, never a traceback.
"""

from presenced.cli.entry import main

__all__ = ["main"]
