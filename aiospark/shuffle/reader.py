"""The reduce side of a shuffle: stream every map output's segment for one reducer.

Map outputs on this worker's own host are read straight from disk; the others
are fetched from their host's shuffle service as streamed HTTP bodies.  The
reading runs on the task's thread; remote fetches run on the worker's event
loop and hand frames over through a queue bounded in bytes
(``MAX_BYTES_IN_FLIGHT``), so memory in flight stays bounded and the loop
never decodes.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp

from aiospark import faults
from aiospark.errors import FetchFailed
from aiospark.protocol.frames import decode_frame, iter_file_frames, read_frames
from aiospark.protocol.ids import parse_id
from aiospark.shuffle.layout import map_paths, read_segment_range, shuffle_dir

#: Tries of one fetch before its map outputs are declared lost (Spark: 3 retries).
FETCH_ATTEMPTS = 4
FETCH_RETRY_WAIT = 0.05
#: A fetch whose peer stops answering (host cut off) fails after this, then is retried.
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
#: Bytes of fetched frames a reducer may have in flight (received, not yet decoded).
MAX_BYTES_IN_FLIGHT = 32 << 20
#: Most map outputs one request to a shuffle service names (a reducer reading more from
#: one host asks in several requests).
MAX_MAPS_PER_REQUEST = 100_000
_DONE = object()


class ByteBoundedQueue:
    """A hand-off queue bounded by the bytes it holds (one item always fits, however big).

    >>> q = ByteBoundedQueue(10)
    >>> q.put(b"12345678"); q.put("end", 0)
    >>> q.get(), q.get(), q.held
    (b'12345678', 'end', 0)
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0
        self._items: collections.deque = collections.deque()
        self._changed = threading.Condition()
        self.closed = False

    def put(self, item: Any, nbytes: int | None = None) -> None:
        """Add ``item`` (``len(item)`` bytes unless given), waiting while the queue is full."""
        size = len(item) if nbytes is None else nbytes
        with self._changed:
            while self._items and self.held + size > self.max_bytes and not self.closed:
                self._changed.wait()
            if self.closed:  # the reader has gone: drop it rather than wait forever
                return
            self._items.append((item, size))
            self.held += size
            self._changed.notify_all()

    def close(self) -> None:
        """The reader stops: wake and release any writer still waiting for room."""
        with self._changed:
            self.closed = True
            self._items.clear()
            self.held = 0
            self._changed.notify_all()

    def get(self) -> Any:
        """Take the oldest item, waiting for one."""
        with self._changed:
            while not self._items:
                self._changed.wait()
            item, size = self._items.popleft()
            self.held -= size
            self._changed.notify_all()
            return item


def format_map_ids(map_ids: list[int]) -> str:
    """Compact ``maps=`` query value: runs of consecutive ids as ranges.

    >>> format_map_ids([0, 1, 2, 5, 7, 8])
    '0-2,5,7-8'
    """
    parts = []
    ids = sorted(map_ids)
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(parts)


def parse_map_ids(text: str, limit: int = MAX_MAPS_PER_REQUEST) -> list[int]:
    """Inverse of ``format_map_ids``; ``ValueError`` on anything malformed, or past ``limit``.

    >>> parse_map_ids("0-2,5")
    [0, 1, 2, 5]
    >>> parse_map_ids("0-999999")
    Traceback (most recent call last):
    ...
    ValueError: more than 100000 map ids
    """
    ids: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        shown = part if len(part) <= 40 else part[:40] + "..."
        try:
            start = parse_id(lo, "map id")
            end = parse_id(hi, "map id") if hi else start
        except ValueError:
            raise ValueError(f"bad map id range {shown!r}") from None
        if end < start:
            raise ValueError(f"bad map id range {shown!r}")
        if len(ids) + end - start + 1 > limit:
            raise ValueError(f"more than {limit} map ids")
        ids.extend(range(start, end + 1))
    return ids


def read_local(
    root: str, app_id: str, shuffle_id: int, reduce_id: int, map_ids: list[int], url: str
) -> Iterator[list[Any]]:
    """Batches of one reducer's segments of map outputs stored on this host."""
    directory = shuffle_dir(root, app_id, shuffle_id)
    for map_id in map_ids:
        data_path, index_path = map_paths(directory, map_id)
        for attempt in range(FETCH_ATTEMPTS):
            try:
                faults.maybe_fail("shuffle_read")
                start, length = read_segment_range(index_path, reduce_id)
                break
            except FileNotFoundError as exc:  # the output is gone: no use retrying
                raise FetchFailed(shuffle_id, [map_id], url, f"missing: {exc}") from None
            except (OSError, ValueError, faults.InjectedFault) as exc:
                if attempt + 1 == FETCH_ATTEMPTS:
                    reason = f"{type(exc).__name__}: {exc}"
                    raise FetchFailed(shuffle_id, [map_id], url, reason) from None
                time.sleep(FETCH_RETRY_WAIT * 2**attempt)
        if not length:
            continue
        try:
            yield from iter_file_frames(data_path, start, length)
        except (OSError, ValueError) as exc:
            raise FetchFailed(shuffle_id, [map_id], url, f"{type(exc).__name__}: {exc}") from None


async def _stream_remote(
    session: aiohttp.ClientSession,
    url: str,
    app_id: str,
    shuffle_id: int,
    reduce_id: int,
    map_ids: list[int],
    out: ByteBoundedQueue,
) -> None:
    target = f"{url}/v1/shuffle/{app_id}/{shuffle_id}/{reduce_id}"
    loop = asyncio.get_running_loop()
    try:
        for first in range(0, len(map_ids), MAX_MAPS_PER_REQUEST):
            await _stream_chunk(session, url, target, shuffle_id,
                                map_ids[first : first + MAX_MAPS_PER_REQUEST], out)
    except FetchFailed as exc:
        await loop.run_in_executor(None, out.put, exc, 0)
    except (aiohttp.ClientError, asyncio.IncompleteReadError, OSError, TimeoutError) as exc:
        failure = FetchFailed(shuffle_id, map_ids, url, f"{type(exc).__name__}: {exc}")
        await loop.run_in_executor(None, out.put, failure, 0)
    finally:
        await loop.run_in_executor(None, out.put, _DONE, 0)


async def _stream_chunk(
    session: aiohttp.ClientSession,
    url: str,
    target: str,
    shuffle_id: int,
    map_ids: list[int],
    out: ByteBoundedQueue,
) -> None:
    """One request's frames into ``out``, retrying a transient failure before any arrived."""
    params = {"maps": format_map_ids(map_ids)}
    loop = asyncio.get_running_loop()
    delivered = False
    for attempt in range(FETCH_ATTEMPTS):
        try:
            async with session.get(
                target, params=params, timeout=FETCH_TIMEOUT
            ) as r:
                if r.status != 200:
                    body = await r.text()
                    raise FetchFailed(
                        shuffle_id, map_ids, url, f"HTTP {r.status}: {body[:200]}"
                    )
                async for frame in read_frames(r.content):
                    delivered = True
                    # put() may block when the reducer is behind: do it off the loop.
                    await loop.run_in_executor(None, out.put, frame)
            return
        except (aiohttp.ClientError, asyncio.IncompleteReadError, OSError, TimeoutError,
                FetchFailed) as exc:
            # Retry a transient failure, unless part of the data was already handed on
            # (or the outputs are missing): then only recomputing them helps.
            missing = isinstance(exc, FetchFailed) and "HTTP 404" in exc.reason
            if delivered or missing or attempt + 1 == FETCH_ATTEMPTS:
                raise
            await asyncio.sleep(FETCH_RETRY_WAIT * 2**attempt)


def read_remote(
    loop: asyncio.AbstractEventLoop,
    session: aiohttp.ClientSession,
    url: str,
    app_id: str,
    shuffle_id: int,
    reduce_id: int,
    map_ids: list[int],
) -> Iterator[list[Any]]:
    """Batches fetched from a remote shuffle service (call from a worker thread).

    ``session`` must carry the cluster secret in its default headers.
    """
    frames = ByteBoundedQueue(MAX_BYTES_IN_FLIGHT)
    future = asyncio.run_coroutine_threadsafe(
        _stream_remote(session, url, app_id, shuffle_id, reduce_id, map_ids, frames),
        loop,
    )
    try:
        while True:
            item = frames.get()
            if item is _DONE:
                return
            if isinstance(item, FetchFailed):
                raise item
            yield decode_frame(item)
    finally:
        future.cancel()
        frames.close()
