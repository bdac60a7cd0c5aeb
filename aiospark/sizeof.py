"""Estimates of how much memory Python records take, by sampling.

Exact deep sizes cost as much as the work being measured, so containers are
measured on a sample of their items and the result is scaled up (Spark's
``SizeEstimator`` does the same).  numpy arrays count their data buffer.

>>> deep_size(12345) == sys.getsizeof(12345)
True
>>> deep_size((1, "a")) > sys.getsizeof((1, "a"))
True
>>> records_size([(i, i) for i in range(1000)]) > 100_000
True
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

import numpy as np

#: Items of a container measured before scaling up.
SAMPLE = 16
_getsizeof = sys.getsizeof
_ATOMS = (int, float, str, bytes, bool, type(None), complex)


def deep_size(obj: Any, depth: int = 4) -> int:
    """Approximate bytes held by ``obj`` and what it references (sampled, bounded depth)."""
    if isinstance(obj, _ATOMS):
        return _getsizeof(obj)
    if isinstance(obj, np.ndarray):
        return _getsizeof(obj) + (obj.nbytes if obj.base is None else 0)
    size = _getsizeof(obj)
    if depth == 0:
        return size
    n = len(obj) if isinstance(obj, (dict, list, tuple, set, frozenset)) else 0
    if n == 0:
        return size
    if isinstance(obj, (list, tuple)):  # evenly spaced items
        sample = [obj[i * n // SAMPLE] for i in range(SAMPLE)] if n > SAMPLE else obj
    else:  # the first items (hash order is no worse than random)
        sample = list(itertools.islice(obj.items() if isinstance(obj, dict) else obj, SAMPLE))
    measured = sum(deep_size(x, depth - 1) for x in sample)
    return size + measured * n // len(sample)


def records_size(records: list) -> int:
    """Approximate bytes held by a list of records (a block, a buffer)."""
    return deep_size(records)


class SizeTracker:
    """Running estimate of a growing collection's size, re-sampled as it grows.

    Call ``estimate(collection, count)`` after each batch of inserts; it samples
    the collection only when ``count`` has grown by a quarter since the last
    sample, or every ``resample_calls`` calls (values may grow in place).

    >>> tracker = SizeTracker()
    >>> table = {i: [i] * 10 for i in range(5000)}
    >>> 500_000 < tracker.estimate(table, len(table)) < 5_000_000
    True
    """

    def __init__(self, resample_calls: int = 32) -> None:
        self.per_item = 0.0
        self.resample_calls = resample_calls
        self._sampled_at = 0
        self._calls = 0

    def estimate(self, collection: Any, count: int) -> int:
        self._calls += 1
        if (
            count > self._sampled_at * 1.25 + 64
            or self._calls >= self.resample_calls
            or not self.per_item
        ) and count:
            self._calls = 0
            self._sampled_at = count
            self.per_item = deep_size(collection) / count
        return int(self.per_item * count)
