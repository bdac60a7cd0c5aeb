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
    """Draws one status line per running job on a terminal, for jobs running over 0.5 s."""

    def __init__(self, stream: ProgressStream, out: TextIO | None = None, delay: float = 0.5):
        self._stream = stream
        self._out = out or sys.stderr
        self._delay = delay
        self._jobs: dict[int, float] = {}
        self._stages: dict[int, list[int]] = {}  # stage -> [finished, total]
        self._drawn = False
        self._last_draw = 0.0

    async def run(self) -> None:
        async for event in self._stream:
            kind = event["event"]
            if kind == "job_started":
                self._jobs[event["job_id"]] = time.monotonic()
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
                continue
            self._maybe_draw()

    def _maybe_draw(self) -> None:
        now = time.monotonic()
        if not self._jobs or now - min(self._jobs.values()) < self._delay:
            return
        if now - self._last_draw < 0.1:
            return
        self._last_draw = now
        parts = [f"stage {sid}: {done}/{total}" for sid, (done, total) in self._stages.items()
                 if done < total]
        line = "[aiospark] " + (", ".join(parts[-3:]) or "finishing")
        self._out.write("\r" + line[:120].ljust(60))
        self._out.flush()
        self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            self._out.write("\r" + " " * 80 + "\r")
            self._out.flush()
            self._drawn = False
