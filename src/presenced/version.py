"""The Zulip version and API feature level whose behaviour presenced implements."""

ZULIP_VERSION = "11.0"
ZULIP_MERGE_BASE = "11.0"
API_FEATURE_LEVEL = 421
"""Zulip 11.0's final level: past 288 (``history_limit_days``) and 419 (simplified presence
events), so clients that know of them use them."""
