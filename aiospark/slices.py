"""The collections given to ``parallelize``: PySpark's slicing, and splits pickled off the loop.

``parallelize(data)`` must not copy or pickle millions of items on the event
loop.  A list (or tuple) is not copied at all: each partition is a
``RecordSlice``, a window ``[start, stop)`` on it.  Before the first job on
the RDD, ``pickle_splits`` pickles each split once (on the driver's helper
thread when they are large, ``offload.STEP`` items per pickle so the loop
keeps running), and launching a task then sends that pickle as it is.

>>> data = list(range(11))
>>> [list(s) for s in slice_list(data, 3)]
[[0, 1, 2], [3, 4, 5], [6, 7, 8, 9, 10]]
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Iterator, Sequence
from typing import Any

from aiospark import offload
from aiospark.errors import SerializationError
from aiospark.lineage import DataSplit, Split
from aiospark.protocol.frames import dumps


def slice_bounds(length: int, n: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each of ``n`` slices of ``length`` items, cut as PySpark cuts a list.

    PySpark batches the items (``length // n`` per batch, at most 1024, at
    least 1) and spreads the batches evenly over the slices; each slice is
    therefore one contiguous run of items.

    >>> slice_bounds(11, 3)
    [(0, 3), (3, 6), (6, 11)]
    >>> slice_bounds(0, 2)
    [(0, 0), (0, 0)]
    """
    batch = max(1, min(length // n, 1024))
    count = -(-length // batch)  # batches, the last one possibly short
    return [
        (min(length, (i * count) // n * batch), min(length, ((i + 1) * count) // n * batch))
        for i in range(n)
    ]


class RecordSlice:
    """Items ``[start, stop)`` of a list or tuple, read when first pickled, then kept pickled.

    It pickles as the list of those items, ``offload.STEP`` items per inner
    pickle (``join_chunks`` rebuilds the list on the worker).  Every task,
    attempt and job then gets the items as they were that first time.

    >>> data = [1, 2, 3, 4]
    >>> part = RecordSlice(data, 1, 3)
    >>> len(part), list(part), pickle.loads(pickle.dumps(part))
    (2, [2, 3], [2, 3])
    >>> data[1] = 20
    >>> list(part), pickle.loads(pickle.dumps(part))
    ([2, 3], [2, 3])

    A list that grew or shrank before it was first read is refused: its slices'
    bounds no longer cut it as the RDD's partitions say.

    >>> data = [1, 2, 3, 4]
    >>> part = RecordSlice(data, 0, 2)
    >>> data.clear()
    >>> list(part)
    Traceback (most recent call last):
    ...
    ValueError: the list given to parallelize() had 4 items and has 0 now, before the first ...
    """

    def __init__(self, source: Sequence[Any], start: int, stop: int) -> None:
        self.source = source
        self.start = start
        self.stop = stop
        #: the source's length when it was sliced
        self.length = len(source)
        self._chunks: tuple[bytes, ...] | None = None

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[Any]:
        if self._chunks is not None:
            return iter(join_chunks(self._chunks))
        self._check_length()
        return iter(self.source[self.start : self.stop])

    def _check_length(self) -> None:
        if len(self.source) != self.length:
            raise ValueError(
                f"the list given to parallelize() had {self.length} items and has "
                f"{len(self.source)} now, before the first job read it; give parallelize() "
                "a copy (list(data)) if you change it afterwards"
            )

    def __reduce__(self) -> tuple[Any, tuple[tuple[bytes, ...]]]:
        if self._chunks is None:
            self._check_length()
            step = offload.STEP
            self._chunks = tuple(
                dumps(self.source[i : min(i + step, self.stop)])
                for i in range(self.start, self.stop, step)
            )
        return join_chunks, (self._chunks,)


def join_chunks(chunks: tuple[bytes, ...]) -> list[Any]:
    """The records of a pickled ``RecordSlice``, from its chunks.

    >>> join_chunks((pickle.dumps([1, 2]), pickle.dumps([3])))
    [1, 2, 3]
    """
    records: list[Any] = []
    for chunk in chunks:
        records += pickle.loads(chunk)
    return records


def slice_list(data: Sequence[Any], n: int) -> list[RecordSlice]:
    """``n`` slices of a list or tuple, as PySpark cuts it, without copying any item.

    >>> [len(s) for s in slice_list(tuple(range(10)), 4)]
    [2, 2, 2, 4]
    """
    return [RecordSlice(data, start, stop) for start, stop in slice_bounds(len(data), n)]


@dataclasses.dataclass(frozen=True)
class PickledSplit(DataSplit):
    """A ``DataSplit`` pickled ahead of time: ``serialize_split`` sends ``pickled`` as it is.

    >>> split = pickle_split(DataSplit(0, RecordSlice([1, 2, 3], 0, 3)))
    >>> pickle.loads(split.pickled) == pickle.loads(pickle.dumps(split)) == DataSplit(0, [1, 2, 3])
    True
    """

    pickled: bytes = b""

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:  # inside another split (union, zip ...)
        return pickle.loads, (self.pickled,)


def pickle_split(split: DataSplit) -> PickledSplit:
    """``split`` with its pickle; ``SerializationError`` names the partition it cannot pickle."""
    try:
        pickled = pickle.dumps(split, protocol=5)
    except Exception as exc:
        raise SerializationError(
            f"could not serialize partition {split.index}'s data: {exc}"
        ) from exc
    return PickledSplit(split.index, split.data, pickled)


async def pickle_splits(splits: list[Split]) -> list[Split]:
    """``splits``, those holding a ``RecordSlice`` pickled (on the helper thread when large).

    >>> splits = [DataSplit(i, s) for i, s in enumerate(slice_list(list(range(10**5)), 2))]
    >>> [type(s).__name__ for s in await pickle_splits(splits)]
    ['PickledSplit', 'PickledSplit']
    >>> import threading
    >>> await pickle_splits([DataSplit(0, RecordSlice([threading.Lock()], 0, 1))])
    Traceback (most recent call last):
    ...
    aiospark.errors.SerializationError: could not serialize partition 0's data: ...
    """
    size = sum(len(s.data) for s in splits if _holds_slice(s))
    return await offload.run_sized(size, _pickle_all, splits) if size else splits


def _holds_slice(split: Split) -> bool:
    return type(split) is DataSplit and isinstance(split.data, RecordSlice)


def _pickle_all(splits: list[Split]) -> list[Split]:
    return [pickle_split(s) if _holds_slice(s) else s for s in splits]  # type: ignore[arg-type]
