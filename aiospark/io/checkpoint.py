"""Reliable checkpoints: an RDD's splits written to shared storage, read back instead of lineage.

A checkpoint's parts are framed pickle files, the format of ``save_as_pickle_file``
(``io.formats``): ``<checkpoint dir>/rdd-<id>/part-NNNNN``, each written under a
temporary name and renamed into place, so a retried or speculative task never
leaves half a part.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import fsspec

from aiospark.batching import DEFAULT_BATCH
from aiospark.io.formats import read_pickle_records, write_frames
from aiospark.lineage import TaskContext


class CheckpointState:
    """Where an RDD's checkpoint lives, and whether it has been written.

    >>> state = CheckpointState(f"{tmp_dir}/doctest-checkpoint", {})
    >>> state.write_partition(0, iter([1, "two"]))
    >>> from aiospark.lineage import LocalTaskContext
    >>> list(state.read(0, LocalTaskContext()))
    [1, 'two']
    """

    def __init__(self, directory: str, storage_options: dict[str, Any]) -> None:
        self.directory = directory
        self.storage_options = storage_options
        self.written = False

    def path(self, index: int) -> str:
        """The file of split ``index``."""
        return f"{self.directory}/part-{index:05d}"

    def read(self, index: int, tctx: TaskContext) -> Iterator[Any]:
        """Split ``index``'s records, checking for cancellation between frames (on a worker)."""
        fs, path = fsspec.core.url_to_fs(self.path(index), **self.storage_options)
        return read_pickle_records(fs, path, tctx.check)

    def write_partition(self, index: int, records: Iterator[Any]) -> None:
        """Write split ``index`` (the function of the job that writes the checkpoint)."""
        fs, path = fsspec.core.url_to_fs(self.path(index), **self.storage_options)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{path}.tmp-{os.urandom(6).hex()}"
        with fs.open(temporary, "wb") as f:
            write_frames(f, records, DEFAULT_BATCH)
        fs.mv(temporary, path)


def remove_checkpoint(directory: str, storage_options: dict[str, Any]) -> None:
    """Delete a checkpoint's directory (the cleaner's, once its RDD was collected).

    >>> state = CheckpointState(f"{tmp_dir}/doctest-removed", {})
    >>> state.write_partition(0, iter([1]))
    >>> remove_checkpoint(state.directory, {})
    >>> os.path.exists(state.directory)
    False
    >>> remove_checkpoint(state.directory, {})  # gone already: nothing to do
    """
    fs, path = fsspec.core.url_to_fs(directory, **storage_options)
    with contextlib.suppress(FileNotFoundError):
        fs.rm(path, recursive=True)
