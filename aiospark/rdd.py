"""The RDD: a lazy, partitioned collection.  Transformations build lineage; actions run jobs.

Transformations (``map``, ``filter``, ``reduce_by_key`` ...) are ordinary methods
that return a new RDD at once and compute nothing.  Actions (``collect``,
``count``, ``save_as_text_file`` ...) are coroutines: awaiting one runs a job on
the cluster.  ``async for`` streams an RDD's records partition by partition.

The examples in this module's docstrings run against a live ``ctx``::

    >>> rdd = ctx.parallelize(range(10), 3)
    >>> await rdd.map(lambda x: x * x).filter(lambda x: x % 2).collect()
    [1, 9, 25, 49, 81]
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import operator
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from aiospark import offload
from aiospark.barrier import RDDBarrier
from aiospark.errors import UserCodeError, reduce_in_driver
from aiospark.io.checkpoint import CheckpointState, LocalCheckpoint
from aiospark.lineage import (
    Aggregator,
    Dependency,
    Driver,
    Partitioner,
    Plan,
    ShuffleDependency,
    Split,
    StorageLevel,
    TaskContext,
)
from aiospark.mapped import ConstantPairs, MappedRecords, constant_of, map_records
from aiospark.ops.approx import ApproxOps
from aiospark.ops.async_ops import AsyncOps
from aiospark.ops.export import ExportOps
from aiospark.ops.joins import JoinOps
from aiospark.ops.pairs import PairOps
from aiospark.ops.sampling import SampleOps
from aiospark.ops.sets import SetOps
from aiospark.ops.sorting import SortOps
from aiospark.ops.stats import StatOps, count_partition
from aiospark.pair_errors import pair_error, raised_here
from aiospark.plans.basic import MapPartitions, Shuffled
from aiospark.validation import check_count, check_path, positive_int


class RDD(PairOps, JoinOps, SetOps, SortOps, SampleOps, StatOps, ApproxOps, AsyncOps, ExportOps):
    """A resilient distributed dataset: an identity holding a plan, plus the user API.

    The RDD itself is the identity Spark's five-tuple hangs on: an id, a name,
    a storage level and a checkpoint.  The rest of the five-tuple (splits,
    dependencies, the function computing a split, partitioner, preferred
    locations) is its ``plan`` (``aiospark.plans``).  The API is grouped by
    theme in the mixins of ``aiospark.ops``, which build new plans and wrap
    them with ``_derive``; this class holds persistence, the narrow
    transformations, the basic actions and streaming.  A new kind of RDD is a
    new ``Plan``: ``RDD(ctx, plan)``.
    """

    barrier_mode = False
    """True on an RDD made by ``barrier().map_partitions(...)``: its stage (and that of
    the RDDs computed from it without a shuffle) is a barrier stage."""

    def __init__(self, ctx: Driver, plan: Plan) -> None:
        self.ctx = ctx
        self.id = ctx.new_rdd_id()
        self.plan = plan
        self.storage_level: StorageLevel | None = None
        self._name: str | None = None
        #: Set by ``checkpoint()`` or ``local_checkpoint()``; once written, the RDD reads its
        #: splits from there.
        self.checkpoint_data: CheckpointState | LocalCheckpoint | None = None

    def _derive(self, plan: Plan) -> RDD:
        """A new RDD of this context computing ``plan``."""
        return RDD(self.ctx, plan)

    def _shuffled(
        self,
        partitioner: Partitioner,
        aggregator: Aggregator | None = None,
        map_side_combine: bool = False,
        op: str | None = None,
    ) -> RDD:
        """This RDD's records regrouped by key by ``partitioner``: a shuffle (by ``op``)."""
        return self._derive(Shuffled(self, partitioner, aggregator, map_side_combine, op))

    # -- the five-tuple -------------------------------------------------------

    @property
    def deps(self) -> list[Dependency]:
        """The dependencies on parent RDDs (none once a checkpoint has been written).

        >>> [type(d).__name__ for d in ctx.parallelize([1]).map(str).deps]
        ['OneToOneDependency']
        """
        return [] if self.is_checkpointed() else self.plan.deps

    @property
    def partitioner(self) -> Partitioner | None:
        """How the records are partitioned by key, when known (else None).

        >>> ctx.parallelize([(1, "a")]).partition_by(3).partitioner
        HashPartitioner(3)
        """
        return self.plan.partitioner

    def splits(self) -> list[Split]:
        """The RDD's partitions, computed once in the driver.

        Returns
        -------
        list of Split
            One ``Split`` per partition, in partition order (``split.index`` is
            its position); the same list on every call.

        Examples
        --------
        >>> [s.index for s in ctx.parallelize(range(6), 3).splits()]
        [0, 1, 2]
        """
        return self.plan.splits()

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        """Compute one split from the parents' iterators (runs on a worker).

        The RDD's ``plan`` computes it; the scheduler calls ``iterator``, which
        adds caching and checkpoints on top.

        Parameters
        ----------
        split : Split
            The partition to compute, one of ``splits()``.
        tctx : TaskContext
            The running task's context (block store, shuffle fetches,
            cancellation checks).

        Returns
        -------
        iterator
            The split's records, computed lazily.

        Examples
        --------
        >>> from aiospark.lineage import LocalTaskContext
        >>> rdd = ctx.parallelize([1, 2, 3], 1).map(str)
        >>> list(rdd.compute(rdd.splits()[0], LocalTaskContext()))
        ['1', '2', '3']
        """
        return self.plan.compute(split, tctx)

    def preferred_locations(self, split: Split) -> list[str]:
        """Hosts where ``split`` is cheapest to compute (none by default).

        Parameters
        ----------
        split : Split
            One of ``splits()``.

        Returns
        -------
        list of str
            Host names, best first; empty when any worker will do.

        Examples
        --------
        >>> rdd = ctx.parallelize([1, 2])
        >>> rdd.preferred_locations(rdd.splits()[0])
        []
        """
        return self.plan.preferred_locations(split)

    def iterator(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        """The records of ``split``, from the block store when the RDD is persisted.

        A split not cached yet is computed and offered to the block store as it
        is produced; when it does not fit in the worker's memory budget (and
        the level has no disk), the records stream on uncached.

        Parameters
        ----------
        split : Split
            One of ``splits()``.
        tctx : TaskContext
            The running task's context.

        Returns
        -------
        iterator
            The split's records: read from the checkpoint once it is written, from
            the block store when cached, else computed.

        Raises
        ------
        UserCodeError
            When user code raises ``StopIteration`` while the split is computed.

        Examples
        --------
        >>> from aiospark.lineage import LocalTaskContext
        >>> tctx = LocalTaskContext()
        >>> rdd = ctx.parallelize([1, 2], 1).cache()
        >>> list(rdd.iterator(rdd.splits()[0], tctx)), list(tctx.get_block(rdd.id, 0))
        ([1, 2], [1, 2])
        """
        try:
            checkpoint = self.checkpoint_data
            if checkpoint is not None and checkpoint.written:
                return checkpoint.read(split.index, tctx)
            level = self.storage_level
            if level is None:
                return self.plan.compute(split, tctx)
            cached = tctx.get_block(self.id, split.index)
            if cached is not None:
                return cached
            return tctx.put_block(self.id, split.index, self.plan.compute(split, tctx), level)
        except StopIteration as exc:
            # From user code run while computing the split (a map_partitions
            # function, a combiner): a caller iterating lazily, such as
            # cartesian's, would take it for the end of its records.
            raise UserCodeError.wrapping(exc) from exc

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["ctx"] = None
        if self.is_checkpointed():
            # The lineage is cut: ship only what reading the checkpoint needs.
            state["plan"] = _CutPlan(self.plan.partitioner)
        return state

    def __repr__(self) -> str:
        label = f" {self._name!r}" if self._name else ""
        return f"<{self.plan.kind}{label} id={self.id}>"

    # -- narrow transformations -------------------------------------------------

    def map_partitions_with_index(
        self,
        f: Callable[[int, Iterator[Any]], Iterable[Any]],
        preserves_partitioning: bool = False,
    ) -> RDD:
        """Apply ``f(split_index, iterator)`` to each partition.

        Parameters
        ----------
        f : callable
            ``f(split_index, iterator)`` returns an iterable of the partition's new
            records (a generator function works); it runs once per partition, on a
            worker.
        preserves_partitioning : bool, default False
            Keep this RDD's partitioner: say so only when ``f`` keeps every
            record's key (of a pair RDD) unchanged.

        Returns
        -------
        RDD
            The records ``f`` yields, partition by partition.

        See Also
        --------
        RDD.map_partitions : Without the index.

        Examples
        --------
        >>> rdd = ctx.parallelize([1, 2, 3, 4], 2)
        >>> await rdd.map_partitions_with_index(lambda i, it: [(i, sum(it))]).collect()
        [(0, 3), (1, 7)]
        """
        return self._derive(MapPartitions(self, f, preserves_partitioning))

    def barrier(self) -> RDDBarrier:
        """Mark the stage of the next ``map_partitions`` as a barrier stage (PySpark's
        ``barrier``): its tasks start together and use ``BarrierTaskContext``.

        Returns
        -------
        RDDBarrier
            With ``map_partitions`` and ``map_partitions_with_index``.

        See Also
        --------
        aiospark.BarrierTaskContext : ``barrier()`` and ``all_gather()`` in its tasks.

        Examples
        --------
        >>> await ctx.parallelize(range(4), 2).barrier().map_partitions(
        ...     lambda it: [sum(it)]).collect()
        [1, 5]
        """
        return RDDBarrier(self)

    def map_partitions(
        self, f: Callable[[Iterator[Any]], Iterable[Any]], preserves_partitioning: bool = False
    ) -> RDD:
        """Apply ``f(iterator)`` to each partition.

        Parameters
        ----------
        f : callable
            ``f(iterator)`` returns an iterable of the partition's new records (a
            generator function works); it runs once per partition, on a worker.
        preserves_partitioning : bool, default False
            Keep this RDD's partitioner: say so only when ``f`` keeps every
            record's key (of a pair RDD) unchanged.

        Returns
        -------
        RDD
            The records ``f`` yields, partition by partition.

        See Also
        --------
        RDD.map_partitions_with_index : With the partition's index.
        RDD.map : One record at a time.

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 3, 4], 2).map_partitions(lambda it: [sum(it)]).collect()
        [3, 7]
        """
        return self.map_partitions_with_index(lambda _, it: f(it), preserves_partitioning)

    def map(self, f: Callable[[Any], Any], preserves_partitioning: bool = False) -> RDD:
        """Apply ``f`` to every record.

        Parameters
        ----------
        f : callable
            ``f(record)`` returns the new record; it runs on the workers.
        preserves_partitioning : bool, default False
            Keep this RDD's partitioner: say so only when ``f`` keeps every
            record's key (of a pair RDD) unchanged.

        Returns
        -------
        RDD
            One record ``f(x)`` for each record ``x``, in the same partitions.

        See Also
        --------
        RDD.flat_map : Several records (or none) per record.
        RDD.map_values : For the values of pairs only.

        Examples
        --------
        >>> await ctx.parallelize(["b", "a", "c"]).map(lambda x: (x, 1)).collect()
        [('b', 1), ('a', 1), ('c', 1)]

        (A function that only pairs its record with a constant, as this one, is not
        called: the pairs come from a C-level ``zip``; see ``aiospark.mapped``.)
        """
        keep = preserves_partitioning
        constant = constant_of(f)
        if constant is not None:
            value = constant[0]
            return self.map_partitions_with_index(lambda _, it: ConstantPairs(it, value), keep)
        return self.map_partitions_with_index(lambda _, it: MappedRecords(f, it), keep)

    def flat_map(
        self, f: Callable[[Any], Iterable[Any]], preserves_partitioning: bool = False
    ) -> RDD:
        """Apply ``f`` to every record and flatten the iterables it returns.

        Parameters
        ----------
        f : callable
            ``f(record)`` returns an iterable of new records; it runs on the
            workers.
        preserves_partitioning : bool, default False
            Keep this RDD's partitioner: say so only when every record ``f`` yields
            keeps the key of the record it came from.

        Returns
        -------
        RDD
            Every item of every ``f(x)``, in order, in the same partitions.

        Examples
        --------
        >>> await ctx.parallelize(["a b", "c"]).flat_map(str.split).collect()
        ['a', 'b', 'c']
        """
        chain = itertools.chain.from_iterable
        keep = preserves_partitioning
        return self.map_partitions_with_index(lambda _, it: chain(map_records(f, it)), keep)

    def filter(self, f: Callable[[Any], Any]) -> RDD:
        """Keep the records for which ``f`` is true.

        Parameters
        ----------
        f : callable
            ``f(record)``, true for the records to keep; it runs on the workers.

        Returns
        -------
        RDD
            The records kept, in order; the partitioner is kept.

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 3, 4]).filter(lambda x: x % 2 == 0).collect()
        [2, 4]
        """
        return self.map_partitions_with_index(lambda _, it: _filter_records(f, it), True)

    def glom(self) -> RDD:
        """One list per partition.

        Returns
        -------
        RDD
            One record per partition: the list of that partition's records (an
            empty partition gives an empty list).

        Examples
        --------
        >>> await ctx.parallelize(range(5), 2).glom().collect()
        [[0, 1], [2, 3, 4]]
        """
        return self.map_partitions_with_index(lambda _, it: [list(it)])

    def key_by(self, f: Callable[[Any], Any]) -> RDD:
        """Pair every record with a key computed by ``f``: ``(f(x), x)``.

        Parameters
        ----------
        f : callable
            ``f(record)`` returns the record's key.

        Returns
        -------
        RDD
            The pairs ``(f(x), x)``.

        Examples
        --------
        >>> await ctx.parallelize(["apple", "fig"]).key_by(len).collect()
        [(5, 'apple'), (3, 'fig')]
        """
        return self.map(lambda x: (f(x), x))

    def keys(self) -> RDD:
        """The keys of an RDD of pairs.

        Returns
        -------
        RDD
            The first item of each record.

        See Also
        --------
        RDD.values : The second items.

        Examples
        --------
        >>> await ctx.parallelize([("a", 1), ("b", 2)]).keys().collect()
        ['a', 'b']
        """
        get = operator.itemgetter(0)
        return self.map_partitions_with_index(lambda _, it: map(get, it))

    def values(self) -> RDD:
        """The values of an RDD of pairs.

        Returns
        -------
        RDD
            The second item of each record.

        See Also
        --------
        RDD.keys : The first items.

        Examples
        --------
        >>> await ctx.parallelize([("a", 1), ("b", 2)]).values().collect()
        [1, 2]
        """
        get = operator.itemgetter(1)
        return self.map_partitions_with_index(lambda _, it: map(get, it))

    def map_values(self, f: Callable[[Any], Any]) -> RDD:
        """Apply ``f`` to each value of a pair RDD, keeping keys and partitioning.

        Parameters
        ----------
        f : callable
            ``f(value)`` returns the new value.

        Returns
        -------
        RDD
            The pairs ``(k, f(v))``, with this RDD's partitioner.

        Examples
        --------
        >>> await ctx.parallelize([("a", [1, 2]), ("b", [3])]).map_values(len).collect()
        [('a', 2), ('b', 1)]
        """
        return self.map_partitions_with_index(lambda _, it: _map_value_records(f, it), True)

    def flat_map_values(self, f: Callable[[Any], Iterable[Any]]) -> RDD:
        """Apply ``f`` to each value and pair every item it yields with the key.

        Parameters
        ----------
        f : callable
            ``f(value)`` returns an iterable of new values.

        Returns
        -------
        RDD
            The pairs ``(k, w)`` for every ``w`` of ``f(v)``, with this RDD's
            partitioner.

        Examples
        --------
        >>> rdd = ctx.parallelize([("a", "x y"), ("b", "z")])
        >>> await rdd.flat_map_values(str.split).collect()
        [('a', 'x'), ('a', 'y'), ('b', 'z')]
        """
        return self.map_partitions_with_index(lambda _, it: _flat_map_value_records(f, it), True)

    # -- shuffles ---------------------------------------------------------------

    def _reduce_partitions(self, num_partitions: int | None) -> int:
        if num_partitions is None:
            return self.get_num_partitions()
        return positive_int(num_partitions, "num_partitions")

    # -- persistence ------------------------------------------------------------

    def persist(self, storage_level: StorageLevel = StorageLevel.MEMORY_ONLY) -> RDD:
        """Keep computed splits on the workers, at ``storage_level``; returns ``self``.

        A split is stored the first time a job computes it; later jobs read it from
        there.  Splits that do not fit are evicted or, at a level with disk, spilled,
        and recomputed from lineage when evicted.

        Parameters
        ----------
        storage_level : StorageLevel, default StorageLevel.MEMORY_ONLY
            Where the splits are kept (memory, disk, serialized or not), and on
            how many workers (``MEMORY_ONLY_2`` ...: losing one costs no
            recomputation).

        Returns
        -------
        RDD
            ``self``, so that ``rdd = ctx.text_file(path).persist()`` works.

        Raises
        ------
        TypeError
            When ``storage_level`` is not a ``StorageLevel``.
        ValueError
            When the RDD is already persisted at another level.

        See Also
        --------
        RDD.cache : ``persist()`` at the default level.
        RDD.unpersist : The reverse.

        Examples
        --------
        >>> rdd = ctx.parallelize([1, 2, 3]).persist(StorageLevel.MEMORY_ONLY)
        >>> rdd.storage_level == StorageLevel.MEMORY_ONLY
        True
        >>> twice = ctx.parallelize([1, 2, 3]).persist(StorageLevel.MEMORY_ONLY_2)
        >>> await twice.sum(), str(twice.get_storage_level())
        (6, 'Memory Deserialized 2x Replicated')
        """
        if not isinstance(storage_level, StorageLevel):
            raise TypeError(f"storage_level must be a StorageLevel, got {storage_level!r}")
        if self.storage_level is not None and self.storage_level != storage_level:
            raise ValueError(
                f"{self!r} is already persisted at {self.storage_level}; unpersist it first"
            )
        if self.storage_level is None:  # its blocks are dropped once it is garbage-collected
            self.ctx.watch(self, "rdd", self.id)
        self.storage_level = storage_level
        return self

    def cache(self) -> RDD:
        """Persist in memory (``StorageLevel.MEMORY_ONLY``); returns ``self``.

        Returns
        -------
        RDD
            ``self``.

        Raises
        ------
        ValueError
            When the RDD is already persisted at another level.

        Examples
        --------
        >>> rdd = ctx.parallelize(range(4), 2).map(lambda x: x + 1).cache()
        >>> await rdd.sum(), await rdd.count()
        (10, 4)
        """
        return self.persist(StorageLevel.MEMORY_ONLY)

    def unpersist(self, blocking: bool = False) -> RDD:
        """Stop persisting and drop the cached splits on every worker; returns ``self``.

        Parameters
        ----------
        blocking : bool, default False
            Accepted for PySpark compatibility; the workers drop the blocks in the
            background either way.

        Returns
        -------
        RDD
            ``self``, no longer persisted.

        Examples
        --------
        >>> rdd = ctx.parallelize([1, 2]).cache()
        >>> rdd.unpersist().storage_level is None
        True
        """
        self.storage_level = None
        self.ctx.forget_rdd(self.id)
        return self

    def set_name(self, name: str) -> RDD:
        """Name the RDD (shown by ``repr``, ``to_debug_string`` and the status page).

        Parameters
        ----------
        name : str
            The name (anything else is converted with ``str``).

        Returns
        -------
        RDD
            ``self``.

        Examples
        --------
        >>> ctx.parallelize([1]).set_name("ones").name()
        'ones'
        """
        self._name = str(name)
        return self

    def name(self) -> str | None:
        """The RDD's name, or None.

        Returns
        -------
        str or None
            The name ``set_name`` gave, or ``None``.

        Examples
        --------
        >>> print(ctx.parallelize([1]).name())
        None
        """
        return self._name

    def get_storage_level(self) -> StorageLevel | None:
        """The level ``persist`` set, or None when the RDD is not persisted.

        Returns
        -------
        StorageLevel or None
            The storage level, or ``None``.

        Examples
        --------
        >>> ctx.parallelize([1]).cache().get_storage_level() == StorageLevel.MEMORY_ONLY
        True
        """
        return self.storage_level

    def to_debug_string(self) -> str:
        """The lineage, one RDD per line; an indented ``+-`` marks each shuffle (a new stage).

        Returns
        -------
        str
            The lineage, this RDD first: one line per RDD, with its kind, id, name
            (when set) and storage level (in brackets); the first line starts with
            the number of partitions.

        Examples
        --------
        >>> rdd = ctx.parallelize([("a", 1)], 2).reduce_by_key(operator.add).map_values(str)
        >>> print(rdd.to_debug_string())
        (2) MapPartitionsRDD[...] []
         |  ShuffledRDD[...] []
         +-(2) ParallelCollectionRDD[...] []
        """
        lines = _debug_lines(self)
        lines[0] = f"({self.get_num_partitions()}) {lines[0]}"
        return "\n".join(lines)

    def checkpoint(self) -> None:
        """Save this RDD's splits to the checkpoint directory after the next job computes it.

        From then on the RDD reads them from there and its lineage is cut, so
        long iterative lineages stop growing.  Needs ``ctx.set_checkpoint_dir``.

        Raises
        ------
        RuntimeError
            When no checkpoint directory is set.

        See Also
        --------
        RDD.local_checkpoint : Faster, without shared storage.
        Context.set_checkpoint_dir : Where checkpoints go.

        Examples
        --------
        >>> ctx.set_checkpoint_dir(f"{tmp_dir}/checkpoints")
        >>> rdd = ctx.parallelize(range(4), 2).map(lambda x: x * 10)
        >>> rdd.checkpoint()
        >>> await rdd.collect(), rdd.is_checkpointed(), rdd.deps
        ([0, 10, 20, 30], True, [])
        """
        directory = self.ctx.get_checkpoint_dir()
        if directory is None:
            raise RuntimeError("set a checkpoint directory first: ctx.set_checkpoint_dir(path)")
        if self.checkpoint_data is None:
            options = self.ctx.storage_options
            self.checkpoint_data = CheckpointState(f"{directory}/rdd-{self.id}", options)
            self.ctx.watch(self, "checkpoint", self.checkpoint_data.directory)

    def local_checkpoint(self) -> None:
        """Cut the lineage after the next job, keeping the splits in the workers' block stores.

        As in PySpark: the RDD is persisted (at ``StorageLevel.MEMORY_AND_DISK``, or
        at its own level with disk added), and once the next job has computed it
        (every split: a short extra job computes those the action did not), its
        lineage is cut and ``is_checkpointed()`` is true.  Faster than
        ``checkpoint`` because nothing goes to shared storage, but not fault
        tolerant: a split lost with its worker (or dropped by ``unpersist``) is
        then an error, since there is no lineage left to recompute it from.

        See Also
        --------
        RDD.checkpoint : To shared storage, surviving the loss of a worker.
        RDD.is_locally_checkpointed : Whether it was called.

        Examples
        --------
        >>> rdd = ctx.parallelize(range(3)).map(lambda x: x + 1)
        >>> rdd.local_checkpoint()
        >>> rdd.is_locally_checkpointed(), rdd.is_checkpointed()
        (True, False)
        >>> await rdd.sum(), rdd.is_checkpointed(), rdd.deps
        (6, True, [])
        >>> rdd.get_storage_level() == StorageLevel.MEMORY_AND_DISK
        True
        """
        level = self.storage_level
        if level is None:
            self.persist(StorageLevel.MEMORY_AND_DISK)
        elif not level.use_disk:  # Spark's LocalRDDCheckpointData.transformStorageLevel
            self.storage_level = dataclasses.replace(level, use_disk=True)
        if not self.is_checkpointed():
            self.checkpoint_data = LocalCheckpoint(self.id)

    def is_locally_checkpointed(self) -> bool:
        """True once ``local_checkpoint()`` was called (written or not yet).

        Returns
        -------
        bool
            Whether the RDD is marked for a local checkpoint.

        Examples
        --------
        >>> rdd = ctx.parallelize([1])
        >>> rdd.is_locally_checkpointed()
        False
        >>> rdd.local_checkpoint()
        >>> rdd.is_locally_checkpointed()
        True
        """
        return isinstance(self.checkpoint_data, LocalCheckpoint)

    @property
    def is_cached(self) -> bool:
        """True while the RDD is persisted (``cache()`` or ``persist()``, until ``unpersist()``).

        PySpark's ``is_cached`` attribute.

        Examples
        --------
        >>> rdd = ctx.parallelize([1])
        >>> rdd.is_cached, rdd.cache().is_cached, rdd.unpersist().is_cached
        (False, True, False)
        """
        return self.storage_level is not None

    def is_checkpointed(self) -> bool:
        """True once the RDD's checkpoint was written (``checkpoint`` or ``local_checkpoint``).

        Returns
        -------
        bool
            Whether a job has written the checkpoint (and cut the lineage).

        Examples
        --------
        >>> ctx.parallelize([1]).is_checkpointed()
        False
        """
        return self.checkpoint_data is not None and self.checkpoint_data.written

    def get_checkpoint_file(self) -> str | None:
        """Where ``checkpoint`` wrote (or will write) the splits, or None.

        Returns
        -------
        str or None
            The checkpoint's directory, or ``None`` when ``checkpoint`` was not
            called.

        Examples
        --------
        >>> print(ctx.parallelize([1]).get_checkpoint_file())
        None
        """
        return None if self.checkpoint_data is None else self.checkpoint_data.directory

    def get_num_partitions(self) -> int:
        """The number of partitions.

        Returns
        -------
        int
            The number of partitions (computed in the driver, no job runs).

        Examples
        --------
        >>> ctx.parallelize(range(10), 4).get_num_partitions()
        4
        """
        return len(self.splits())

    # -- actions ----------------------------------------------------------------

    async def _run(self, func: Callable[[int, Iterator[Any]], Any]) -> list[Any]:
        return await self.ctx.jobs.run(self, func)

    async def collect(self) -> list[Any]:
        """All records, in partition order.

        Every record is pickled to the driver and kept in its memory: for large
        RDDs, prefer ``take``, ``to_local_iterator`` or saving to files.

        Returns
        -------
        list
            Awaiting gives every record, partition by partition.

        See Also
        --------
        RDD.to_local_iterator : Streams the records instead.

        Examples
        --------
        >>> await ctx.parallelize(range(5), 2).collect()
        [0, 1, 2, 3, 4]
        """
        return await offload.concat_parts(await self._run(_collect_partition))

    async def count(self) -> int:
        """The number of records.

        Returns
        -------
        int
            Awaiting gives the number of records.

        Examples
        --------
        >>> await ctx.parallelize(range(100), 3).filter(lambda x: x % 3 == 0).count()
        34
        """
        return sum(await self._run(count_partition))

    async def sum(self) -> Any:
        """The sum of the records (0 for an empty RDD).

        Returns
        -------
        object
            Awaiting gives the sum (with ``+``) of the records: each partition's
            sum, then the sum of those, starting from 0.

        Examples
        --------
        >>> await ctx.parallelize([1.5, 2.5, 3]).sum()
        7.0
        """
        return sum(await self._run(_sum_partition), 0)

    async def reduce(self, f: Callable[[Any, Any], Any]) -> Any:
        """Combine all records with a commutative, associative binary ``f``.

        Parameters
        ----------
        f : callable
            ``f(a, b)`` returns their combination.  Each partition is reduced on
            the workers, then the partial results in the driver, so the order of
            the combinations is not the records' order.

        Returns
        -------
        object
            Awaiting gives the combination of all records.

        Raises
        ------
        ValueError
            When the RDD has no records.

        See Also
        --------
        RDD.fold : With a zero value, which allows empty RDDs.

        Examples
        --------
        >>> await ctx.parallelize(range(1, 6), 2).reduce(operator.mul)
        120
        """

        def reduce_partition(_: int, it: Iterator[Any]) -> list[Any]:
            first = next(it, _EMPTY)
            return [] if first is _EMPTY else [functools.reduce(f, it, first)]

        values = list(itertools.chain.from_iterable(await self._run(reduce_partition)))
        if not values:
            raise ValueError("Can not reduce() empty RDD")
        return reduce_in_driver(f, values)

    async def fold(self, zero_value: Any, op: Callable[[Any, Any], Any]) -> Any:
        """Fold each partition from ``zero_value`` with ``op``, then fold the partial results.

        Parameters
        ----------
        zero_value : object
            The identity of ``op``.  Each partition starts from a deep copy of it;
            the driver's fold starts from it too.
        op : callable
            ``op(a, b)`` returns their combination; it may change and return ``a``.

        Returns
        -------
        object
            Awaiting gives the folded value (``zero_value`` for an empty RDD).

        See Also
        --------
        RDD.reduce : Without a zero value.
        RDD.aggregate : With a result of another type than the records.

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 3, 4], 2).fold(0, operator.add)
        10
        """

        def fold_partition(_: int, it: Iterator[Any]) -> Any:
            return functools.reduce(op, it, copy.deepcopy(zero_value))

        return reduce_in_driver(op, await self._run(fold_partition), zero_value)

    async def take(self, num: int) -> list[Any]:
        """The first ``num`` records, scanning as few partitions as it can.

        Like Spark, it first computes one partition, then, while it has too few
        records, scans more partitions at a time (up to four times as many as it has
        scanned).

        Parameters
        ----------
        num : int
            How many records, ``>= 0`` (0 gives an empty list).

        Returns
        -------
        list
            Awaiting gives the first ``num`` records in partition order (fewer when
            the RDD has fewer).

        Raises
        ------
        TypeError
            When ``num`` is not an int.
        ValueError
            When ``num`` is negative (PySpark returns an empty list there; a
            negative count is a mistake, such as ``-1`` meant as "all").

        See Also
        --------
        RDD.first : One record.
        RDD.take_ordered : The smallest records instead of the first.

        Examples
        --------
        >>> await ctx.parallelize(range(100), 10).take(3)
        [0, 1, 2]
        """
        check_count(num, "take")
        if num == 0:
            return []
        total = self.get_num_partitions()
        chunks: list[list[Any]] = []
        taken = 0
        scanned = 0
        while taken < num and scanned < total:
            # Like Spark: try one partition, then grow the scan 4x while short.
            if scanned == 0:
                count = 1
            elif not taken:
                count = scanned * 4
            else:
                wanted = int(1.5 * num * scanned / taken) - scanned + 1
                count = min(max(wanted, 1), scanned * 4)
            parts = list(range(scanned, min(scanned + count, total)))
            take_partition = functools.partial(_take_partition, num - taken)
            for chunk in await self.ctx.jobs.run(self, take_partition, parts):
                if taken < num:
                    chunks.append(chunk if len(chunk) <= num - taken else chunk[: num - taken])
                    taken += len(chunks[-1])
            scanned += len(parts)
        return await offload.concat_parts(chunks) if chunks else []

    async def first(self) -> Any:
        """The first record; ``ValueError`` when the RDD is empty.

        Returns
        -------
        object
            Awaiting gives the first record in partition order.

        Raises
        ------
        ValueError
            When the RDD is empty.

        Examples
        --------
        >>> await ctx.parallelize([3, 1, 2]).first()
        3
        """
        found = await self.take(1)
        if not found:
            raise ValueError("RDD is empty")
        return found[0]

    async def foreach(self, f: Callable[[Any], Any]) -> None:
        """Call ``f`` on every record, on the workers.

        Parameters
        ----------
        f : callable
            ``f(record)``, called for its side effects (say, adding to an
            accumulator); what it returns is ignored.

        See Also
        --------
        RDD.foreach_partition : Once per partition.

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 3]).foreach(lambda x: None)
        """

        def each(_: int, it: Iterator[Any]) -> None:
            for record in it:
                f(record)

        await self._run(each)

    async def foreach_partition(self, f: Callable[[Iterator[Any]], Any]) -> None:
        """Call ``f`` once per partition with the partition's iterator, on the workers.

        Parameters
        ----------
        f : callable
            ``f(iterator)``, called for its side effects (say, writing the
            partition to a database over one connection); what it returns is
            ignored.

        See Also
        --------
        RDD.foreach : Once per record.

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 3], 2).foreach_partition(lambda it: list(it))
        """
        await self._run(lambda _, it: (f(it), None)[1])

    async def save_as_text_file(
        self,
        path: str,
        compression: str | None = None,
        overwrite: bool = False,
        *,
        compression_codec_class: str | None = None,
    ) -> None:
        """Write ``str(record)`` lines as ``path/part-00000``... plus ``_SUCCESS``.

        ``path`` is any fsspec path or URL (``s3://...``) that the driver and
        the workers can all reach.  Each task attempt writes under
        ``path/_temporary``; when the job has succeeded the driver moves the
        accepted attempts' files into place, then writes ``_SUCCESS``, so
        failed, retried or speculative attempts never leave partial or
        duplicate parts (see docs/data-sources.md).  ``compression`` is any
        fsspec codec name (``"gzip"``, ``"bz2"`` ...) or a Hadoop codec class
        name as PySpark takes (``"org.apache.hadoop.io.compress.GzipCodec"``;
        ``BZip2Codec``, ``DefaultCodec``/``DeflateCodec`` (a zlib stream,
        ``.deflate``), ``Lz4Codec`` and ``ZStandardCodec`` with their packages;
        ``SnappyCodec`` is refused).  ``Lz4Codec`` writes lz4 frames, which
        Hadoop's own codec does not read.  An existing ``path`` is an error
        unless ``overwrite`` is true.

        Parameters
        ----------
        path : str
            The output directory, a local path or fsspec URL.
        compression : str or None, optional
            An fsspec compression codec or Hadoop codec class for the part files
            (default: none).
        overwrite : bool, default False
            Replace an existing ``path`` instead of failing.
        compression_codec_class : str or None, optional
            The same as ``compression``, under PySpark's name (keyword only).

        Raises
        ------
        FileExistsError
            When ``path`` exists and ``overwrite`` is false.
        ValueError
            For an unknown ``compression``, one whose package is missing, or
            both ``compression`` and ``compression_codec_class``.

        See Also
        --------
        Context.text_file : Reads the lines back.
        RDD.save_as_pickle_file : Keeps the records' types.

        Examples
        --------
        >>> out = f"{tmp_dir}/doctest-save"
        >>> await ctx.parallelize(["x", "y", "z"], 2).save_as_text_file(out)
        >>> sorted(os.listdir(out))
        ['_SUCCESS', 'part-00000', 'part-00001']
        >>> gz = f"{tmp_dir}/doctest-save-gz"
        >>> codec = "org.apache.hadoop.io.compress.GzipCodec"
        >>> rdd = ctx.parallelize(["x", "y"], 1)
        >>> await rdd.save_as_text_file(gz, compression_codec_class=codec)
        >>> sorted(os.listdir(gz)), await ctx.text_file(gz).collect()
        (['_SUCCESS', 'part-00000.gz'], ['x', 'y'])
        """
        from aiospark.io.output import save_partitions, write_text_part

        path = check_path(path, "save_as_text_file")
        if compression_codec_class is not None:
            if compression is not None:
                raise ValueError("give compression or compression_codec_class, not both")
            compression = compression_codec_class
        await save_partitions(self, path, compression, overwrite, write_text_part)

    # -- streaming ----------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Any]:
        """Stream the records, partition by partition, in order.

        Partitions are computed ahead of the consumer, a bounded number at a time.

        >>> async for x in ctx.parallelize(range(4), 2):
        ...     print(x)
        0
        1
        2
        3
        """
        return self.to_local_iterator(prefetch_partitions=2 * self.ctx.default_parallelism)

    def __iter__(self) -> Iterator[Any]:
        """Not iterable with ``for``: the records come from a job, so use ``async for``.

        >>> for x in ctx.parallelize(range(4)):
        ...     pass
        Traceback (most recent call last):
        ...
        TypeError: an RDD is not iterable with 'for': its records come from a job; ...
        """
        raise TypeError(
            "an RDD is not iterable with 'for': its records come from a job; "
            "use 'async for x in rdd' or 'await rdd.collect()' (or 'await rdd.take(n)')"
        )


_EMPTY = object()


def _debug_lines(rdd: RDD) -> list[str]:
    """Lineage lines in Spark's layout: `` |  `` for a narrow parent, `` +-(n) `` for a shuffle."""
    level = "" if rdd.storage_level is None else repr(rdd.storage_level)
    label = f" {rdd._name!r}" if rdd._name else ""
    lines = [f"{rdd.plan.kind}[{rdd.id}]{label} [{level}]"]
    for dep in rdd.deps:
        parent = _debug_lines(dep.rdd)
        if isinstance(dep, ShuffleDependency):
            lines.append(f" +-({dep.rdd.get_num_partitions()}) {parent[0]}")
            lines.extend("   " + line for line in parent[1:])
        else:
            lines.append(f" |  {parent[0]}")
            lines.extend(parent[1:])
    return lines


# Like ``mapped.map_records`` (see there why), these call user functions from
# generators, so that a StopIteration out of one fails the task.


def _filter_records(f: Callable[[Any], Any], records: Iterable[Any]) -> Iterator[Any]:
    try:
        for record in records:
            if f(record):
                yield record
    except StopIteration as exc:
        raise UserCodeError.wrapping(exc) from exc


def _map_value_records(f: Callable[[Any], Any], pairs: Iterable[Any]) -> Iterator[tuple]:
    try:
        for key, value in pairs:
            yield key, f(value)
    except StopIteration as exc:
        raise UserCodeError.wrapping(exc) from exc
    except (TypeError, ValueError) as exc:
        _raise_if_not_a_pair(exc, "map_values")
        raise


def _flat_map_value_records(
    f: Callable[[Any], Iterable[Any]], pairs: Iterable[Any]
) -> Iterator[tuple]:
    try:
        for key, value in pairs:
            for item in f(value):
                yield key, item
    except StopIteration as exc:
        raise UserCodeError.wrapping(exc) from exc
    except (TypeError, ValueError) as exc:
        _raise_if_not_a_pair(exc, "flat_map_values")
        raise


def _raise_if_not_a_pair(exc: Exception, op: str) -> None:
    """Raise the clear error when ``exc`` is the caller's own unpacking of a record."""
    clear = pair_error(op, exc) if raised_here(exc) else None
    if clear is not None:
        raise clear from exc


def _collect_partition(_: int, it: Iterator[Any]) -> list[Any]:
    return list(it)


def _sum_partition(_: int, it: Iterator[Any]) -> Any:
    return sum(it, 0)


def _take_partition(limit: int, _: int, it: Iterator[Any]) -> list[Any]:
    return list(itertools.islice(it, limit))


class _CutPlan(Plan):
    """What a checkpointed RDD ships to the workers instead of its lineage."""

    def __init__(self, partitioner: Partitioner | None) -> None:
        super().__init__((), partitioner)
