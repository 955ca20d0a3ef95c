"""Zulip's per-user API rate limit behind a small async interface (in memory, or in Redis)."""
