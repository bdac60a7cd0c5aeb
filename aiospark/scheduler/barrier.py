"""Barrier stages (``rdd.barrier()``): Spark's rules for launching, retrying and
synchronising them, as pure logic for ``aiospark.scheduler.state``.

A barrier stage's tasks start together or not at all, each on a core of its
own (never queued behind another task: they wait for each other); when one
fails, every other is cancelled and the whole stage runs again, up to the
state's ``max_stage_attempts``.  Each launch of the stage is a *barrier
attempt*, with an id unique in the driver.  Inside the tasks,
``BarrierTaskContext.barrier()`` and ``all_gather()`` are calls to the driver,
answered by the ``BarrierCoordinator`` below once every task of the attempt
made the same call.

What barrier mode refuses (``check_job``), as in Spark: computing only some
partitions of a barrier stage (``take``, ``first``, ``run_job`` on some
partitions, ``async for``), an RDD in a barrier stage whose partition count
differs from the stage's (``coalesce``, ``union`` after ``barrier()``), an RDD
depending on two barrier RDDs (``zip`` of two), and (``SchedulerState``) a
barrier stage with more tasks than the cluster has cores.

>>> coordinator = BarrierCoordinator(timeout=60.0)
>>> coordinator.begin(1, stage_id=3, tasks={0: (10, "w1"), 1: (11, "w2")})
>>> coordinator.arrive(1, 0, 10, 0, "all_gather", "a", now=0.0)
[]
>>> [(r.task_id, r.messages) for r in coordinator.arrive(1, 1, 11, 0, "all_gather", "b", 0.5)]
[(10, ('a', 'b')), (11, ('a', 'b'))]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence

from aiospark.errors import BarrierError
from aiospark.lineage import NarrowDependency
from aiospark.scheduler.actions import BarrierReply
from aiospark.scheduler.dag import is_barrier, narrow_ancestors
from aiospark.scheduler.protocols import SchedulerRDD, SchedulerStage
from aiospark.scheduler.workers import Cluster, Worker

#: Seconds a ``barrier()`` call waits for the other tasks of its stage before it fails
#: (``Context(barrier_timeout=...)``).  Spark's default is 365 days; an hour here, since
#: a task that fails or whose worker is lost makes the others raise at once anyway.
DEFAULT_TIMEOUT = 3600.0
#: Seconds a barrier stage waits for the cluster to have cores enough for all its tasks
#: (a worker lost, being restarted) before its job fails.
SLOT_WAIT = 60.0

#: The calls a task makes, by the name it sends.
CALLS = ("barrier", "all_gather")


# -- what barrier mode refuses -------------------------------------------------------------


def check_job(stages: Iterable[SchedulerStage], result: SchedulerStage,
              partitions: Sequence[int]) -> None:
    """Raise ``BarrierError`` if a job with these stages cannot run in barrier mode.

    ``result`` is the job's result stage and ``partitions`` the partitions
    it computes; ``stages`` are all the job's stages (``result`` among them).

    >>> from types import SimpleNamespace as NS
    >>> stage = NS(barrier=True, num_partitions=4, rdd=NS(id=7, deps=[], barrier_mode=True))
    >>> check_job([stage], stage, [0])
    Traceback (most recent call last):
    ...
    aiospark.errors.BarrierError: Barrier execution mode does not allow computing only some \
partitions of a barrier stage (take(), first(), run_job with partitions, async for): the job \
asks for 1 of 4 partitions; use collect() or another action over every partition
    """
    if getattr(result, "barrier", False) and len(set(partitions)) != result.num_partitions:
        raise BarrierError(
            "Barrier execution mode does not allow computing only some partitions of a "
            "barrier stage (take(), first(), run_job with partitions, async for): the job "
            f"asks for {len(set(partitions))} of {result.num_partitions} partitions; use "
            "collect() or another action over every partition")
    for stage in stages:
        if getattr(stage, "barrier", False):
            check_chain(stage.rdd, stage.num_partitions)  # type: ignore[attr-defined]


def check_chain(rdd: SchedulerRDD, tasks: int) -> None:
    """Spark's rule for the RDDs of a barrier stage: each has the stage's partition count,
    and none depends on more than one barrier RDD."""
    for node in narrow_ancestors(rdd):
        count = len(node.splits())
        if count != tasks:
            raise BarrierError(
                f"Barrier execution mode does not allow an RDD of {count} partitions in a "
                f"barrier stage of {tasks} tasks ({node!r}: coalesce(), union(), "
                "partition pruning after barrier()); put a shuffle (repartition()) "
                "between them")
        barrier_parents = sum(1 for dep in node.deps
                              if isinstance(dep, NarrowDependency) and is_barrier(dep.rdd))
        if barrier_parents > 1:
            raise BarrierError(
                f"Barrier execution mode does not allow an RDD depending on "
                f"{barrier_parents} barrier RDDs in one stage ({node!r}, as zip() of two "
                "barrier RDDs makes)")


def too_few_slots(tasks: int, slots: int) -> BarrierError:
    """The error of a barrier stage the cluster cannot run (Spark's slots check).

    >>> print(too_few_slots(4, 2))
    Barrier execution mode does not allow a barrier stage that needs more slots than the \
cluster has: 4 tasks must run at once, the cluster has 2 cores (within this application's \
share); add workers or cores, or give the stage fewer partitions
    """
    return BarrierError(
        "Barrier execution mode does not allow a barrier stage that needs more slots than "
        f"the cluster has: {tasks} tasks must run at once, the cluster has {slots} cores "
        "(within this application's share); add workers or cores, or give the stage fewer "
        "partitions")


# -- launching all tasks together ----------------------------------------------------------


def idle_cores(worker: Worker) -> int:
    """Cores of ``worker`` running nothing (a barrier task never waits in a queue)."""
    if worker.draining:
        return 0
    return max(0, worker.cores - len(worker.running) - len(worker.stopping))


def capacity(cluster: Cluster, share: int | None) -> int:
    """The most barrier tasks that could ever run at once: the cores of the workers
    taking tasks, within the application's share."""
    cores = sum(w.cores for w in cluster if not w.draining)
    return cores if share is None else min(cores, share)


def place_all(
    partitions: Sequence[int],
    cluster: Cluster,
    preferred: Callable[[int], Sequence[str]],
    avoid: Iterable[str] = (),
) -> dict[int, str] | None:
    """A worker for every partition, each on an idle core; None unless all fit now.

    Each partition goes to an idle worker where its data is when there is
    one, else to the worker with the most idle cores (ties: the earliest to
    join).  Workers in ``avoid`` (flaky ones) are used only if the others
    lack cores.

    >>> cluster = Cluster()
    >>> cluster.add("w1", "h1", 1); cluster.add("w2", "h2", 2)
    >>> place_all([0, 1, 2], cluster, lambda p: ["h1"] if p == 2 else [])
    {2: 'w1', 0: 'w2', 1: 'w2'}
    >>> place_all([0, 1, 2, 3], cluster, lambda p: []) is None
    True
    """
    idle = {w.id: idle_cores(w) for w in cluster}
    if sum(idle.values()) < len(partitions):
        return None
    avoided = set(avoid)
    if sum(n for w, n in idle.items() if w not in avoided) >= len(partitions):
        for worker_id in avoided:
            idle[worker_id] = 0
    order = {w.id: w.order for w in cluster}
    placed: dict[int, str] = {}
    rest = []
    for partition in partitions:  # those with an idle worker where their data is first
        local = [w.id for w in cluster.at(preferred(partition)) if idle.get(w.id, 0) > 0]
        if local:
            placed[partition] = local[0]
            idle[local[0]] -= 1
        else:
            rest.append(partition)
    for partition in rest:
        worker_id = max(idle, key=lambda w: (idle[w], -order[w]))
        placed[partition] = worker_id
        idle[worker_id] -= 1
    return placed


# -- barrier() and all_gather() ------------------------------------------------------------


@dataclasses.dataclass
class _Attempt:
    """One launch of a barrier stage, as its coordinator follows it."""

    stage_id: int
    #: partition -> (task id, worker id)
    tasks: dict[int, tuple[int, str]]
    #: partition -> calls it completed
    calls: dict[int, int]
    #: partition -> (call, message) of the call waiting to complete
    pending: dict[int, tuple[str, str]] = dataclasses.field(default_factory=dict)
    #: when the pending call fails for want of the others (None: none pending)
    deadline: float | None = None
    #: partitions whose task ended successfully
    finished: set[int] = dataclasses.field(default_factory=set)
    #: once set, every call of the attempt fails with it
    broken: str | None = None


class BarrierCoordinator:
    """Matches the ``barrier()`` / ``all_gather()`` calls of each barrier attempt's tasks.

    Every task of an attempt must make the same calls in the same order; the
    n-th call completes when every task made it (``all_gather`` answers each
    with every message, in partition order).  A call fails, and so does every
    later call of the attempt (the tasks raise ``BarrierError``), when the
    tasks' calls do not match (one calls ``barrier()``, another
    ``all_gather()``; or a task ended while others wait in a call it never
    made), or when the others have not come ``timeout`` seconds after the
    first (``expire``).  A failed task ends the attempt (``end``): the state
    cancels its other tasks and retries the stage.

    >>> coordinator = BarrierCoordinator(timeout=10.0)
    >>> coordinator.begin(2, stage_id=1, tasks={0: (5, "w1"), 1: (6, "w1")})
    >>> coordinator.arrive(2, 0, 5, 0, "barrier", "", now=0.0), coordinator.wake_at
    ([], 10.0)
    >>> [(r.task_id, r.error.split(":")[0]) for r in coordinator.task_finished(2, 1)]
    [(5, 'barrier() call 1 of partitions [0] can never complete')]
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self.attempts: dict[int, _Attempt] = {}

    @property
    def wake_at(self) -> float | None:
        """When the earliest waiting call times out (``expire``)."""
        deadlines = [a.deadline for a in self.attempts.values() if a.deadline is not None]
        return min(deadlines) if deadlines else None

    def begin(self, attempt: int, stage_id: int, tasks: Mapping[int, tuple[int, str]]) -> None:
        """The tasks of a new barrier attempt were launched: partition -> (task, worker)."""
        self.attempts[attempt] = _Attempt(stage_id, dict(tasks), dict.fromkeys(tasks, 0))

    def arrive(self, attempt: int, partition: int, task_id: int, epoch: int, call: str,
               message: str, now: float, worker_id: str = "") -> list[BarrierReply]:
        """Task ``task_id`` (on ``worker_id``) made its ``epoch``-th call (from 0); the
        replies it completes, if any."""
        state = self.attempts.get(attempt)
        if state is None or state.tasks.get(partition, (None,))[0] != task_id:
            return [BarrierReply(task_id, worker_id, epoch, error=(
                f"barrier attempt {attempt} is over (its stage was retried, cancelled or "
                "finished)"))]
        worker_id = state.tasks[partition][1]
        if state.broken is not None:
            return [BarrierReply(task_id, worker_id, epoch, error=state.broken)]
        number = state.calls[partition]
        if call not in CALLS or epoch != number or partition in state.pending:
            return self._break(state, f"partition {partition} made call {epoch + 1} "
                                      f"({call}()) out of order", extra=(task_id, worker_id, epoch))
        others = {c for c, _ in state.pending.values()}
        if others and call not in others:
            (other,) = others
            return self._break(state, (
                f"mismatched calls in a barrier stage: partition {partition} called {call}() "
                f"while partitions {sorted(state.pending)} called {other}() (call "
                f"{number + 1}); every task must make the same calls in the same order"),
                extra=(task_id, worker_id, epoch))
        if state.finished:
            done = min(state.finished)
            return self._break(state, (
                f"{call}() call {number + 1} of partition {partition} can never complete: "
                f"partition {done} finished after {state.calls[done]} calls; every task "
                "must call barrier()/all_gather() the same number of times"),
                extra=(task_id, worker_id, epoch))
        state.pending[partition] = (call, message)
        if state.deadline is None:
            state.deadline = now + self.timeout
        if len(state.pending) < len(state.tasks):
            return []
        messages = tuple(state.pending[p][1] for p in sorted(state.pending))
        replies = []
        for p in sorted(state.pending):
            tid, wid = state.tasks[p]
            replies.append(BarrierReply(tid, wid, number, messages=messages))
            state.calls[p] = number + 1
        state.pending.clear()
        state.deadline = None
        return replies

    def task_finished(self, attempt: int, partition: int) -> list[BarrierReply]:
        """A task of the attempt succeeded: tasks waiting in a call it never made fail."""
        state = self.attempts.get(attempt)
        if state is None:
            return []
        state.finished.add(partition)
        if len(state.finished) == len(state.tasks):
            del self.attempts[attempt]
            return []
        if state.pending and state.broken is None:
            waiting = sorted(state.pending)
            number = state.calls[waiting[0]] + 1
            call = state.pending[waiting[0]][0]
            return self._break(state, (
                f"{call}() call {number} of partitions {waiting} can never complete: "
                f"partition {partition} finished after {state.calls[partition]} calls; "
                "every task must call barrier()/all_gather() the same number of times"))
        return []

    def end(self, attempt: int, reason: str) -> list[BarrierReply]:
        """The attempt is over (a task failed, the job was cancelled): its waiting calls fail."""
        state = self.attempts.pop(attempt, None)
        if state is None:
            return []
        return self._fail_pending(state, reason)

    def end_stages(self, live: Callable[[int], bool]) -> list[BarrierReply]:
        """End the attempts of stages no longer running (``live(stage_id)`` false)."""
        replies: list[BarrierReply] = []
        for attempt in [a for a, s in self.attempts.items() if not live(s.stage_id)]:
            replies.extend(self.end(attempt, "the barrier stage is no longer running"))
        return replies

    def expire(self, now: float) -> list[BarrierReply]:
        """Fail the calls that waited ``timeout`` seconds for the rest of their attempt."""
        replies: list[BarrierReply] = []
        for state in self.attempts.values():
            if state.deadline is None or state.deadline > now:
                continue
            missing = sorted(set(state.tasks) - set(state.pending) - state.finished)
            call = next(iter(state.pending.values()))[0]
            replies.extend(self._break(state, (
                f"{call}() timed out after {self.timeout:g}s: partitions {missing} did not "
                f"reach call {state.calls[min(state.pending)] + 1} (barrier_timeout)")))
        return replies

    def _break(self, state: _Attempt, reason: str,
               extra: tuple[int, str, int] | None = None) -> list[BarrierReply]:
        state.broken = reason
        replies = self._fail_pending(state, reason)
        if extra is not None:
            replies.append(BarrierReply(extra[0], extra[1], extra[2], error=reason))
        return replies

    @staticmethod
    def _fail_pending(state: _Attempt, reason: str) -> list[BarrierReply]:
        replies = [BarrierReply(state.tasks[p][0], state.tasks[p][1], state.calls[p], error=reason)
                   for p in sorted(state.pending)]
        state.pending.clear()
        state.deadline = None
        return replies
