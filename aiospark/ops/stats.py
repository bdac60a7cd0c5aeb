"""Numeric and aggregate actions: statistics, histograms, tree aggregation.

Mixed into ``aiospark.RDD``.  Every action here makes one pass over each
partition on the workers and sends back a small summary (a ``StatCounter``, a
list of bucket counts, a HyperLogLog sketch); the driver only merges those.
"""

from __future__ import annotations

import bisect
import copy
import functools
import itertools
import math
import operator
from collections.abc import Callable, Iterator
from typing import Any

from aiospark.batching import batched
from aiospark.errors import reduce_in_driver
from aiospark.hyperloglog import HyperLogLog
from aiospark.lineage import Node
from aiospark.statcounter import StatCounter, real_array
from aiospark.validation import positive_int

#: Records handled per numpy batch by the partition functions below.
_BATCH = 4096
#: Edges and data beyond this magnitude take the exact Python path in ``histogram``.
_EXACT_FLOAT = 2.0**52


class StatOps:
    """Numeric and aggregate actions."""

    # -- aggregation --------------------------------------------------------------------

    async def aggregate(
        self,
        zero_value: Any,
        seq_op: Callable[[Any, Any], Any],
        comb_op: Callable[[Any, Any], Any],
    ) -> Any:
        """Fold each partition with ``seq_op`` from ``zero_value``, then merge with ``comb_op``.

        Each partition starts from its own copy of ``zero_value``, so both
        functions may update their first argument in place and return it.

        Parameters
        ----------
        zero_value : object
            The accumulator's start value (deep-copied for each partition, and for
            the driver's merge).
        seq_op : callable
            ``seq_op(acc, record)`` folds a record into an accumulator.
        comb_op : callable
            ``comb_op(acc1, acc2)`` merges two accumulators, in the driver.

        Returns
        -------
        object
            Awaiting gives the merged accumulator (``zero_value`` for an RDD
            without records).

        See Also
        --------
        RDD.tree_aggregate : Merges on the workers first.
        RDD.fold : When the accumulator has the records' type.
        RDD.aggregate_by_key : Per key.

        Examples
        --------
        >>> seq = lambda acc, x: (acc[0] + x, acc[1] + 1)
        >>> comb = lambda a, b: (a[0] + b[0], a[1] + b[1])
        >>> await ctx.parallelize([1, 2, 3, 4], 2).aggregate((0, 0), seq, comb)
        (10, 4)
        """
        partials = await self._run(functools.partial(_aggregate_partition, zero_value, seq_op))
        return reduce_in_driver(comb_op, partials, copy.deepcopy(zero_value))

    async def tree_aggregate(
        self,
        zero_value: Any,
        seq_op: Callable[[Any, Any], Any],
        comb_op: Callable[[Any, Any], Any],
        depth: int = 2,
    ) -> Any:
        """``aggregate``, combining the partial results in a tree of ``depth`` levels.

        As in Spark, when there are enough partitions to make it worthwhile
        the per-partition results are combined on the workers, through
        reduce-by-key shuffles onto fewer and fewer partitions (about
        ``n ** (1 / depth)`` times fewer per level), so the driver merges only
        a handful of values.  The result is the same as ``aggregate``'s.

        Parameters
        ----------
        zero_value : object
            The accumulator's start value (deep-copied where it is used).
        seq_op : callable
            ``seq_op(acc, record)`` folds a record into an accumulator.
        comb_op : callable
            ``comb_op(acc1, acc2)`` merges two accumulators; associative.
        depth : int, default 2
            Levels of the tree, ``>= 1``.

        Returns
        -------
        object
            Awaiting gives the merged accumulator (``zero_value`` for an RDD
            without partitions).

        Raises
        ------
        ValueError
            When ``depth`` is not an int ``>= 1``.

        Examples
        --------
        >>> add = operator.add
        >>> await ctx.parallelize(range(100), 16).tree_aggregate(0, add, add, depth=2)
        4950
        """
        _check_depth(depth)
        if self.get_num_partitions() == 0:
            return copy.deepcopy(zero_value)
        partial = self.map_partitions_with_index(
            functools.partial(_aggregate_partition_list, zero_value, seq_op)
        )
        values = await _reduce_splits(_tree_levels(partial, comb_op, depth), comb_op)
        return reduce_in_driver(comb_op, values)

    async def tree_reduce(self, f: Callable[[Any, Any], Any], depth: int = 2) -> Any:
        """``reduce``, combining the partial results in a tree of ``depth`` levels.

        See ``tree_aggregate``; an empty RDD raises ``ValueError``.

        Parameters
        ----------
        f : callable
            ``f(a, b)`` returns their combination; associative and commutative.
        depth : int, default 2
            Levels of the tree, ``>= 1``.

        Returns
        -------
        object
            Awaiting gives the combination of all records.

        Raises
        ------
        ValueError
            When ``depth`` is not an int ``>= 1``, or the RDD has no records.

        Examples
        --------
        >>> await ctx.parallelize(range(1, 11), 9).tree_reduce(operator.mul, depth=2)
        3628800
        """
        _check_depth(depth)
        partial = self.map_partitions_with_index(functools.partial(_reduce_partition, f))
        values = await _reduce_splits(_tree_levels(partial, f, depth), f)
        if not values:
            raise ValueError("Can not tree_reduce() an empty RDD")
        return reduce_in_driver(f, values)

    # -- order statistics -------------------------------------------------------------------

    async def max(self, key: Callable[[Any], Any] | None = None) -> Any:
        """The largest record (by ``key`` if given); ``ValueError`` when the RDD is empty.

        Parameters
        ----------
        key : callable or None, optional
            Compare ``key(record)`` instead of the records.

        Returns
        -------
        object
            Awaiting gives the largest record (the first of equal ones).

        Raises
        ------
        ValueError
            When the RDD has no records.

        Examples
        --------
        >>> await ctx.parallelize([1.0, 5.0, 43.0, 10.0]).max()
        43.0
        >>> await ctx.parallelize(["apple", "fig", "kiwi"]).max(key=len)
        'apple'
        """
        return await _extreme(self, max, key)

    async def min(self, key: Callable[[Any], Any] | None = None) -> Any:
        """The smallest record (by ``key`` if given); ``ValueError`` when the RDD is empty.

        Parameters
        ----------
        key : callable or None, optional
            Compare ``key(record)`` instead of the records.

        Returns
        -------
        object
            Awaiting gives the smallest record (the first of equal ones).

        Raises
        ------
        ValueError
            When the RDD has no records.

        Examples
        --------
        >>> await ctx.parallelize([2.0, 5.0, 43.0, 10.0]).min()
        2.0
        >>> await ctx.parallelize(["apple", "fig", "kiwi"]).min(key=len)
        'fig'
        """
        return await _extreme(self, min, key)

    # -- moments ---------------------------------------------------------------------------

    async def stats(self) -> StatCounter:
        """Count, mean, variance, min and max of the records, in one pass.

        Each partition is summarised by a ``StatCounter`` on its worker (numpy
        for batches of plain numbers); the driver merges the counters.

        Returns
        -------
        StatCounter
            Awaiting gives the statistics of the records, which must be numbers.

        See Also
        --------
        RDD.mean, RDD.variance, RDD.stdev, RDD.histogram

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 3]).stats()
        (count: 3, mean: 2.0, stdev: 0.816496580927726, max: 3.0, min: 1.0)
        """
        counters = await self._run(stats_partition)
        total = StatCounter()
        for counter in counters:
            total.merge_stats(counter)
        return total

    async def mean(self) -> float:
        """The mean of the records (NaN for an empty RDD).

        Returns
        -------
        float
            Awaiting gives the arithmetic mean.

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 3]).mean()
        2.0
        """
        return (await self.stats()).mean()

    async def variance(self) -> float:
        """The population variance of the records (divides by the count).

        Returns
        -------
        float
            Awaiting gives the variance (NaN for an empty RDD).

        See Also
        --------
        RDD.sample_variance : Divides by ``count - 1``.

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 3]).variance()
        0.6666666666666666
        """
        return (await self.stats()).variance()

    async def stdev(self) -> float:
        """The population standard deviation of the records.

        Returns
        -------
        float
            Awaiting gives the standard deviation (NaN for an empty RDD).

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 3]).stdev()
        0.816496580927726
        """
        return (await self.stats()).stdev()

    async def sample_variance(self) -> float:
        """The sample variance of the records (divides by ``count - 1``).

        Returns
        -------
        float
            Awaiting gives the sample variance (NaN below two records).

        See Also
        --------
        RDD.variance : Divides by the count.

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 3]).sample_variance()
        1.0
        """
        return (await self.stats()).sample_variance()

    async def sample_stdev(self) -> float:
        """The sample standard deviation of the records.

        Returns
        -------
        float
            Awaiting gives the sample standard deviation (NaN below two records).

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 3]).sample_stdev()
        1.0
        """
        return (await self.stats()).sample_stdev()

    # -- histograms ------------------------------------------------------------------------

    async def histogram(
        self, buckets: int | list[Any] | tuple
    ) -> tuple[list | tuple, list[int]]:
        """Count the records falling into buckets; returns ``(edges, counts)``.

        With an int, that many evenly spaced buckets span the records' min
        and max (the edges stay ints when the step is a whole number; when
        every record is equal there is one bucket).  With a sorted list of
        edges, bucket *i* is ``[edges[i], edges[i + 1])`` except the last,
        which also holds ``edges[-1]``; records outside are not counted.
        ``None`` and NaN records are ignored; an RDD with nothing else raises
        ``ValueError`` when the edges have to be computed.

        Parameters
        ----------
        buckets : int or list or tuple
            The number of even buckets, ``>= 1``, or the sorted, distinct bucket
            edges (at least two, neither ``None`` nor NaN; any mutually comparable
            values).

        Returns
        -------
        tuple of (list or tuple, list of int)
            Awaiting gives ``(edges, counts)``: the ``n + 1`` bucket edges and the
            ``n`` counts.  Given edges come back as given (the same list or
            tuple), as in PySpark.

        Raises
        ------
        TypeError
            When ``buckets`` is neither an int nor a list or tuple, or even
            buckets are asked of records that are not numbers.
        ValueError
            When there are fewer than one bucket or two edges, the edges are not
            sorted or repeat, or even buckets are asked of an RDD without numbers
            or with an infinite one.

        Examples
        --------
        >>> rdd = ctx.parallelize(range(51))
        >>> await rdd.histogram(2)
        ([0, 25, 50], [25, 26])
        >>> await rdd.histogram([0, 5, 25, 50])
        ([0, 5, 25, 50], [5, 20, 26])
        >>> await ctx.parallelize(["ab", "ac", "b", "bd", "ef"]).histogram(["a", "b", "c"])
        (['a', 'b', 'c'], [2, 2])
        >>> await rdd.histogram((0, 25, 50))
        ((0, 25, 50), [25, 26])
        """
        inc: Any = None
        if isinstance(buckets, bool):
            raise TypeError("buckets should be a list or tuple of edges, or an int")
        if isinstance(buckets, int):
            if buckets < 1:
                raise ValueError(f"number of buckets must be >= 1, got {buckets}")
            count, lo, hi = _merge_extremes(await self._run(_extremes_partition))
            if count == 0:
                raise ValueError("can not generate buckets from an empty RDD")
            if lo == hi or buckets == 1:
                return [lo, hi], [count]
            try:
                inc = (hi - lo) / buckets
            except TypeError:
                raise TypeError("can not generate buckets with non-numbers in the RDD") from None
            if math.isinf(inc):
                raise ValueError("can not generate buckets with an infinite value")
            # Keep the edges integral when the step is a whole number.
            whole = int(inc)
            inc = whole if whole * buckets == hi - lo else (hi - lo) * 1.0 / buckets
            edges = [i * inc + lo for i in range(buckets)]
            edges.append(hi)  # not lo + buckets * inc: no accumulated rounding error
            even = True
        elif isinstance(buckets, (list, tuple)):
            edges = list(buckets)
            _check_edges(edges)
            lo, hi = edges[0], edges[-1]
            even = False
            try:
                steps = [b - a for a, b in itertools.pairwise(edges)]
                even = max(steps) - min(steps) < 1e-10
            except TypeError:
                pass  # edges without '-' (strings...): bisect them
            if even:
                inc = (hi - lo) / (len(edges) - 1)
        else:
            raise TypeError(
                f"buckets should be a list or tuple of edges, or an int, not {buckets!r}"
            )
        fast = all(
            isinstance(e, (int, float)) and not isinstance(e, bool) and abs(e) < _EXACT_FLOAT
            for e in edges
        )
        count_partition = functools.partial(_histogram_partition, edges, even, inc, fast)
        counts = [0] * (len(edges) - 1)
        for part in await self._run(count_partition):
            counts = [a + b for a, b in zip(counts, part, strict=True)]
        return (buckets if isinstance(buckets, (list, tuple)) else edges), counts

    # -- cardinality -----------------------------------------------------------------------

    async def count_approx_distinct(self, relative_sd: float = 0.05) -> int:
        """Estimate the number of distinct records with a HyperLogLog sketch.

        ``relative_sd`` is the accuracy wanted (the standard error of the
        estimate relative to the truth); it sets the sketch's size to
        ``2 ** ceil(2 * log2(1.054 / relative_sd))`` registers, as in Spark,
        and must lie in ``[0.000017, 0.37]``.  Records are hashed with
        ``portable_hash`` (so they must be hashable), which every process
        agrees on; each partition builds a sketch and the driver merges them.

        Parameters
        ----------
        relative_sd : float, default 0.05
            The relative standard error wanted, in ``[0.000017, 0.37]``; smaller
            is more accurate and takes a bigger sketch.

        Returns
        -------
        int
            Awaiting gives the estimated number of distinct records.

        Raises
        ------
        TypeError
            When ``relative_sd`` is not a number (and, from the job, when a record
            is unhashable).
        ValueError
            When ``relative_sd`` is out of range.

        See Also
        --------
        RDD.distinct : The exact distinct records.

        Examples
        --------
        >>> rdd = ctx.parallelize(range(1000)).map(str)
        >>> 900 < await rdd.count_approx_distinct() < 1100
        True
        >>> await ctx.parallelize([1, 1, 2, 2, 3, 3]).count_approx_distinct()
        3
        """
        precision = HyperLogLog.precision_for(relative_sd)
        sketches = await self._run(functools.partial(_sketch_partition, precision))
        total = HyperLogLog(precision)
        for sketch in sketches:
            total.merge(sketch)
        return round(total.estimate())


def _check_depth(depth: int) -> None:
    positive_int(depth, "depth")


def _aggregate_partition(zero_value: Any, seq_op: Callable, _: int, it: Iterator[Any]) -> Any:
    return functools.reduce(seq_op, it, copy.deepcopy(zero_value))


def _aggregate_partition_list(
    zero_value: Any, seq_op: Callable, _: int, it: Iterator[Any]
) -> list[Any]:
    return [functools.reduce(seq_op, it, copy.deepcopy(zero_value))]


def _reduce_partition(f: Callable, _: int, it: Iterator[Any]) -> list[Any]:
    first = next(it, _NOTHING)
    return [] if first is _NOTHING else [functools.reduce(f, it, first)]


_NOTHING = object()


async def _reduce_splits(rdd: Node, f: Callable) -> list[Any]:
    """Each split of ``rdd`` reduced with ``f`` on its worker (empty splits give nothing)."""
    parts = await rdd._run(functools.partial(_reduce_partition, f))
    return [value for part in parts for value in part]


def _tree_levels(partial: Node, comb_op: Callable, depth: int) -> Node:
    """Add Spark's intermediate tree levels above ``partial`` (at most one value per split).

    Each level sends the value of split *i* to split ``i % count`` of a
    reduce-by-key shuffle, which combines them on the workers.  A level is
    added only while it saves work: while ``n > scale + n / scale``.
    """
    n: float = partial.get_num_partitions()
    scale = max(math.ceil(n ** (1.0 / depth)), 2)
    while n > scale + n / scale:
        n /= scale
        count = int(n)
        partial = (
            partial.map_partitions_with_index(functools.partial(_key_by_split, count))
            .reduce_by_key(comb_op, count)
            .values()
        )
    return partial


def _key_by_split(count: int, index: int, it: Iterator[Any]) -> Iterator[tuple[int, Any]]:
    key = index % count
    return ((key, value) for value in it)


async def _extreme(rdd: Node, pick: Callable, key: Callable | None) -> Any:
    """``max``/``min`` over the RDD: picked per partition, then among the partials."""
    options = {} if key is None else {"key": key}
    parts = await rdd._run(functools.partial(_extreme_partition, pick, options))
    found = [value for part in parts for value in part]
    if not found:
        raise ValueError(f"{pick.__name__}() of an empty RDD")
    return pick(found, **options)


def _extreme_partition(pick: Callable, options: dict, _: int, it: Iterator[Any]) -> list[Any]:
    value = pick(it, default=_NOTHING, **options)
    return [] if value is _NOTHING else [value]


def stats_partition(_: int, it: Iterator[Any]) -> StatCounter:
    """A partition's ``StatCounter`` (on a worker): for ``stats`` and ``mean_approx``."""
    return StatCounter(it)


_SIZED_ITERATORS = (type(iter([])), type(iter(())), type(iter(range(0))))


def count_partition(_: int, it: Iterator[Any]) -> int:
    """A partition's number of records (on a worker): for ``count`` and ``count_approx``."""
    if type(it) in _SIZED_ITERATORS:  # e.g. a cached split: no need to walk it
        return operator.length_hint(it)
    n = 0
    for n, _record in enumerate(it, 1):  # noqa: B007 - counting is the point
        pass
    return n


# -- histogram ----------------------------------------------------------------------------


def _check_edges(edges: list[Any]) -> None:
    if len(edges) < 2:
        raise ValueError("buckets should have at least two edges")
    if any(e is None or (isinstance(e, float) and math.isnan(e)) for e in edges):
        raise ValueError("buckets can not contain None or NaN")
    if sorted(edges) != edges:
        raise ValueError("buckets should be sorted")
    if any(a == b for a, b in itertools.pairwise(edges)):
        raise ValueError("buckets should not contain duplicated values")


def _countable(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and x != x)


def _extremes_partition(_: int, it: Iterator[Any]) -> tuple[int, Any, Any]:
    """``(count, min, max)`` of the records other than None and NaN (``(0, None, None)`` if none).

    Like ``min``/``max``, the first of equal extremes wins, and the original
    objects are returned (an int stays an int).
    """
    count: int = 0
    lo: Any = None
    hi: Any = None
    for batch in batched(it, _BATCH):
        arr = real_array(batch)
        if arr is not None:
            import numpy as np

            valid = np.flatnonzero(~np.isnan(arr))
            if len(valid) == 0:
                continue
            values = arr[valid]
            found = len(valid)
            b_lo, b_hi = batch[valid[values.argmin()]], batch[valid[values.argmax()]]
        else:
            kept = [x for x in batch if _countable(x)]
            if not kept:
                continue
            found = len(kept)
            b_lo, b_hi = min(kept), max(kept)
        if count == 0 or b_lo < lo:
            lo = b_lo
        if count == 0 or b_hi > hi:
            hi = b_hi
        count += found
    return count, lo, hi


def _merge_extremes(parts: list[tuple[int, Any, Any]]) -> tuple[int, Any, Any]:
    count, lo, hi = 0, None, None
    for n, b_lo, b_hi in parts:
        if n == 0:
            continue
        if count == 0 or b_lo < lo:
            lo = b_lo
        if count == 0 or b_hi > hi:
            hi = b_hi
        count += n
    return count, lo, hi


def _histogram_partition(
    edges: list[Any], even: bool, inc: Any, fast: bool, _: int, it: Iterator[Any]
) -> list[int]:
    """Bucket counts of one partition (the last bucket includes the last edge)."""
    lo, hi = edges[0], edges[-1]
    counts = [0] * len(edges)  # one more than needed: records equal to the last edge
    for batch in batched(it, _BATCH):
        arr = real_array(batch) if fast else None
        if arr is not None:
            import numpy as np

            arr = arr[(arr >= lo) & (arr <= hi)]  # NaN compares false: dropped
            if even:
                index = ((arr - lo) / inc).astype(np.int64)
            else:
                index = np.searchsorted(np.array(edges, dtype=np.float64), arr, "right") - 1
            np.minimum(index, len(edges) - 1, out=index)
            for i, n in enumerate(np.bincount(index, minlength=len(edges)).tolist()):
                counts[i] += n
            continue
        for x in batch:
            if not _countable(x) or x > hi or x < lo:
                continue
            i = int((x - lo) / inc) if even else bisect.bisect_right(edges, x) - 1
            counts[min(i, len(edges) - 1)] += 1
    last = counts.pop()
    counts[-1] += last
    return counts


def _sketch_partition(precision: int, _: int, it: Iterator[Any]) -> HyperLogLog:
    sketch = HyperLogLog(precision)
    sketch.add(it)
    return sketch


