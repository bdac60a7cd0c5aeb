"""The bottom of the driver: what lineage is made of, and what an RDD may ask of its context.

An RDD is Spark's five-tuple: its splits, its dependencies on parents, a
function computing one split from its parents' iterators, an optional
partitioner and optional preferred locations per split.  This module holds the
value types those are made of (``Split``, ``Dependency``, ``Partitioner``,
``Aggregator``, ``StorageLevel``), the ``Plan`` base class that computes an
RDD's splits (concrete plans live in ``aiospark.plans``), and the two
protocols that keep the layers above acyclic:

- ``Node``: an RDD as plans and the scheduler see it (``aiospark.rdd.RDD`` is one);
- ``Driver``: what an RDD asks of the context that made it (``aiospark.Context`` is one).

Nothing here imports the RDD, the scheduler or the context.
"""

from __future__ import annotations

import dataclasses
import operator
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, ClassVar, Protocol

from aiospark.hashing import hash_failure, portable_hash
from aiospark.memory import UNLIMITED, TaskMemory
from aiospark.validation import positive_int


@dataclasses.dataclass(frozen=True)
class Split:
    """One partition of an RDD.  Subclasses carry what computing it needs."""

    index: int


@dataclasses.dataclass(frozen=True)
class DataSplit(Split):
    """A split holding its records (``parallelize``) or a ``range``."""

    data: Any = ()


class Dependency:
    """A child RDD's dependency on one parent RDD."""

    def __init__(self, rdd: Node) -> None:
        self.rdd = rdd


class NarrowDependency(Dependency):
    """Each child split depends on a few parent splits, computed in the same task."""

    def parents(self, split_index: int) -> list[int]:
        """Indices of the parent splits that child split ``split_index`` reads."""
        raise NotImplementedError


class OneToOneDependency(NarrowDependency):
    """Child split *i* reads parent split *i*.

    >>> OneToOneDependency(None).parents(3)
    [3]
    """

    def parents(self, split_index: int) -> list[int]:
        return [split_index]


class ShuffleDependency(Dependency):
    """The child's splits read every parent split, regrouped by key: a stage boundary."""

    def __init__(
        self,
        rdd: Node,
        shuffle_id: int,
        partitioner: Partitioner,
        aggregator: Aggregator | None = None,
        map_side_combine: bool = False,
        op: str | None = None,
    ) -> None:
        super().__init__(rdd)
        self.shuffle_id = shuffle_id
        self.partitioner = partitioner
        self.aggregator = aggregator
        self.map_side_combine = map_side_combine and aggregator is not None
        #: the operation shuffling (``"reduce_by_key"`` ...), named by errors about its records
        self.op = op
        #: how map outputs compress their frames (chosen by the Context; None: not at all)
        self.codec: str | None = rdd.ctx.shuffle_codec() if rdd is not None else None
        if rdd is not None:  # its map outputs are deleted once it is garbage-collected
            rdd.ctx.watch(self, "shuffle", shuffle_id)


class Partitioner:
    """Assigns each key to one of ``num_partitions`` partitions."""

    num_partitions: int

    def partition(self, key: Any) -> int:
        """The partition ``key`` goes to; subclasses implement it.

        Parameters
        ----------
        key : object
            A record's key.

        Returns
        -------
        int
            The partition's index, in ``range(num_partitions)``.

        Examples
        --------
        >>> class ByLength(Partitioner):
        ...     num_partitions = 3
        ...     def partition(self, key): return min(len(key), 2)
        >>> [ByLength().partition(k) for k in ("", "a", "abc")]
        [0, 1, 2]
        """
        raise NotImplementedError


class HashPartitioner(Partitioner):
    """``hash_func(key) % num_partitions``, with a hash every process agrees on.

    Two hash partitioners are equal when they have the same number of
    partitions and the same ``hash_func``: an RDD partitioned by one is not
    shuffled again for an operation by key that uses the other.

    Parameters
    ----------
    num_partitions : int
        The number of partitions, ``>= 1``.
    hash_func : callable, default portable_hash
        Maps a key to an int.

    Raises
    ------
    ValueError
        When ``num_partitions`` is not a positive int.

    See Also
    --------
    RDD.partition_by : Partitions a pair RDD this way.

    Examples
    --------
    >>> p = HashPartitioner(4)
    >>> p.partition(6), p.partition(None)
    (2, 0)
    >>> HashPartitioner(4) == HashPartitioner(4), HashPartitioner(4) == HashPartitioner(5)
    (True, False)
    """

    def __init__(
        self, num_partitions: int, hash_func: Callable[[Any], int] = portable_hash
    ) -> None:
        self.num_partitions = positive_int(num_partitions, "num_partitions")
        self.hash_func = hash_func

    def partition(self, key: Any) -> int:
        """The partition of ``key``: ``hash_func(key) % num_partitions``.

        Parameters
        ----------
        key : object
            A record's key; hashable.

        Returns
        -------
        int
            The partition's index, in ``range(num_partitions)``.

        Raises
        ------
        TypeError
            When ``key`` is unhashable (with the default ``hash_func``).

        Examples
        --------
        >>> HashPartitioner(3).partition(7)
        1
        """
        return self.hash_func(key) % self.num_partitions

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, HashPartitioner)
            and other.num_partitions == self.num_partitions
            and other.hash_func is self.hash_func
        )

    def __hash__(self) -> int:
        return hash((self.num_partitions, id(self.hash_func)))

    def __repr__(self) -> str:
        return f"HashPartitioner({self.num_partitions})"


@dataclasses.dataclass(frozen=True)
class Aggregator:
    """How values of one key are combined: Spark's ``combineByKey`` triple."""

    create_combiner: Callable[[Any], Any]
    merge_value: Callable[[Any, Any], Any]
    merge_combiners: Callable[[Any, Any], Any]
    #: True when create_combiner is the identity (reduce_by_key): saves a call per key.
    identity_create: bool = False

    def combine_values(self, records: Iterable[tuple], into: dict | None = None) -> dict:
        """Combine ``(key, value)`` records into ``{key: combiner}`` (``into``, when given).

        >>> counting = Aggregator(lambda v: v, operator.add, operator.add, identity_create=True)
        >>> counting.combine_values(iter([("a", 1), ("b", 1), ("a", 1), ("a", 2.5)]))
        {'a': 4.5, 'b': 1}

        An error raised by the merge function is the user's, even a ``KeyError``:

        >>> Aggregator(lambda v: v, lambda a, b: {}[b], operator.add).combine_values(
        ...     [("a", 1), ("a", 2)])
        Traceback (most recent call last):
        KeyError: 2
        """
        combined: dict = {} if into is None else into
        return self._combine_values(records, combined)

    def sums(self) -> bool:
        """Whether this is ``reduce_by_key(operator.add)``'s aggregator: values summed.

        >>> Aggregator(lambda v: v, operator.add, operator.add, identity_create=True).sums()
        True
        """
        return (
            self.identity_create
            and self.merge_value is operator.add
            and self.merge_combiners is operator.add
        )

    def _combine_values(self, records: Iterable[tuple], combined: dict) -> dict:
        if self.identity_create:
            return _merge_into(combined, records, self.merge_value)
        merge, create = self.merge_value, self.create_combiner
        key = None
        try:
            for key, value in records:
                try:
                    old = combined[key]
                except KeyError:
                    combined[key] = create(value)
                else:
                    combined[key] = merge(old, value)
        except TypeError as exc:
            _raise_if_unhashable(key, exc)
            raise
        return combined

    def combine_combiners(
        self, records: Iterable[tuple], into: dict | None = None
    ) -> dict:
        """Merge ``(key, combiner)`` records into ``{key: combiner}``."""
        combined: dict = {} if into is None else into
        return _merge_into(combined, records, self.merge_combiners)


def _merge_into(combined: dict, records: Iterable[tuple], merge: Callable) -> dict:
    """Fold ``(key, value)`` records into ``combined`` with ``merge``, a key's first
    value kept as it is (the loop of ``reduce_by_key`` and of every reduce side).

    This loop is the map side's cost per record, so it is written for speed:
    ``try``/``except KeyError``/``else`` beats a membership test when most keys
    repeat and keeps a KeyError raised by ``merge`` the user's own, and
    ``old + value`` is ``operator.add(old, value)`` without the call
    (``reduce_by_key(add)``, counting and summing, is most shuffles).
    """
    key = None
    try:
        if merge is operator.add:
            for key, value in records:
                try:
                    old = combined[key]
                except KeyError:
                    combined[key] = value
                else:
                    combined[key] = old + value
        else:
            for key, value in records:
                try:
                    old = combined[key]
                except KeyError:
                    combined[key] = value
                else:
                    combined[key] = merge(old, value)
    except TypeError as exc:
        _raise_if_unhashable(key, exc)
        raise
    return combined


#: The functions whose loops read ``(key, value)`` records (see ``pair_errors.raised_in``).
COMBINING_LOOPS = (Aggregator._combine_values, _merge_into)


def _raise_if_unhashable(key: Any, exc: TypeError) -> None:
    """Turn Python's bare "unhashable type" into an error saying keys must be hashable."""
    clear = hash_failure(key)
    if clear is not None:
        raise clear from exc


@dataclasses.dataclass(frozen=True)
class StorageLevel:
    """Where ``persist`` keeps an RDD's splits.

    Use the predefined levels: ``MEMORY_ONLY`` (the default of ``persist``),
    ``MEMORY_ONLY_SER``, ``MEMORY_AND_DISK``, ``MEMORY_AND_DISK_SER`` and
    ``DISK_ONLY``, and their replicated forms ``MEMORY_ONLY_2``,
    ``MEMORY_ONLY_SER_2``, ``MEMORY_AND_DISK_2``, ``MEMORY_AND_DISK_SER_2``,
    ``DISK_ONLY_2`` and ``DISK_ONLY_3``; docs/caching.md describes them.

    Parameters
    ----------
    use_disk : bool
        Splits may go to the worker's disk: all of them without
        ``use_memory``, else those that do not fit in memory or are evicted
        from it (without ``use_disk`` those are dropped, and recomputed from
        lineage when needed).
    use_memory : bool
        Splits are kept in the worker's memory, within its budget.
    deserialized : bool
        In memory, keep Python objects (faster to read) rather than pickled
        frames (smaller).
    replication : int, default 1
        On how many workers each split is kept: the worker that computed it
        pushes copies to ``replication - 1`` others (on other hosts first), so
        losing a worker costs no recomputation.  With fewer workers than
        that, each split is kept on every worker.

    Raises
    ------
    ValueError
        When ``replication`` is not a positive int.

    Examples
    --------
    >>> StorageLevel.MEMORY_ONLY
    StorageLevel(use_disk=False, use_memory=True, deserialized=True, replication=1)
    >>> print(StorageLevel.MEMORY_AND_DISK)
    Disk Memory Deserialized 1x Replicated
    >>> str(StorageLevel.MEMORY_ONLY_SER_2), StorageLevel.DISK_ONLY_3.replication
    ('Memory Serialized 2x Replicated', 3)
    >>> StorageLevel(True, True, False, 4) == StorageLevel(True, True, False, replication=4)
    True
    """

    use_disk: bool
    use_memory: bool
    deserialized: bool
    replication: int = 1

    def __post_init__(self) -> None:
        if type(self.replication) is not int or self.replication < 1:
            raise ValueError(f"replication must be a positive int, got {self.replication!r}")

    def __str__(self) -> str:
        """PySpark's description of the level (``repr`` shows the fields).

        >>> str(StorageLevel.MEMORY_ONLY_SER), str(StorageLevel.DISK_ONLY)
        ('Memory Serialized 1x Replicated', 'Disk Serialized 1x Replicated')
        """
        where = ("Disk " if self.use_disk else "") + ("Memory " if self.use_memory else "")
        form = "Deserialized" if self.deserialized else "Serialized"
        return f"{where}{form} {self.replication}x Replicated"

    MEMORY_ONLY: ClassVar[StorageLevel]
    MEMORY_ONLY_SER: ClassVar[StorageLevel]
    MEMORY_AND_DISK: ClassVar[StorageLevel]
    MEMORY_AND_DISK_SER: ClassVar[StorageLevel]
    DISK_ONLY: ClassVar[StorageLevel]
    MEMORY_ONLY_2: ClassVar[StorageLevel]
    MEMORY_ONLY_SER_2: ClassVar[StorageLevel]
    MEMORY_AND_DISK_2: ClassVar[StorageLevel]
    MEMORY_AND_DISK_SER_2: ClassVar[StorageLevel]
    DISK_ONLY_2: ClassVar[StorageLevel]
    DISK_ONLY_3: ClassVar[StorageLevel]


StorageLevel.MEMORY_ONLY = StorageLevel(False, True, True)
StorageLevel.MEMORY_ONLY_SER = StorageLevel(False, True, False)
StorageLevel.MEMORY_AND_DISK = StorageLevel(True, True, True)
StorageLevel.MEMORY_AND_DISK_SER = StorageLevel(True, True, False)
StorageLevel.DISK_ONLY = StorageLevel(True, False, False)
StorageLevel.MEMORY_ONLY_2 = StorageLevel(False, True, True, 2)
StorageLevel.MEMORY_ONLY_SER_2 = StorageLevel(False, True, False, 2)
StorageLevel.MEMORY_AND_DISK_2 = StorageLevel(True, True, True, 2)
StorageLevel.MEMORY_AND_DISK_SER_2 = StorageLevel(True, True, False, 2)
StorageLevel.DISK_ONLY_2 = StorageLevel(True, False, False, 2)
StorageLevel.DISK_ONLY_3 = StorageLevel(True, False, False, 3)


class TaskContext(Protocol):
    """What a split's computation may ask of the worker running it."""

    stage_id: int
    partition: int
    attempt: int

    def check(self) -> None:
        """Raise ``TaskCancelled`` if the task has been cancelled."""

    def get_block(self, rdd_id: int, split: int) -> Iterator[Any] | None:
        """The records of a cached split of an RDD, or None when it must be computed."""

    def put_block(
        self, rdd_id: int, split: int, records: Iterable[Any], level: StorageLevel
    ) -> Iterator[Any]:
        """Keep a split of a persisted RDD as it is computed (if it fits); returns its records."""

    def fetch_shuffle(self, shuffle_id: int, reduce_id: int) -> Iterator[list]:
        """Batches of records of one reduce partition, from every map output."""

    #: The task's share of the worker's memory; buffers past it spill to ``spill_dir``.
    memory: TaskMemory
    spill_dir: str


class LocalTaskContext:
    """A ``TaskContext`` for computing splits in the current process (tests, examples).

    It keeps blocks in a dict, is never cancelled, and cannot read shuffles.

    >>> tctx = LocalTaskContext()
    >>> list(tctx.put_block(1, 0, iter([1, 2]), StorageLevel.MEMORY_ONLY))
    [1, 2]
    >>> list(tctx.get_block(1, 0)), tctx.get_block(2, 0)
    ([1, 2], None)
    """

    def __init__(self, stage_id: int = 0, partition: int = 0, attempt: int = 0) -> None:
        self.stage_id = stage_id
        self.partition = partition
        self.attempt = attempt
        self.blocks: dict[tuple[int, int], list] = {}
        self.memory = UNLIMITED
        self.spill_dir = tempfile.gettempdir()

    def check(self) -> None:
        return None

    def get_block(self, rdd_id: int, split: int) -> Iterator[Any] | None:
        records = self.blocks.get((rdd_id, split))
        return None if records is None else iter(records)

    def put_block(
        self, rdd_id: int, split: int, records: Iterable[Any], level: StorageLevel
    ) -> Iterator[Any]:
        kept = self.blocks[(rdd_id, split)] = list(records)
        return iter(kept)

    def fetch_shuffle(self, shuffle_id: int, reduce_id: int) -> Iterator[list]:
        raise NotImplementedError("LocalTaskContext cannot read shuffle outputs")


class RangePartitioner(Partitioner):
    """Sends a key to the range of sorted ``bounds`` that ``key_func(key)`` falls in.

    Partition *i* holds the keys with ``bounds[i - 1] < key_func(key) <= bounds[i]``
    (``bisect_left``); ``ascending=False`` numbers the ranges from the top.  The
    bounds are ``key_func`` values, at most ``num_partitions - 1`` of them.

    ``bounds=None`` means the bounds are picked on the cluster, as part of a
    sort's lineage (``sort_by_key`` samples the keys in a stage of its own); the
    driver's copy then cannot place keys, and equals only itself.

    Parameters
    ----------
    num_partitions : int
        The number of partitions, ``>= 1``.
    bounds : list or None, optional
        The sorted upper bounds of the ranges, fewer than ``num_partitions``
        (``None``: picked on the cluster).
    ascending : bool, default True
        Number the ranges from the smallest keys; ``False`` from the largest.
    key_func : callable or None, optional
        Compare ``key_func(key)`` with the bounds instead of the key.

    Raises
    ------
    ValueError
        When ``num_partitions`` is not a positive int or there are too many
        bounds.

    See Also
    --------
    RDD.sort_by_key : Sorts with a range partitioner.

    Examples
    --------
    >>> p = RangePartitioner(3, ["g", "p"])
    >>> [p.partition(k) for k in ("a", "g", "h", "z")]
    [0, 0, 1, 2]
    >>> RangePartitioner(3, ["g", "p"], ascending=False).partition("a")
    2
    >>> RangePartitioner(3, ["g", "p"]) == RangePartitioner(3, ["g", "p"])
    True
    >>> p.partition(5)
    Traceback (most recent call last):
    ...
    TypeError: range partitioning needs mutually comparable keys: ...
    """

    def __init__(
        self,
        num_partitions: int,
        bounds: list | None = None,
        ascending: bool = True,
        key_func: Callable[[Any], Any] | None = None,
    ) -> None:
        from bisect import bisect_left

        positive_int(num_partitions, "num_partitions")
        if bounds is not None and len(bounds) >= num_partitions:
            raise ValueError(
                f"{num_partitions} partitions take at most {num_partitions - 1} bounds, "
                f"got {len(bounds)}"
            )
        self.num_partitions = num_partitions
        self.bounds = None if bounds is None else list(bounds)
        self.ascending = bool(ascending)
        self.key_func = key_func
        self._bisect_left = bisect_left

    def partition(self, key: Any) -> int:
        """The partition of ``key``: the index of its range.

        Parameters
        ----------
        key : object
            A record's key, comparable with the bounds (after ``key_func``).

        Returns
        -------
        int
            The partition's index, in ``range(num_partitions)``.

        Raises
        ------
        RuntimeError
            When the bounds are picked on the cluster (``bounds=None``).
        TypeError
            When the key is not comparable with the bounds.

        Examples
        --------
        >>> RangePartitioner(2, [10]).partition(10), RangePartitioner(2, [10]).partition(11)
        (0, 1)
        """
        bounds = self.bounds
        if bounds is None:
            raise RuntimeError(
                "this RangePartitioner's bounds are picked on the cluster by its sort; "
                "it cannot place keys in the driver"
            )
        try:
            p = self._bisect_left(bounds, key if self.key_func is None else self.key_func(key))
        except TypeError as exc:
            if "not supported between" not in str(exc):
                raise
            raise TypeError(f"range partitioning needs mutually comparable keys: {exc}") from None
        return p if self.ascending else self.num_partitions - 1 - p

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return (
            isinstance(other, RangePartitioner)
            and self.bounds is not None
            and other.num_partitions == self.num_partitions
            and other.ascending == self.ascending
            and other.key_func is self.key_func
            and other.bounds == self.bounds
        )

    def __hash__(self) -> int:
        return hash((self.num_partitions, self.ascending))

    def __repr__(self) -> str:
        bounds = "picked on the cluster" if self.bounds is None else repr(self.bounds)
        order = "" if self.ascending else ", descending"
        return f"RangePartitioner({self.num_partitions}, {bounds}{order})"


# -- what the layers above see of each other --------------------------------------


#: ``func(split_index, records)``: what a job computes on each partition of its RDD.
PartitionFunc = Callable[[int, Iterator[Any]], Any]


class Plan:
    """How an RDD computes its splits: dependencies, partitioner, splits and records.

    An ``RDD`` is an identity (id, name, persistence, checkpoint) holding one
    plan; the plan is the rest of Spark's five-tuple.  A new kind of RDD is a
    new plan: a subclass defining ``compute_splits`` and ``compute`` (and
    ``preferred_locations`` when some hosts are cheaper).  Plans are pickled
    to the workers with the RDD, without their cached splits (each task
    carries its own split).

    >>> class Numbers(Plan):
    ...     def compute_splits(self):
    ...         return [DataSplit(i, range(i * 10, i * 10 + 3)) for i in range(2)]
    ...     def compute(self, split, tctx):
    ...         return iter(split.data)
    >>> plan = Numbers()
    >>> [list(plan.compute(s, LocalTaskContext())) for s in plan.splits()]
    [[0, 1, 2], [10, 11, 12]]
    >>> plan.kind
    'NumbersRDD'
    """

    def __init__(
        self, deps: Iterable[Dependency] = (), partitioner: Partitioner | None = None
    ) -> None:
        self.deps: list[Dependency] = list(deps)
        self.partitioner = partitioner
        self._splits: list[Split] | None = None

    @property
    def kind(self) -> str:
        """The RDD kind ``to_debug_string`` shows: the class name plus ``RDD``."""
        return f"{type(self).__name__}RDD"

    def splits(self) -> list[Split]:
        """The splits, computed once in the driver."""
        if self._splits is None:
            self._splits = self.compute_splits()
        return self._splits

    def compute_splits(self) -> list[Split]:
        """Compute the list of splits (called once, in the driver)."""
        raise NotImplementedError

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        """The records of ``split``, from the parents' iterators (runs on a worker)."""
        raise NotImplementedError

    def preferred_locations(self, split: Split) -> list[str]:
        """Hosts where ``split`` is cheapest to compute (none by default)."""
        return []

    async def prepare(self) -> None:
        """Driver-side work before a job computes this plan, done off the event loop (none)."""

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_splits"] = None
        return state


class Checkpoint(Protocol):
    """Where an RDD marked with ``checkpoint()`` is written (``io.checkpoint.CheckpointState``)."""

    written: bool

    def write_partition(self, index: int, records: Iterator[Any]) -> None:
        """Write split ``index``'s records (runs on a worker)."""
        ...


class Node(Protocol):
    """An RDD as plans, dependencies and the scheduler see it (``aiospark.RDD`` is one)."""

    id: int
    ctx: Driver
    storage_level: StorageLevel | None
    checkpoint_data: Checkpoint | None

    @property
    def deps(self) -> list[Dependency]: ...

    @property
    def partitioner(self) -> Partitioner | None: ...

    @property
    def plan(self) -> Plan: ...

    def splits(self) -> list[Split]: ...

    def get_num_partitions(self) -> int: ...

    def iterator(self, split: Split, tctx: TaskContext) -> Iterator[Any]: ...

    def preferred_locations(self, split: Split) -> list[str]: ...


class Jobs(Protocol):
    """The one path every action's job takes (``aiospark.jobpath.JobPath`` is it)."""

    async def run(
        self, rdd: Node, func: PartitionFunc, partitions: list[int] | None = None
    ) -> list[Any]:
        """Run ``func`` on ``partitions`` (all by default) of ``rdd``; their results in order."""
        ...

    def stream(self, rdd: Node, ahead: int) -> AsyncIterator[list[Any]]:
        """Each partition's records in order, computing at most ``ahead`` partitions early."""
        ...


class Driver(Protocol):
    """What an RDD asks of the context that made it (``aiospark.Context`` is one)."""

    jobs: Jobs
    storage_options: dict[str, Any]

    @property
    def default_parallelism(self) -> int: ...

    def new_rdd_id(self) -> int: ...

    def new_shuffle_id(self) -> int: ...

    def shuffle_codec(self) -> str | None: ...

    def get_checkpoint_dir(self) -> str | None: ...

    def forget_rdd(self, rdd_id: int) -> None:
        """Drop ``rdd_id``'s cached splits everywhere (``unpersist``)."""
        ...

    def watch(self, obj: object, kind: str, key: int | str) -> None:
        """Clean ``(kind, key)`` up on the cluster once ``obj`` is garbage-collected
        (``kind``: "shuffle", "rdd", "broadcast" or "checkpoint")."""
        ...
