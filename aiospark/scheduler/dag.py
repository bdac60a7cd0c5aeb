"""Cutting lineage into stages at shuffle boundaries.

A *result stage* computes the action's function on splits of the final RDD; a
*shuffle-map stage* computes the splits of a shuffle dependency's parent and
writes them out bucketed by reducer.  Narrow dependencies stay inside a stage
and run pipelined in one task.  Shuffle-map stages are shared by every job that
reads the same shuffle, so a second action on a reduced RDD skips the map side.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from aiospark.lineage import NarrowDependency, ShuffleDependency
from aiospark.scheduler.protocols import CacheLookup, SchedulerRDD

#: What a result stage runs on each partition: ``func(split_index, iterator)``.
ResultFunc = Callable[[int, Iterator[Any]], Any]


@dataclasses.dataclass(eq=False)
class Stage:
    """A set of tasks, one per partition, computing ``rdd`` without a shuffle in between."""

    id: int
    rdd: SchedulerRDD
    num_partitions: int
    parents: list[Stage]
    #: Set on shuffle-map stages: the dependency whose map side this stage writes.
    shuffle_dep: ShuffleDependency | None = None
    #: Set on result stages: ``func(split_index, iterator)`` run on each partition.
    func: ResultFunc | None = None
    #: A barrier stage (``rdd.barrier()`` in its lineage): its tasks start together
    #: and are retried together (``aiospark.scheduler.barrier``).
    barrier: bool = False

    @property
    def shuffle_id(self) -> int | None:
        return None if self.shuffle_dep is None else self.shuffle_dep.shuffle_id

    def preferred(self, partition: int, cache: CacheLookup) -> list[str]:
        """Workers or hosts where ``partition`` is cheapest to compute."""
        return preferred_locations(self.rdd, partition, cache)

    def __repr__(self) -> str:
        kind = "ShuffleMapStage" if self.shuffle_dep is not None else "ResultStage"
        mode = " barrier" if self.barrier else ""
        return f"<{kind} {self.id}{mode} rdd={self.rdd.id} tasks={self.num_partitions}>"


def narrow_ancestors(rdd: SchedulerRDD) -> Iterator[SchedulerRDD]:
    """The RDD and every ancestor reachable through narrow dependencies (each once)."""
    seen = {rdd.id}
    stack = [rdd]
    while stack:
        node = stack.pop()
        yield node
        for dep in node.deps:
            if isinstance(dep, NarrowDependency) and dep.rdd.id not in seen:
                seen.add(dep.rdd.id)
                stack.append(dep.rdd)


def is_barrier(rdd: SchedulerRDD) -> bool:
    """Whether ``rdd``'s stage is a barrier stage: an RDD made by ``rdd.barrier()`` is
    in its narrow lineage (Spark's ``RDD.isBarrier``)."""
    return any(getattr(node, "barrier_mode", False) for node in narrow_ancestors(rdd))


def all_ancestors(rdd: SchedulerRDD) -> list[SchedulerRDD]:
    """The RDD and every ancestor, through narrow and shuffle dependencies, each once."""
    seen = {rdd.id: rdd}
    stack = [rdd]
    while stack:
        for dep in stack.pop().deps:
            if dep.rdd.id not in seen:
                seen[dep.rdd.id] = dep.rdd
                stack.append(dep.rdd)
    return list(seen.values())


def shuffle_dependencies(rdd: SchedulerRDD) -> list[ShuffleDependency]:
    """The shuffle dependencies directly below ``rdd``'s stage, in lineage order."""
    found: list[ShuffleDependency] = []
    for node in narrow_ancestors(rdd):
        found.extend(d for d in node.deps if isinstance(d, ShuffleDependency))
    return found


def cached_blocks(rdd: SchedulerRDD, partition: int) -> list[tuple[int, int, int]]:
    """The persisted blocks a task for ``partition`` of ``rdd`` may read (or cache), as
    ``(rdd_id, split, replication of its storage level)``."""
    found = []
    stack = [(rdd, partition)]
    seen = set()
    while stack:
        node, index = stack.pop()
        if (node.id, index) in seen:
            continue
        seen.add((node.id, index))
        if node.storage_level is not None:
            found.append((node.id, index, node.storage_level.replication))
            continue  # a cached block hides what is below it
        for dep in node.deps:
            if isinstance(dep, NarrowDependency):
                stack.extend((dep.rdd, parent) for parent in dep.parents(index))
    return found


def preferred_locations(rdd: SchedulerRDD, partition: int, cache: CacheLookup) -> list[str]:
    """Spark's rule: cached copies first, then the RDD's own preference, then narrow parents'."""
    stack = [(rdd, partition)]
    seen = set()
    while stack:
        node, index = stack.pop(0)
        if (node.id, index) in seen:
            continue
        seen.add((node.id, index))
        if node.storage_level is not None:
            holders = cache(node.id, index)
            if holders:
                return sorted(holders)
        own = node.preferred_locations(node.splits()[index])
        if own:
            return list(own)
        for dep in node.deps:
            if isinstance(dep, NarrowDependency):
                stack.extend((dep.rdd, parent) for parent in dep.parents(index))
    return []


class StageBuilder:
    """Makes stages for jobs, reusing shuffle-map stages across jobs.

    Map stages are held weakly: a stage lives while a job (or a later stage)
    needs it, and holds its shuffle dependency, so a shuffle some running job
    reads is never garbage-collected (nor cleaned).  A later job on an RDD the
    program kept gets a new stage for the same shuffle, whose map outputs are
    still known by shuffle id: its map side is skipped, not rerun.
    """

    def __init__(self) -> None:
        self._next_id = 0
        self._map_stages: weakref.WeakValueDictionary[int, Stage] = (
            weakref.WeakValueDictionary()
        )

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def result_stage(self, rdd: SchedulerRDD, func: ResultFunc) -> Stage:
        """The result stage of a job computing ``func`` on ``rdd``, with its parent stages."""
        parents = [self.map_stage(dep) for dep in shuffle_dependencies(rdd)]
        return Stage(self._new_id(), rdd, len(rdd.splits()), parents, func=func,
                     barrier=is_barrier(rdd))

    def map_stage(self, dep: ShuffleDependency) -> Stage:
        """The (shared) stage writing the map side of ``dep``."""
        stage = self._map_stages.get(dep.shuffle_id)
        if stage is not None:
            return stage
        made: list[Stage] = []  # strong references until the walk is done
        # Post-order walk without recursion: deep iterative lineages are common.
        stack: list[tuple[ShuffleDependency, bool]] = [(dep, False)]
        while stack:
            current, parents_done = stack.pop()
            found = self._map_stages.get(current.shuffle_id)
            if found is not None:
                made.append(found)
                continue
            below = shuffle_dependencies(current.rdd)
            if not parents_done:
                stack.append((current, True))
                stack.extend((d, False) for d in below)
                continue
            made.append(Stage(
                self._new_id(),
                current.rdd,
                len(current.rdd.splits()),
                [self._map_stages[d.shuffle_id] for d in below],
                shuffle_dep=current,
                barrier=is_barrier(current.rdd),
            ))
            self._map_stages[current.shuffle_id] = made[-1]
        return self._map_stages[dep.shuffle_id]

    def ancestors(self, stage: Stage) -> list[Stage]:
        """``stage`` and all the stages it (transitively) depends on."""
        seen: dict[int, Stage] = {}
        stack = [stage]
        while stack:
            node = stack.pop()
            if node.id not in seen:
                seen[node.id] = node
                stack.extend(node.parents)
        return list(seen.values())
