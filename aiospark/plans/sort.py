"""The lineage of a sort: sample the keys, pick range bounds, shuffle by range, sort.

``ops.sorting.range_sorted`` builds that lineage from the plans here.
PySpark's ``sortByKey`` runs jobs when it is called (a count, then a sample
collected to the driver).  Here a transformation runs nothing, so the sampling
is part of the sorted RDD's lineage instead, and runs with its first action:

1. a *sample* stage over the parent: each partition reports its record count
   and the keys with the smallest uniform draws (a bounded number of them),
   drawing as PySpark's ``sample(False, fraction, seed=1)`` does;
2. a one-task *bounds* stage: with the total count it knows PySpark's
   fraction (``20 * num_partitions / count``), keeps exactly the keys
   PySpark's sample would have kept and picks the same bounds.  Should a
   partition have held more sampled keys than it could report (heavy skew),
   it picks weighted quantiles of what it has instead: still a correct sort,
   only the partition sizes may differ from PySpark's;
3. the range shuffle's map stage (``RangeInput``): each task reads the
   bounds into the shuffle's ``RangePartitioner`` before partitioning;
4. the reduce side sorts each partition.

The sort is correct whatever the bounds: they only decide how evenly the
sorted records spread over the partitions.  The bounds are ``key_func``
values (PySpark keeps raw keys there and compares them with ``keyfunc(k)``,
which misplaces keys when ``keyfunc`` changes their order); with the
default identity that is the same thing.
"""

from __future__ import annotations

import heapq
import math
import operator
from collections.abc import Callable, Iterator
from typing import Any

from aiospark.lineage import (
    HashPartitioner,
    Node,
    OneToOneDependency,
    Plan,
    RangePartitioner,
    ShuffleDependency,
    Split,
    TaskContext,
)
from aiospark.mapped import MappedRecords, map_records
from aiospark.ops.samplers import partition_random
from aiospark.spill import sort_external, task_memory

#: PySpark samples the keys of a sort with this seed.
SAMPLE_SEED = 1
#: Sampled keys wanted per output partition (Spark's and PySpark's constant).
KEYS_PER_PARTITION = 20.0


def identity(x: Any) -> Any:
    """The default sort key: the key itself.

    >>> identity(3)
    3
    """
    return x


def incomparable(exc: TypeError) -> bool:
    """Whether ``exc`` is Python's complaint about ordering two values."""
    return "not supported between" in str(exc)


def sort_partition(
    key_func: Callable[[Any], Any], reverse: bool, _split: int, records: Iterator[tuple]
) -> Iterator[tuple]:
    """Sort one partition of ``(key, value)`` records by ``key_func(key)`` (stable).

    Runs past the task's memory share are sorted, spilled and merged from disk.

    >>> list(sort_partition(str.lower, False, 0, iter([("b", 1), ("A", 2), ("a", 3)])))
    [('A', 2), ('a', 3), ('b', 1)]
    """
    if key_func is identity:
        key: Callable[[tuple], Any] = operator.itemgetter(0)
    else:

        def key(record: tuple) -> Any:
            return key_func(record[0])

    memory, spill_dir = task_memory()
    try:
        return sort_external(records, key, reverse, memory, spill_dir)
    except TypeError as exc:
        if not incomparable(exc):
            raise
        raise TypeError(f"cannot sort keys of mutually incomparable types: {exc}") from None


def sample_cap(num_partitions: int, parent_partitions: int) -> int:
    """How many sampled keys one parent partition may report.

    Three times a partition's share of the ``20 * num_partitions`` keys PySpark
    samples, plus a margin: enough that, unless the data is heavily skewed,
    every key PySpark's sample would take is reported.

    >>> sample_cap(4, 4)
    160
    """
    share = KEYS_PER_PARTITION * num_partitions / max(parent_partitions, 1)
    return math.ceil(3 * share) + 100


def sample_keys(
    cap: int, key_func: Callable[[Any], Any], split: int, records: Iterator[tuple]
) -> Iterator[tuple]:
    """One partition's sample: ``(0, (split, count, [(draw, key_func(key)), ...], top_draw))``.

    Every record gets PySpark's uniform draw; the ``cap`` records with the
    smallest draws are reported, with ``top_draw`` the largest reported draw.
    The records of ``map(f)`` (``mapped.MappedRecords``) are drawn for before
    ``f``, which then runs on the kept ones only: the same sample, since ``f``
    maps one record to one, without calling ``f`` for every record (Spark
    computes the whole parent for its sample, then again for the shuffle).

    >>> records = iter([(5, "x"), (6, "y"), (7, "z")])
    >>> _, (split, count, kept, top) = next(sample_keys(2, identity, 0, records))
    >>> split, count, sorted(k for _, k in kept), top == max(d for d, _ in kept)
    (0, 3, [5, 7], True)
    """
    rand = partition_random(SAMPLE_SEED, split).random
    mapped = records if type(records) is MappedRecords and not records.started else None
    if mapped is not None:  # draw for map(f)'s input records, call f on the kept ones only
        records = iter(mapped.records)
    # A max-heap on the draw (negated), with the record number breaking ties.
    heap = [(-rand(), i, record) for i, record in zip(range(cap), records, strict=False)]
    count = len(heap)
    if count == cap:
        heapq.heapify(heap)
        replace = heapq.heapreplace
        threshold = -heap[0][0]
        number = cap
        for number, record in enumerate(records, cap + 1):
            draw = rand()
            if draw < threshold:
                replace(heap, (-draw, number, record))
                threshold = -heap[0][0]
        count = number
    draws = [-neg for neg, _, _ in heap]
    chosen = [record for _, _, record in heap]
    if mapped is not None:
        chosen = list(map_records(mapped.f, chosen))
    keys = [record[0] for record in chosen]
    if key_func is not identity:
        keys = list(map_records(key_func, keys))
    kept = list(zip(draws, keys, strict=True))
    top = max((draw for draw, _ in kept), default=0.0)
    yield (0, (split, count, kept, top))


def choose_bounds(summaries: list[tuple], num_partitions: int) -> list:
    """The range bounds for ``num_partitions`` partitions from every partition's sample.

    >>> part = (0, 4, [(0.5, "c"), (0.1, "a"), (0.7, "d"), (0.2, "b")], 0.7)
    >>> choose_bounds([part], 2), choose_bounds([part], 3)
    (['c'], ['b', 'c'])
    """
    summaries = sorted(summaries, key=operator.itemgetter(0))
    total = sum(s[1] for s in summaries)
    if total == 0:
        return []
    # PySpark: sample(False, min(20 * n / count, 1), seed=1) of the keys.
    fraction = min(KEYS_PER_PARTITION * num_partitions / max(total, 1), 1.0)
    complete = all(count == len(kept) or top >= fraction for _, count, kept, top in summaries)
    try:
        if complete:
            samples = sorted(
                key for _, _, kept, _ in summaries for draw, key in kept if draw < fraction
            )
            if not samples:
                return []
            size = len(samples)
            return [
                samples[int(size * (i + 1) / num_partitions)] for i in range(num_partitions - 1)
            ]
        return _weighted_bounds(summaries, num_partitions)
    except TypeError as exc:
        if not incomparable(exc):
            raise
        raise TypeError(f"cannot sort keys of mutually incomparable types: {exc}") from None


def _weighted_bounds(summaries: list[tuple], num_partitions: int) -> list:
    """Quantiles of the reported keys, each weighing the records it stands for."""
    weighted = sorted(
        (
            (key, count / len(kept))
            for _, count, kept, _ in summaries
            if kept
            for _, key in kept
        ),
        key=operator.itemgetter(0),
    )
    step = sum(w for _, w in weighted) / num_partitions
    target = step
    bounds: list = []
    seen = 0.0
    for key, weight in weighted:
        seen += weight
        if seen >= target and (not bounds or bounds[-1] < key):
            bounds.append(key)
            if len(bounds) == num_partitions - 1:
                break
            target += step
    return bounds


def bounds_partition(num_partitions: int, _split: int, records: Iterator[tuple]) -> Iterator:
    """The bounds stage's only task: every sample in, ``(0, bounds)`` out."""
    yield (0, choose_bounds([summary for _, summary in records], num_partitions))


class RangeInput(Plan):
    """The parent's records unchanged, read by a range shuffle once its bounds are known.

    Computing a split first loads the bounds picked by the bounds stage into
    ``range_partitioner``: the very object the shuffle's map side partitions
    with, since the stage's RDD and its shuffle dependency are shipped together.
    """

    def __init__(self, parent: Node, bounds_rdd: Node, partitioner: RangePartitioner) -> None:
        shuffle_id = parent.ctx.new_shuffle_id()
        self.bounds_dep = ShuffleDependency(bounds_rdd, shuffle_id, HashPartitioner(1))
        super().__init__([OneToOneDependency(parent), self.bounds_dep])
        self.parent = parent
        self.range_partitioner = partitioner

    def compute_splits(self) -> list[Split]:
        return self.parent.splits()

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        partitioner = self.range_partitioner
        if partitioner.bounds is None:  # once per worker: tasks share the loaded stage
            bounds: list = []
            for batch in tctx.fetch_shuffle(self.bounds_dep.shuffle_id, 0):
                for _, bounds in batch:  # noqa: B007 - one record
                    pass
            partitioner.bounds = bounds
        return self.parent.iterator(split, tctx)

    def preferred_locations(self, split: Split) -> list[str]:
        return self.parent.preferred_locations(split)


def none_if_identity(key_func: Callable[[Any], Any]) -> Callable[[Any], Any] | None:
    return None if key_func is identity else key_func
