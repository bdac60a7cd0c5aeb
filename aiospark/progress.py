"""Job progress: an async stream of scheduler events, and a console progress bar.

>>> stream = ctx.progress()
>>> await ctx.parallelize(range(4), 2).count()
4
>>> kinds = [e["event"] for e in stream.drain()]
>>> kinds[0], kinds[-1], kinds.count("task_finished")
('job_started', 'job_finished', 2)
>>> stream.close()
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

#: Events a slow consumer may fall behind by before the oldest are dropped.
MAX_BUFFERED = 10_000


class ProgressStream:
    """An async iterator of progress events (dicts with an ``"event"`` key).

    Events: ``job_started``, ``stage_started``, ``task_finished``,
    ``task_failed``, ``job_finished``, ``job_failed``, ``job_cancelled``.
    Use it with ``async for``; ``close()`` (or leaving ``async with``) ends it.
    """

    def __init__(self, hub: ProgressHub) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        #: how many events were dropped because the consumer fell behind
        self.dropped = 0

    def _put(self, event: dict[str, Any] | None) -> None:
        if event is not None and self._queue.qsize() >= MAX_BUFFERED:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    def __aiter__(self) -> ProgressStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    def drain(self) -> list[dict[str, Any]]:
        """The events buffered so far, without waiting."""
        events = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event is None:
                self._queue.put_nowait(None)
                break
            events.append(event)
        return events

    def close(self) -> None:
        """Stop receiving events; an ``async for`` over the stream ends."""
        self._hub.unsubscribe(self)
        self._put(None)

    async def __aenter__(self) -> ProgressStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class ProgressHub:
    """Fans scheduler events out to every open stream."""

    def __init__(self) -> None:
        self._streams: set[ProgressStream] = set()

    @property
    def active(self) -> bool:
        return bool(self._streams)

    def subscribe(self) -> ProgressStream:
        stream = ProgressStream(self)
        self._streams.add(stream)
        return stream

    def unsubscribe(self, stream: ProgressStream) -> None:
        self._streams.discard(stream)

    def publish(self, event: dict[str, Any]) -> None:
        event.setdefault("time", time.time())
        for stream in self._streams:
            stream._put(event)

    def close(self) -> None:
        for stream in list(self._streams):
            stream.close()


def interactive() -> bool:
    """True in an interactive session (the REPL, ``python -m asyncio``, Jupyter).

    >>> interactive()
    False
    """
    return hasattr(sys, "ps1") or "ipykernel" in sys.modules


class ProgressBar:
    """Draws one status line on a terminal for the running jobs, once one has run 0.5 s.

    The line appears as soon as a job has run ``delay`` seconds, before any of
    its tasks finishes, and is redrawn every ``interval`` seconds and as tasks
    end; it is cleared when no job runs.  ``status`` (the driver's
    ``JobTable.running_reports``) gives each stage's tasks done, running and in
    all; without it the line counts the finished tasks of the event stream.
    """

    def __init__(
        self,
        stream: ProgressStream,
        out: TextIO | None = None,
        delay: float = 0.5,
        status: Callable[[], list[dict[str, Any]]] | None = None,
        interval: float = 0.25,
    ) -> None:
        self._stream = stream
        self._out = out or sys.stderr
        self._delay = delay
        self._status = status
        self._interval = interval
        self._jobs: dict[int, float] = {}
        self._stages: dict[int, list[int]] = {}  # stage -> [finished, total]
        self._drawn = False
        self._line = ""
        self._last_draw = 0.0
        self._changed = asyncio.Event()

    async def run(self) -> None:
        """Draw until the stream ends (or this task is cancelled)."""
        ticker = asyncio.create_task(self._tick())
        try:
            async for event in self._stream:
                self._handle(event)
        finally:
            ticker.cancel()
            self._clear()

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "job_started":
            self._jobs[event["job_id"]] = time.monotonic()
            self._changed.set()
        elif kind == "stage_started":
            self._stages[event["stage_id"]] = [0, event["tasks"]]
        elif kind == "task_finished":
            counts = self._stages.setdefault(event["stage_id"], [0, event["tasks"]])
            counts[0] = event["finished"]
        elif kind in ("job_finished", "job_failed", "job_cancelled"):
            self._jobs.pop(event["job_id"], None)
            if not self._jobs:
                self._stages.clear()
                self._clear()
            return
        self._maybe_draw()

    async def _tick(self) -> None:
        """Draw when the oldest running job reaches ``delay``, then every ``interval``."""
        while True:
            if not self._jobs:
                self._changed.clear()
                await self._changed.wait()
                continue
            due = min(self._jobs.values()) + self._delay - time.monotonic()
            await asyncio.sleep(due if due > 0 else self._interval)
            self._maybe_draw(throttle=0.0)

    def _maybe_draw(self, throttle: float = 0.1) -> None:
        now = time.monotonic()
        if not self._jobs or now - min(self._jobs.values()) < self._delay:
            return
        if now - self._last_draw < throttle:
            return
        self._last_draw = now
        parts = self._parts()
        line = ("[aiospark] " + (", ".join(parts[-3:]) or "finishing"))[:120].ljust(60)
        if self._drawn and line == self._line:
            return
        self._out.write("\r" + line)
        self._out.flush()
        self._drawn, self._line = True, line

    def _parts(self) -> list[str]:
        """``stage 3: 0/2 (2 running)`` for each stage of a running job with tasks to do."""
        if self._status is None:
            return [f"stage {sid}: {done}/{total}"
                    for sid, (done, total) in self._stages.items() if done < total]
        parts = []
        for job in self._status():
            for stage in job["stages"]:
                if stage["state"] in ("running", "waiting") and stage["done"] < stage["tasks"]:
                    running = f" ({stage['running']} running)" if stage["running"] else ""
                    parts.append(f"stage {stage['stage_id']}: "
                                 f"{stage['done']}/{stage['tasks']}{running}")
        return parts

    def _clear(self) -> None:
        if self._drawn:
            self._out.write("\r" + " " * 80 + "\r")
            self._out.flush()
            self._drawn, self._line = False, ""
