"""Keeps this process's caches current without a store round trip per request.

Three sources, one effect (the directory cache dropped, a realm index told how far the store
has got; the index then reads only the rows past what it holds):
- this process's own commits, applied at once and announced to the others on the feed;
- the feed's notices from other processes (Redis), applied as they arrive (and their failed
  authentications counted by this process's throttle);
- a periodic check of the store (every ``change_poll_interval_secs``), the fallback that makes
  a lost notice a delay rather than a loss, plus the store's own cheap hint (SQLite's
  ``data_version``) checked on each request, so the CLI's changes to an embedded database
  apply to the very next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from presenced.core.directory import Directory
from presenced.core.indexes import PresenceIndexes
from presenced.feed.base import (
    AuthenticationFailed,
    ChangeFeed,
    DirectoryChanged,
    Notice,
    PresenceCommitted,
)
from presenced.ratelimit.failed_auth import FailedAuthThrottle
from presenced.store.base import Store, StoreUnavailableError

logger = logging.getLogger("presenced.changes")


class ChangeTracker:
    def __init__(
        self,
        store: Store,
        feed: ChangeFeed,
        directory: Directory,
        indexes: PresenceIndexes,
        poll_interval: float,
        auth_throttle: FailedAuthThrottle,
    ) -> None:
        self.store = store
        self.feed = feed
        self.directory = directory
        self.indexes = indexes
        self.poll_interval = poll_interval
        self.auth_throttle = auth_throttle
        self._directory_stale = False
        self._store_error: str | None = None
        """Why the last periodic check failed; requests are refused until one succeeds, so
        that nothing is answered from caches the store can no longer confirm."""
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.check_store()
        await self.feed.start(self.on_notice)
        self._poller = asyncio.create_task(self._poll_forever())

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        await self.feed.close()

    def on_notice(self, notice: Notice) -> None:
        """Another process committed something (never blocks: the work waits for a request)."""
        if isinstance(notice, PresenceCommitted):
            self.indexes.note_sequence(notice.realm_id, notice.sequence)
        elif isinstance(notice, DirectoryChanged):
            self._directory_stale = True
        elif isinstance(notice, AuthenticationFailed):
            self.auth_throttle.failed(notice.address, notice.at)

    async def ensure_fresh(self) -> None:
        """Called before a request reads any cache: free unless something changed."""
        if self._store_error is not None:
            raise StoreUnavailableError(self._store_error)
        if self.store.may_have_changed():
            await self.check_store()
        elif self._directory_stale:
            self._directory_stale = False
            await self.directory.refresh()

    def store_failed(self, error: Exception) -> None:
        """A request found the store unreachable: refuse the others too until the periodic
        check reaches it again (within ``poll_interval`` of its return)."""
        if self._store_error is None:
            logger.warning("the store cannot be reached: %s", error)
        self._store_error = str(error) or type(error).__name__

    async def check_store(self) -> None:
        state = await self.store.change_state()
        self._directory_stale = False
        self.directory.observe_version(state.directory_version)
        for realm_id, sequence in state.presence_sequences.items():
            self.indexes.note_sequence(realm_id, sequence)

    async def presence_committed(self, realm_id: int, sequence: int) -> None:
        """This process committed a presence write (already applied to its own index)."""
        await self.feed.publish(PresenceCommitted(realm_id, sequence))

    async def authentication_failed(self, address: str) -> None:
        """A request from ``address`` failed to authenticate here: count it, and tell the
        others, so that the throttle counts the failures of every process."""
        at = self.auth_throttle.failed(address)
        await self.feed.publish(AuthenticationFailed(address, at))

    async def directory_changed(self) -> None:
        """This process changed the directory: drop its caches now, and tell the others."""
        await self.directory.refresh()
        await self.feed.publish(DirectoryChanged())

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.check_store()
            except Exception as exc:  # the store is down: requests say so; keep checking
                self.store_failed(exc)
            else:
                if self._store_error is not None:
                    logger.warning("the store is reachable again")
                self._store_error = None
