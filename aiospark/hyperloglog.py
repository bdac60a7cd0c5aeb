"""HyperLogLog: a cardinality sketch in a few KiB, mergeable across partitions.

``RDD.count_approx_distinct`` builds one per partition and merges them in the
driver.  Hashes are 64-bit mixes of ``portable_hash``, so every process agrees.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from aiospark.batching import batched
from aiospark.hashing import portable_hash

#: Records hashed per numpy call.
_BATCH = 4096


class HyperLogLog:
    """A HyperLogLog cardinality sketch over 64-bit hashes of ``portable_hash``.

    ``2 ** precision`` registers each keep the longest run of leading zeros
    seen (plus one) among the hashes routed to it.  Small sketches
    (``precision <= 16``) are a dense byte array; larger ones keep only the
    registers in use, as a sorted array.  ``estimate`` uses Ertl's improved
    estimator (2017), which is accurate from empty sketches up to huge
    counts without empirical bias-correction tables.

    >>> sketch = HyperLogLog(12)
    >>> sketch.add(range(5000))
    >>> 4800 < sketch.estimate() < 5200
    True
    """

    #: Register array size below which the registers are kept dense.
    DENSE_MAX_PRECISION = 16

    def __init__(self, precision: int) -> None:
        import numpy as np

        if not 4 <= precision <= 32:
            raise ValueError(f"precision must be within [4, 32], got {precision}")
        self.p = precision
        self.q = 64 - precision  # hash bits left after the register index
        self.dense = precision <= self.DENSE_MAX_PRECISION
        # dense: one byte per register; sparse: sorted uint64 (index << 8 | rank),
        # one entry per register in use, plus batches not folded in yet.
        self.registers = np.zeros(1 << precision, np.uint8) if self.dense else None
        self.entries = np.zeros(0, np.uint64)
        self._pending: list[Any] = []
        self._pending_size = 0

    @staticmethod
    def precision_for(relative_sd: float) -> int:
        """The precision giving a standard error of ``relative_sd`` (Spark's formula).

        >>> HyperLogLog.precision_for(0.05), HyperLogLog.precision_for(0.01)
        (9, 14)
        """
        if not isinstance(relative_sd, (int, float)) or isinstance(relative_sd, bool):
            raise TypeError(f"relative_sd must be a number, got {relative_sd!r}")
        if not relative_sd >= 0.000017:
            raise ValueError(f"relative_sd should be at least 0.000017, got {relative_sd}")
        precision = math.ceil(2.0 * math.log2(1.054 / relative_sd))
        if precision < 4:
            raise ValueError(f"relative_sd should be at most 0.37, got {relative_sd}")
        return precision

    def add(self, records: Iterator[Any] | Any) -> None:
        """Add every record of an iterable (each hashed with ``portable_hash``)."""
        import numpy as np

        it = iter(records)
        for batch in batched(it, _BATCH):
            try:
                hashes = np.fromiter(map(portable_hash, batch), np.int64, len(batch))
            except TypeError as exc:
                raise TypeError(f"count_approx_distinct() needs hashable records: {exc}") from None
            self.add_hashes(hashes.view(np.uint64))

    def add_hashes(self, hashes: Any) -> None:
        """Add a uint64 numpy array of record hashes (they are mixed again here)."""
        import numpy as np

        h = _mix64(hashes)
        index = h >> np.uint64(self.q)
        rest = h & np.uint64((1 << self.q) - 1)
        rank = (self.q + 1 - _bit_length(rest)).astype(np.uint8)
        if self.dense:
            np.maximum.at(self.registers, index.astype(np.intp), rank)
            return
        self._pending.append((index << np.uint64(8)) | rank.astype(np.uint64))
        self._pending_size += len(index)
        if self._pending_size > max(len(self.entries), 1 << 16):
            self._compact()

    def merge(self, other: HyperLogLog) -> HyperLogLog:
        """Fold another sketch of the same precision into this one; returns ``self``."""
        import numpy as np

        if other.p != self.p:
            raise ValueError(f"can not merge sketches of precision {self.p} and {other.p}")
        if self.dense:
            np.maximum(self.registers, other.registers, out=self.registers)
        else:
            other._compact()
            self._pending.append(other.entries)
            self._pending_size += len(other.entries)
            self._compact()
        return self

    def _compact(self) -> None:
        """Fold pending entries in, keeping the highest rank per register."""
        import numpy as np

        if not self._pending:
            return
        merged = np.unique(np.concatenate([self.entries, *self._pending]))
        index = merged >> np.uint64(8)
        last_of_register = np.append(index[1:] != index[:-1], True)  # highest rank sorts last
        self.entries = merged[last_of_register]
        self._pending = []
        self._pending_size = 0

    def _rank_counts(self) -> list[int]:
        """How many registers hold each value ``0 .. q + 1``."""
        import numpy as np

        if self.dense:
            counts = np.bincount(self.registers, minlength=self.q + 2)
        else:
            self._compact()
            counts = np.bincount(
                (self.entries & np.uint64(0xFF)).astype(np.intp), minlength=self.q + 2
            )
            counts[0] = (1 << self.p) - len(self.entries)
        return counts.tolist()

    def estimate(self) -> float:
        """The estimated number of distinct records added."""
        m = float(1 << self.p)
        counts = self._rank_counts()
        z = m * _tau(1.0 - counts[self.q + 1] / m)
        for k in range(self.q, 0, -1):
            z = 0.5 * (z + counts[k])
        z += m * _sigma(counts[0] / m)
        return m * m / (2.0 * math.log(2.0)) / z

    def __getstate__(self) -> dict:
        self._compact()
        return {k: v for k, v in self.__dict__.items() if k not in ("_pending", "_pending_size")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pending = []
        self._pending_size = 0


def _mix64(hashes: Any) -> Any:
    """A 64-bit finaliser (SplitMix64's): spreads structured hashes such as small ints."""
    import numpy as np

    z = hashes + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _bit_length(values: Any) -> Any:
    """``int.bit_length`` of every uint64 in an array (exact: works on 32-bit halves)."""
    import numpy as np

    high = (values >> np.uint64(32)).astype(np.float64)
    low = (values & np.uint64(0xFFFFFFFF)).astype(np.float64)
    # frexp's exponent of an exactly represented integer is its bit length (0 for 0).
    return np.where(high > 0, 32 + np.frexp(high)[1], np.frexp(low)[1])


def _sigma(x: float) -> float:
    """Ertl's sigma(x) = x + sum_k x^(2^k) 2^(k-1), for the registers still empty."""
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    """Ertl's tau(x), the correction for registers at their maximum value."""
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == previous:
            return z / 3.0
