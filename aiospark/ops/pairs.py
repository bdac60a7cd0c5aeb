"""Key-value operations: combining, grouping and partitioning by key.

Mixed into ``aiospark.RDD``; every method expects an RDD of ``(key, value)`` pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiospark.hashing import portable_hash
from aiospark.lineage import Aggregator, HashPartitioner

if TYPE_CHECKING:
    from aiospark.rdd import RDD


class PairOps:
    """Operations on RDDs of ``(key, value)`` pairs."""

    def combine_by_key(
        self: RDD,
        create_combiner: Callable[[Any], Any],
        merge_value: Callable[[Any, Any], Any],
        merge_combiners: Callable[[Any, Any], Any],
        num_partitions: int | None = None,
        partition_func: Callable[[Any], int] = portable_hash,
    ) -> RDD:
        """Combine the values of each key with a ``(create, merge_value, merge_combiners)`` triple.

        Values are combined on the map side before the shuffle.

        >>> rdd = ctx.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> sums = rdd.combine_by_key(lambda v: [v], lambda c, v: c + [v], operator.add)
        >>> sorted(await sums.collect())
        [('a', [1, 3]), ('b', [2])]
        """
        aggregator = Aggregator(create_combiner, merge_value, merge_combiners)
        return self._combine(aggregator, num_partitions, partition_func, map_side=True)

    def _combine(
        self: RDD,
        aggregator: Aggregator,
        num_partitions: int | None,
        partition_func: Callable[[Any], int],
        map_side: bool,
    ) -> RDD:
        partitioner = HashPartitioner(self._reduce_partitions(num_partitions), partition_func)
        if self.partitioner == partitioner:
            # Already partitioned this way: combine inside each partition, no shuffle.
            return core.MapPartitionsRDD(
                self, lambda _, it: iter(aggregator.combine_values(it).items()), True
            )
        return core.ShuffledRDD(self, partitioner, aggregator, map_side_combine=map_side)

    def reduce_by_key(
        self: RDD,
        func: Callable[[Any, Any], Any],
        num_partitions: int | None = None,
        partition_func: Callable[[Any], int] = portable_hash,
    ) -> RDD:
        """Merge the values of each key with an associative ``func`` (combined map-side).

        The result has ``num_partitions`` partitions (default: as many as this RDD).

        >>> pairs = ctx.parallelize([("a", 1), ("b", 1), ("a", 1)], 2)
        >>> sorted(await pairs.reduce_by_key(operator.add).collect())
        [('a', 2), ('b', 1)]
        """
        aggregator = Aggregator(core._identity, func, func, identity_create=True)
        return self._combine(aggregator, num_partitions, partition_func, map_side=True)

    def group_by_key(
        self: RDD,
        num_partitions: int | None = None,
        partition_func: Callable[[Any], int] = portable_hash,
    ) -> RDD:
        """Group the values of each key into a list.

        Prefer ``reduce_by_key`` for aggregations: grouping ships every value.

        >>> rdd = ctx.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> sorted(await rdd.group_by_key().map_values(sorted).collect())
        [('a', [1, 3]), ('b', [2])]
        """
        aggregator = Aggregator(core._list_create, core._list_append, core._list_extend)
        return self._combine(aggregator, num_partitions, partition_func, map_side=False)

    def partition_by(
        self: RDD, num_partitions: int, partition_func: Callable[[Any], int] = portable_hash
    ) -> RDD:
        """Redistribute a pair RDD so that ``partition_func(key) % num_partitions`` picks the split.

        >>> rdd = ctx.parallelize([(1, "a"), (2, "b"), (3, "c"), (4, "d")], 1)
        >>> await rdd.partition_by(2).glom().collect()
        [[(2, 'b'), (4, 'd')], [(1, 'a'), (3, 'c')]]
        """
        partitioner = HashPartitioner(self._reduce_partitions(num_partitions), partition_func)
        if self.partitioner == partitioner:
            return self
        return core.ShuffledRDD(self, partitioner)


# At the bottom: aiospark.rdd imports this module to build the RDD class.
from aiospark import rdd as core  # noqa: E402
