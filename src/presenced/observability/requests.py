"""Per-request bookkeeping shared by every route: one access-log line and the request metrics.

Kept cheap on the hot path: the request metrics are plain counters (``metrics.RequestStats``);
the log line is one ``logger.info`` with positional arguments, formatted only if a handler
writes it.
"""

from __future__ import annotations

import logging

from presenced.api.auth import Caller
from presenced.observability import metrics
from presenced.observability.logconfig import ACCESS_FORMAT, access_logger

access_log = access_logger()
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Any other method a client invents is counted as ``OTHER`` (bounded label values)."""


class RequestRecorder:
    """The observer the API endpoints (and the fallback routes) report finished requests to."""

    def __init__(self, stats: metrics.RequestStats = metrics.REQUESTS) -> None:
        self.stats = stats

    def request_done(
        self,
        method: str,
        endpoint: str,
        status: int,
        seconds: float,
        caller: Caller | None,
        client: str,
    ) -> None:
        if method not in KNOWN_METHODS:
            method = "OTHER"
        self.stats.observe(endpoint, method, status, seconds)
        if access_log.isEnabledFor(logging.INFO):
            if caller is None:
                user_id: object = "-"
                realm_id: object = "-"
                realm = "-"
            else:
                user_id = caller.user.id
                realm_id = caller.realm.id
                realm = caller.realm.subdomain
            access_log.info(
                ACCESS_FORMAT,
                client or "-",
                method,
                endpoint,
                status,
                seconds * 1000,
                user_id,
                realm_id,
                realm,
            )

    def rate_limited(self) -> None:
        metrics.RATE_LIMITED.inc()

    def auth_failed(self) -> None:
        metrics.AUTH_FAILURES.inc()
