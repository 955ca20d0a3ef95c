"""presenced: a standalone server for Zulip's user-presence API."""

__version__ = "0.1.0"
