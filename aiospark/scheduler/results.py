"""Decoding task results in the driver without stalling its event loop.

A task's result arrives as one pickle: inline in the worker's message, or
fetched by URL when larger than 8 MiB (then as the chunks the HTTP body came
in).  Small results are unpickled on the loop at once: that is the fastest
path for the many tiny results of short tasks.  Larger ones are unpickled on
the driver's helper thread (``aiospark.offload``), and so that the loop still
runs while they are:

- the pickle is read through ``ChunkReader``, whose ``read`` is Python code.
  A protocol-5 pickle is cut into 64 KiB frames and the C unpickler calls
  ``read`` once per frame, so the interpreter can hand the GIL to the loop's
  thread between two frames (one ``pickle.loads`` of 100 MB would hold it for
  seconds);
- automatic garbage collection is paused meanwhile (``collections_paused``).
  Unpickling a million records creates millions of containers, and CPython
  3.11 would run full collections of the whole heap as it grows (a third of
  a second each for 1 M records here, with the GIL held all along).  When the
  result is complete, the new objects go straight to the oldest generation
  (``gc.freeze()`` then ``gc.unfreeze()``, two pointer moves) instead of
  being traversed by the young collections first: later full collections
  still visit them while the program holds them, as they visit every
  long-lived object.

>>> blob = pickle.dumps(list(range(100_000)), protocol=5)
>>> len(blob) > INLINE_BYTES
True
>>> (await load_result(blob))[-1]
99999
"""

from __future__ import annotations

import contextlib
import gc
import pickle
from collections.abc import Iterator, Sequence
from typing import Any

from aiospark import offload

#: Results up to this many bytes are unpickled on the loop (a few ms at most).
INLINE_BYTES = 256 * 1024

Buffer = bytes | bytearray | memoryview


async def load_result(data: Buffer | Sequence[Buffer]) -> Any:
    """Unpickle a task's result: one buffer, or the chunks of a fetched body, in order.

    >>> await load_result(pickle.dumps({"a": 1}))
    {'a': 1}
    >>> await load_result([b"\\x80\\x05K", b"*."])   # the chunks of pickle.dumps(42)
    42
    """
    chunks = [data] if isinstance(data, Buffer) else list(data)
    if sum(memoryview(c).nbytes for c in chunks) <= INLINE_BYTES:
        return pickle.loads(b"".join(chunks) if len(chunks) != 1 else chunks[0])
    return await offload.run(load_chunks, chunks)


def load_chunks(chunks: list[Buffer]) -> Any:
    """Unpickle the concatenation of ``chunks`` frame by frame, collections paused.

    Meant for the helper thread (see the module's docstring).  Each chunk is
    released once read.

    >>> load_chunks([pickle.dumps([1, 2, 3], protocol=5)])
    [1, 2, 3]
    """
    with collections_paused():
        return pickle.Unpickler(ChunkReader(chunks)).load()


@contextlib.contextmanager
def collections_paused() -> Iterator[None]:
    """No automatic garbage collection inside; objects made meanwhile join the oldest generation.

    Nothing changes when collection was already disabled, and objects are not
    moved when some are frozen (``gc.freeze()``): unfreezing would release those.

    >>> with collections_paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


class ChunkReader:
    """A binary file reading a list of buffers one after the other, through Python methods.

    The chunks are released as they are read, so memory is freed as the
    result is decoded.

    >>> reader = ChunkReader([b"ab", b"c\\nd"])
    >>> reader.read(1), reader.readline(), reader.read()
    (b'a', b'bc\\n', b'd')
    >>> buffer = bytearray(2)
    >>> reader.readinto(buffer), reader.read(5)
    (0, b'')
    """

    def __init__(self, chunks: list[Buffer]) -> None:
        self._chunks = [memoryview(c).cast("B") for c in chunks if memoryview(c).nbytes]
        self._chunks.reverse()  # the next chunk is at the end: pop() releases it
        self._pos = 0

    def _take(self, size: int) -> Iterator[memoryview]:
        """Up to ``size`` bytes (all that is left for a negative size), as views."""
        while self._chunks and size != 0:
            chunk = self._chunks[-1]
            end = len(chunk) if size < 0 else min(len(chunk), self._pos + size)
            piece = chunk[self._pos : end]
            size -= len(piece)
            self._pos = end
            if end == len(chunk):
                self._chunks.pop()
                self._pos = 0
            yield piece

    def read(self, size: int | None = -1) -> bytes:
        return b"".join(self._take(-1 if size is None else size))

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        filled = 0
        for piece in self._take(len(target)):
            target[filled : filled + len(piece)] = piece
            filled += len(piece)
        return filled

    def readline(self, size: int | None = -1) -> bytes:
        line = bytearray()
        while self._chunks and (size is None or size < 0 or len(line) < size):
            chunk = self._chunks[-1]
            newline = bytes(chunk[self._pos :]).find(b"\n")
            wanted = len(chunk) - self._pos if newline < 0 else newline + 1
            if size is not None and size >= 0:
                wanted = min(wanted, size - len(line))
            line += b"".join(self._take(wanted))
            if line.endswith(b"\n"):
                break
        return bytes(line)
