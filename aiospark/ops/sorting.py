"""Ordering: sorting by key with a range partitioner, top-k and ordered takes.

Mixed into ``aiospark.RDD``.  A sort samples the keys to pick range bounds;
that sampling is a stage of the sorted RDD's own lineage (see
``aiospark.plans.sort``), so ``sort_by_key`` stays a lazy transformation.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Callable, Iterator
from typing import Any, Self

from aiospark import offload
from aiospark.hashing import portable_hash
from aiospark.lineage import HashPartitioner, Node, RangePartitioner
from aiospark.plans.basic import MapPartitions
from aiospark.plans.sort import (
    RangeInput,
    bounds_partition,
    identity,
    none_if_identity,
    sample_cap,
    sample_keys,
    sort_partition,
)
from aiospark.validation import check_count


class SortOps:
    """Ordering."""

    def sort_by_key(
        self,
        ascending: bool = True,
        num_partitions: int | None = None,
        keyfunc: Callable[[Any], Any] = identity,
        *,
        key_func: Callable[[Any], Any] | None = None,
    ) -> Self:
        """Sort an RDD of ``(key, value)`` pairs by ``keyfunc(key)``, across partitions.

        Partition *i* holds smaller keys than partition *i + 1* (larger when
        ``ascending`` is false), and each partition is sorted, so ``collect``
        returns the records in order.  The keys are first sampled (a stage of
        the result's lineage, run by its first action) to pick
        ``num_partitions - 1`` range bounds (by default as many partitions as
        this RDD), then the records are shuffled with a ``RangePartitioner``,
        which stays the result's ``partitioner``.  Keys must be mutually
        comparable: a ``TypeError`` says so otherwise.

        Parameters
        ----------
        ascending : bool, default True
            Smallest key first; ``False`` for largest first.
        num_partitions : int or None, optional
            Partitions of the result (default: as many as this RDD).
        keyfunc : callable, default identity
            Sort by ``keyfunc(key)`` instead of the key (``str.lower``, say);
            PySpark's name.
        key_func : callable or None, optional
            The same, under aiospark's earlier name (keyword only).

        Returns
        -------
        RDD
            The same pairs, sorted by key across partitions, range-partitioned.
            An RDD without partitions is returned as it is.

        Raises
        ------
        TypeError
            When ``keyfunc`` is not callable, or both names are given.
        ValueError
            When ``num_partitions`` is not a positive int.

        See Also
        --------
        RDD.sort_by : Sorts records of any kind.
        RDD.repartition_and_sort_within_partitions : Sorts within each partition only.

        Examples
        --------
        >>> pairs = ctx.parallelize([("b", 1), ("a", 2), ("d", 3), ("c", 4)], 2)
        >>> await pairs.sort_by_key().collect()
        [('a', 2), ('b', 1), ('c', 4), ('d', 3)]
        >>> await pairs.sort_by_key(ascending=False, num_partitions=2).glom().collect()
        [[('d', 3)], [('c', 4), ('b', 1), ('a', 2)]]
        >>> words = ctx.parallelize([("b", 1), ("A", 2), ("a", 3)])
        >>> await words.sort_by_key(keyfunc=str.lower).keys().collect()
        ['A', 'a', 'b']
        """
        keyfunc = _sort_key(keyfunc, key_func)
        if num_partitions is None and self.get_num_partitions() == 0:
            return self
        n = self._reduce_partitions(num_partitions)
        return range_sorted(self, n, ascending, keyfunc)

    def sort_by(
        self,
        keyfunc: Callable[[Any], Any],
        ascending: bool = True,
        num_partitions: int | None = None,
    ) -> Self:
        """Sort the records by ``keyfunc(record)`` (``key_by``, ``sort_by_key``, ``values``).

        Parameters
        ----------
        keyfunc : callable
            ``keyfunc(record)`` gives the key to sort by; keys must be mutually
            comparable.
        ascending : bool, default True
            Smallest key first; ``False`` for largest first.
        num_partitions : int or None, optional
            Partitions of the result (default: as many as this RDD).

        Returns
        -------
        RDD
            The records, sorted across partitions.

        Raises
        ------
        TypeError
            When ``keyfunc`` is not callable.
        ValueError
            When ``num_partitions`` is not a positive int.

        Examples
        --------
        >>> rdd = ctx.parallelize([("a", 3), ("b", 1), ("c", 2)], 2)
        >>> await rdd.sort_by(lambda kv: kv[1]).collect()
        [('b', 1), ('c', 2), ('a', 3)]
        >>> await ctx.parallelize([3, 1, 2]).sort_by(lambda x: x, ascending=False).collect()
        [3, 2, 1]
        """
        if not callable(keyfunc):
            raise TypeError(f"keyfunc must be callable, got {keyfunc!r}")
        return self.key_by(keyfunc).sort_by_key(ascending, num_partitions).values()

    def repartition_and_sort_within_partitions(
        self,
        num_partitions: int | None = None,
        partition_func: Callable[[Any], int] = portable_hash,
        ascending: bool = True,
        keyfunc: Callable[[Any], Any] = identity,
        *,
        key_func: Callable[[Any], Any] | None = None,
    ) -> Self:
        """Partition pairs by ``partition_func(key) % num_partitions``, then sort each partition.

        Cheaper than a full sort when only the order within each partition matters
        (one shuffle, no sampling).

        Parameters
        ----------
        num_partitions : int or None, optional
            Partitions of the result (default: as many as this RDD).
        partition_func : callable, default portable_hash
            Maps a key to an int; the pair goes to partition
            ``partition_func(key) % num_partitions``.
        ascending : bool, default True
            Smallest key first within each partition; ``False`` for largest first.
        keyfunc : callable, default identity
            Sort by ``keyfunc(key)`` instead of the key (PySpark's name).
        key_func : callable or None, optional
            The same, under aiospark's earlier name (keyword only).

        Returns
        -------
        RDD
            The same pairs, hash-partitioned, each partition sorted by key.

        Raises
        ------
        TypeError
            When ``keyfunc`` is not callable, or both names are given.
        ValueError
            When ``num_partitions`` is not a positive int.

        Examples
        --------
        >>> rdd = ctx.parallelize([(0, 5), (3, 8), (2, 6), (0, 8), (3, 8), (1, 3)])
        >>> sorted_parts = rdd.repartition_and_sort_within_partitions(2, lambda k: k % 2)
        >>> await sorted_parts.glom().collect()
        [[(0, 5), (0, 8), (2, 6)], [(1, 3), (3, 8), (3, 8)]]
        """
        keyfunc = _sort_key(keyfunc, key_func)
        n = self._reduce_partitions(num_partitions)
        sort = functools.partial(sort_partition, keyfunc, not ascending)
        return self.partition_by(n, partition_func).map_partitions_with_index(sort, True)

    async def top(self, num: int, key: Callable[[Any], Any] | None = None) -> list[Any]:
        """The ``num`` largest records (by ``key``), largest first.

        Each partition keeps its own ``num`` largest; the driver merges them.

        Parameters
        ----------
        num : int
            How many records, ``>= 0`` (0 gives an empty list).
        key : callable or None, optional
            Compare ``key(record)`` instead of the records.

        Returns
        -------
        list
            Awaiting gives at most ``num`` records, largest first.

        Raises
        ------
        TypeError
            When ``num`` is not an int or ``key`` is not callable (and, from the
            job, when records are not mutually comparable).
        ValueError
            When ``num`` is negative.

        See Also
        --------
        RDD.take_ordered : The smallest records.

        Examples
        --------
        >>> await ctx.parallelize([10, 4, 2, 12, 3], 2).top(3)
        [12, 10, 4]
        >>> await ctx.parallelize([10, 4, 2, 12, 3]).top(2, key=str)
        [4, 3]
        """
        return await _select(self, heapq.nlargest, "top", num, key)

    async def take_ordered(
        self, num: int, key: Callable[[Any], Any] | None = None
    ) -> list[Any]:
        """The ``num`` smallest records (by ``key``), smallest first.

        Each partition keeps its own ``num`` smallest; the driver merges them.

        Parameters
        ----------
        num : int
            How many records, ``>= 0`` (0 gives an empty list).
        key : callable or None, optional
            Compare ``key(record)`` instead of the records.

        Returns
        -------
        list
            Awaiting gives at most ``num`` records, smallest first.

        Raises
        ------
        TypeError
            When ``num`` is not an int or ``key`` is not callable (and, from the
            job, when records are not mutually comparable).
        ValueError
            When ``num`` is negative.

        See Also
        --------
        RDD.top : The largest records.

        Examples
        --------
        >>> await ctx.parallelize([10, 1, 2, 9, 3, 4, 5, 6, 7], 2).take_ordered(4)
        [1, 2, 3, 4]
        >>> await ctx.parallelize([10, 1, 2, 9, 3], 2).take_ordered(2, key=lambda x: -x)
        [10, 9]
        """
        return await _select(self, heapq.nsmallest, "take_ordered", num, key)


async def _select(
    rdd: Node, pick: Callable[..., list], what: str, num: int, key: Callable | None
) -> list[Any]:
    check_count(num, what)
    if key is not None and not callable(key):
        raise TypeError(f"{what}: key must be callable, got {key!r}")
    if num == 0:
        return []
    partials = await rdd._run(functools.partial(_pick_partition, pick, what, num, key))
    return await offload.run_sized(
        sum(map(len, partials)), _merge_picked, pick, what, num, partials, key
    )


def _pick_partition(
    pick: Callable[..., list], what: str, num: int, key: Callable | None, _: int, it: Iterator
) -> list[Any]:
    return _pick(pick, what, num, it, key)


def _merge_picked(
    pick: Callable[..., list], what: str, num: int, partials: list[list], key: Callable | None
) -> list[Any]:
    """The first ``num`` of the partitions' picks, which ``pick`` returned sorted: a merge.

    Ties keep partition order, as ``pick`` over all the records would.
    """
    merged = heapq.merge(*partials, key=key, reverse=pick is heapq.nlargest)
    try:
        return list(itertools.islice(merged, num))
    except TypeError as exc:
        if "not supported between" not in str(exc):
            raise
        raise TypeError(f"{what}: records are not mutually comparable: {exc}") from None


def _pick(
    pick: Callable[..., list], what: str, num: int, records: Any, key: Callable | None
) -> list[Any]:
    try:
        return pick(num, records, key=key)
    except TypeError as exc:
        if "not supported between" not in str(exc):
            raise
        raise TypeError(f"{what}: records are not mutually comparable: {exc}") from None


def _sort_key(
    keyfunc: Callable[[Any], Any], key_func: Callable[[Any], Any] | None
) -> Callable[[Any], Any]:
    """The sort key function given as ``keyfunc`` (PySpark's name) or ``key_func``.

    >>> _sort_key(identity, str.lower) is str.lower
    True
    >>> _sort_key(str.lower, str.upper)
    Traceback (most recent call last):
    ...
    TypeError: give keyfunc or key_func, not both
    """
    name = "keyfunc"
    if key_func is not None:
        if keyfunc is not identity:
            raise TypeError("give keyfunc or key_func, not both")
        keyfunc, name = key_func, "key_func"
    if not callable(keyfunc):
        raise TypeError(f"{name} must be callable, got {keyfunc!r}")
    return keyfunc


def range_sorted(
    parent: SortOps, num_partitions: int, ascending: bool, key_func: Callable[[Any], Any]
) -> SortOps:
    """``parent`` sorted by key over ``num_partitions`` range partitions (``plans.sort``)."""
    sort = functools.partial(sort_partition, key_func, not ascending)
    if num_partitions == 1:
        partitioner = RangePartitioner(1, [], ascending, none_if_identity(key_func))
        if parent.get_num_partitions() == 1:
            return parent._derive(MapPartitions(parent, sort, partitioner=partitioner))
        return parent._shuffled(partitioner).map_partitions_with_index(sort, True)
    partitioner = RangePartitioner(num_partitions, None, ascending, none_if_identity(key_func))
    cap = sample_cap(num_partitions, parent.get_num_partitions())
    sampled = parent.map_partitions_with_index(functools.partial(sample_keys, cap, key_func))
    gathered = sampled._shuffled(HashPartitioner(1))
    bounds = gathered.map_partitions_with_index(
        functools.partial(bounds_partition, num_partitions)
    )
    ranged = parent._derive(RangeInput(parent, bounds, partitioner))._shuffled(partitioner)
    return ranged.map_partitions_with_index(sort, True)
