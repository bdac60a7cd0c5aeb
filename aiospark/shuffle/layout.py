"""Where map outputs live on disk, and their index format.

Each map task writes two files in ``<root>/<app>/<shuffle>/``:
``<map>.data`` holds the reducers' segments one after another (each a run of
frames), ``<map>.index`` holds ``R + 1`` little-endian u64 offsets into it.
Ids are checked before any path is built from them.
"""

from __future__ import annotations

import os
import struct

from aiospark.protocol.ids import check_app_id


def shuffle_dir(root: str, app_id: str, shuffle_id: int) -> str:
    """Directory of one shuffle's map outputs.

    >>> shuffle_dir("/tmp/s", "app1", 3)
    '/tmp/s/app1/3'
    """
    if not isinstance(shuffle_id, int) or shuffle_id < 0:
        raise ValueError(f"invalid shuffle id {shuffle_id!r}")
    return os.path.join(root, check_app_id(app_id), str(shuffle_id))


def map_paths(directory: str, map_id: int) -> tuple[str, str]:
    """The data and index file of one map task.

    >>> map_paths("/tmp/s/app1/3", 0)
    ('/tmp/s/app1/3/0.data', '/tmp/s/app1/3/0.index')
    """
    if not isinstance(map_id, int) or map_id < 0:
        raise ValueError(f"invalid map id {map_id!r}")
    base = os.path.join(directory, str(map_id))
    return base + ".data", base + ".index"


def encode_index(offsets: list[int]) -> bytes:
    """Pack segment offsets.

    >>> decode_index(encode_index([0, 5, 9]))
    [0, 5, 9]
    """
    return struct.pack(f"<{len(offsets)}Q", *offsets)


def decode_index(data: bytes) -> list[int]:
    """Unpack segment offsets."""
    if len(data) % 8:
        raise ValueError("corrupt shuffle index: length is not a multiple of 8")
    return list(struct.unpack(f"<{len(data) // 8}Q", data))


def read_segment_range(index_path: str, reduce_id: int) -> tuple[int, int]:
    """``(offset, length)`` of reducer ``reduce_id``'s segment in the data file."""
    with open(index_path, "rb") as f:
        f.seek(8 * reduce_id)
        raw = f.read(16)
    if len(raw) != 16:  # (the message names no path: it may go back to a client)
        raise ValueError(f"reducer {reduce_id} is out of range for this shuffle")
    start, end = struct.unpack("<QQ", raw)
    return start, end - start
