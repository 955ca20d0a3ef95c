"""Group commit, for any backend: concurrent presence reports go to the database together.

Callers queue a report and wait. One flush task takes everything queued, hands it to the
backend's ``commit`` (one transaction for the whole batch) and acknowledges each caller only
once that transaction has committed. While a batch commits, new reports queue up for the next.
If a batch fails, each of its reports is retried alone, so one bad report fails only its own
caller; a database that is down fails the whole batch at once (retrying alone would only wait
for the same timeout again, once per report).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from presenced.store.base import StoreUnavailableError

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

CommitBatch = Callable[[list[Item]], Awaitable[list[Outcome]]]
"""Commit every item in one transaction and return their outcomes in order; raise (having
rolled back) if the transaction fails."""


class GroupCommitter(Generic[Item, Outcome]):
    def __init__(self, commit: CommitBatch[Item, Outcome]) -> None:
        self._commit = commit
        self._pending: list[tuple[Item, asyncio.Future[Outcome]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Outcome:
        """Queue ``item`` and return its outcome once its batch has committed."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def drain(self) -> None:
        """Wait until everything queued so far has been committed (or failed)."""
        if self._flusher is not None:
            await self._flusher

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            outcomes = await self._commit_isolating([item for item, _ in batch])
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # the caller went away (a cancelled request)
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def _commit_isolating(self, items: list[Item]) -> list[Outcome | BaseException]:
        try:
            return list(await self._commit(items))
        except StoreUnavailableError as exc:
            return [exc] * len(items)
        except Exception as exc:
            if len(items) == 1:
                return [exc]
        results: list[Outcome | BaseException] = []
        for item in items:
            results.extend(await self._commit_isolating([item]))
        return results
