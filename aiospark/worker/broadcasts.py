"""A worker's broadcast values: received once, kept for every task, served to peers.

Each value arrives either inside a launch message (the first worker to need it
gets it from the driver) or from a peer worker that already holds it or is
fetching it itself; the peer's request then waits until it has it.  The value
is decoded once, its numpy buffers pointing into the received bytes.
"""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import aiohttp

from aiospark.errors import AiosparkError
from aiospark.protocol.frames import decode_frame

#: How long a peer waits for a broadcast this worker is still fetching.
PEER_WAIT_SECONDS = 120.0
#: How long a peer waits for a broadcast this worker has not heard of yet: the driver
#: names this worker as a source as soon as it has sent it the launch message carrying
#: or announcing it, which this worker may not have read yet.  That takes milliseconds;
#: a broadcast not here after this long is not coming, and the peer gets its 404 (it
#: then tries its other sources, and its task fails and is retried if none has it).
ARRIVAL_WAIT_SECONDS = 5.0


class _Entry:
    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.blob: bytearray | None = None
        self.error: str | None = None
        self.value: Any = None
        self.decoded = False
        self.lock = threading.Lock()


class BroadcastStore:
    """Broadcast values by ``(app_id, broadcast_id)``; its coroutines run on the worker loop."""

    def __init__(self, session_getter: Any) -> None:
        self._entries: dict[tuple[str, int], _Entry] = {}
        #: Notified whenever an entry appears: a peer may ask for a broadcast before the
        #: launch message that brings it here has been read.
        self._arrived = asyncio.Condition()
        self._session = session_getter
        self._tasks: set[asyncio.Task] = set()
        #: how this worker got its broadcasts: {"inline": n, "peer": n}
        self.received = {"inline": 0, "peer": 0}

    def put(self, app_id: str, bid: int, blob: bytes | memoryview) -> None:
        """A broadcast that came inline with a launch."""
        entry = self._entries.setdefault((app_id, bid), _Entry())
        if entry.blob is None:
            entry.blob = bytearray(blob)
            entry.error = None
            entry.ready.set()
            self.received["inline"] += 1
        self._notify()

    def ensure(self, app_id: str, bid: int, sources: list[str]) -> None:
        """Start fetching a broadcast from ``sources`` unless it is here or on its way."""
        key = (app_id, bid)
        entry = self._entries.get(key)
        if entry is not None and (entry.blob is not None or not entry.ready.is_set()):
            return
        entry = self._entries[key] = _Entry()
        self._notify()
        task = asyncio.create_task(self._fetch(app_id, bid, sources, entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, app_id: str, bid: int, sources: list[str], entry: _Entry) -> None:
        order = random.sample(sources, len(sources))
        errors = []
        for url in order:
            try:
                async with self._session().get(f"{url}/v1/broadcast/{app_id}/{bid}") as resp:
                    if resp.status != 200:
                        errors.append(f"{url}: HTTP {resp.status}")
                        continue
                    entry.blob = bytearray(await resp.read())
                    self.received["peer"] += 1
                    break
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                errors.append(f"{url}: {type(exc).__name__}: {exc}")
        if entry.blob is None:
            entry.error = f"could not fetch broadcast {bid} from any of {order}: {errors}"
        entry.ready.set()

    async def serve(self, app_id: str, bid: int) -> bytearray | None:
        """The bytes of a broadcast for a peer, waiting while it is on its way here."""
        key = (app_id, bid)
        try:
            async with asyncio.timeout(ARRIVAL_WAIT_SECONDS):
                async with self._arrived:
                    await self._arrived.wait_for(lambda: key in self._entries)
            entry = self._entries[key]
            async with asyncio.timeout(PEER_WAIT_SECONDS):
                await entry.ready.wait()
        except (TimeoutError, KeyError):
            return None
        return entry.blob

    def _notify(self) -> None:
        async def notify() -> None:
            async with self._arrived:
                self._arrived.notify_all()

        task = asyncio.create_task(notify())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def value(self, loop: asyncio.AbstractEventLoop, app_id: str, bid: int) -> Any:
        """The decoded value, for a task thread; waits for a fetch in progress."""
        entry = self._entries.get((app_id, bid))
        if entry is None:
            raise AiosparkError(f"broadcast {bid} was never sent to this worker")
        if not entry.ready.is_set():
            asyncio.run_coroutine_threadsafe(entry.ready.wait(), loop).result(PEER_WAIT_SECONDS)
        with entry.lock:
            if not entry.decoded:
                if entry.blob is None:
                    raise AiosparkError(entry.error or f"broadcast {bid} is unavailable")
                entry.value = decode_frame(entry.blob)
                entry.decoded = True
            return entry.value

    def summary(self) -> dict[str, int]:
        held = sum(1 for e in self._entries.values() if e.blob is not None)
        return {"held": held, **self.received}

    def failed(self, app_id: str, bid: int) -> bool:
        entry = self._entries.get((app_id, bid))
        return entry is not None and entry.ready.is_set() and entry.blob is None

    def drop(self, app_id: str, bid: int | None = None) -> None:
        """Forget one broadcast, or every broadcast of a driver."""
        for key in [k for k in self._entries if k[0] == app_id and bid in (None, k[1])]:
            del self._entries[key]
