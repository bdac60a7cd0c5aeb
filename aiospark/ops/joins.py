"""Operations on several RDDs by key: ``cogroup``, the joins, ``subtract_by_key``.

Mixed into ``aiospark.RDD``; every method expects RDDs of ``(key, value)`` pairs.
They shuffle only the inputs that are not already partitioned the way the
result is: an input hash-partitioned the same way is read split by split, in
the same task.  Without ``num_partitions`` they reuse the largest hash
partitioner among the inputs, else use as many partitions as all the inputs
have together (PySpark's default).
"""

from __future__ import annotations

from typing import Self

from aiospark.lineage import HashPartitioner, Partitioner
from aiospark.plans.cogroup import CoGrouped, Joined, Subtracted, keys_with_none


class JoinOps:
    """Operations on several RDDs of ``(key, value)`` pairs, by key."""

    def cogroup(self, other: Self, num_partitions: int | None = None) -> Self:
        """For each key in either RDD: ``(key, (values in self, values in other))``.

        The values are lists (possibly empty) in arrival order.

        Parameters
        ----------
        other : RDD
            An RDD of ``(key, value)`` pairs of the same context.
        num_partitions : int or None, optional
            Partitions of the result.  Default: those of an input already
            hash-partitioned (the one with the most partitions), else the sum of
            the inputs' partition counts.

        Returns
        -------
        RDD
            One ``(key, (list, list))`` pair per key of either RDD.

        Raises
        ------
        TypeError
            When ``other`` is not an RDD.
        ValueError
            When ``other`` belongs to another context, or ``num_partitions`` is
            not a positive int.

        See Also
        --------
        RDD.group_with : With more RDDs.

        Examples
        --------
        >>> x = ctx.parallelize([("a", 1), ("b", 4)])
        >>> y = ctx.parallelize([("a", 2)])
        >>> sorted(await x.cogroup(y).collect())
        [('a', ([1], [2])), ('b', ([4], []))]
        """
        partitioner = self._cogroup_partitioner([other], num_partitions)
        return self._derive(CoGrouped([self, other], partitioner))

    def group_with(self, other: Self, *others: Self) -> Self:
        """``cogroup`` with any number of RDDs: ``(key, (values in self, in other, ...))``.

        Parameters
        ----------
        other : RDD
            A second RDD of pairs.
        *others : RDD
            More RDDs of pairs.

        Returns
        -------
        RDD
            One ``(key, tuple of lists)`` pair per key of any RDD, a list per RDD in
            argument order (``self`` first), partitioned as in ``cogroup``.

        Raises
        ------
        TypeError
            When one of the others is not an RDD.
        ValueError
            When one belongs to another context.

        Examples
        --------
        >>> w = ctx.parallelize([("a", 5), ("b", 6)])
        >>> x = ctx.parallelize([("a", 1), ("b", 4)])
        >>> y = ctx.parallelize([("a", 2)])
        >>> z = ctx.parallelize([("b", 42)])
        >>> sorted(await w.group_with(x, y, z).collect())
        [('a', ([5], [1], [2], [])), ('b', ([6], [4], [], [42]))]
        """
        rdds = [self, other, *others]
        return self._derive(CoGrouped(rdds, self._cogroup_partitioner(rdds[1:], None)))

    def join(self, other: Self, num_partitions: int | None = None) -> Self:
        """Inner join: ``(key, (v, w))`` for every ``v`` in self and ``w`` in other under a key.

        Parameters
        ----------
        other : RDD
            An RDD of ``(key, value)`` pairs of the same context.
        num_partitions : int or None, optional
            Partitions of the result.  Default: those of an input already
            hash-partitioned (the one with the most partitions), else the sum of
            the inputs' partition counts.

        Returns
        -------
        RDD
            One ``(key, (v, w))`` pair per pair of values of a key found in both RDDs.

        Raises
        ------
        TypeError
            When ``other`` is not an RDD.
        ValueError
            When ``other`` belongs to another context, or ``num_partitions`` is
            not a positive int.

        See Also
        --------
        RDD.left_outer_join, RDD.right_outer_join, RDD.full_outer_join

        Examples
        --------
        >>> x = ctx.parallelize([("a", 1), ("b", 4)])
        >>> y = ctx.parallelize([("a", 2), ("a", 3)])
        >>> sorted(await x.join(y).collect())
        [('a', (1, 2)), ('a', (1, 3))]
        """
        return self._join(other, num_partitions, "inner")

    def left_outer_join(self, other: Self, num_partitions: int | None = None) -> Self:
        """Left outer join: like ``join``, plus ``(key, (v, None))`` for keys only in self.

        Parameters
        ----------
        other : RDD
            An RDD of ``(key, value)`` pairs of the same context.
        num_partitions : int or None, optional
            Partitions of the result.  Default: those of an input already
            hash-partitioned (the one with the most partitions), else the sum of
            the inputs' partition counts.

        Returns
        -------
        RDD
            The pairs of ``join``, and ``(key, (v, None))`` for each value ``v`` of a key
            absent from ``other``.

        Raises
        ------
        TypeError
            When ``other`` is not an RDD.
        ValueError
            When ``other`` belongs to another context, or ``num_partitions`` is
            not a positive int.

        Examples
        --------
        >>> x = ctx.parallelize([("a", 1), ("b", 4)])
        >>> y = ctx.parallelize([("a", 2)])
        >>> sorted(await x.left_outer_join(y).collect())
        [('a', (1, 2)), ('b', (4, None))]
        """
        return self._join(other, num_partitions, "left")

    def right_outer_join(self, other: Self, num_partitions: int | None = None) -> Self:
        """Right outer join: like ``join``, plus ``(key, (None, w))`` for keys only in other.

        Parameters
        ----------
        other : RDD
            An RDD of ``(key, value)`` pairs of the same context.
        num_partitions : int or None, optional
            Partitions of the result.  Default: those of an input already
            hash-partitioned (the one with the most partitions), else the sum of
            the inputs' partition counts.

        Returns
        -------
        RDD
            The pairs of ``join``, and ``(key, (None, w))`` for each value ``w`` of a key
            absent from ``self``.

        Raises
        ------
        TypeError
            When ``other`` is not an RDD.
        ValueError
            When ``other`` belongs to another context, or ``num_partitions`` is
            not a positive int.

        Examples
        --------
        >>> x = ctx.parallelize([("a", 2)])
        >>> y = ctx.parallelize([("a", 1), ("b", 4)])
        >>> sorted(await x.right_outer_join(y).collect())
        [('a', (2, 1)), ('b', (None, 4))]
        """
        return self._join(other, num_partitions, "right")

    def full_outer_join(self, other: Self, num_partitions: int | None = None) -> Self:
        """Full outer join: pairs for keys on both sides, ``None`` for the side a key lacks.

        Parameters
        ----------
        other : RDD
            An RDD of ``(key, value)`` pairs of the same context.
        num_partitions : int or None, optional
            Partitions of the result.  Default: those of an input already
            hash-partitioned (the one with the most partitions), else the sum of
            the inputs' partition counts.

        Returns
        -------
        RDD
            The pairs of ``join``, and ``(key, (v, None))`` or ``(key, (None, w))`` for
            the values of a key found on one side only.

        Raises
        ------
        TypeError
            When ``other`` is not an RDD.
        ValueError
            When ``other`` belongs to another context, or ``num_partitions`` is
            not a positive int.

        Examples
        --------
        >>> x = ctx.parallelize([("a", 1), ("b", 4)])
        >>> y = ctx.parallelize([("a", 2), ("c", 8)])
        >>> sorted(await x.full_outer_join(y).collect())
        [('a', (1, 2)), ('b', (4, None)), ('c', (None, 8))]
        """
        return self._join(other, num_partitions, "full")

    def subtract_by_key(self, other: Self, num_partitions: int | None = None) -> Self:
        """The pairs of self whose key does not occur in other.

        Only the keys of ``other`` are shuffled, each once per map partition.

        Parameters
        ----------
        other : RDD
            An RDD of pairs whose keys are removed (its values are ignored).
        num_partitions : int or None, optional
            Partitions of the result.  Default: those of an input already
            hash-partitioned (the one with the most partitions), else the sum of
            the inputs' partition counts.

        Returns
        -------
        RDD
            The pairs of ``self`` (every value kept) whose key is not a key of
            ``other``.

        Raises
        ------
        TypeError
            When ``other`` is not an RDD.
        ValueError
            When ``other`` belongs to another context, or ``num_partitions`` is
            not a positive int.

        See Also
        --------
        RDD.subtract : Compares whole records.

        Examples
        --------
        >>> x = ctx.parallelize([("a", 1), ("b", 4), ("b", 5), ("a", 2)])
        >>> y = ctx.parallelize([("a", 3), ("c", None)])
        >>> sorted(await x.subtract_by_key(y).collect())
        [('b', 4), ('b', 5)]
        """
        partitioner = self._cogroup_partitioner([other], num_partitions)
        if other.partitioner != partitioner:  # shuffled: only its keys need to travel
            other = other.map_partitions(keys_with_none)
        return self._derive(Subtracted(self, other, partitioner))

    def _join(self, other: Self, num_partitions: int | None, how: str) -> Self:
        partitioner = self._cogroup_partitioner([other], num_partitions)
        return self._derive(Joined(self, other, partitioner, how))

    def _cogroup_partitioner(
        self, others: list[Self], num_partitions: int | None
    ) -> Partitioner:
        """The partitioner of an operation reading ``self`` and ``others`` by key.

        As in PySpark, the default count is the sum of the inputs' partition
        counts; but an input already hash-partitioned is kept as it is (Scala
        Spark's rule), so it is not shuffled again.
        """
        for other in others:
            if not isinstance(other, JoinOps):
                raise TypeError(f"expected an RDD, got {type(other).__name__}")
            if other.ctx is not self.ctx:
                raise ValueError(f"{other!r} belongs to another Context")
        if num_partitions is not None:
            return HashPartitioner(self._reduce_partitions(num_partitions))
        rdds = [self, *others]
        reusable = [r.partitioner for r in rdds if isinstance(r.partitioner, HashPartitioner)]
        if reusable:
            # Only hash partitioners are reused: a sort's range partitioner may
            # learn its bounds on the cluster, so other inputs could not use it.
            return max(reusable, key=lambda p: p.num_partitions)
        return HashPartitioner(sum(rdd.get_num_partitions() for rdd in rdds))
