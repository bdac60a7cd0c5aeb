"""What the scheduler needs of an RDD and of a stage, as ``Protocol`` types.

The scheduler sits below the RDD layer: it never imports ``aiospark.rdd`` or
``aiospark.context``.  Whatever has these attributes is an RDD to it (the
structural typing of ``typing.Protocol``), so the classes of the RDD layer can
change shape freely as long as they keep them.  This module imports nothing of
aiospark, so that every part of the scheduler may import it.

>>> class Source:
...     id = 1
...     deps = []
...     storage_level = None
...     def splits(self): return ["split 0", "split 1"]
...     def preferred_locations(self, split): return ["host-a"]
>>> isinstance(Source(), SchedulerRDD)
True
>>> isinstance(object(), SchedulerRDD)
False
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

#: Given (rdd_id, split_index), the workers holding that cached split.
CacheLookup = Callable[[int, int], "set[str]"]


class StorageLevelLike(Protocol):
    """What the scheduler reads of a storage level: on how many workers to keep a split."""

    @property
    def replication(self) -> int: ...


@runtime_checkable
class SchedulerRDD(Protocol):
    """An RDD as the scheduler sees it: an id, its dependencies, its splits and where
    they would best be computed, and whether its splits are persisted."""

    @property
    def id(self) -> int: ...

    @property
    def deps(self) -> Sequence[SchedulerDependency]: ...

    #: set (to an ``aiospark.lineage.StorageLevel``) when the RDD's splits are persisted:
    #: the scheduler only asks whether it is None, and its ``replication``
    @property
    def storage_level(self) -> StorageLevelLike | None: ...

    #: the RDD's partitions (``aiospark.lineage.Split`` objects); one task per split
    def splits(self) -> Sequence[object]: ...

    # ``split`` is one of the RDD's own ``splits()``: each RDD class takes its own kind
    # (a narrower parameter than ``object`` would not type-check), hence ``Any``.
    def preferred_locations(self, split: Any) -> Sequence[str]: ...


@runtime_checkable
class SchedulerDependency(Protocol):
    """A dependency on a parent RDD (``aiospark.lineage.Dependency``)."""

    @property
    def rdd(self) -> SchedulerRDD: ...


@runtime_checkable
class SchedulerStage(Protocol):
    """A stage as the scheduler's state machine sees it (``aiospark.scheduler.dag.Stage``
    is one; unit tests use lighter fakes).

    ``shuffle_id`` is set on shuffle-map stages; ``parents`` are the map
    stages whose outputs it reads; ``preferred`` names the workers or hosts
    where a partition is cheapest to compute.
    """

    @property
    def id(self) -> int: ...

    @property
    def num_partitions(self) -> int: ...

    @property
    def parents(self) -> Sequence[SchedulerStage]: ...

    @property
    def shuffle_id(self) -> int | None: ...

    def preferred(self, partition: int, cache: CacheLookup) -> Sequence[str]: ...
