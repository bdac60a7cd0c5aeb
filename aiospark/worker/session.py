"""One connected driver of the executor: its running tasks, and the messages going back to it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiospark.protocol.envelope import batches
from aiospark.protocol.tasks import TaskMessage, encode
from aiospark.worker.barrier_calls import BarrierCalls
from aiospark.worker.state import DEFAULT_KILL_AFTER

if TYPE_CHECKING:
    from aiohttp import web

    from aiospark.worker.executor import WorkerTaskContext

#: Longest a task's result waits here for others, to go back to its driver with them.
HOLD_SECONDS = 0.002


class DriverSession:
    """One connected driver (application), its running tasks, and what goes back to it.

    Messages wait in an outbox that a writer task sends, those queued meanwhile
    together in one frame (``envelope.batches``).  A task's result may be held
    (``post(..., hold=True)``) while more of the driver's tasks are running or
    queued here than results are waiting: the driver then gets several at once,
    and launches as many in one frame.  A result is never held longer than
    ``HOLD_SECONDS``, nor behind a message that is not held.
    """

    def __init__(self, app_id: str, ws: web.WebSocketResponse) -> None:
        self.app_id = app_id
        self.ws = ws
        self.send_lock = asyncio.Lock()
        self.tasks: dict[int, WorkerTaskContext] = {}
        #: launches of this driver waiting here for a core
        self.queued = 0
        #: how long the driver lets a cancelled task run before its process is killed
        self.kill_after = DEFAULT_KILL_AFTER
        self._outbox: list[tuple[TaskMessage | Callable[[], TaskMessage | None], tuple]] = []
        self._wakeup = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        #: its barrier tasks' barrier() / all_gather() calls waiting for an answer
        self.barrier = BarrierCalls(asyncio.get_running_loop(), self.post)

    def post(
        self, message: TaskMessage | Callable[[], TaskMessage | None], *blobs: Any,
        hold: bool = False,
    ) -> None:
        """Queue one message.  A function making it is called just before it is sent, in
        sending order (so reports read from shared state reach the driver in the order
        they were read); when it makes None, nothing is sent.  ``hold``: a result that
        may wait for others (see the class)."""
        if self._closed:
            return  # the driver is gone: nobody to tell
        self._outbox.append((message, blobs))
        if hold and len(self._outbox) < len(self.tasks) + self.queued:
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(HOLD_SECONDS, self._wake)
            return
        self._wake()

    def _wake(self) -> None:
        self._timer = None
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop())
        self._wakeup.set()

    async def _write_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self.flush()
            except (ConnectionError, RuntimeError):  # the driver went away
                self.close()
                return

    async def flush(self) -> None:
        """Send everything queued (held results too)."""
        async with self.send_lock:
            while self._outbox:
                items, self._outbox = self._outbox, []
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                messages = []
                for message, blobs in items:
                    if callable(message):
                        message = message()
                        if message is None:
                            continue
                    messages.append(encode(message, *blobs))
                for frame in batches(messages):
                    if self.ws.closed:
                        return
                    await self.ws.send_bytes(frame)

    async def send(
        self, message: TaskMessage | Callable[[], TaskMessage | None], *blobs: Any
    ) -> None:
        """Send one message (after those queued before it), and wait until it is written."""
        self.post(message, *blobs)
        await self.flush()

    def close(self) -> None:
        """Stop the writer (the connection is closing); later messages are dropped."""
        self._closed = True
        self.barrier.close()
        self._outbox.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writer is not None:
            self._writer.cancel()
