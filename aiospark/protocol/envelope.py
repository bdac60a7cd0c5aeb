"""Binary WebSocket messages between a driver and a worker: a JSON header plus blobs.

Layout: ``u32 header_length | header JSON | blob bytes ...``; the header's
``"blobs"`` field lists each blob's length.  Headers stay small JSON; pickled
payloads (stages, splits, results, exceptions) travel as raw bytes beside them.

>>> data = pack({"type": "cancel", "task_id": 3}, b"abc", b"")
>>> header, blobs = unpack(data)
>>> header["type"], [bytes(b) for b in blobs]
('cancel', [b'abc', b''])
"""

from __future__ import annotations

import json
import struct
from typing import Any

from aiospark.protocol import jsonbody

_LEN = struct.Struct("<I")


class EnvelopeError(ValueError):
    """A message that is not a well-formed envelope."""


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
