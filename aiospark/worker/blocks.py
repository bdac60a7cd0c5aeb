"""A worker's block store: the cached splits of persisted RDDs.

Deserialized levels keep the record list itself; serialized levels keep framed
bytes; disk levels write the frames to a file in the worker's directory.  It is
used from task threads, hence the lock.

>>> from aiospark.lineage import StorageLevel
from aiospark.memory import MemoryManager
>>> store = BlockStore("/tmp")
>>> store.put("app", 1, 0, [1, 2, 3], StorageLevel.MEMORY_ONLY_SER)
>>> store.get("app", 1, 0)
[1, 2, 3]
>>> store.drop_rdd("app", 1)
1
>>> store.get("app", 1, 0) is None
True
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from typing import Any

from aiospark.lineage import StorageLevel
from aiospark.memory import MemoryManager
from aiospark.protocol.frames import decode_frame, frame_bytes, split_frames

Key = tuple[str, int, int]


class BlockStore:
    """Cached splits keyed by ``(app_id, rdd_id, split)``."""

    def __init__(self, directory: str, memory: MemoryManager | None = None) -> None:
        self.directory = directory
        self.memory = memory
        self._lock = threading.Lock()
        self._memory: dict[Key, Any] = {}
        self._files: dict[Key, str] = {}

    def put(self, app_id: str, rdd_id: int, split: int, records: list, level: StorageLevel) -> None:
        """Keep ``records`` at ``level``."""
        key = (app_id, rdd_id, split)
        if level.use_memory:
            value: Any = records if level.deserialized else frame_bytes(records)
            with self._lock:
                self._memory[key] = value
            return
        folder = os.path.join(self.directory, "blocks", app_id)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"rdd_{rdd_id}_{split}")
        with open(path + ".tmp", "wb") as f:
            f.write(frame_bytes(records))
        os.replace(path + ".tmp", path)
        with self._lock:
            self._files[key] = path

    def get(self, app_id: str, rdd_id: int, split: int) -> list | None:
        """The cached records, or None when this worker does not hold them."""
        key = (app_id, rdd_id, split)
        with self._lock:
            value = self._memory.get(key)
            path = self._files.get(key)
        if isinstance(value, list):
            return value
        if value is not None:
            return _decode(value)
        if path is not None:
            try:
                with open(path, "rb") as f:
                    return _decode(f.read())
            except FileNotFoundError:
                with self._lock:
                    self._files.pop(key, None)
        return None

    def drop_rdd(self, app_id: str, rdd_id: int) -> int:
        """Forget every split of one RDD; returns how many were dropped."""
        with self._lock:
            keys = [k for k in (*self._memory, *self._files) if k[0] == app_id and k[1] == rdd_id]
            paths = [self._files.pop(k) for k in keys if k in self._files]
            for k in keys:
                self._memory.pop(k, None)
        for path in paths:
            _remove(path)
        return len(keys)

    def drop_app(self, app_id: str) -> None:
        """Forget everything a driver cached."""
        with self._lock:
            for store in (self._memory, self._files):
                for k in [k for k in store if k[0] == app_id]:
                    del store[k]
        shutil.rmtree(os.path.join(self.directory, "blocks", app_id), ignore_errors=True)

    def summary(self) -> dict[str, int]:
        """How many blocks are held, by kind."""
        with self._lock:
            return {"memory": len(self._memory), "disk": len(self._files)}


def _decode(data: bytes) -> list:
    records: list = []
    for frame in split_frames(bytearray(data)):
        records.extend(decode_frame(frame))
    return records


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
