"""Key-value operations: combining, grouping and partitioning by key, by-key actions.

Mixed into ``aiospark.RDD``; every method expects an RDD of ``(key, value)`` pairs
(``group_by`` and ``count_by_value`` take any records).  The operations on several
RDDs by key (``cogroup``, the joins, ``subtract_by_key``) are ``ops.joins``'.
"""

from __future__ import annotations

import copy
import functools
import operator
from collections import Counter, _count_elements  # type: ignore[attr-defined]
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any, Self

from aiospark import offload
from aiospark.hashing import named_hash_failure, portable_hash
from aiospark.lineage import COMBINING_LOOPS, Aggregator, HashPartitioner
from aiospark.pair_errors import pair_error, raised_here, raised_in

#: Zero values of these types are immutable, so they are shared instead of deep-copied.
_IMMUTABLE = (int, float, complex, bool, str, bytes, type(None), Decimal, Fraction)


class PairOps:
    """Operations on RDDs of ``(key, value)`` pairs."""

    def combine_by_key(
        self,
        create_combiner: Callable[[Any], Any],
        merge_value: Callable[[Any, Any], Any],
        merge_combiners: Callable[[Any, Any], Any],
        num_partitions: int | None = None,
        partition_func: Callable[[Any], int] = portable_hash,
    ) -> Self:
        """Combine the values of each key with a ``(create, merge_value, merge_combiners)`` triple.

        Values are combined on the map side before the shuffle.

        Parameters
        ----------
        create_combiner : callable
            ``create_combiner(v)`` turns a key's first value (in a partition) into a
            combiner.
        merge_value : callable
            ``merge_value(c, v)`` adds a value to a combiner; it may change and
            return ``c``.
        merge_combiners : callable
            ``merge_combiners(c1, c2)`` merges two combiners (built on different
            partitions); it may change and return ``c1``.
        num_partitions : int or None, optional
            Partitions of the result (default: as many as this RDD).
        partition_func : callable, default portable_hash
            Maps a key to an int; the key goes to partition
            ``partition_func(key) % num_partitions``.

        Returns
        -------
        RDD
            One ``(key, combiner)`` pair per distinct key, hash-partitioned.  No
            shuffle happens when this RDD is already partitioned that way.

        Raises
        ------
        ValueError
            When ``num_partitions`` is not a positive int.

        See Also
        --------
        RDD.reduce_by_key, RDD.aggregate_by_key, RDD.group_by_key

        Examples
        --------
        >>> rdd = ctx.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> sums = rdd.combine_by_key(lambda v: [v], lambda c, v: c + [v], operator.add)
        >>> sorted(await sums.collect())
        [('a', [1, 3]), ('b', [2])]
        """
        aggregator = Aggregator(create_combiner, merge_value, merge_combiners)
        return self._combine(aggregator, num_partitions, partition_func, True, "combine_by_key")

    def _combine(
        self,
        aggregator: Aggregator,
        num_partitions: int | None,
        partition_func: Callable[[Any], int],
        map_side: bool,
        op: str,
    ) -> Self:
        partitioner = HashPartitioner(self._reduce_partitions(num_partitions), partition_func)
        if self.partitioner == partitioner:
            # Already partitioned this way: combine inside each partition, no shuffle.
            return self.map_partitions(lambda it: iter(aggregator.combine_values(it).items()), True)
        return self._shuffled(partitioner, aggregator, map_side_combine=map_side, op=op)

    def reduce_by_key(
        self,
        func: Callable[[Any, Any], Any],
        num_partitions: int | None = None,
        partition_func: Callable[[Any], int] = portable_hash,
    ) -> Self:
        """Merge the values of each key with an associative ``func`` (combined map-side).

        The result has ``num_partitions`` partitions (default: as many as this RDD).

        Parameters
        ----------
        func : callable
            ``func(v1, v2)`` returns their combination; associative and
            commutative.
        num_partitions : int or None, optional
            Partitions of the result (default: as many as this RDD).
        partition_func : callable, default portable_hash
            Maps a key to an int; the key goes to partition
            ``partition_func(key) % num_partitions``.

        Returns
        -------
        RDD
            One ``(key, reduced value)`` pair per distinct key, hash-partitioned.

        Raises
        ------
        ValueError
            When ``num_partitions`` is not a positive int.

        See Also
        --------
        RDD.reduce_by_key_locally : The result as a dict in the driver.

        Examples
        --------
        >>> pairs = ctx.parallelize([("a", 1), ("b", 1), ("a", 1)], 2)
        >>> sorted(await pairs.reduce_by_key(operator.add).collect())
        [('a', 2), ('b', 1)]
        """
        aggregator = Aggregator(_identity, func, func, identity_create=True)
        return self._combine(aggregator, num_partitions, partition_func, True, "reduce_by_key")

    def group_by_key(
        self,
        num_partitions: int | None = None,
        partition_func: Callable[[Any], int] = portable_hash,
    ) -> Self:
        """Group the values of each key into a list.

        Prefer ``reduce_by_key`` for aggregations: grouping ships every value.

        Parameters
        ----------
        num_partitions : int or None, optional
            Partitions of the result (default: as many as this RDD).
        partition_func : callable, default portable_hash
            Maps a key to an int; the key goes to partition
            ``partition_func(key) % num_partitions``.

        Returns
        -------
        RDD
            One ``(key, list of values)`` pair per distinct key, hash-partitioned;
            the order of a key's values is not defined.

        Raises
        ------
        ValueError
            When ``num_partitions`` is not a positive int.

        Examples
        --------
        >>> rdd = ctx.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> sorted(await rdd.group_by_key().map_values(sorted).collect())
        [('a', [1, 3]), ('b', [2])]
        """
        aggregator = Aggregator(_list_create, _list_append, _list_extend)
        return self._combine(aggregator, num_partitions, partition_func, False, "group_by_key")

    def aggregate_by_key(
        self,
        zero_value: Any,
        seq_func: Callable[[Any, Any], Any],
        comb_func: Callable[[Any, Any], Any],
        num_partitions: int | None = None,
        partition_func: Callable[[Any], int] = portable_hash,
    ) -> Self:
        """Aggregate the values of each key into an accumulator of any type.

        ``seq_func`` folds values into an accumulator that starts from a copy of
        ``zero_value``, ``comb_func`` merges accumulators.  Each key's
        accumulator starts from its own deep copy of ``zero_value``, so a
        mutable zero (a list, a set) may be modified in place.

        Parameters
        ----------
        zero_value : object
            The accumulator each key starts from (in each partition).
        seq_func : callable
            ``seq_func(acc, v)`` folds a value into an accumulator; it may change
            and return ``acc``.
        comb_func : callable
            ``comb_func(acc1, acc2)`` merges two accumulators.
        num_partitions : int or None, optional
            Partitions of the result (default: as many as this RDD).
        partition_func : callable, default portable_hash
            Maps a key to an int; the key goes to partition
            ``partition_func(key) % num_partitions``.

        Returns
        -------
        RDD
            One ``(key, accumulator)`` pair per distinct key, hash-partitioned.

        Raises
        ------
        TypeError
            When ``seq_func``, ``comb_func`` or ``partition_func`` is not callable.
        ValueError
            When ``num_partitions`` is not a positive int.

        See Also
        --------
        RDD.fold_by_key : One function for both.
        RDD.combine_by_key : The general form.

        Examples
        --------
        >>> rdd = ctx.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> sums_counts = rdd.aggregate_by_key(
        ...     (0, 0), lambda acc, v: (acc[0] + v, acc[1] + 1),
        ...     lambda x, y: (x[0] + y[0], x[1] + y[1]))
        >>> sorted(await sums_counts.collect())
        [('a', (4, 2)), ('b', (2, 1))]
        """
        _check_callable(seq_func=seq_func, comb_func=comb_func, partition_func=partition_func)
        return self._aggregate(
            zero_value, seq_func, comb_func, num_partitions, partition_func, "aggregate_by_key"
        )

    def _aggregate(
        self,
        zero_value: Any,
        seq_func: Callable[[Any, Any], Any],
        comb_func: Callable[[Any, Any], Any],
        num_partitions: int | None,
        partition_func: Callable[[Any], int],
        op: str,
    ) -> Self:
        zero = _zero_factory(zero_value)

        def create(value: Any) -> Any:
            return seq_func(zero(), value)

        aggregator = Aggregator(create, seq_func, comb_func)
        return self._combine(aggregator, num_partitions, partition_func, True, op)

    def fold_by_key(
        self,
        zero_value: Any,
        func: Callable[[Any, Any], Any],
        num_partitions: int | None = None,
        partition_func: Callable[[Any], int] = portable_hash,
    ) -> Self:
        """Merge the values of each key with ``func``, starting from a copy of ``zero_value``.

        The zero may be folded in more than once per key (once per map-side
        partition), so it should be neutral for ``func``.

        Parameters
        ----------
        zero_value : object
            The value each key's fold starts from, in each partition (deep-copied,
            unless immutable); neutral for ``func``.
        func : callable
            ``func(acc, v)`` returns their combination; associative.
        num_partitions : int or None, optional
            Partitions of the result (default: as many as this RDD).
        partition_func : callable, default portable_hash
            Maps a key to an int; the key goes to partition
            ``partition_func(key) % num_partitions``.

        Returns
        -------
        RDD
            One ``(key, folded value)`` pair per distinct key, hash-partitioned.

        Raises
        ------
        TypeError
            When ``func`` is not callable.
        ValueError
            When ``num_partitions`` is not a positive int.

        Examples
        --------
        >>> rdd = ctx.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> sorted(await rdd.fold_by_key(0, operator.add).collect())
        [('a', 4), ('b', 2)]
        """
        _check_callable(func=func, partition_func=partition_func)
        return self._aggregate(
            zero_value, func, func, num_partitions, partition_func, "fold_by_key"
        )

    def group_by(
        self,
        f: Callable[[Any], Any],
        num_partitions: int | None = None,
        partition_func: Callable[[Any], int] = portable_hash,
    ) -> Self:
        """Group the records by ``f(record)``: ``(key, [records...])`` pairs.

        Parameters
        ----------
        f : callable
            ``f(record)`` returns the record's key.
        num_partitions : int or None, optional
            Partitions of the result (default: as many as this RDD).
        partition_func : callable, default portable_hash
            Maps a key to an int; the key goes to partition
            ``partition_func(key) % num_partitions``.

        Returns
        -------
        RDD
            One ``(key, list of records)`` pair per distinct key; the order within
            a list is not defined.

        Raises
        ------
        TypeError
            When ``f`` or ``partition_func`` is not callable.
        ValueError
            When ``num_partitions`` is not a positive int.

        Examples
        --------
        >>> rdd = ctx.parallelize([1, 1, 2, 3, 5, 8], 2)
        >>> sorted(await rdd.group_by(lambda x: x % 2).map_values(sorted).collect())
        [(0, [2, 8]), (1, [1, 1, 3, 5])]
        """
        _check_callable(f=f, partition_func=partition_func)
        return self.map(lambda x: (f(x), x)).group_by_key(num_partitions, partition_func)

    def partition_by(
        self, num_partitions: int, partition_func: Callable[[Any], int] = portable_hash
    ) -> Self:
        """Redistribute a pair RDD so that ``partition_func(key) % num_partitions`` picks the split.

        Parameters
        ----------
        num_partitions : int
            Partitions of the result.
        partition_func : callable, default portable_hash
            Maps a key to an int; the key goes to partition
            ``partition_func(key) % num_partitions``.

        Returns
        -------
        RDD
            The same pairs, hash-partitioned; ``self`` when it is already
            partitioned that way.

        Raises
        ------
        ValueError
            When ``num_partitions`` is not a positive int.

        Examples
        --------
        >>> rdd = ctx.parallelize([(1, "a"), (2, "b"), (3, "c"), (4, "d")], 1)
        >>> await rdd.partition_by(2).glom().collect()
        [[(2, 'b'), (4, 'd')], [(1, 'a'), (3, 'c')]]
        """
        partitioner = HashPartitioner(self._reduce_partitions(num_partitions), partition_func)
        if self.partitioner == partitioner:
            return self
        return self._shuffled(partitioner, op="partition_by")


    # -- actions ----------------------------------------------------------------

    async def count_by_key(self) -> dict:
        """The number of pairs per key, as a dict.

        Returns
        -------
        dict
            Awaiting gives ``{key: number of pairs}``.

        Raises
        ------
        TypeError
            When a key is unhashable.

        Examples
        --------
        >>> await ctx.parallelize([("a", 1), ("b", 1), ("a", 1)]).count_by_key()
        {'a': 2, 'b': 1}
        """
        return await _merged_counts(await self._run(_count_keys))

    async def count_by_value(self) -> dict:
        """How many times each distinct record occurs, as a dict.

        Returns
        -------
        dict
            Awaiting gives ``{record: number of occurrences}``.

        Raises
        ------
        TypeError
            When a record is unhashable.

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 1, 2, 2], 2).count_by_value()
        {1: 2, 2: 3}
        """
        return await _merged_counts(await self._run(_count_values))

    async def collect_as_map(self) -> dict:
        """The pairs as a dict; for a repeated key the last value (in partition order) wins.

        Returns
        -------
        dict
            Awaiting gives ``{key: value}``.

        Raises
        ------
        TypeError
            When a key is unhashable.

        Examples
        --------
        >>> await ctx.parallelize([(1, 2), (3, 4), (1, 5)]).collect_as_map()
        {1: 5, 3: 4}
        """
        return await offload.merge_dict_parts(await self._run(_partition_map))

    async def reduce_by_key_locally(self, func: Callable[[Any, Any], Any]) -> dict:
        """Merge the values of each key with an associative ``func`` into a dict in the driver.

        Each partition is reduced on its worker; the driver merges the partial dicts.

        Parameters
        ----------
        func : callable
            ``func(v1, v2)`` returns their combination; associative and
            commutative.

        Returns
        -------
        dict
            Awaiting gives ``{key: reduced value}``.

        Raises
        ------
        TypeError
            When ``func`` is not callable, or a key is unhashable.

        See Also
        --------
        RDD.reduce_by_key : The result as an RDD.

        Examples
        --------
        >>> pairs = ctx.parallelize([("a", 1), ("b", 1), ("a", 1)], 2)
        >>> sorted((await pairs.reduce_by_key_locally(operator.add)).items())
        [('a', 2), ('b', 1)]
        """
        _check_callable(func=func)
        aggregator = Aggregator(_identity, func, func, identity_create=True)
        parts = await self._run(functools.partial(_reduce_partition_locally, aggregator))
        return await offload.run_sized(sum(map(len, parts)), _combine_parts, aggregator, parts)

    async def lookup(self, key: Any) -> list:
        """The values under ``key``.

        When the RDD has a partitioner, only the partition holding ``key`` is read.

        Parameters
        ----------
        key : object
            The key, compared with ``==``.

        Returns
        -------
        list
            Awaiting gives the values of the pairs with that key, in partition
            order (empty when there is none).

        Examples
        --------
        >>> rdd = ctx.parallelize([("a", 1), ("b", 2), ("a", 3)]).partition_by(4)
        >>> await rdd.lookup("a"), await rdd.lookup("z")
        ([1, 3], [])
        """
        find = functools.partial(_lookup_partition, key)
        index = None
        if self.partitioner is not None:
            try:
                index = self.partitioner.partition(key)
            except RuntimeError:
                index = None  # it cannot place keys in the driver (a sort's range bounds)
        if index is None:
            parts = await self._run(find)
        else:
            parts = await self.ctx.jobs.run(self, find, [index])
        return await offload.concat_parts(parts)


def _check_callable(**funcs: Any) -> None:
    for name, func in funcs.items():
        if not callable(func):
            raise TypeError(f"{name} must be callable, got {type(func).__name__}")


def _zero_factory(zero_value: Any) -> Callable[[], Any]:
    """A function returning a fresh copy of ``zero_value`` (or the value, when immutable)."""
    if type(zero_value) in _IMMUTABLE:
        return lambda: zero_value
    return functools.partial(copy.deepcopy, zero_value)


def _count_keys(_: int, it: Iterator[Any]) -> Counter:
    counts: Counter = Counter()
    try:
        _count_elements(counts, map(operator.itemgetter(0), it))  # Counter(...)'s own loop
    except (TypeError, IndexError) as exc:
        clear = pair_error("count_by_key", exc, how="index") if raised_here(exc) else None
        clear = clear or named_hash_failure(exc, "count_by_key keys")
        if clear is None:
            raise
        raise clear from exc
    return counts


def _count_values(_: int, it: Iterator[Any]) -> Counter:
    try:
        return Counter(it)
    except TypeError as exc:
        clear = named_hash_failure(exc, "count_by_value records")
        if clear is None:
            raise
        raise clear from exc


async def _merged_counts(parts: list[Counter]) -> dict:
    return await offload.run_sized(sum(map(len, parts)), _merge_counts, parts)


def _merge_counts(parts: list[Counter]) -> dict:
    """The counts of every part added up (a Python loop: the helper thread shares the GIL)."""
    total: dict = {}
    get = total.get
    for part in parts:
        for key, count in part.items():
            total[key] = count + get(key, 0)
    return total


def _combine_parts(aggregator: Aggregator, parts: list[dict]) -> dict:
    merged: dict = {}
    for part in parts:
        aggregator.combine_combiners(iter(part.items()), merged)
    return merged


def _partition_map(_: int, it: Iterator[Any]) -> dict:
    try:
        return dict(it)
    except (TypeError, ValueError) as exc:
        clear = pair_error("collect_as_map", exc, how="dict") if raised_here(exc) else None
        clear = clear or named_hash_failure(exc, "collect_as_map keys")
        if clear is None:
            raise
        raise clear from exc


def _reduce_partition_locally(aggregator: Aggregator, _: int, it: Iterator[Any]) -> dict:
    try:
        return aggregator.combine_values(it)
    except (TypeError, ValueError, IndexError) as exc:
        clear = None
        if raised_in(exc, *COMBINING_LOOPS):
            clear = pair_error("reduce_by_key_locally", exc)
        if clear is None and isinstance(exc, TypeError):
            clear = named_hash_failure(exc, "reduce_by_key_locally keys")
        if clear is None:
            raise
        raise clear from exc


def _lookup_partition(key: Any, _: int, it: Iterator[Any]) -> list:
    try:
        return [v for k, v in it if k == key]
    except (TypeError, ValueError) as exc:
        # Raised by the comprehension's own unpacking (its frame, if it has one, is the
        # last): not by the iterator it reads, whose frames would come after.
        clear = pair_error("lookup", exc, how="unpack") if raised_here(exc, 1) else None
        if clear is None:
            raise
        raise clear from exc


def _identity(x: Any) -> Any:
    return x


def _list_create(v: Any) -> list:
    return [v]


def _list_append(c: list, v: Any) -> list:
    c.append(v)
    return c


def _list_extend(c: list, other: list) -> list:
    c.extend(other)
    return c
