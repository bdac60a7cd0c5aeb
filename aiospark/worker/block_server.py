"""Cached blocks between workers: serving a block to a peer, and replicas of blocks.

``GET /v1/blocks/{app}/{rdd}/{split}`` streams a block this worker holds, frame
by frame (a task elsewhere reads it rather than recompute it).

A split persisted at a level with ``replication = n`` is kept on ``n`` workers:
the worker whose task cached it pushes the block, as the same stream of frames,
to peers named by the driver (``scheduler.replicas``) with ``PUT
/v1/blocks/{app}/{rdd}/{split}?level=...`` until ``n - 1`` of them took it.  A
peer puts a replica through its ``BlockStore`` like a block its own task
computed: the same memory budget, eviction and spilling rules, so a replica
that does not fit a memory-only level is refused (``{"stored": false}``) and the
pusher tries the next peer.  A push that fails is logged; the block is then
kept on fewer workers, and the task that cached it still succeeds.  The task
reports the peers that took a copy, and the driver counts them as holders.

>>> level_token(StorageLevel.MEMORY_AND_DISK_SER_2)
'1,1,0,2'
>>> parse_level("1,1,0,2") == StorageLevel.MEMORY_AND_DISK_SER_2
True
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator

import aiohttp
from aiohttp import web

from aiospark.lineage import StorageLevel
from aiospark.protocol.frames import check_frame, read_frames
from aiospark.protocol.ids import check_app_id, parse_id
from aiospark.worker.blocks import BlockStore

log = logging.getLogger("aiospark.worker")

#: A push whose peer stops reading fails after this (the block then has one copy fewer).
PUSH_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
#: Frames are handed between the loop and a thread (and written) about this much at a
#: time: one hand-off per small frame would cost more than the copy.
CHUNK_BYTES = 1 << 20


def level_token(level: StorageLevel) -> str:
    """A storage level as the ``level`` query value of a replica push.

    >>> level_token(StorageLevel.DISK_ONLY_3)
    '1,0,0,3'
    """
    flags = (level.use_disk, level.use_memory, level.deserialized)
    return ",".join([*(str(int(flag)) for flag in flags), str(level.replication)])


def parse_level(token: str) -> StorageLevel:
    """Inverse of ``level_token``; ``ValueError`` on anything malformed.

    >>> parse_level("0,1,1,2") == StorageLevel.MEMORY_ONLY_2
    True
    >>> parse_level("0,0,1,2")
    Traceback (most recent call last):
    ...
    ValueError: level '0,0,1,2' keeps the block neither in memory nor on disk
    """
    parts = token.split(",")
    flags, count = parts[:3], parts[-1]
    if (len(parts) != 4 or any(p not in ("0", "1") for p in flags)
            or not (count.isascii() and count.isdigit() and len(count) < 10) or count == "0"):
        raise ValueError(f"level must be use_disk,use_memory,deserialized,replication "
                         f"(three 0/1 flags and a positive count), got {token[:40]!r}")
    use_disk, use_memory, deserialized = (p == "1" for p in flags)
    replication = int(count)
    if not (use_disk or use_memory):
        raise ValueError(f"level {token!r} keeps the block neither in memory nor on disk")
    return StorageLevel(use_disk, use_memory, deserialized, replication)


def _take(frames: Iterator[list], nbytes: int = CHUNK_BYTES) -> bytes:
    """The next frames of a block joined, about ``nbytes`` of them (b"" at the end)."""
    pieces: list = []
    size = 0
    for frame in frames:
        pieces.extend(frame)
        size += sum(memoryview(piece).nbytes for piece in frame)
        if size >= nbytes:
            break
    return b"".join(pieces)


async def block_chunks(frames: Iterator[list]) -> AsyncIterator[bytes]:
    """A block's frames in chunks of about ``CHUNK_BYTES``, encoded or read off the loop."""
    loop = asyncio.get_running_loop()
    try:
        while chunk := await loop.run_in_executor(None, _take, frames):
            yield chunk
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def _block_key(request: web.Request) -> tuple[str, int, int]:
    """``(app_id, rdd_id, split)`` of a block route; ``HTTPBadRequest`` when malformed."""
    try:
        return (check_app_id(request.match_info["app"]),
                parse_id(request.match_info["rdd"], "rdd"),
                parse_id(request.match_info["split"], "split"))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


class BlockServer:
    """A worker's block routes and replica pushes, over its ``BlockStore``.

    ``serves(app_id)`` says whether a driver of that application is connected
    (a replica for any other would never be reported, nor dropped with the
    app); ``session()`` is the worker's authenticated client session.
    """

    def __init__(
        self,
        blocks: BlockStore,
        serves: Callable[[str], bool],
        session: Callable[[], aiohttp.ClientSession | None],
    ) -> None:
        self.blocks = blocks
        self._serves = serves
        self._session = session
        #: since start: blocks served to peers, copies pushed and taken in, pushes that failed
        self.stats = {"served": 0, "pushed": 0, "received": 0, "push_failed": 0}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/blocks/{app}/{rdd}/{split}", self.get_block),
            web.put("/v1/blocks/{app}/{rdd}/{split}", self.put_replica),
        ]

    # -- serving --------------------------------------------------------------------------

    async def get_block(self, request: web.Request) -> web.StreamResponse:
        """A cached split, streamed as frames; 404 when this worker no longer has it."""
        frames = self.blocks.frames(*_block_key(request))
        if frames is None:
            return web.json_response({"missing": True}, status=404)
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        async for chunk in block_chunks(frames):
            await response.write(chunk)
        await response.write_eof()
        self.stats["served"] += 1
        return response

    async def put_replica(self, request: web.Request) -> web.Response:
        """Take in a copy of a peer's block: 200 ``{"stored": bool}``, 400 when malformed."""
        app_id, rdd_id, split = _block_key(request)
        try:
            level = parse_level(request.query.get("level", ""))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        if not self._serves(app_id):
            raise web.HTTPNotFound(text=f"no driver of {app_id} is connected to this worker")
        loop = asyncio.get_running_loop()
        incoming = read_frames(request.content)

        async def next_frames() -> list[bytearray]:  # about CHUNK_BYTES of them, [] at the end
            batch: list[bytearray] = []
            size = 0
            async for frame in incoming:
                batch.append(frame)
                size += len(frame)
                if size >= CHUNK_BYTES:
                    break
            return batch

        def frames() -> Iterator[bytearray]:  # on the putting thread
            while batch := asyncio.run_coroutine_threadsafe(next_frames(), loop).result():
                for frame in batch:
                    if not level.deserialized:
                        check_frame(frame)  # (a deserialized level decodes every frame anyway)
                    yield frame

        try:
            stored = await loop.run_in_executor(
                None, self.blocks.put_frames, app_id, rdd_id, split, frames(), level)
        except Exception as exc:  # a truncated stream, frames that do not decode
            raise web.HTTPBadRequest(
                text=f"the block's frames could not be read: {exc!r}"[:500]) from None
        finally:
            with contextlib.suppress(RuntimeError):  # still being read (the request went)
                await incoming.aclose()
        if stored:
            self.stats["received"] += 1
        return web.json_response({"stored": stored})

    # -- pushing --------------------------------------------------------------------------

    async def push(
        self, app_id: str, rdd_id: int, split: int, level: StorageLevel, urls: list[str]
    ) -> list[str]:
        """Copy a block this worker holds to peers, best first, until ``replication - 1``
        took it; returns their URLs.  Failures are logged, never raised."""
        wanted = level.replication - 1
        taken: list[str] = []
        failed = 0
        session = self._session()
        for url in urls:
            if len(taken) >= wanted or session is None:
                break
            frames = self.blocks.frames(app_id, rdd_id, split)
            if frames is None:  # evicted or unpersisted meanwhile: nothing to copy
                return taken
            try:
                async with session.put(
                    f"{url}/v1/blocks/{app_id}/{rdd_id}/{split}",
                    params={"level": level_token(level)},
                    data=block_chunks(frames),
                    timeout=PUSH_TIMEOUT,
                ) as resp:
                    if resp.status == 200 and (await resp.json()).get("stored"):
                        taken.append(url)
                        self.stats["pushed"] += 1
                        continue
                    why = f"HTTP {resp.status}: {(await resp.text())[:200]}"
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                why = repr(exc)
            self.stats["push_failed"] += 1
            failed += 1
            log.warning("a copy of block rdd_%d_%d was not taken by %s: %s",
                        rdd_id, split, url, why)
        if len(taken) < wanted:
            # A warning when peers failed; with fewer workers than copies, as documented.
            log.log(logging.WARNING if failed else logging.DEBUG,
                    "block rdd_%d_%d is kept on %d workers, not %d (%d peers tried)",
                    rdd_id, split, 1 + len(taken), level.replication, len(urls))
        return taken
