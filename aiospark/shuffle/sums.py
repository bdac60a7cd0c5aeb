"""A map task's ``reduce_by_key(operator.add)`` over numeric pairs, summed by numpy.

When the pairs of a map task have int keys in a compact range and int or float
values, their sums fit in two dense arrays indexed by ``key - low``: one
``np.add.at`` per batch replaces a dict update per record.  ``np.add.at`` adds
in arrival order starting from the identity (0, or -0.0 for floats), so every
sum is exactly what the loop ``table[k] = table[k] + v`` computes.

``DenseSums.add`` refuses a batch it cannot take exactly (other key or value
types, a value type unlike the earlier ones, keys too spread out, ints whose
sum could leave 64 bits); the caller then moves the sums so far into its dict
(``drain_into``) and goes on with the general loop, which continues each sum
from where it stood.

>>> from aiospark.shuffle.columns import Columns
>>> sums = DenseSums()
>>> sums.add(Columns.of([(5, 1.5), (7, 2.0), (5, 0.5)]))
True
>>> list(sums.columns())
[(5, 2.0), (7, 2.0)]
"""

from __future__ import annotations

import numpy as np

from aiospark.shuffle.columns import Columns, numeric

#: Keys may spread over this many slots per pair seen (or ``MIN_SLOTS``: 9 MB of
#: arrays) before the dense arrays stop paying off.
SLOTS_PER_PAIR = 4
MIN_SLOTS = 1 << 20
_INT64_LIMIT = 2**63


class DenseSums:
    """Per-key sums of numeric pairs in arrays indexed by ``key - low``."""

    def __init__(self) -> None:
        self._empty()

    def _empty(self) -> None:
        self.low = 0
        self.sums: np.ndarray | None = None
        self.seen: np.ndarray | None = None  # which slots hold a key
        self.pairs = 0
        self.bound = 0.0  # the largest |sum| an int column could reach

    def nbytes(self) -> int:
        """Memory held by the arrays."""
        return 0 if self.sums is None or self.seen is None else self.sums.nbytes + self.seen.nbytes

    def add(self, cols: Columns | None) -> bool:
        """Add a batch's values to its keys' sums; False (changing nothing) if it cannot."""
        if cols is None or not numeric(cols) or not len(cols):
            return False
        keys, values = cols.key_col, cols.value_col
        if self.sums is not None and values.dtype != self.sums.dtype:
            return False
        if values.dtype == np.int64:
            bound = self.bound + float(np.abs(values).max()) * len(values)
            if bound >= _INT64_LIMIT or values.min() == np.iinfo(np.int64).min:
                return False
        else:
            bound = 0.0
        low, high = int(keys.min()), int(keys.max())
        if not self._fit(low, high, values.dtype, self.pairs + len(keys)):
            return False
        slots = keys - self.low
        with np.errstate(over="ignore", invalid="ignore"):  # inf and nan, as Python's floats give
            np.add.at(self.sums, slots, values)
        self.seen[slots] = True  # type: ignore[index]
        self.pairs += len(keys)
        self.bound = bound
        return True

    def _fit(self, low: int, high: int, dtype: np.dtype, pairs: int) -> bool:
        """Make the arrays cover ``[low, high]``, unless that is too sparse."""
        if self.sums is None or self.seen is None:
            new_low, new_high = low, high
        else:
            new_low = min(low, self.low)
            new_high = max(high, self.low + len(self.sums) - 1)
        size = new_high - new_low + 1
        if size > max(SLOTS_PER_PAIR * pairs, MIN_SLOTS):
            return False
        if self.sums is None or self.seen is None:
            self.sums = np.full(size, -0.0) if dtype == np.float64 else np.zeros(size, np.int64)
            self.seen = np.zeros(size, dtype=bool)
        elif new_low < self.low or size > len(self.sums):
            sums = np.full(size, -0.0) if dtype == np.float64 else np.zeros(size, np.int64)
            seen = np.zeros(size, dtype=bool)
            start = self.low - new_low
            sums[start : start + len(self.sums)] = self.sums
            seen[start : start + len(self.seen)] = self.seen
            self.sums, self.seen = sums, seen
        self.low = new_low
        return True

    def columns(self) -> Columns:
        """The keys seen (ascending) and their sums."""
        if self.sums is None or self.seen is None:
            return Columns([], [])
        slots = np.flatnonzero(self.seen)
        return Columns(slots + self.low, self.sums[slots])

    def drain_into(self, table: dict) -> None:
        """Move the sums into ``table`` (which holds none of these keys) and empty this."""
        table.update(self.columns())
        self._empty()
