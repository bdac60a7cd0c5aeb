"""Checkpoints: an RDD's splits kept where they are read back from instead of lineage.

A reliable checkpoint (``checkpoint()``, ``CheckpointState``) writes them to shared
storage; a local one (``local_checkpoint()``, ``LocalCheckpoint``) keeps them in the
workers' block stores.

A checkpoint's parts are framed pickle files, the format of ``save_as_pickle_file``
(``io.formats``): ``<checkpoint dir>/rdd-<id>/part-NNNNN``, each written under a
temporary name and renamed into place, so a retried or speculative task never
leaves half a part.
"""

from __future__ import annotations

import collections
import contextlib
import os
from collections.abc import Iterator
from typing import Any

import fsspec

from aiospark.batching import DEFAULT_BATCH
from aiospark.errors import AiosparkError
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


class LocalCheckpoint:
    """A local checkpoint: the splits stay in the workers' block stores, the lineage is cut.

    Writing a split only computes it: the RDD is persisted, so computing it puts it
    in the worker's block store.  Once written, a split is read from there, and a
    split that is gone (its worker lost, or the RDD unpersisted) is an error, as in
    Spark: there is no lineage left to recompute it from.

    >>> state = LocalCheckpoint(7)
    >>> state.write_partition(0, iter([1, 2]))
    >>> from aiospark.lineage import LocalTaskContext
    >>> tctx = LocalTaskContext()
    >>> _ = list(tctx.put_block(7, 0, [1, 2], StorageLevel.MEMORY_AND_DISK))
    >>> list(state.read(0, tctx))
    [1, 2]
    >>> state.read(1, tctx)
    Traceback (most recent call last):
    ...
    aiospark.errors.AiosparkError: Checkpoint block rdd_7_1 not found: ...
    """

    #: No files: ``get_checkpoint_file()`` is None, as in PySpark.
    directory = None

    def __init__(self, rdd_id: int) -> None:
        self.rdd_id = rdd_id
        self.written = False

    def write_partition(self, index: int, records: Iterator[Any]) -> None:
        """Compute split ``index`` (the RDD's persistence keeps it in the block store)."""
        collections.deque(records, maxlen=0)

    def read(self, index: int, tctx: TaskContext) -> Iterator[Any]:
        """Split ``index``'s records from the block store; an error when they are gone."""
        records = tctx.get_block(self.rdd_id, index)
        if records is None:
            raise AiosparkError(
                f"Checkpoint block rdd_{self.rdd_id}_{index} not found: the worker that "
                f"kept this split of the locally checkpointed RDD {self.rdd_id} was lost, "
                f"or the RDD was unpersisted; use checkpoint() for a checkpoint that "
                f"survives losing a worker"
            )
        return records


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
