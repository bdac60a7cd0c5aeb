"""Cutting a stream of records into lists, the unit most loops over records work in.

>>> list(batched(range(5), 2))
[[0, 1], [2, 3], [4]]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

#: Records per batch (and per pickled frame): big enough to amortise per-call costs
#: such as pickle's, small enough to keep the memory of a batch modest.
DEFAULT_BATCH = 1024


def batched(records: Iterable[Any], size: int = DEFAULT_BATCH) -> Iterator[list]:
    """Lists of up to ``size`` records (``itertools.batched`` before Python 3.12, as lists).

    >>> list(batched(iter("abc")))
    [['a', 'b', 'c']]
    """
    it = iter(records)
    while batch := list(itertools.islice(it, size)):
        yield batch


def slices(records: Iterable[Any], size: int = DEFAULT_BATCH) -> Iterator[Iterator[Any]]:
    """Runs of up to ``size`` records as iterators over ``records``: ``batched`` without
    building lists, for a loop that reads each run once, before taking the next.

    >>> [list(run) for run in slices(iter(range(5)), 2)]
    [[0, 1], [2, 3], [4]]
    """
    it = iter(records)
    for first in it:
        yield itertools.chain((first,), itertools.islice(it, size - 1))
