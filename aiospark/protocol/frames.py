"""Record batches as binary frames (pickle protocol 5, numpy buffers out of band).

A frame is::

    u64 pickle_length | u32 buffer_count | u64 buffer_length * buffer_count
    | pickle bytes | buffer bytes ...

The top four bits of ``buffer_count`` name the codec of the pickle bytes, if
they are compressed (``CODECS``); buffers are never compressed.

Frames concatenate: a partition on the wire or on disk is just a sequence of
frames, each holding one batch (a list) of records.  Large contiguous buffers
(numpy arrays) are written as they are, never copied into the pickle stream.

>>> import numpy as np
>>> data = b"".join(encode_frame([1, "two", np.arange(3)]))
>>> [frame] = split_frames(data)
>>> batch = decode_frame(frame)
>>> batch[:2], batch[2].tolist()
([1, 'two'], [0, 1, 2])
"""

from __future__ import annotations

import pickle
import struct
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import cloudpickle

from aiospark.batching import DEFAULT_BATCH, batched

_HEAD = struct.Struct("<QI")
_LEN = struct.Struct("<Q")


def dumps(obj: Any, buffers: list[pickle.PickleBuffer] | None = None) -> bytes:
    """Pickle with protocol 5, falling back to cloudpickle for lambdas and the like."""
    callback = None if buffers is None else buffers.append
    try:
        return pickle.dumps(obj, protocol=5, buffer_callback=callback)
    except (pickle.PicklingError, TypeError, AttributeError):
        if buffers is not None:
            buffers.clear()
        data: bytes = cloudpickle.dumps(obj, protocol=5, buffer_callback=callback)
        return data


def _lz4() -> Any:
    try:
        import lz4.block
    except ImportError:
        return None
    return lz4.block


#: Codecs for a frame's pickle payload, by the id kept in the top bits of its buffer count.
#: numpy buffers travel out of band and are never compressed (nor re-encoded).
CODECS: dict[str, int] = {"zlib": 1, "lz4": 2}
_CODEC_SHIFT = 28
_COUNT_MASK = (1 << _CODEC_SHIFT) - 1
#: A compressed payload is kept only when it saves at least this fraction.
MIN_SAVING = 0.1


def available_codecs() -> list[str]:
    """The payload codecs this process can use (``lz4`` needs the lz4 package).

    >>> "zlib" in available_codecs()
    True
    """
    return [name for name in CODECS if name != "lz4" or _lz4() is not None]


def _compress(codec: str, payload: bytes) -> bytes:
    if codec == "zlib":
        return zlib.compress(payload, 1)
    compressed: bytes = _lz4().compress(payload, store_size=True)
    return compressed


def _decompress(codec_id: int, payload: Any) -> bytes:
    if codec_id == CODECS["zlib"]:
        return zlib.decompress(payload)
    if codec_id == CODECS["lz4"]:
        module = _lz4()
        if module is None:
            raise ValueError("frame is lz4-compressed but the lz4 package is not installed")
        data: bytes = module.decompress(payload)
        return data
    raise ValueError(f"unknown frame codec id {codec_id}")


def encode_frame(batch: Any, codec: str | None = None) -> list[bytes | memoryview]:
    """Encode one batch as frame pieces, ready for ``writelines``.

    With ``codec`` (see ``CODECS``) the pickle payload is compressed when that
    saves at least ``MIN_SAVING`` of it.

    >>> plain = b"".join(encode_frame(["spam"] * 1000))
    >>> packed = b"".join(encode_frame(["spam"] * 1000, "zlib"))
    >>> len(packed) < len(plain) // 10, decode_frame(packed) == ["spam"] * 1000
    (True, True)
    """
    buffers: list[pickle.PickleBuffer] = []
    payload = dumps(batch, buffers)
    views = [b.raw() for b in buffers]
    flags = 0
    if codec is not None and len(payload) > 256:
        packed = _compress(codec, payload)
        if len(packed) <= len(payload) * (1 - MIN_SAVING):
            payload, flags = packed, CODECS[codec] << _CODEC_SHIFT
    head = [_HEAD.pack(len(payload), len(views) | flags)]
    head.extend(_LEN.pack(v.nbytes) for v in views)
    return [b"".join(head), payload, *views]


def encode_records(
    records: Iterable[Any], batch_size: int = DEFAULT_BATCH
) -> Iterator[list[bytes | memoryview]]:
    """Frame pieces for an iterable of records, ``batch_size`` records per frame."""
    for batch in batched(records, batch_size):
        yield encode_frame(batch)


def frame_bytes(batch: Any) -> bytes:
    """One frame as a single bytes object."""
    return b"".join(encode_frame(batch))


def decode_frame(frame: bytes | bytearray | memoryview) -> Any:
    """Decode one whole frame (as produced by ``encode_frame``)."""
    view = memoryview(frame)
    pickle_len, count = _HEAD.unpack_from(view, 0)
    nbuf, codec_id = count & _COUNT_MASK, count >> _CODEC_SHIFT
    pos = _HEAD.size
    lengths = [_LEN.unpack_from(view, pos + 8 * i)[0] for i in range(nbuf)]
    pos += 8 * nbuf
    payload: Any = view[pos : pos + pickle_len]
    if codec_id:
        payload = _decompress(codec_id, payload)
    pos += pickle_len
    buffers = []
    for n in lengths:
        buffers.append(view[pos : pos + n])
        pos += n
    return pickle.loads(payload, buffers=buffers)


def _frame_length(view: memoryview, pos: int) -> int | None:
    """Total length of the frame starting at ``pos``, or None if the header is incomplete."""
    if len(view) - pos < _HEAD.size:
        return None
    pickle_len: int
    count: int
    pickle_len, count = _HEAD.unpack_from(view, pos)
    nbuf = count & _COUNT_MASK
    head_len = _HEAD.size + 8 * nbuf
    if len(view) - pos < head_len:
        return None
    body: int = sum(_LEN.unpack_from(view, pos + _HEAD.size + 8 * i)[0] for i in range(nbuf))
    return head_len + pickle_len + body


def check_frame(frame: bytes | bytearray | memoryview) -> None:
    """Raise ``ValueError`` unless ``frame`` is one whole frame, without decoding it.

    Its lengths must add up, its codec be known and an uncompressed payload be a
    whole protocol-5 pickle (kept as it came, a frame is only decoded when read).

    >>> check_frame(frame_bytes([1, 2]))
    >>> check_frame(frame_bytes([1, 2])[:-1])
    Traceback (most recent call last):
    ...
    ValueError: not a whole frame: 32 bytes declared, 31 given
    """
    view = memoryview(frame)
    n = _frame_length(view, 0)
    if n is None or n != len(view):
        declared = "?" if n is None else n
        raise ValueError(f"not a whole frame: {declared} bytes declared, {len(view)} given")
    pickle_len, count = _HEAD.unpack_from(view, 0)
    codec_id = count >> _CODEC_SHIFT
    if codec_id and codec_id not in CODECS.values():
        raise ValueError(f"unknown frame codec id {codec_id}")
    start = _HEAD.size + 8 * (count & _COUNT_MASK)
    payload = view[start : start + pickle_len]
    if not codec_id and (bytes(payload[:2]) != b"\x80\x05" or bytes(payload[-1:]) != b"."):
        raise ValueError("the frame's payload is not a protocol-5 pickle")


def split_frames(data: bytes | bytearray | memoryview) -> Iterator[memoryview]:
    """Yield each whole frame of a buffer holding complete frames."""
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        n = _frame_length(view, pos)
        if n is None or pos + n > len(view):
            raise ValueError(f"truncated frame at byte {pos} of {len(view)}")
        yield view[pos : pos + n]
        pos += n


def iter_file_frames(path: str, start: int = 0, length: int | None = None) -> Iterator[Any]:
    """Decode the batches stored in ``[start, start + length)`` of a file, one frame at a time.

    Only one frame is in memory at once, however long the range.
    """
    with open(path, "rb") as f:
        f.seek(start)
        yield from read_file_frames(f, length, path)


def _fill(f: Any, buffer: memoryview, name: str, what: str) -> None:
    """Fill ``buffer`` from ``f``, however many reads it takes (compressed streams read short)."""
    readinto = getattr(f, "readinto", None)
    while buffer:
        if readinto is not None:
            got = readinto(buffer)
        else:
            chunk = f.read(len(buffer))
            got = len(chunk)
            buffer[:got] = chunk
        if not got:
            raise ValueError(f"{name} is truncated: it ends inside a {what}")
        buffer = buffer[got:]


def read_file_frames(f: Any, length: int | None = None, name: str = "file") -> Iterator[Any]:
    """Decode the frames of the next ``length`` bytes of a binary file (to EOF when None).

    One frame is in memory at a time, read straight into its own buffer.
    """
    remaining = length
    while remaining is None or remaining > 0:
        start = f.read(_HEAD.size)
        if not start and remaining is None:
            return
        head = bytearray(_HEAD.size)
        head[: len(start)] = start
        _fill(f, memoryview(head)[len(start) :], name, "frame header")
        pickle_len, count = _HEAD.unpack(head)
        nbuf = count & _COUNT_MASK
        lens = bytearray(8 * nbuf)
        _fill(f, memoryview(lens), name, "frame header")
        body_len = pickle_len + sum(_LEN.unpack_from(lens, 8 * i)[0] for i in range(nbuf))
        frame = bytearray(len(head) + len(lens) + body_len)
        frame[: len(head)] = head
        frame[len(head) : len(head) + len(lens)] = lens
        _fill(f, memoryview(frame)[len(head) + len(lens) :], name, "frame")
        if remaining is not None:
            remaining -= len(frame)
            if remaining < 0:
                raise ValueError(f"frame overruns its segment in {name}")
        yield decode_frame(frame)


async def read_frames(stream: Any) -> AsyncIterator[bytearray]:
    """Read whole frames from an aiohttp ``StreamReader`` until EOF.

    Each frame is returned in its own writable buffer so numpy arrays decoded
    from it are writable and do not pin a larger buffer.
    """
    while True:
        try:
            head = await stream.readexactly(_HEAD.size)
        except Exception as exc:  # IncompleteReadError at a clean EOF
            partial = getattr(exc, "partial", None)
            if partial == b"":
                return
            raise
        pickle_len, count = _HEAD.unpack(head)
        nbuf = count & _COUNT_MASK
        lens = await stream.readexactly(8 * nbuf) if nbuf else b""
        body = pickle_len + sum(_LEN.unpack_from(lens, 8 * i)[0] for i in range(nbuf))
        frame = bytearray(head)
        frame += lens
        frame += await stream.readexactly(body)
        yield frame
