"""Shuffled pairs as two columns: partitioned, shipped and combined without a Python loop.

Most shuffles move ``(key, value)`` pairs whose keys are all ints (or all
strings) and whose values are all ints or all floats.  Such a batch is cut into
a key column and a value column (``Columns``); a column of ints or floats
becomes a numpy array, which pickles as one raw buffer (``protocol.frames``
ships it out of band) instead of one pickle opcode run per record.  Hashing,
range partitioning, bucketing, sorting and ``operator.add`` combining then run
as numpy kernels; a batch of anything else keeps the general per-record path.

A ``Columns`` batch iterates as its ``(key, value)`` tuples, so every reader of
shuffled batches (``chain.from_iterable``, the combining loops) takes it as it
takes a list of records.  The round trip is exact: Python ints and floats come
back as the same values and types (an int column is used only when every key
fits in 64 bits).

>>> cols = Columns.of([(3, 1.5), (1, 2.0), (3, 0.5)])
>>> cols.key_col.dtype, cols.value_col.dtype, list(cols)
(dtype('int64'), dtype('float64'), [(3, 1.5), (1, 2.0), (3, 0.5)])
>>> [list(part) for part in split_by_partition(cols, HashPartitioner(2))]
[[], [(3, 1.5), (1, 2.0), (3, 0.5)]]
>>> list(sum_by_key([cols, Columns.of([(1, 1.0)])]))
[(1, 3.0), (3, 2.0)]
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator
from typing import Any
from zlib import crc32

import numpy as np

from aiospark.hashing import portable_hash
from aiospark.lineage import HashPartitioner, Partitioner, RangePartitioner
from aiospark.sizeof import SAMPLE, deep_size

#: Records per ``Columns`` frame written to a shuffle file.
FRAME_RECORDS = 1 << 16
#: Records cut into columns at a time on the map side: enough to amortise numpy's
#: per-call cost, few enough to keep the copy of a batch small.
CUT_RECORDS = 1 << 14

_TYPED = {int: np.int64, float: np.float64}
_SUMMABLE = (np.dtype(np.int64), np.dtype(np.float64))
_INT_KEYS_SAFE = 2**61 - 1  # below this, hash(int) is the int itself (but -1 -> -2)
_keys_of, _values_of = operator.itemgetter(0), operator.itemgetter(1)
_encode = operator.methodcaller("encode", "utf-8", "surrogatepass")

Column = Any  # a list of Python objects, or an int64 / float64 numpy array


def typed(items: list) -> Column:
    """``items`` as an int64 or float64 array when they are all ints or all floats, else as is.

    >>> typed([1, 2]).dtype, typed([1.0, 2]), typed([True, False]), typed([2**70])
    (dtype('int64'), [1.0, 2], [True, False], [1180591620717411303424])
    """
    if not items:
        return items
    kinds = list(map(type, items))  # counting a list beats building a set
    dtype = _TYPED.get(kinds[0])
    if dtype is None or kinds.count(kinds[0]) != len(kinds):
        return items
    try:
        return np.fromiter(items, dtype=dtype, count=len(items))
    except OverflowError:  # an int beyond 64 bits: keep the Python ints
        return items


def as_list(column: Column) -> list:
    """The column's items as Python objects (ints and floats for a typed column)."""
    return column.tolist() if isinstance(column, np.ndarray) else column


class Columns:
    """A batch of ``(key, value)`` pairs held as a key column and a value column.

    Iterating yields the pairs as tuples; ``len`` counts them.
    """

    __slots__ = ("key_col", "value_col")

    def __init__(self, keys: Column, values: Column) -> None:
        self.key_col = keys
        self.value_col = values

    @classmethod
    def of(cls, records: list) -> Columns | None:
        """``records`` as columns, or None unless every record is a ``tuple`` of two.

        >>> Columns.of([(1, "a")]).value_col, Columns.of([(1, "a"), [2, "b"]])
        (['a'], None)
        """
        n = len(records)
        if not n or list(map(type, records)).count(tuple) != n:
            return None
        if list(map(len, records)).count(2) != n:
            return None
        return cls(typed(list(map(_keys_of, records))), typed(list(map(_values_of, records))))

    @classmethod
    def concat(cls, parts: list[Columns]) -> Columns:
        """One batch holding ``parts`` one after another."""
        if len(parts) == 1:
            return parts[0]
        return cls(_concat([p.key_col for p in parts]), _concat([p.value_col for p in parts]))

    def __len__(self) -> int:
        return len(self.key_col)

    def __iter__(self) -> Iterator[tuple]:
        if len(self) <= FRAME_RECORDS:
            return zip(as_list(self.key_col), as_list(self.value_col), strict=True)
        # A whole split as Python objects at once would take ~5x its arrays.
        return itertools.chain.from_iterable(
            self[start : start + FRAME_RECORDS] for start in range(0, len(self), FRAME_RECORDS)
        )

    def __getitem__(self, span: slice) -> Columns:
        return Columns(self.key_col[span], self.value_col[span])

    def __reduce__(self) -> tuple:
        return (Columns, (self.key_col, self.value_col))

    def __repr__(self) -> str:
        return f"Columns({len(self)} pairs)"

    def nbytes(self) -> int:
        """The memory held: exact for typed columns, sampled for columns of objects.

        >>> Columns.of([(1, 2.0)] * 10).nbytes()
        160
        >>> Columns.of([(1, "x" * 1000)] * 10).nbytes() > 10_000
        True
        """
        return sum(map(_column_bytes, self._cols()))

    def _cols(self) -> tuple[Column, Column]:
        return self.key_col, self.value_col


def _column_bytes(column: Column) -> int:
    if isinstance(column, np.ndarray) and column.dtype != object:
        return int(column.nbytes)
    n = len(column)
    if not n:
        return 0
    sample = [column[i * n // SAMPLE] for i in range(min(n, SAMPLE))]
    return 8 * n + sum(map(deep_size, sample)) * n // len(sample)


def _concat(columns: list[Column]) -> Column:
    kinds = {c.dtype if isinstance(c, np.ndarray) else None for c in columns if len(c)}
    if len(kinds) == 1 and None not in kinds:
        return np.concatenate([c for c in columns if len(c)])
    joined: list = []
    for c in columns:
        joined.extend(as_list(c))
    return joined


def _object_array(items: list) -> np.ndarray:
    return np.fromiter(items, dtype=object, count=len(items))


# -- the map side: which reducer each key goes to ------------------------------------------------


def partition_ids(keys: Column, partitioner: Partitioner) -> np.ndarray | None:
    """The reducer of every key, as ``partitioner.partition`` would place it one by one.

    Vectorised for the default hash of int, float and str keys and for range
    bounds of numbers; None for any other key or partitioner (whose own
    ``partition``, perhaps user code, is left to place the records one by one).

    >>> partition_ids(np.array([5, -1, 7]), HashPartitioner(3)).tolist()
    [2, 1, 1]
    >>> partition_ids(np.array([1, 10, 11]), RangePartitioner(2, [10])).tolist()
    [0, 0, 1]
    """
    n = partitioner.num_partitions
    if n == 1:
        return np.zeros(len(keys), dtype=np.int64)
    if isinstance(partitioner, HashPartitioner) and partitioner.hash_func is portable_hash:
        hashes = _portable_hashes(keys)
        if hashes is not None:
            return hashes % n
        return None
    if isinstance(partitioner, RangePartitioner):
        return _range_ids(keys, partitioner)
    return None


def _portable_hashes(keys: Column) -> np.ndarray | None:
    if isinstance(keys, np.ndarray):
        if keys.dtype == np.int64 and len(keys):
            if keys.min() > -_INT_KEYS_SAFE and keys.max() < _INT_KEYS_SAFE:
                return np.where(keys == -1, -2, keys)
            return None
        if keys.dtype != np.float64 or np.isnan(keys).any():  # hash(nan) is the object's id
            return None
        return np.fromiter(map(hash, keys.tolist()), dtype=np.int64, count=len(keys))
    if set(map(type, keys)) == {str}:
        return np.fromiter(map(crc32, map(_encode, keys)), dtype=np.int64, count=len(keys))
    return None


def _range_ids(keys: Column, partitioner: RangePartitioner) -> np.ndarray | None:
    bounds = partitioner.bounds
    if partitioner.key_func is not None or bounds is None or not isinstance(keys, np.ndarray):
        return None
    array = typed(list(bounds)) if bounds else np.array([], dtype=keys.dtype)
    if not isinstance(array, np.ndarray) or array.dtype != keys.dtype:
        return None
    if keys.dtype == np.float64 and (np.isnan(keys).any() or np.isnan(array).any()):
        return None  # NaN compares false both ways: leave it to bisect
    ids = np.searchsorted(array, keys, side="left")
    return ids if partitioner.ascending else partitioner.num_partitions - 1 - ids


def split_by_partition(cols: Columns, partitioner: Partitioner) -> list[Columns] | None:
    """``cols`` cut into one batch per reducer, each keeping the pairs' order.

    None when ``partition_ids`` cannot place the keys.
    """
    n = partitioner.num_partitions
    if n == 1:
        return [cols]
    ids = partition_ids(cols.key_col, partitioner)
    if ids is None:
        return None
    order = np.argsort(ids, kind="stable")
    ends = np.cumsum(np.bincount(ids, minlength=n)).tolist()
    keys, values = (_take(c, order) for c in cols._cols())
    starts = [0, *ends[:-1]]
    return [Columns(keys[a:b], values[a:b]) for a, b in zip(starts, ends, strict=True)]


def _take(column: Column, order: np.ndarray) -> np.ndarray:
    if isinstance(column, np.ndarray):
        return column[order]
    return _object_array(column)[order]


def columns_of_table(table: dict) -> Columns:
    """A combined ``{key: combiner}`` table as columns, in the table's order."""
    return Columns(typed(list(table)), typed(list(table.values())))


# -- the reduce side (a sort of numeric pairs is ``spill.sort_external``'s) --------------------


def numeric(batch: Any) -> bool:
    """Whether ``batch`` is a ``Columns`` of int keys and int or float values."""
    return (
        type(batch) is Columns
        and isinstance(batch.key_col, np.ndarray)
        and batch.key_col.dtype == np.int64
        and isinstance(batch.value_col, np.ndarray)
        and batch.value_col.dtype in _SUMMABLE  # not object arrays (cut by a partitioner)
    )


def sum_by_key(parts: list[Columns]) -> Iterator[tuple]:
    """``(key, sum of its values)`` over numeric batches (``numeric``), keys in ascending order.

    The values of one key are added in arrival order, exactly as the loop
    ``table[k] = table[k] + v`` would (floats start from -0.0, the identity of
    IEEE addition).  Raises OverflowError when int sums could leave 64 bits.
    """
    cols = Columns.concat(parts)
    keys, values = cols.key_col, cols.value_col
    if not len(keys):
        return iter(())
    if values.dtype == np.int64:
        low, high = int(values.min()), int(values.max())
        if max(abs(low), abs(high)) * len(values) >= 2**63:
            raise OverflowError("int sums could leave 64 bits")
    low, high = int(keys.min()), int(keys.max())
    if high - low < 4 * len(keys) + 1024:  # dense keys: index by key
        slots = keys - low
        present = np.flatnonzero(np.bincount(slots, minlength=high - low + 1))
        unique = present + low
        index = np.zeros(high - low + 1, dtype=np.int64)
        index[present] = np.arange(len(present))
        inverse = index[slots]
    else:
        unique, inverse = np.unique(keys, return_inverse=True)
    if values.dtype == np.float64:
        sums = np.full(len(unique), -0.0)
    else:
        sums = np.zeros(len(unique), dtype=np.int64)
    with np.errstate(over="ignore", invalid="ignore"):  # inf and nan, as Python's floats give
        np.add.at(sums, inverse, values)
    return zip(unique.tolist(), sums.tolist(), strict=True)
