"""The baseline: the same work in plain, single-process Python."""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench_common import mod_pair


def word_count(path: Path) -> Counter[str]:
    """``collections.Counter`` over ``line.split()`` for each line of the file."""
    counts: Counter[str] = Counter()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            counts.update(line.split())
    return counts


def reduce_by_key_count(pairs: int, pair: Callable[[int], tuple] = mod_pair) -> int:
    """Reduce the generated pairs by key with ``operator.add`` in a dict; count the keys."""
    add = operator.add
    sums: dict[int, int] = {}
    for key, value in map(pair, range(pairs)):
        sums[key] = add(sums[key], value) if key in sums else value
    return len(sums)


def sort_by_key_count(pairs: int) -> int:
    """Sort the generated pairs by key (``itemgetter(0)``, as aiospark sorts a partition); count."""
    records = list(map(mod_pair, range(pairs)))
    records.sort(key=operator.itemgetter(0))
    return len(records)
