"""A barrier task's ``barrier()`` and ``all_gather()`` calls, as the executor makes them.

The task's thread sends a ``BarrierCall`` to its driver (over the driver's
session, from the event loop) and blocks until the driver's ``BarrierAnswer``
arrives: every task's message, or the error the call raises.  A task that is
cancelled while it waits (another task of its stage failed, its job was
cancelled) stops waiting at once, and so do all of a driver's tasks when its
session closes.  The driver bounds the wait (``barrier_timeout``); the task
waits a little longer than that for an answer in case the driver went silent.

>>> import asyncio
>>> from types import SimpleNamespace as NS
>>> async def demo():
...     loop = asyncio.get_running_loop()
...     calls = BarrierCalls(loop, lambda m: loop.call_soon(calls.answer, NS(
...         task_id=m.task_id, epoch=m.epoch, messages=[m.message, "b"], error="")))
...     task = calls.task(NS(cancelled=False), task_id=1, attempt=1, partition=0,
...                       peers=["h:1", "h:2"], timeout=5.0)
...     return await asyncio.to_thread(task.sync, "all_gather", "a")
>>> asyncio.run(demo())
['a', 'b']
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any

from aiospark.errors import BarrierError, TaskCancelled
from aiospark.protocol.tasks import BarrierAnswer, BarrierCall


class BarrierCalls:
    """The barrier calls of one driver's tasks on this executor, waiting for answers."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 post: Callable[[BarrierCall], None]) -> None:
        self.loop = loop
        #: sends a message to the driver (called on the loop)
        self.post = post
        #: task id -> (call number, the future its thread waits on)
        self.waiting: dict[int, tuple[int, concurrent.futures.Future[list[str]]]] = {}
        self.closed = False

    def task(self, tctx: Any, task_id: int, attempt: int, partition: int,
             peers: list[str], timeout: float) -> BarrierTask:
        """What the task's ``BarrierTaskContext`` calls through."""
        return BarrierTask(self, tctx, task_id, attempt, partition, peers, timeout)

    def answer(self, message: BarrierAnswer) -> None:
        """On the loop: the driver answered a call."""
        entry = self.waiting.get(message.task_id)
        if entry is None or entry[0] != message.epoch or entry[1].done():
            return  # the task stopped waiting (cancelled, timed out), or another call's
        del self.waiting[message.task_id]
        if message.error:
            entry[1].set_exception(BarrierError(message.error))
        else:
            entry[1].set_result(list(message.messages))

    def interrupt(self, task_id: int, error: BaseException | None = None) -> None:
        """On the loop: the task was cancelled; its waiting call raises."""
        entry = self.waiting.pop(task_id, None)
        if entry is not None and not entry[1].done():
            entry[1].set_exception(error or TaskCancelled("task cancelled"))

    def close(self) -> None:
        """The driver's session closed: every waiting call raises."""
        self.closed = True
        for task_id in list(self.waiting):
            self.interrupt(task_id, BarrierError("the driver went away during a barrier call"))


class BarrierTask:
    """One barrier task's side of its calls: it numbers them and waits for each answer."""

    def __init__(self, calls: BarrierCalls, tctx: Any, task_id: int, attempt: int,
                 partition: int, peers: list[str], timeout: float) -> None:
        self.calls = calls
        self.tctx = tctx
        self.task_id = task_id
        self.attempt = attempt
        self.partition = partition
        #: the address of each task's worker, in partition order
        self.peers = list(peers)
        self.timeout = timeout
        self.epoch = 0

    def sync(self, call: str, message: str = "") -> list[str]:
        """From the task's thread: make ``call`` and return every task's message."""
        epoch = self.epoch
        self.epoch += 1
        future: concurrent.futures.Future[list[str]] = concurrent.futures.Future()
        calls = self.calls
        calls.waiting[self.task_id] = (epoch, future)
        if self.tctx.cancelled or calls.closed:  # (checked after registering: no race)
            calls.waiting.pop(self.task_id, None)
            raise TaskCancelled("task cancelled")
        request = BarrierCall(self.task_id, self.attempt, self.partition, epoch, call, message)
        calls.loop.call_soon_threadsafe(calls.post, request)
        try:
            return future.result(self.timeout)
        except concurrent.futures.TimeoutError:
            raise BarrierError(f"{call}() had no answer from the driver within "
                               f"{self.timeout:g}s") from None
        finally:
            entry = calls.waiting.get(self.task_id)
            if entry is not None and entry[1] is future:
                calls.waiting.pop(self.task_id, None)
