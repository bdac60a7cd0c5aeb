"""The driver's cleaning task: does what the ``Cleaner`` says is no longer referenced.

For each batch: the scheduler forgets the shuffles' map outputs and the shuffle
services (and self-serving workers) delete their files
(``DELETE /v1/shuffle/{app}/{shuffle}``); the workers drop the RDDs' cached
blocks and the broadcasts (the driver drops the broadcasts' blobs); the
checkpoint directories are removed (off the loop, any fsspec file system).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiospark.scheduler.cleaner import Batch, Cleaner

if TYPE_CHECKING:
    from aiospark.scheduler.runner import Scheduler

log = logging.getLogger("aiospark.cleaner")


class CleaningTask:
    """Runs on the driver's loop, woken (thread-safely) whenever the cleaner queued work.

    Parameters
    ----------
    cleaner : Cleaner
        Where garbage-collected objects are queued.
    scheduler : Scheduler
        The driver's scheduler shell (map outputs, workers, shuffle services).
    remove_checkpoint : callable
        Removes one checkpoint directory; called on a thread.
    """

    def __init__(
        self,
        cleaner: Cleaner,
        scheduler: Scheduler,
        remove_checkpoint: Callable[[str], None],
    ) -> None:
        self.cleaner = cleaner
        self.scheduler = scheduler
        self._remove_checkpoint = remove_checkpoint
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the task on the running loop; the cleaner wakes it from any thread."""
        loop = asyncio.get_running_loop()
        wakeup = self._wakeup

        def wake() -> None:
            loop.call_soon_threadsafe(wakeup.set)

        self.cleaner.wake = wake
        self._task = asyncio.create_task(self._run())
        if self.cleaner.pending:
            wakeup.set()

    async def stop(self) -> None:
        """Stop the task (what is still queued is left: the application's files go at stop)."""
        self.cleaner.wake = lambda: None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def drain(self) -> None:
        """Clean everything queued so far, including a batch being cleaned now."""
        while await self._clean_one():
            pass

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                while await self._clean_one():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one failure stop the cleaning
                log.exception("cleaning failed")

    async def _clean_one(self) -> bool:
        async with self._lock:
            batch = self.cleaner.take()
            if batch.empty:
                return False
            await self.clean(batch)
            return True

    async def clean(self, batch: Batch) -> None:
        """Clean one batch everywhere."""
        scheduler = self.scheduler
        for rdd_id in batch.rdds:
            scheduler.unpersist(rdd_id)
        for bid in batch.broadcasts:
            scheduler.drop_broadcast(bid)
        if batch.shuffles:
            await scheduler.remove_shuffles(batch.shuffles)
        for directory in batch.checkpoints:
            try:
                await asyncio.to_thread(self._remove_checkpoint, directory)
            except Exception as exc:
                log.warning("could not remove checkpoint %s: %s", directory, exc)
        log.debug("cleaned %s", batch)
