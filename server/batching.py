"""A micro-batcher: work items that arrive while earlier ones are being processed are processed
together, in one call.

Why: some work is dominated by a fixed cost per call rather than per item (a transaction's round
trips, a lock held until commit). Under load, many small calls queue behind that fixed cost; one
call for all the waiting items pays it once. At low load nothing waits: an item arriving at an idle
batcher is processed alone, at once, so batching adds no latency when there is nothing to batch.

`concurrency` calls may run at the same time (each takes every item queued when it starts, up to
`max_batch`), so the work before and after a shared lock overlaps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Processes a batch: one outcome per item, in order; an exception instance is raised to its caller.
Process = Callable[[Sequence[T]], Awaitable[Sequence["R | BaseException"]]]


class MicroBatcher(Generic[T, R]):
    def __init__(self, process: Process, *, concurrency: int = 2, max_batch: int = 64):
        if concurrency < 1 or max_batch < 1:
            raise ValueError("concurrency and max_batch must be at least 1")
        self._process = process
        self._concurrency, self._max_batch = concurrency, max_batch
        self._queue: list[tuple[T, asyncio.Future]] = []
        self._running: set[asyncio.Task] = set()

    async def submit(self, item: T) -> R:
        """Process `item` (alone or with others) and return its outcome."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._dispatch()
        return await future

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _dispatch(self) -> None:
        while self._queue and len(self._running) < self._concurrency:
            batch = self._queue[:self._max_batch]
            del self._queue[:len(batch)]
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        self._dispatch()

    async def _run(self, batch: list[tuple[T, asyncio.Future]]) -> None:
        try:
            outcomes = await self._process([item for item, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} items got {len(outcomes)} outcomes")
        except BaseException as e:  # noqa: BLE001 - every waiting caller must hear of it
            outcomes = [e] * len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the caller went away (request cancelled)
                continue
            if isinstance(outcome, asyncio.CancelledError):
                future.cancel()
            elif isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
