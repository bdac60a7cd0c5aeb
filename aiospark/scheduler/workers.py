"""The workers as the scheduler sees them: task slots, cancelled tasks still running,
recent failures (flaky workers are excluded for a while), and where cached blocks are.

Pure bookkeeping for ``aiospark.scheduler.state``; no I/O.  Free slots are
indexed (a heap of the workers with a free core), so placing a task costs
O(log workers), not O(workers).

>>> cluster = Cluster()
>>> cluster.add("w1", "host-a", 2); cluster.add("w2", "host-b", 1)
>>> cluster.start("w1", task_id=1)
>>> cluster.free_slots, cluster.best().id   # one free core each: w2 runs fewer tasks
(2, 'w2')
>>> cluster.best(skip={"w2"}).id
'w1'
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterable, Iterator, Mapping

#: A worker with EXCLUDE_AFTER task failures within FAILURE_WINDOW seconds gets no
#: new tasks for EXCLUDE_FOR seconds (unless no other worker is left).
EXCLUDE_AFTER = 3
FAILURE_WINDOW = 60.0
EXCLUDE_FOR = 30.0
#: A cancelled task keeps its core until its worker says it stopped, or this long after
#: it was killed (the worker's answer was lost): then the core is counted free again.
KILL_GRACE = 10.0


@dataclasses.dataclass(eq=False)
class Worker:
    """One worker: its cores and the tasks taking them (read-only outside this module)."""

    id: str
    host: str
    cores: int
    #: position in the order workers joined (ties in placement go to the earliest)
    order: int = 0
    running: set[int] = dataclasses.field(default_factory=set)
    #: cancelled tasks that have not said they stopped: task id -> when to act (kill
    #: the process, or after a kill give up waiting); each still takes a core
    stopping: dict[int, float] = dataclasses.field(default_factory=dict)
    #: stopping tasks a kill was asked for
    killed: set[int] = dataclasses.field(default_factory=set)
    #: leaving the cluster: finishes its tasks, takes no new ones
    draining: bool = False
    #: ``free`` as last counted into ``Cluster.free_slots`` (kept equal by ``Cluster``)
    counted: int = 0
    #: tasks it may hold: its cores, plus those it queues while they are busy
    #: (``Cluster.set_depth``)
    slots: int = 0

    def __post_init__(self) -> None:
        self.slots = self.slots or self.cores

    @property
    def free(self) -> int:
        if self.draining:
            return 0
        free = self.slots - len(self.running) - len(self.stopping)
        return free if free > 0 else 0


def placement_key(worker: Worker) -> tuple[int, int, int]:
    """Workers with more free cores first, then fewer running tasks, then the earliest."""
    return (-worker.counted, len(worker.running), worker.order)


class Cluster:
    """All live workers, indexed by host and by free slots."""

    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}
        self._by_host: dict[str, set[str]] = {}
        #: (placement key, worker id) of workers that had a free core; stale entries
        #: (the worker changed since) are dropped when they come up
        self._heap: list[tuple[tuple[int, int, int], str]] = []
        self._joined = 0
        #: free slots on all workers (cores, plus queue slots when ``depth`` > 0)
        self.free_slots = 0
        #: cores of all workers
        self.total_cores = 0
        #: tasks each core may have queued behind the one it runs (``set_depth``)
        self.depth = 0
        #: ids of the workers holding more tasks than cores (some wait in their queue)
        self.queueing: set[str] = set()
        #: task id -> worker id of the cancelled tasks that still take a core
        self.stopping: dict[int, str] = {}
        #: worker id -> (time, stage id, partition) of its recent task failures
        self.failures: dict[str, list[tuple[float, int, int]]] = {}

    # -- reading -------------------------------------------------------------------------

    @property
    def workers(self) -> Mapping[str, Worker]:
        return self._workers

    def get(self, worker_id: str) -> Worker | None:
        return self._workers.get(worker_id)

    def __len__(self) -> int:
        return len(self._workers)

    def __iter__(self) -> Iterator[Worker]:
        return iter(self._workers.values())

    def at(self, locations: Iterable[str]) -> list[Worker]:
        """The workers named in ``locations``, by worker id or by host, in join order."""
        found: dict[str, Worker] = {}
        for location in locations:
            worker = self._workers.get(location)
            if worker is not None:
                found[worker.id] = worker
            for worker_id in self._by_host.get(location, ()):
                found[worker_id] = self._workers[worker_id]
        return sorted(found.values(), key=lambda w: w.order)

    def best(self, skip: Iterable[str] | None = None) -> Worker | None:
        """The worker with a free core that a task should go to (see ``placement_key``),
        ignoring those in ``skip``; None if there is none."""
        heap = self._heap
        skipped: list[tuple[tuple[int, int, int], str]] = []
        avoid = set(skip) if skip else None
        found = None
        while heap:
            key, worker_id = heap[0]
            worker = self._workers.get(worker_id)
            if worker is None or worker.counted <= 0 or key != placement_key(worker):
                heapq.heappop(heap)  # stale
                continue
            if avoid is not None and worker_id in avoid:
                skipped.append(heapq.heappop(heap))
                continue
            found = worker
            break
        for entry in skipped:
            heapq.heappush(heap, entry)
        return found

    # -- changing ------------------------------------------------------------------------

    def _touch(self, worker: Worker) -> None:
        """``worker``'s free cores or running tasks changed: update the indexes."""
        free = worker.free
        self.free_slots += free - worker.counted
        worker.counted = free
        if len(worker.running) > worker.cores:
            self.queueing.add(worker.id)
        else:
            self.queueing.discard(worker.id)
        if free > 0:
            heapq.heappush(self._heap, (placement_key(worker), worker.id))
            if len(self._heap) > 4 * len(self._workers) + 64:
                self._heap = [
                    (placement_key(w), w.id) for w in self._workers.values() if w.free > 0
                ]
                heapq.heapify(self._heap)

    def add(self, worker_id: str, host: str, cores: int) -> None:
        """A worker joined (nothing changes if it is known)."""
        if worker_id in self._workers:
            return
        self._joined += 1
        cores = max(1, cores)
        worker = Worker(worker_id, host, cores, self._joined, slots=cores * (1 + self.depth))
        self.total_cores += cores
        self._workers[worker_id] = worker
        self._by_host.setdefault(host, set()).add(worker_id)
        self._touch(worker)

    def set_depth(self, depth: int) -> None:
        """Let each worker hold ``depth`` tasks per core beyond those its cores run (they
        wait in the worker's queue, so it starts the next one without a round trip).

        >>> cluster = Cluster(); cluster.add("w1", "h", 2)
        >>> cluster.set_depth(1); cluster.free_slots
        4
        >>> cluster.set_depth(0); cluster.free_slots
        2
        """
        if depth == self.depth:
            return
        self.depth = depth
        for worker in self._workers.values():
            worker.slots = worker.cores * (1 + depth)
            self._touch(worker)

    def drain(self, worker_id: str) -> None:
        worker = self._workers.get(worker_id)
        if worker is not None:
            worker.draining = True
            self._touch(worker)

    def remove(self, worker_id: str) -> Worker | None:
        """Forget a worker; its tasks are the caller's to deal with."""
        worker = self._workers.pop(worker_id, None)
        if worker is None:
            return None
        self.free_slots -= worker.counted
        self.total_cores -= worker.cores
        self.queueing.discard(worker_id)
        hosts = self._by_host.get(worker.host)
        if hosts is not None:
            hosts.discard(worker_id)
            if not hosts:
                del self._by_host[worker.host]
        for task_id in worker.stopping:
            self.stopping.pop(task_id, None)
        return worker

    def start(self, worker_id: str, task_id: int) -> None:
        worker = self._workers[worker_id]
        worker.running.add(task_id)
        self._touch(worker)

    def finish(self, worker_id: str, task_id: int) -> None:
        """A task ended (or went elsewhere): its core is free."""
        worker = self._workers.get(worker_id)
        if worker is not None and task_id in worker.running:
            worker.running.discard(task_id)
            self._touch(worker)

    def cancel(self, worker_id: str, task_id: int, deadline: float) -> None:
        """A task was cancelled: it keeps its core until it stops, or ``deadline``."""
        worker = self._workers.get(worker_id)
        if worker is None:
            return
        worker.running.discard(task_id)
        worker.stopping[task_id] = deadline
        self.stopping[task_id] = worker_id
        self._touch(worker)

    def stopped(self, task_id: int) -> bool:
        """A cancelled task's worker answered for it: its core is free.  False if it was
        not a cancelled task of a live worker."""
        worker = self._workers.get(self.stopping.pop(task_id, ""))
        if worker is None:
            return False
        worker.stopping.pop(task_id, None)
        worker.killed.discard(task_id)
        self._touch(worker)
        return True

    def reap(self, now: float) -> list[tuple[str, tuple[int, ...]]]:
        """Cancelled tasks past their deadline: ``(worker id, task ids)`` whose process to
        kill.  Those killed ``KILL_GRACE`` ago whose worker never answered are given up
        on: their cores count as free again."""
        kills = []
        for worker_id in sorted(set(self.stopping.values()), key=lambda w: self._workers[w].order):
            worker = self._workers[worker_id]
            late = sorted(t for t, at in worker.stopping.items() if at <= now)
            if not late:
                continue
            to_kill = tuple(t for t in late if t not in worker.killed)
            for task_id in late:
                if task_id in worker.killed:  # given up: count the core free again
                    del worker.stopping[task_id]
                    worker.killed.discard(task_id)
                    self.stopping.pop(task_id, None)
                else:
                    worker.killed.add(task_id)
                    worker.stopping[task_id] = now + KILL_GRACE
            self._touch(worker)
            if to_kill:
                kills.append((worker.id, to_kill))
        return kills

    def next_deadline(self) -> float | None:
        """The earliest time a cancelled task is to be killed or given up on."""
        deadlines = [
            min(self._workers[w].stopping.values()) for w in set(self.stopping.values())
        ]
        finite = [d for d in deadlines if d != float("inf")]
        return min(finite) if finite else None

    # -- flaky workers -------------------------------------------------------------------

    def record_failure(self, worker_id: str, now: float, stage_id: int, partition: int) -> None:
        recent = [f for f in self.failures.get(worker_id, []) if now - f[0] < FAILURE_WINDOW]
        self.failures[worker_id] = [*recent, (now, stage_id, partition)]

    def forgive(self, stage_id: int) -> None:
        """Forget the workers' failures of a stage aborted by a task that failed everywhere.

        Its other tasks' failures go too: they most likely hit the same error in
        the user's code, and must not keep these workers from other jobs.
        """
        for worker_id, failures in self.failures.items():
            self.failures[worker_id] = [f for f in failures if f[1] != stage_id]

    def flaky(self, now: float, exclude_after: int | None) -> set[str]:
        """Workers that failed ``exclude_after`` tasks lately; none if that would exclude
        every worker."""
        flaky: set[str] = set()
        if exclude_after is None:
            return flaky
        for worker_id, failures in self.failures.items():
            recent = [f[0] for f in failures if now - f[0] < FAILURE_WINDOW]
            if len(recent) >= exclude_after and now - recent[-1] < EXCLUDE_FOR:
                flaky.add(worker_id)
        if flaky and len(flaky) >= len(self._workers) and flaky.issuperset(self._workers):
            return set()
        return flaky


class BlockLocations:
    """Which workers hold each cached ``(rdd_id, split)`` block.

    >>> blocks = BlockLocations()
    >>> blocks.cached("w1", [(5, 0), (5, 1)]); blocks.cached("w2", [(5, 0)])
    >>> blocks.evicted("w1", [(5, 0)]); sorted(blocks.on(5, 0))
    ['w2']
    >>> blocks.unpersisted(5); blocks.on(5, 1)
    set()
    """

    def __init__(self) -> None:
        self.holders: dict[tuple[int, int], set[str]] = {}

    def on(self, rdd_id: int, split: int) -> set[str]:
        """Workers holding a cached split."""
        return self.holders.get((rdd_id, split), set())

    def cached(self, worker_id: str, keys: Iterable[tuple[int, int]]) -> None:
        for rdd_id, split in keys:
            self.holders.setdefault((rdd_id, split), set()).add(worker_id)

    def evicted(self, worker_id: str, keys: Iterable[tuple[int, int]]) -> None:
        for rdd_id, split in keys:
            key = (rdd_id, split)
            holders = self.holders.get(key)
            if holders is not None:
                holders.discard(worker_id)
                if not holders:
                    del self.holders[key]

    def worker_lost(self, worker_id: str) -> None:
        for holders in self.holders.values():
            holders.discard(worker_id)

    def unpersisted(self, rdd_id: int) -> None:
        for key in [k for k in self.holders if k[0] == rdd_id]:
            del self.holders[key]
