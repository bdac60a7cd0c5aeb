"""Reliable checkpoints: an RDD's splits written to shared storage, read back instead of lineage."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from aiospark.lineage import TaskContext


class CheckpointState:
    """Where an RDD's checkpoint lives, and whether it has been written."""

    def __init__(self, directory: str, storage_options: dict[str, Any]) -> None:
        self.directory = directory
        self.storage_options = storage_options
        self.written = False

    def path(self, index: int) -> str:
        return f"{self.directory}/part-{index:05d}"

    def read(self, index: int, tctx: TaskContext) -> Iterator[Any]:
        import fsspec

        from aiospark.protocol.frames import decode_frame, split_frames

        with fsspec.open(self.path(index), "rb", **self.storage_options) as f:
            data = bytearray(f.read())
        for frame in split_frames(data):
            tctx.check()
            yield from decode_frame(frame)

    def write_partition(self, index: int, records: Iterator[Any]) -> None:
        import fsspec

        from aiospark.protocol.frames import encode_records

        path = self.path(index)
        temporary = f"{path}.tmp-{os.urandom(6).hex()}"
        fs, local_path = fsspec.core.url_to_fs(path, **self.storage_options)
        fs.makedirs(local_path.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(temporary, "wb") as f:
            for pieces in encode_records(records):
                for piece in pieces:
                    f.write(piece)
        fs.mv(temporary, path)
