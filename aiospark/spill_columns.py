"""Sorted runs of numeric pairs as numpy columns: what an external sort spills when it can.

When every ``(key, value)`` pair of a sort has an int key and a numeric
value (the common case: ids, counts, scores), a run need not be a list of
tuples sorted by Python and pickled one object at a time.  It is two arrays,
sorted with ``np.argsort(kind="stable")``, written as raw buffers and merged
with ``np.searchsorted`` and another stable argsort.  Only the merged output
becomes tuples again, a block at a time.  The order is exactly ``list.sort``'s:
ascending (or descending) keys, ties in arrival order.

>>> cols = pair_columns([(3, 1), (1, 2), (3, 0)])
>>> keys, values = sort_columns(*cols, reverse=False)
>>> records_of(keys, values)
[(1, 2), (3, 1), (3, 0)]
>>> pair_columns([(1, "a")]) is None, pair_columns([(2**70, 1)]) is None
(True, True)
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator
from typing import Any

import numpy as np

Pair = tuple[np.ndarray, np.ndarray]
_first, _second = operator.itemgetter(0), operator.itemgetter(1)
_DTYPES = {int: np.int64, float: np.float64}


def _column(items: list, allow_float: bool) -> np.ndarray | None:
    kinds = set(map(type, items))
    if len(kinds) != 1:
        return None
    dtype = _DTYPES.get(kinds.pop())
    if dtype is None or (dtype is np.float64 and not allow_float):
        return None
    try:
        return np.fromiter(items, dtype, len(items))
    except OverflowError:  # an int past 64 bits
        return None


def pair_columns(batch: Any) -> Pair | None:
    """``(keys, values)`` arrays of a batch of pairs with int keys and all-int or all-float
    values; None for anything else (other types, ints past 64 bits, not pairs).

    A batch already held as columns (``key_col`` and ``value_col`` int64 /
    float64 arrays, as ``shuffle.columns.Columns`` of numbers are) is taken as it is.

    >>> class Held:
    ...     key_col, value_col = np.array([2, 1]), np.array([0.5, 1.5])
    >>> pair_columns(Held())[1].tolist()
    [0.5, 1.5]
    """
    if type(batch) is not list:
        keys, values = getattr(batch, "key_col", None), getattr(batch, "value_col", None)
        if (isinstance(keys, np.ndarray) and isinstance(values, np.ndarray)
                and keys.dtype == np.int64 and values.dtype in (np.int64, np.float64)):
            return keys, values
        return None
    if not batch or set(map(type, batch)) != {tuple} or set(map(len, batch)) != {2}:
        return None
    keys = _column(list(map(_first, batch)), allow_float=False)
    if keys is None:
        return None
    values = _column(list(map(_second, batch)), allow_float=True)
    return None if values is None else (keys, values)


def same_kind(a: Pair, b: Pair) -> bool:
    """Whether two column pairs have the same dtypes (so they concatenate exactly)."""
    return a[0].dtype == b[0].dtype and a[1].dtype == b[1].dtype


def stable_order(keys: np.ndarray, reverse: bool) -> np.ndarray:
    """The permutation sorting ``keys`` stably, descending when ``reverse`` (ties keep their
    order either way, as ``list.sort(reverse=True)`` does).

    >>> stable_order(np.array([2, 1, 2, 3]), True).tolist()
    [3, 0, 2, 1]
    """
    if not reverse:
        return np.argsort(keys, kind="stable")
    last = len(keys) - 1
    return (last - np.argsort(keys[::-1], kind="stable"))[::-1]


def sort_columns(keys: np.ndarray, values: np.ndarray, reverse: bool) -> Pair:
    """Both columns reordered by the stable sort of ``keys``."""
    order = stable_order(keys, reverse)
    return keys[order], values[order]


def concat(parts: list[Pair]) -> Pair:
    """One pair of columns from several (in order)."""
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def records_of(keys: np.ndarray, values: np.ndarray) -> list[tuple]:
    """The columns as a list of ``(key, value)`` tuples of Python ints and floats."""
    return list(zip(keys.tolist(), values.tolist(), strict=True))


def _cut(keys: np.ndarray, start: int, bound: object, reverse: bool, inclusive: bool) -> int:
    """End of the records of ``keys[start:]`` (sorted) before ``bound`` (or equal, if
    ``inclusive``)."""
    if not reverse:
        return int(np.searchsorted(keys, bound, "right" if inclusive else "left"))
    # descending: count the keys greater than (or equal to) the bound from the front
    ascending = keys[::-1]
    return len(keys) - int(np.searchsorted(ascending, bound, "left" if inclusive else "right"))


def merge_columns(sources: list[Iterator[Pair]], reverse: bool) -> Iterator[Pair]:
    """Merge streams of sorted column blocks into sorted blocks; earlier streams win ties.

    The same steps as ``spill.merge_sorted_blocks``: each step takes from every
    stream's current block what sorts before the smallest of the blocks' last
    keys (with that block whole, and ties only from the streams before it),
    and sorts the pieces with one stable argsort.

    >>> a = iter([(np.array([1, 4]), np.array([0, 0])), (np.array([9]), np.array([0]))])
    >>> b = iter([(np.array([2, 4, 7]), np.array([1, 1, 1]))])
    >>> [pair for block in merge_columns([a, b], False) for pair in records_of(*block)]
    [(1, 0), (2, 1), (4, 0), (4, 1), (7, 1), (9, 0)]
    """
    heads: list[list] = []
    for stream in sources:
        block = next((b for b in stream if len(b[0])), None)
        if block is not None:
            heads.append([block, 0, stream])
    while len(heads) > 1:
        lasts = [head[0][0][-1] for head in heads]
        bound = max(lasts) if reverse else min(lasts)
        first = lasts.index(bound)
        pieces = []
        for number, head in enumerate(heads):
            (keys, values), start = head[0], head[1]
            if number == first:
                cut = len(keys)
            else:
                cut = max(start, _cut(keys, start, bound, reverse, number < first))
            if cut > start:
                pieces.append((keys[start:cut], values[start:cut]))
                head[1] = cut
        if len(pieces) == 1:
            yield pieces[0]
        elif pieces:
            yield sort_columns(*concat(pieces), reverse)
        heads = [h for h in (_advance(head) for head in heads) if h is not None]
    if heads:
        (keys, values), start, stream = heads[0]
        yield keys[start:], values[start:]
        yield from stream


def _advance(head: list) -> list | None:
    """``head`` itself while its block has records left, else its stream's next block."""
    while head[1] >= len(head[0][0]):
        block = next(head[2], None)
        if block is None:
            return None
        head = [block, 0, head[2]]
    return head


def chunks(keys: np.ndarray, values: np.ndarray, size: int) -> Iterator[Pair]:
    """The columns in blocks of ``size`` records."""
    for start in range(0, len(keys), size):
        yield keys[start : start + size], values[start : start + size]


def record_blocks(blocks: Iterator[Pair]) -> Iterator[list]:
    """Column blocks as lists of tuples."""
    return itertools.starmap(records_of, blocks)


# -- summing by key (an ExternalMap of operator.add over int pairs) ------------------------------

#: Odd 64-bit multipliers, one per fan-out level: each level spreads keys by other hash bits.
_MIXERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
           0xFF51AFD7ED558CCD, 0x94D049BB133111EB)
_HASH_MODULUS = 2**61 - 1  # CPython's hash of an int is the int modulo this (sign kept)


def int_pairs(batch: Any) -> Pair | None:
    """``pair_columns`` of pairs whose values are ints too (so sums stay exact), else None."""
    cols = pair_columns(batch)
    return cols if cols is not None and cols[1].dtype == np.int64 else None


def sum_by_key(keys: np.ndarray, values: np.ndarray) -> Pair:
    """One ``(key, sum of its values)`` per distinct key, in key order.

    Raises ``OverflowError`` when a sum might not fit in 64 bits (Python's ints
    would not wrap: the caller falls back to them).

    >>> keys, sums = sum_by_key(np.array([3, 1, 3]), np.array([1, 2, 5]))
    >>> keys.tolist(), sums.tolist()
    ([1, 3], [2, 6])
    """
    if not len(keys):
        return keys, values
    biggest = max(abs(int(values.min())), abs(int(values.max())))
    if biggest * len(values) >= 2**63:
        raise OverflowError("a sum could pass 64 bits")
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return keys[starts], np.add.reduceat(values, starts)


def hashes_of(keys: np.ndarray) -> np.ndarray:
    """``hash(key)`` of each int key, as CPython computes it.

    >>> hashes_of(np.array([5, -1, 2**61])).tolist() == [hash(5), hash(-1), hash(2**61)]
    True
    """
    if len(keys) and int(keys.min()) > -_HASH_MODULUS and int(keys.max()) < _HASH_MODULUS:
        return np.where(keys == -1, -2, keys)
    return np.fromiter(map(hash, keys.tolist()), np.int64, len(keys))


def fanout_ids(hashes: np.ndarray, salt: int, n: int) -> np.ndarray:
    """Which of ``n`` files each hash goes to at fan-out level ``salt`` (bits mixed anew at
    each level, so a file of one level spreads over the next level's files).

    >>> ids = fanout_ids(np.arange(10_000), 0, 32)
    >>> int(ids.min()), int(ids.max()), bool(np.bincount(ids).min() > 200)
    (0, 31, True)
    """
    mixed = hashes.astype(np.uint64)
    mixed ^= mixed >> np.uint64(31)
    with np.errstate(over="ignore"):
        mixed *= np.uint64(_MIXERS[salt % len(_MIXERS)])
    return ((mixed >> np.uint64(32)) % np.uint64(n)).astype(np.intp)


def split_ids(ids: np.ndarray, n: int) -> tuple[np.ndarray, list[int]]:
    """A stable order grouping equal ids, and where each id's group starts (n + 1 bounds)."""
    small = ids.astype(np.uint8) if n <= 256 else ids  # a radix sort for 8-bit ids
    order = np.argsort(small, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(ids, minlength=n)))).tolist()
    return order, bounds
