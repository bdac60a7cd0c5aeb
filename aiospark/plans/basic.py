"""The basic plans: records from the driver, narrow functions, shuffles, text files, nothing."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from aiospark.lineage import (
    Aggregator,
    DataSplit,
    Node,
    OneToOneDependency,
    Partitioner,
    Plan,
    ShuffleDependency,
    Split,
    TaskContext,
)
from aiospark.mapped import MappedRecords
from aiospark.slices import pickle_splits

#: Records between two cancellation checks in a source iterator.
_CHECK_EVERY = 64


def checked(records: Iterable[Any], tctx: TaskContext) -> Iterator[Any]:
    """Iterate ``records``, giving the task a chance to notice cancellation as it goes.

    The check runs once per batch and the records flow through C-level
    iterators, so the cost per record stays a few nanoseconds.

    >>> from aiospark.lineage import LocalTaskContext
    >>> list(checked(range(3), LocalTaskContext()))
    [0, 1, 2]
    """
    check = tctx.check
    if isinstance(records, (list, range)):
        size = len(records)
        batches: Iterator[Any] = (
            (check(), records[i : i + _CHECK_EVERY])[1] for i in range(0, size, _CHECK_EVERY)
        )
    else:
        it = iter(records)
        islice = itertools.islice
        batches = iter(lambda: (check(), list(islice(it, _CHECK_EVERY)))[1], [])
    return itertools.chain.from_iterable(batches)


class ParallelCollection(Plan):
    """Records that came from the driver (``parallelize``, ``range``), one slice per split.

    A slice is a list, a ``range`` or a ``slices.RecordSlice`` (a window on the
    user's list, read and pickled before the first job, off the loop when large).
    """

    def __init__(self, slices: list[Any]) -> None:
        super().__init__()
        self._slices = slices
        self._pickled = False

    def compute_splits(self) -> list[Split]:
        return [DataSplit(i, data) for i, data in enumerate(self._slices)]

    async def prepare(self) -> None:
        if not self._pickled:
            self._splits = await pickle_splits(self.splits())
            self._pickled = True

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        return checked(split.data, tctx)  # type: ignore[attr-defined]

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_slices"] = None  # each task carries its own slice in its split
        return state


class MapPartitions(Plan):
    """Applies ``f(split_index, iterator)`` to each parent split, in the same task.

    The result keeps the parent's partitioner when ``preserves_partitioning``
    is true, or takes ``partitioner`` when one is given (the function is
    known to produce keys partitioned that way).
    """

    def __init__(
        self,
        parent: Node,
        f: Callable[[int, Iterator[Any]], Iterable[Any]],
        preserves_partitioning: bool = False,
        partitioner: Partitioner | None = None,
    ) -> None:
        kept = parent.partitioner if preserves_partitioning else None
        super().__init__([OneToOneDependency(parent)], partitioner or kept)
        self.parent = parent
        self.f = f

    def compute_splits(self) -> list[Split]:
        return self.parent.splits()

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        records = self.f(split.index, self.parent.iterator(split, tctx))
        # MappedRecords stay themselves, for a consumer that fuses map(f) into its loop.
        return records if type(records) is MappedRecords else iter(records)

    def preferred_locations(self, split: Split) -> list[str]:
        return self.parent.preferred_locations(split)


class Shuffled(Plan):
    """The output of a shuffle: split *i* holds the keys the partitioner sends to *i*."""

    def __init__(
        self,
        parent: Node,
        partitioner: Partitioner,
        aggregator: Aggregator | None = None,
        map_side_combine: bool = False,
        op: str | None = None,
    ) -> None:
        dep = ShuffleDependency(
            parent, parent.ctx.new_shuffle_id(), partitioner, aggregator, map_side_combine, op
        )
        super().__init__([dep], partitioner)
        self.dep = dep

    def compute_splits(self) -> list[Split]:
        return [Split(i) for i in range(self.dep.partitioner.num_partitions)]

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        from aiospark.shuffle.reduce import reduce_split

        return reduce_split(self.dep, split.index, tctx)


class TextFile(Plan):
    """Lines of text files, one split per byte range."""

    def __init__(self, fs: Any, text_splits: list[Any], encoding: str) -> None:
        super().__init__()
        self.fs = fs
        self.encoding = encoding
        self._text_splits = text_splits

    def compute_splits(self) -> list[Split]:
        return [DataSplit(i, s) for i, s in enumerate(self._text_splits)]

    def preferred_locations(self, split: Split) -> list[str]:
        """The hosts the filesystem reports for the split's bytes (``aiospark.io.locations``)."""
        return list(split.data.hosts)  # type: ignore[attr-defined]

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        from aiospark.io.text import read_text_lines

        return read_text_lines(
            self.fs, split.data, encoding=self.encoding, check=tctx.check  # type: ignore[attr-defined]
        )

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_text_splits"] = None
        return state
