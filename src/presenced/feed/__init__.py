"""The change feed: how one process tells the others what it committed."""
