"""Set-like and structural operations: union, distinct, zip, cartesian, coalesce.

Mixed into ``aiospark.RDD``.  The plans they build live in ``aiospark.plans.sets``.
"""

from __future__ import annotations

import collections
import functools
import itertools
import operator
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Self

from aiospark.batching import batched
from aiospark.hashing import named_hash_failure
from aiospark.lineage import HashPartitioner
from aiospark.plans.piped import Piped
from aiospark.plans.sets import (
    Cartesian,
    Coalesced,
    Empty,
    RoundRobinPartitioner,
    Zipped,
    ZipWithIndex,
    count_pair,
    union_plan,
)
from aiospark.sizeof import SizeTracker
from aiospark.spill import ExternalMap, task_memory
from aiospark.validation import positive_int


class SetOps:
    """Set-like and structural operations."""

    def _check_other(self, other: Any, op: str) -> None:
        if not isinstance(other, SetOps):
            raise TypeError(f"{op}() takes an RDD, got a {type(other).__name__}")
        if other.ctx is not self.ctx:
            raise ValueError(f"{op}(): {other!r} belongs to another Context")

    # -- union and distinct -----------------------------------------------------------

    def union(self, other: Self) -> Self:
        """The records of this RDD followed by those of ``other`` (duplicates kept).

        The result has the partitions of both.  When both have the same
        partitioner, partition *i* holds both partitions *i* instead and the
        partitioner is kept.

        Parameters
        ----------
        other : RDD
            An RDD of the same context.

        Returns
        -------
        RDD
            The records of both RDDs (no shuffle).

        Raises
        ------
        TypeError
            When ``other`` is not an RDD.
        ValueError
            When ``other`` belongs to another context.

        See Also
        --------
        Context.union : The union of several RDDs.

        Examples
        --------
        >>> rdd = ctx.parallelize([1, 1, 2], 2)
        >>> await rdd.union(ctx.parallelize([3], 1)).glom().collect()
        [[1], [1, 2], [3]]
        >>> pairs = ctx.parallelize([(1, "a"), (2, "b")]).partition_by(2)
        >>> both = pairs.union(pairs.map_values(str.upper))
        >>> both.get_num_partitions(), both.partitioner == pairs.partitioner
        (2, True)
        """
        self._check_other(other, "union")
        return self._derive(union_plan([self, other]))

    def __add__(self, other: Any) -> Self:
        """``rdd + other`` is ``rdd.union(other)``, as in PySpark.

        Adding anything but an RDD is a ``TypeError`` naming its type.

        Examples
        --------
        >>> await (ctx.parallelize([1, 2]) + ctx.parallelize([3])).collect()
        [1, 2, 3]
        >>> ctx.parallelize([1]) + [2]
        Traceback (most recent call last):
        ...
        TypeError: unsupported operand type(s) for +: 'RDD' and 'list'
        """
        if not isinstance(other, SetOps):
            return NotImplemented
        return self.union(other)

    def distinct(self, num_partitions: int | None = None) -> Self:
        """The distinct records (which must be hashable), deduplicated on the map side too.

        The result has ``num_partitions`` partitions (default: as many as this RDD).

        Parameters
        ----------
        num_partitions : int or None, optional
            Partitions of the result (default: as many as this RDD).

        Returns
        -------
        RDD
            Each distinct record once, in no particular order (a shuffle).  The job
            fails with ``TypeError`` on an unhashable record.

        Raises
        ------
        ValueError
            When ``num_partitions`` is not a positive int.

        Examples
        --------
        >>> sorted(await ctx.parallelize([1, 1, 2, 3, 3, 3], 3).distinct().collect())
        [1, 2, 3]
        """
        n = self._reduce_partitions(num_partitions)
        if n == 0:
            return self._derive(Empty())
        keyed = self.map_partitions_with_index(functools.partial(_tagged_unique, None, "distinct"))
        shuffled = keyed._shuffled(HashPartitioner(n))
        return shuffled.map_partitions_with_index(_distinct_keys)

    def intersection(self, other: Self) -> Self:
        """The distinct records found in both RDDs (records must be hashable).

        Like PySpark, the result has as many partitions as the two inputs together.

        Parameters
        ----------
        other : RDD
            An RDD of the same context.

        Returns
        -------
        RDD
            Each record found in both RDDs, once, in no particular order.

        Raises
        ------
        TypeError
            When ``other`` is not an RDD.
        ValueError
            When ``other`` belongs to another context.

        See Also
        --------
        RDD.subtract : The records not in the other.

        Examples
        --------
        >>> left = ctx.parallelize([1, 10, 2, 3, 4, 5, 1])
        >>> sorted(await left.intersection(ctx.parallelize([1, 6, 2, 3, 7, 8])).collect())
        [1, 2, 3]
        """
        self._check_other(other, "intersection")
        op = "intersection"
        left = self.map_partitions_with_index(functools.partial(_tagged_unique, 1, op))
        right = other.map_partitions_with_index(functools.partial(_tagged_unique, 2, op))
        return _shuffle_pairs(left.union(right), None, _intersect_reduce)

    def subtract(self, other: Self, num_partitions: int | None = None) -> Self:
        """The records of this RDD that are not in ``other``, duplicates kept (records hashable).

        The result has ``num_partitions`` partitions (default: as many as the
        two inputs together, like PySpark).

        Parameters
        ----------
        other : RDD
            The RDD whose records are removed, of the same context.
        num_partitions : int or None, optional
            Partitions of the result.

        Returns
        -------
        RDD
            Every occurrence of each record of this RDD that ``other`` lacks, in no
            particular order.

        Raises
        ------
        TypeError
            When ``other`` is not an RDD.
        ValueError
            When ``other`` belongs to another context, or ``num_partitions`` is
            not a positive int.

        See Also
        --------
        RDD.subtract_by_key : Compares keys only.

        Examples
        --------
        >>> x = ctx.parallelize([("a", 1), ("b", 4), ("b", 4), ("a", 3)])
        >>> sorted(await x.subtract(ctx.parallelize([("a", 3), ("c", None)])).collect())
        [('a', 1), ('b', 4), ('b', 4)]
        """
        self._check_other(other, "subtract")
        left = self.map_partitions_with_index(_counted)
        right = other.map_partitions_with_index(functools.partial(_tagged_unique, 0, "subtract"))
        return _shuffle_pairs(left.union(right), num_partitions, _subtract_reduce)

    # -- pairing ----------------------------------------------------------------------

    def cartesian(self, other: Self) -> Self:
        """Every pair ``(x, y)`` of a record of this RDD and a record of ``other``.

        One partition per pair of partitions (left-major), as in PySpark.

        Parameters
        ----------
        other : RDD
            An RDD of the same context.

        Returns
        -------
        RDD
            ``len(self) * len(other)`` pairs, in
            ``self.get_num_partitions() * other.get_num_partitions()`` partitions.

        Raises
        ------
        TypeError
            When ``other`` is not an RDD.
        ValueError
            When ``other`` belongs to another context.

        Examples
        --------
        >>> rdd = ctx.parallelize([1, 2], 2)
        >>> await rdd.cartesian(ctx.parallelize(["a", "b"], 1)).glom().collect()
        [[(1, 'a'), (1, 'b')], [(2, 'a'), (2, 'b')]]
        """
        self._check_other(other, "cartesian")
        return self._derive(Cartesian(self, other))

    def zip(self, other: Self) -> Self:
        """Pair the *i*-th record of each partition with the *i*-th record of ``other``'s.

        Both RDDs need the same number of partitions (else ``ValueError`` at
        once) and the same number of records in each partition (else the job
        fails with a ``ValueError``).

        Parameters
        ----------
        other : RDD
            An RDD of the same context, with as many partitions and as many
            records in each.

        Returns
        -------
        RDD
            The pairs ``(x, y)``, in this RDD's partitions.

        Raises
        ------
        TypeError
            When ``other`` is not an RDD.
        ValueError
            When ``other`` belongs to another context or has another number of
            partitions.

        Examples
        --------
        >>> x, y = ctx.parallelize(range(0, 5), 2), ctx.parallelize(range(1000, 1005), 2)
        >>> await x.zip(y).collect()
        [(0, 1000), (1, 1001), (2, 1002), (3, 1003), (4, 1004)]
        """
        self._check_other(other, "zip")
        if self.get_num_partitions() != other.get_num_partitions():
            raise ValueError(
                "Can only zip with RDD which has the same number of partitions "
                f"({self.get_num_partitions()} != {other.get_num_partitions()})"
            )
        return self._derive(Zipped(self, other))

    def zip_with_index(self) -> Self:
        """Pair each record with its position: ``(record, index)``, counted in partition order.

        Like PySpark, the partitions are counted first (one more pass over this
        RDD, skipped when it has a single partition), so cache it if it is
        costly to compute.  Here that count runs as a small first stage of
        every job on the result (its output is reused by later jobs), so this
        method stays a lazy transformation.

        Returns
        -------
        RDD
            The pairs ``(record, index)``, indexes 0, 1, 2 ... without gaps.

        See Also
        --------
        RDD.zip_with_unique_id : Ids with gaps, without counting first.

        Examples
        --------
        >>> await ctx.parallelize(["a", "b", "c", "d"], 3).zip_with_index().glom().collect()
        [[('a', 0)], [('b', 1)], [('c', 2), ('d', 3)]]
        """
        counts = None
        if self.get_num_partitions() > 1:
            counts = self.map_partitions_with_index(count_pair)
        return self._derive(ZipWithIndex(self, counts))

    def zip_with_unique_id(self) -> Self:
        """Pair each record with a unique id: item *i* of partition *k* gets ``i * n + k``.

        ``n`` is the number of partitions.  Unlike ``zip_with_index`` no count
        is needed, but the ids have gaps.

        Returns
        -------
        RDD
            The pairs ``(record, id)``, ids distinct but not consecutive.

        See Also
        --------
        RDD.zip_with_index : Consecutive indexes.

        Examples
        --------
        >>> rdd = ctx.parallelize(["a", "b", "c", "d", "e"], 3)
        >>> await rdd.zip_with_unique_id().collect()
        [('a', 0), ('b', 1), ('c', 4), ('d', 2), ('e', 5)]
        """
        n = self.get_num_partitions()
        return self.map_partitions_with_index(functools.partial(_unique_ids, n))

    # -- repartitioning ---------------------------------------------------------------

    def coalesce(self, num_partitions: int, shuffle: bool = False) -> Self:
        """Reduce the number of partitions to ``num_partitions``.

        Without ``shuffle`` this is narrow: partition *i* of the result is a
        run of consecutive partitions of this RDD, and the number of
        partitions never grows.  With ``shuffle`` each partition deals its
        records round-robin over ``num_partitions`` partitions (from a start
        that depends on the partition's index), so the count may also grow and
        the records end up balanced.

        Parameters
        ----------
        num_partitions : int
            The number of partitions wanted.
        shuffle : bool, default False
            Redistribute the records by a shuffle, balancing them (the only way to
            increase the number of partitions).

        Returns
        -------
        RDD
            The same records in ``num_partitions`` partitions (without
            ``shuffle``, at most as many as this RDD has).

        Raises
        ------
        ValueError
            When ``num_partitions`` is not a positive int.

        See Also
        --------
        RDD.repartition : ``coalesce`` with ``shuffle=True``.

        Examples
        --------
        >>> rdd = ctx.parallelize([1, 2, 3, 4, 5], 3)
        >>> await rdd.glom().collect()
        [[1], [2, 3], [4, 5]]
        >>> await rdd.coalesce(1).glom().collect()
        [[1, 2, 3, 4, 5]]
        >>> await rdd.coalesce(2).glom().collect()
        [[1], [2, 3, 4, 5]]
        >>> rdd.coalesce(5).get_num_partitions(), rdd.coalesce(5, shuffle=True).get_num_partitions()
        (3, 5)
        """
        positive_int(num_partitions, "num_partitions")
        if not shuffle:
            return self._derive(Coalesced(self, num_partitions))
        dealt = self.map_partitions_with_index(functools.partial(_deal_out, num_partitions))
        shuffled = dealt._shuffled(RoundRobinPartitioner(num_partitions))
        return shuffled.map_partitions_with_index(_drop_keys)

    def repartition(self, num_partitions: int) -> Self:
        """Exactly ``num_partitions`` balanced partitions, by a shuffle: ``coalesce(n, True)``.

        Parameters
        ----------
        num_partitions : int
            The number of partitions wanted; more or fewer than now.

        Returns
        -------
        RDD
            The same records, in ``num_partitions`` partitions of similar sizes.

        Raises
        ------
        ValueError
            When ``num_partitions`` is not a positive int.

        Examples
        --------
        >>> rdd = ctx.parallelize([1, 2, 3, 4, 5, 6, 7], 4)
        >>> [len(p) for p in await rdd.repartition(2).glom().collect()]
        [4, 3]
        >>> sorted(await rdd.repartition(10).collect())
        [1, 2, 3, 4, 5, 6, 7]
        """
        return self.coalesce(num_partitions, shuffle=True)

    # -- misc ---------------------------------------------------------------------------

    async def is_empty(self) -> bool:
        """True when the RDD has no records (looks at as few partitions as it can).

        Returns
        -------
        bool
            Awaiting gives whether the RDD has no record.

        Examples
        --------
        >>> await ctx.empty_rdd().is_empty(), await ctx.parallelize([0]).is_empty()
        (True, False)
        """
        return self.get_num_partitions() == 0 or not await self.take(1)

    def pipe(
        self,
        command: str | Sequence[str],
        env: dict[str, str] | None = None,
        check_code: bool = False,
    ) -> Self:
        """Pipe each partition through an external command; the result is its output lines.

        ``command`` is split like a shell would (``shlex``), without running a
        shell; a list is taken as the argument vector.  Every record is written
        to the command's stdin as ``str(record)`` plus a newline while a
        helper thread reads the command's stdout, and each output line is a
        record (without its newline).  ``env`` adds environment variables to
        the worker's.  With ``check_code`` a non-zero exit status fails the
        task with a ``RuntimeError`` naming the command and status.

        Parameters
        ----------
        command : str or sequence of str
            The command line (split with ``shlex``), or its argument vector.
        env : dict of str to str, optional
            Variables added to the command's environment.
        check_code : bool, default False
            Fail the task when the command exits with a non-zero status.

        Returns
        -------
        RDD
            The command's output lines (str), partition by partition.

        Examples
        --------
        >>> await ctx.parallelize(["1", "2", "", "3"]).pipe("cat").collect()
        ['1', '2', '', '3']
        >>> await ctx.parallelize(["spark", "asyncio"], 2).pipe("tr a-z A-Z").collect()
        ['SPARK', 'ASYNCIO']
        """
        return self._derive(Piped(self, command, env, bool(check_code)))


# -- functions run on the workers (module level, so they pickle by reference) ---------


def _lazily(make: Callable[[], Iterable[Any]]) -> Iterator[Any]:
    """An iterator that calls ``make`` on its first ``next``, then yields what it returns."""
    return itertools.chain.from_iterable(map(operator.call, (make,)))


def _unique(op: str, records: Iterator[Any]) -> Iterator[Any]:
    """The distinct records, deduplicated in tables as big as the task's memory allows.

    A full table is handed on and a new one started, so a record may come out
    more than once; the reduce side deduplicates again.
    """
    memory = task_memory()[0].spawn()
    tracker = SizeTracker()
    seen: dict = {}
    try:
        for batch in batched(records, 4096):
            seen.update(dict.fromkeys(batch))
            if not memory.ensure(tracker.estimate(seen, len(seen))):
                yield from seen
                seen = {}
                memory.release()
    except TypeError as exc:
        clear = named_hash_failure(exc, f"{op}() records")
        if clear is not None:
            raise clear from None
        raise
    finally:
        memory.release()
    yield from seen


def _tagged_unique(tag: Any, op: str, _: int, records: Iterator[Any]) -> Iterator[tuple]:
    """The distinct records of a partition as ``(record, tag)`` (map-side deduplication)."""
    return zip(_unique(op, records), itertools.repeat(tag))


def _counted(_: int, records: Iterator[Any]) -> Iterator[tuple]:
    """``(record, occurrences)`` for each distinct record of a partition."""

    def count() -> Iterable[tuple]:
        try:
            return collections.Counter(records).items()
        except TypeError as exc:
            clear = named_hash_failure(exc, "subtract() records")
            if clear is not None:
                raise clear from None
            raise

    return _lazily(count)


def _table(
    pairs: Iterator[tuple], merge: Callable[[Any, Any], Any], combine: Any = None
) -> ExternalMap:
    """``pairs`` folded into an ``ExternalMap`` (spilling past the task's memory share)."""
    table = ExternalMap(merge, *task_memory())
    for batch in batched(pairs, 4096):
        table.merge_values(batch, combine=combine)
    return table


def _keep_any(batch: list, table: dict) -> None:
    table.update(batch)


def _distinct_keys(_: int, pairs: Iterator[tuple]) -> Iterator[Any]:
    return map(operator.itemgetter(0), _table(pairs, _first, _keep_any).items())


def _first(a: Any, _b: Any) -> Any:
    return a


def _intersect_reduce(_: int, pairs: Iterator[tuple]) -> Iterator[Any]:
    flags = _table(pairs, operator.or_)
    return (record for record, seen in flags.items() if seen == 3)


def _add_unless_removed(a: int, b: int) -> int:
    """Occurrence counts of ``subtract``: 0 marks a record of the other side, and sticks."""
    return a + b if a and b else 0


def _subtract_reduce(_: int, pairs: Iterator[tuple]) -> Iterator[Any]:
    counts = _table(pairs, _add_unless_removed)
    return itertools.chain.from_iterable(
        itertools.repeat(record, count) for record, count in counts.items() if count
    )


def _shuffle_pairs(
    pairs: SetOps, num_partitions: int | None, reduce: Callable[[int, Iterator[tuple]], Any]
) -> SetOps:
    n = pairs._reduce_partitions(num_partitions)
    if n == 0:
        return pairs._derive(Empty())
    return pairs._shuffled(HashPartitioner(n)).map_partitions_with_index(reduce)


def _unique_ids(n: int, k: int, records: Iterator[Any]) -> Iterator[tuple]:
    return zip(records, itertools.count(k, n))


def _deal_out(n: int, index: int, records: Iterator[Any]) -> Iterator[tuple]:
    """``(target partition, record)``: round-robin from a start seeded by the partition index."""
    start = random.Random(index).randrange(n)
    targets = map(operator.mod, itertools.count(start + 1), itertools.repeat(n))
    return zip(targets, records, strict=False)  # targets never run out


def _drop_keys(_: int, pairs: Iterator[tuple]) -> Iterator[Any]:
    return map(operator.itemgetter(1), pairs)


