"""The Zulip version and API feature level whose behaviour presenced implements."""

ZULIP_VERSION = "10.0"
ZULIP_MERGE_BASE = "10.0"
API_FEATURE_LEVEL = 371
"""Zulip 10.0's final level: past 288 (``history_limit_days``), before 419 (simplified events)."""
