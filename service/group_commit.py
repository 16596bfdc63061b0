"""Many small writes as a few batches: whatever queues while one batch is written goes
in the next.

A cycle of 304s is thousands of tiny writes (a fetch row, a timestamp).  One
transaction each costs more than the fetch itself; waiting for a full batch or a
timer would stall the callers when few are left.  Group commit does neither: the
first item starts a flush at once, and the items that arrive meanwhile form the
next, so batches grow with the load and a lone item waits for nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """`submit(item)` returns `flush`'s result for that item; `flush` gets the items
    queued since the last flush began (at most `max_batch`), one call at a time.  If
    a flush raises, every item of that batch gets the exception."""

    def __init__(self, flush: Callable[[list[T]], Awaitable[Sequence[R]]], *,
                 max_batch: int = 500) -> None:
        self._flush = flush
        self.max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._drain is None:
            self._drain = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._queue:
                batch, self._queue = (self._queue[:self.max_batch],
                                      self._queue[self.max_batch:])
                try:
                    results = await self._flush([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # its submitter may have been cancelled
                        future.set_result(result)
        except asyncio.CancelledError:
            for _, future in [*batch, *self._queue]:
                future.cancel()
            raise
        finally:
            self._drain = None
