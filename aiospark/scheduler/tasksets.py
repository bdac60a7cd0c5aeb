"""One stage's tasks (Spark's ``TaskSetManager``): which partitions wait and which run,
where each should run (locality, with a short wait for a busy worker holding the
data), retries with backoff on other workers, and speculative copies of stragglers.

Pure bookkeeping for ``aiospark.scheduler.state``; no I/O, no clock of its own
(``now`` is passed in).

>>> from types import SimpleNamespace
>>> from aiospark.scheduler.workers import Cluster
>>> stage = SimpleNamespace(id=1, num_partitions=2, parents=[], shuffle_id=None,
...                         preferred=lambda partition, cache: ["host-b"])
>>> cluster = Cluster()
>>> cluster.add("w1", "host-a", 1); cluster.add("w2", "host-b", 1)
>>> tasks = TaskSet(stage)
>>> tasks.enqueue(0, now=0.0); tasks.enqueue(1, now=0.0)
>>> place = Placement(cluster, now=0.0, locality_wait=1.0)
>>> partition, worker = tasks.next_launch(place, held=[])
>>> partition, worker.id                    # on the host holding its data
(0, 'w2')
>>> cluster.start("w2", task_id=1)
>>> held = []
>>> tasks.next_launch(place, held), held, place.wake_at   # w2 is busy: wait for it
(None, [1], 1.0)
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable

from aiospark.scheduler.protocols import SchedulerStage
from aiospark.scheduler.workers import Cluster, Worker, placement_key

#: Longest wait before retrying a failed task.
MAX_BACKOFF = 2.0
#: A task that ran at most this long on its worker is short: a stage whose tasks mostly
#: are may have some queued on busy workers (``SchedulerState.prefetch``).
SHORT_TASK = 0.02


@dataclasses.dataclass
class Task:
    """One attempt of one partition's task, running on ``worker_id``."""

    id: int
    stage_id: int
    partition: int
    attempt: int
    worker_id: str
    started: float = 0.0
    speculative: bool = False
    #: asked back from its worker's queue (``Cancel(if_waiting=True)``)
    recalled: bool = False
    #: the id of its barrier attempt (``scheduler.barrier``); -1 outside barrier stages
    barrier_attempt: int = -1


def _no_cache(rdd_id: int, split: int) -> set[str]:
    return set()


class Placement:
    """What placing tasks needs to know during one scheduling pass, and the earliest
    time a task held back (locality wait, retry backoff) may run (``wake_at``)."""

    def __init__(
        self,
        cluster: Cluster,
        now: float,
        locality_wait: float,
        flaky: set[str] | frozenset[str] = frozenset(),
        cache: Callable[[int, int], set[str]] = _no_cache,
    ) -> None:
        self.cluster = cluster
        self.now = now
        self.locality_wait = locality_wait
        self.flaky = flaky
        self.cache = cache
        self.wake_at: float | None = None

    def wake(self, at: float) -> None:
        if self.wake_at is None or at < self.wake_at:
            self.wake_at = at


class TaskSet:
    """The tasks of one stage: queued partitions, running attempts, failures."""

    def __init__(self, stage: SchedulerStage) -> None:
        self.stage = stage
        #: partitions waiting for a slot
        self.to_run: set[int] = set()
        #: partition -> ids of its running attempts
        self.running: dict[int, set[int]] = {}
        #: partition -> failed attempts that count
        self.attempts: dict[int, int] = {}
        #: partition -> workers it failed on, or was taken back from (it goes elsewhere)
        self.excluded: dict[int, set[str]] = {}
        #: partition -> launches so far (the next attempt number)
        self.launches: dict[int, int] = {}
        #: partition -> when it was queued (for the locality wait)
        self.queued_at: dict[int, float] = {}
        #: partition -> earliest time a retry may start (backoff after failures)
        self.not_before: dict[int, float] = {}
        #: run times of the stage's successful tasks, launch to answer (for speculation)
        self.durations: list[float] = []
        #: how many succeeded, and how many of those ran at most ``short`` seconds on
        #: their workers (for prefetch)
        self.ran = 0
        self.ran_short = 0
        #: partitions that already got a speculative copy
        self.speculated: set[int] = set()
        #: partitions waiting for a slot, in order (entries no longer in ``to_run`` are stale)
        self.queue: deque[int] = deque()

    # -- bookkeeping -----------------------------------------------------------------------

    def enqueue(self, partition: int, now: float) -> None:
        """Queue ``partition`` to run (nothing changes if it is queued already)."""
        if partition not in self.to_run:
            self.to_run.add(partition)
            self.queued_at[partition] = now
            self.queue.append(partition)

    def started(self, partition: int, task_id: int) -> int:
        """A task for ``partition`` was launched; returns its attempt number."""
        attempt = self.launches.get(partition, 0)
        self.launches[partition] = attempt + 1
        self.running.setdefault(partition, set()).add(task_id)
        return attempt

    def ended(self, partition: int, task_id: int) -> None:
        """A task of ``partition`` no longer runs."""
        attempts = self.running.get(partition)
        if attempts is not None:
            attempts.discard(task_id)
            if not attempts:
                del self.running[partition]

    def succeeded(self, elapsed: float, ran: float | None = None) -> None:
        """A task of the stage succeeded ``elapsed`` seconds after its launch, having run
        ``ran`` seconds on its worker (``elapsed`` when not known)."""
        self.durations.append(elapsed)
        self.ran += 1
        if (elapsed if ran is None else ran) <= SHORT_TASK:
            self.ran_short += 1

    def quick(self, min_samples: int = 2) -> bool:
        """Whether the stage's tasks are short: at least ``min_samples`` succeeded, and
        three in four of them ran at most ``SHORT_TASK`` seconds on their workers (a
        worker may then queue some, ``SchedulerState.prefetch``).

        >>> tasks = TaskSet(stage=None)
        >>> tasks.succeeded(0.5, ran=0.001); tasks.quick()
        False
        >>> tasks.succeeded(0.5, ran=0.003); tasks.quick()
        True
        >>> tasks.succeeded(0.5, ran=2.0); tasks.quick()   # 2 of 3 short: not enough
        False
        """
        return self.ran >= min_samples and 4 * self.ran_short >= 3 * self.ran

    def failed(self, partition: int, worker_id: str) -> int:
        """An attempt of ``partition`` failed on ``worker_id`` (which it now avoids);
        returns how many attempts failed so far."""
        attempts = self.attempts.get(partition, 0) + 1
        self.attempts[partition] = attempts
        self.excluded.setdefault(partition, set()).add(worker_id)
        return attempts

    def retry(self, partition: int, now: float, attempts: int, backoff: float) -> None:
        """Queue ``partition`` again, not before a backoff doubling with each attempt.

        >>> tasks = TaskSet(stage=None)
        >>> tasks.retry(3, now=10.0, attempts=3, backoff=0.05); tasks.not_before
        {3: 10.2}
        """
        delay = min(backoff * 2 ** (attempts - 1), MAX_BACKOFF)
        self.not_before[partition] = now + delay
        self.enqueue(partition, now)

    # -- placement -------------------------------------------------------------------------

    def pick_worker(
        self, partition: int, place: Placement, avoid: Iterable[str] = ()
    ) -> Worker | None:
        """Where ``partition`` should run now; None if it should wait (no free core it may
        use, backoff, or a busy worker holding its data within the locality wait).

        Workers it failed on, and flaky workers, are avoided unless no other is
        left; a free worker where its data is (``stage.preferred``) is taken
        first; otherwise the worker with the most free cores.
        """
        now = place.now
        not_before = self.not_before.get(partition, 0.0)
        if now < not_before:
            place.wake(not_before)  # backing off after a failure
            return None
        cluster = place.cluster
        avoid = set(avoid)
        best = cluster.best(avoid)
        if best is None:
            return None
        excluded: set[str] | frozenset[str] = self.excluded.get(partition) or frozenset()
        if place.flaky:
            excluded = excluded | place.flaky
        restricted = bool(excluded)
        if restricted:
            allowed = cluster.best(avoid | excluded)
            if allowed is None:
                if sum(1 for w in excluded if cluster.get(w) is not None) < len(cluster):
                    return None  # wait for a worker that has not failed this partition
                restricted = False  # every worker failed it: any will do
            else:
                best = allowed
        preferred = self.stage.preferred(partition, place.cache)
        if preferred:
            candidates = cluster.at(preferred)
            local = [
                w for w in candidates
                if w.counted > 0 and w.id not in avoid and not (restricted and w.id in excluded)
            ]
            if local:
                return min(local, key=placement_key)
            if any(w.id not in excluded for w in candidates):
                # Delay scheduling: the data's worker is busy; wait a little for it.
                ready_at = self.queued_at.get(partition, 0.0) + place.locality_wait
                if now < ready_at:
                    place.wake(ready_at)
                    return None
        return best

    def next_launch(self, place: Placement, held: list[int]) -> tuple[int, Worker] | None:
        """The first queued partition that can run now, and where (it leaves the queue).

        Partitions passed over are added to ``held`` (the caller puts them
        back at the front of the queue); stale entries are dropped.
        """
        queue = self.queue
        while queue:
            partition = queue.popleft()
            if partition not in self.to_run:
                continue
            worker = self.pick_worker(partition, place)
            if worker is None:
                held.append(partition)
                continue
            self.to_run.discard(partition)
            return partition, worker
        return None

    # -- speculation -----------------------------------------------------------------------

    def stragglers(
        self,
        now: float,
        tasks: dict[int, Task],
        quantile: float,
        multiplier: float,
        min_seconds: float,
    ) -> list[Task]:
        """Running tasks that deserve a speculative copy: once ``quantile`` of the stage's
        tasks succeeded, those running longer than ``multiplier`` times their median
        (and at least ``min_seconds``), one copy per partition.

        >>> tasks = TaskSet(stage=None)
        >>> tasks.durations = [1.0, 1.0, 1.2]
        >>> tasks.running = {3: {9}}
        >>> slow = {9: Task(9, 1, 3, 0, "w1", started=0.0)}
        >>> [t.id for t in tasks.stragglers(2.0, slow, 0.75, 1.5, 0.1)]
        [9]
        >>> tasks.stragglers(1.0, slow, 0.75, 1.5, 0.1)      # not slow enough yet
        []
        """
        if not self.durations or not self.running:
            return []
        total = len(self.durations) + len(self.running) + len(self.to_run)
        if len(self.durations) < quantile * total:
            return []
        ordered = sorted(self.durations)
        median = ordered[len(ordered) // 2]
        threshold = max(multiplier * median, min_seconds)
        found = []
        for partition, task_ids in self.running.items():
            if partition in self.speculated or len(task_ids) != 1:
                continue
            task = tasks[next(iter(task_ids))]
            if now - task.started > threshold:
                found.append(task)
        return found
