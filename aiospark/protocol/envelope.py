"""Binary WebSocket messages between a driver and a worker: a JSON header plus blobs.

Layout: ``u32 header_length | header JSON | blob bytes ...``; the header's
``"blobs"`` field lists each blob's length.  Headers stay small JSON; pickled
payloads (stages, splits, results, exceptions) travel as raw bytes beside them.

>>> data = pack({"type": "cancel", "task_id": 3}, b"abc", b"")
>>> header, blobs = unpack(data)
>>> header["type"], [bytes(b) for b in blobs]
('cancel', [b'abc', b''])

Messages queued together travel in one WebSocket frame (one system call each way,
however many tasks they launch or answer): ``u32 BATCH | (u32 length | message) ...``.

>>> [unpack(m)[0]["task_id"] for m in split_batch(pack_batch([data, data]))]
[3, 3]
>>> split_batch(data) == [data]   # a lone message is its own frame
True
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import Any

from aiospark.protocol import jsonbody

_LEN = struct.Struct("<I")


#: The first word of a frame holding several messages (no header is that long).
BATCH = 0xFFFFFFFF
#: Messages at least this large travel in frames of their own (never copied into a batch).
BATCH_MAX_MESSAGE = 64 << 10


class EnvelopeError(ValueError):
    """A message that is not a well-formed envelope."""


def pack_batch(messages: Sequence[bytes]) -> bytes:
    """One frame carrying ``messages`` (a single message is returned as it is)."""
    if len(messages) == 1:
        return messages[0]
    parts = [_LEN.pack(BATCH)]
    for message in messages:
        parts.append(_LEN.pack(len(message)))
        parts.append(message)
    return b"".join(parts)


def batches(messages: Sequence[bytes]) -> list[bytes]:
    """The frames to send ``messages`` in, in order: small ones together, large ones alone.

    >>> [len(f) for f in batches([b"a" * 10, b"b" * 10, b"c" * BATCH_MAX_MESSAGE, b"d"])]
    [32, 65536, 1]
    """
    frames: list[bytes] = []
    small: list[bytes] = []
    for message in messages:
        if len(message) < BATCH_MAX_MESSAGE:
            small.append(message)
            continue
        if small:
            frames.append(pack_batch(small))
            small = []
        frames.append(message)
    if small:
        frames.append(pack_batch(small))
    return frames


def split_batch(data: bytes | bytearray | memoryview) -> list[Any]:
    """The messages of one frame: itself, or the messages of a batch."""
    view = memoryview(data)
    if len(view) < _LEN.size or _LEN.unpack_from(view)[0] != BATCH:
        return [data]
    messages = []
    pos = _LEN.size
    while pos < len(view):
        if pos + _LEN.size > len(view):
            raise EnvelopeError("batch truncated inside a length")
        (length,) = _LEN.unpack_from(view, pos)
        pos += _LEN.size
        if pos + length > len(view):
            raise EnvelopeError("batch truncated inside a message")
        messages.append(view[pos : pos + length])
        pos += length
    return messages


def pack(header: dict[str, Any], *blobs: bytes | bytearray | memoryview) -> bytes:
    """Build one message."""
    head = json.dumps({**header, "blobs": [len(b) for b in blobs]}).encode()
    return b"".join([_LEN.pack(len(head)), head, *blobs])


def unpack(data: bytes | bytearray) -> tuple[dict[str, Any], list[memoryview]]:
    """Split a message into its header and blobs, checking the declared lengths."""
    view = memoryview(data)
    if len(view) < _LEN.size:
        raise EnvelopeError("message shorter than its length prefix")
    (head_len,) = _LEN.unpack_from(view)
    end = _LEN.size + head_len
    if end > len(view):
        raise EnvelopeError("header runs past the end of the message")
    try:
        header = jsonbody.loads(view[_LEN.size : end])
    except jsonbody.JSONBodyError as exc:
        raise EnvelopeError(f"header is not acceptable JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise EnvelopeError("header must be an object with a string 'type'")
    lengths = header.get("blobs", [])
    if not isinstance(lengths, list) or not all(
        isinstance(n, int) and n >= 0 for n in lengths
    ):
        raise EnvelopeError("header 'blobs' must be a list of lengths")
    if end + sum(lengths) != len(view):
        raise EnvelopeError("blob lengths do not add up to the message size")
    blobs = []
    for n in lengths:
        blobs.append(view[end : end + n])
        end += n
    return header, blobs
