"""The executor's task threads: one per core, each running the calls queued in front of
it back to back, their outcomes handed to the event loop in batches.

The executor's state (``worker.state``) may start more tasks than it has cores
(``WorkerState(queue=...)``): the ones no thread has picked yet wait here, so a
thread goes from one short task to the next without a trip through the event
loop, and the loop hears of several that ended at once (one wake-up, not one per
task).  A call no thread has picked can be taken back (``withdraw``), as when its
task is cancelled: it then never runs.

>>> import asyncio
>>> async def demo():
...     loop = asyncio.get_running_loop()
...     lanes = Lanes(1)
...     lanes.bind(loop)
...     done = loop.create_future()
...     ended = []
...     def finished(result, error):
...         ended.append(result)
...         if len(ended) == 2:
...             done.set_result(ended)
...     lanes.submit("a", lambda: 1, finished)
...     lanes.submit("b", lambda: 2, finished)
...     result = await done
...     lanes.shutdown()
...     return result
>>> asyncio.run(demo())
[1, 2]
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable, Hashable
from typing import Any

#: Called on the event loop with a call's result, or the exception it raised.
Done = Callable[[Any, BaseException | None], None]


class Lanes:
    """``count`` threads taking queued calls in order (FIFO across all of them)."""

    def __init__(self, count: int, name: str = "aiospark-task") -> None:
        self.count = max(1, count)
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        #: calls no thread picked yet, oldest first, and by key
        self._queue: collections.deque[tuple[Hashable, Callable[[], Any], Done]] = (
            collections.deque())
        self._keys: set[Hashable] = set()
        #: outcomes not yet handed to the loop, and whether a hand-over is scheduled
        self._ended: list[tuple[Done, Any, BaseException | None]] = []
        self._handing = False
        self._threads: list[threading.Thread] = []
        self._closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the outcomes go to (before the first ``submit``)."""
        self._loop = loop

    @property
    def waiting(self) -> int:
        """Calls no thread has picked yet."""
        return len(self._queue)

    def submit(self, key: Hashable, call: Callable[[], Any], done: Done) -> None:
        """Run ``call()`` on a thread, after those submitted before; then ``done(result,
        error)`` on the loop.  ``key`` names it for ``withdraw``."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the task threads are shut down")
            self._queue.append((key, call, done))
            self._keys.add(key)
            if len(self._threads) < self.count:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                self._ready.notify()

    def withdraw(self, key: Hashable) -> Done | None:
        """Take back a call no thread has picked: its ``done`` (it will never run), or
        None when it runs or ran already."""
        with self._lock:
            if key not in self._keys:
                return None
            self._keys.discard(key)
            for entry in self._queue:
                if entry[0] == key:
                    self._queue.remove(entry)
                    return entry[2]
        return None  # pragma: no cover - keys and queue always agree

    def withdraw_all(self) -> list[tuple[Hashable, Done]]:
        """Take back every call no thread has picked."""
        with self._lock:
            taken = [(key, done) for key, _call, done in self._queue]
            self._queue.clear()
            self._keys.clear()
        return taken

    def shutdown(self) -> None:
        """Stop the threads once their current calls end; queued calls never run."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._keys.clear()
            self._ready.notify_all()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return
                key, call, done = self._queue.popleft()
                self._keys.discard(key)
            try:
                result, error = call(), None
            except BaseException as exc:  # handed to ``done``, on the loop
                result, error = None, exc
            with self._lock:
                self._ended.append((done, result, error))
                if self._handing:
                    continue  # the loop has not taken the earlier ones yet: it takes these too
                self._handing = True
            loop = self._loop
            try:
                assert loop is not None, "Lanes.bind was not called"
                loop.call_soon_threadsafe(self._hand_over)
            except RuntimeError:  # the loop is closed: nobody to tell
                return

    def _hand_over(self) -> None:
        """On the loop: every outcome ended so far, in the order they ended."""
        with self._lock:
            ended, self._ended = self._ended, []
            self._handing = False
        for done, result, error in ended:
            done(result, error)
