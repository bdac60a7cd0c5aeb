"""The scheduler's decisions, as a pure state machine: events in, commands out.

Nothing here does I/O or knows about asyncio.  The async shell
(``aiospark.scheduler.runner``) feeds it events (a job was submitted, a task
finished or failed, a worker came or went) and carries out the commands it
returns (launch this task there, cancel that one, deliver a result, fail a
job).  That makes every scheduling decision unit-testable without sockets.

>>> from types import SimpleNamespace as NS
>>> stage = NS(id=1, num_partitions=2, parents=[], shuffle_id=None,
...            preferred=lambda partition, cache: [])
>>> state = SchedulerState()
>>> state.worker_added("w1", host="h", cores=1)
[]
>>> [type(c).__name__ for c in state.submit_job(7, stage, [0, 1])]
['Launch']
>>> done = state.task_succeeded(1, result="r0")
>>> [type(c).__name__ for c in done]
['PartitionDone', 'Launch']
>>> [type(c).__name__ for c in state.task_succeeded(2, result="r1")]
['PartitionDone', 'JobFinished', 'StagesFinished']
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from aiospark.scheduler.pools import DEFAULT_POOL, FAIR, Policy, Pool

# -- commands ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Launch:
    """Run attempt ``attempt`` of ``stage``'s task for ``partition`` on ``worker_id``."""

    task_id: int
    stage: Any
    partition: int
    attempt: int
    worker_id: str


@dataclasses.dataclass(frozen=True)
class Cancel:
    """Stop a running task; its outcome no longer matters."""

    task_id: int
    worker_id: str


@dataclasses.dataclass(frozen=True)
class Kill:
    """Cancelled tasks still run on ``worker_id`` past the kill timeout: have its
    supervisor kill (and restart) the process running them."""

    worker_id: str
    task_ids: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class PartitionDone:
    """Output ``index`` of job ``job_id`` is ready."""

    job_id: int
    index: int
    result: Any


@dataclasses.dataclass(frozen=True)
class JobFinished:
    """Every output of the job has been delivered."""

    job_id: int


@dataclasses.dataclass(frozen=True)
class JobAborted:
    """The job cannot finish; ``error`` says why."""

    job_id: int
    error: Any


@dataclasses.dataclass(frozen=True)
class StagesFinished:
    """No job needs these stages any more; workers may drop what they cached for them."""

    stage_ids: tuple[int, ...]


Command = Launch | Cancel | Kill | PartitionDone | JobFinished | JobAborted | StagesFinished

#: A worker with EXCLUDE_AFTER task failures within FAILURE_WINDOW seconds gets no
#: new tasks for EXCLUDE_FOR seconds (unless no other worker is left).
EXCLUDE_AFTER = 3
FAILURE_WINDOW = 60.0
EXCLUDE_FOR = 30.0
#: Longest wait before retrying a failed task.
MAX_BACKOFF = 2.0
#: How often to look for stragglers while speculation is on.
SPECULATION_INTERVAL = 0.1
#: A cancelled task keeps its core until its worker says it stopped, or this long after
#: it was killed (the worker's answer was lost): then the core is counted free again.
KILL_GRACE = 10.0


# -- state -------------------------------------------------------------------------


def _stage_id(run: _StageRun) -> int:
    return run.stage.id


@dataclasses.dataclass(frozen=True)
class MapOutput:
    """Where one map task's shuffle output lives."""

    worker_id: str
    shuffle_url: str
    sizes: tuple[int, ...] = ()


@dataclasses.dataclass
class _Worker:
    id: str
    host: str
    cores: int
    running: set[int] = dataclasses.field(default_factory=set)
    #: cancelled tasks that have not said they stopped: task id -> when to act (kill
    #: the process, or after a kill give up waiting); each still takes a core
    stopping: dict[int, float] = dataclasses.field(default_factory=dict)
    #: stopping tasks a kill was asked for
    killed: set[int] = dataclasses.field(default_factory=set)
    #: leaving the cluster: finishes its tasks, takes no new ones
    draining: bool = False

    @property
    def free(self) -> int:
        if self.draining:
            return 0
        free = self.cores - len(self.running) - len(self.stopping)
        return free if free > 0 else 0


@dataclasses.dataclass
class _Task:
    id: int
    stage_id: int
    partition: int
    attempt: int
    worker_id: str
    started: float = 0.0
    speculative: bool = False


@dataclasses.dataclass
class _Job:
    id: int
    stage: Any
    #: partition -> output index
    outputs: dict[int, int]
    remaining: set[int]
    #: the scheduling pool the job's tasks compete in (see ``aiospark.scheduler.pools``)
    pool: str = DEFAULT_POOL


@dataclasses.dataclass
class _StageRun:
    stage: Any
    jobs: set[int]
    waiting: bool = True
    to_run: set[int] = dataclasses.field(default_factory=set)
    running: dict[int, set[int]] = dataclasses.field(default_factory=dict)
    attempts: dict[int, int] = dataclasses.field(default_factory=dict)
    excluded: dict[int, set[str]] = dataclasses.field(default_factory=dict)
    #: partition -> launches so far (the next attempt number)
    launches: dict[int, int] = dataclasses.field(default_factory=dict)
    #: partition -> when it was queued (for the locality wait)
    queued_at: dict[int, float] = dataclasses.field(default_factory=dict)
    #: partition -> earliest time a retry may start (backoff after failures)
    not_before: dict[int, float] = dataclasses.field(default_factory=dict)
    #: run times of the stage's successful tasks (for speculation)
    durations: list[float] = dataclasses.field(default_factory=list)
    #: partitions that already got a speculative copy
    speculated: set[int] = dataclasses.field(default_factory=set)
    fetch_failures: int = 0
    #: partitions waiting for a slot, in order (entries no longer in ``to_run`` are stale)
    queue: deque[int] = dataclasses.field(default_factory=deque)


class SchedulerState:
    """All the scheduler knows: workers, jobs, stages, tasks, map outputs, cached splits."""

    def __init__(
        self,
        max_attempts: int = 4,
        max_stage_attempts: int = 4,
        locality_wait: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        retry_backoff: float = 0.05,
        exclude_after: int | None = EXCLUDE_AFTER,
        speculation: bool = False,
        speculation_quantile: float = 0.75,
        speculation_multiplier: float = 1.5,
        speculation_min_seconds: float = 0.1,
        kill_timeout: float | None = 1.0,
        scheduler_mode: str = FAIR,
        pools: dict[str, dict[str, Any] | Pool] | None = None,
    ) -> None:
        self.max_attempts = max_attempts
        self.max_stage_attempts = max_stage_attempts
        #: How long a task waits for a busy worker holding its data before running elsewhere.
        self.locality_wait = locality_wait
        self.clock = clock
        #: When a task held back for locality may run anywhere: call ``tick()`` then.
        self.wake_at: float | None = None
        #: First retry waits this long, doubling per attempt (capped at 2 s).
        self.retry_backoff = retry_backoff
        #: Failures within FAILURE_WINDOW that exclude a worker for a while (None: never).
        self.exclude_after = exclude_after
        #: Launch a copy of a task running much longer than its stage's median.
        self.speculation = speculation
        self.speculation_quantile = speculation_quantile
        self.speculation_multiplier = speculation_multiplier
        self.speculation_min_seconds = speculation_min_seconds
        #: Seconds a cancelled task may run on before its process is killed (None: never).
        self.kill_timeout = kill_timeout
        #: task id -> worker id of the cancelled tasks that still take a core
        self._stopping: dict[int, str] = {}
        #: worker id -> times of its recent task failures (to exclude flaky workers)
        #: worker id -> (time, stage id, partition) of its recent task failures
        self.worker_failures: dict[str, list[tuple[float, int, int]]] = {}
        self.workers: dict[str, _Worker] = {}
        self.jobs: dict[int, _Job] = {}
        self.stages: dict[int, _StageRun] = {}
        self.tasks: dict[int, _Task] = {}
        self.map_outputs: dict[int, list[MapOutput | None]] = {}
        self.cache: dict[tuple[int, int], set[str]] = {}
        #: How free slots are shared between jobs: FAIR (in pools) or FIFO.
        self.policy = Policy(scheduler_mode, pools)
        self._next_task = 0
        #: Bumped whenever a map output appears or is lost (lets callers cache locations).
        self.map_epoch = 0

    # -- queries -------------------------------------------------------------------

    def cached_on(self, rdd_id: int, split: int) -> set[str]:
        """Workers holding a cached split."""
        return self.cache.get((rdd_id, split), set())

    def map_locations(self, shuffle_id: int) -> list[MapOutput]:
        """Every map output of a complete shuffle, in map order."""
        outputs = self.map_outputs.get(shuffle_id, [])
        if any(o is None for o in outputs):
            raise RuntimeError(f"shuffle {shuffle_id} is incomplete")
        return outputs  # type: ignore[return-value]

    def _available(self, stage: Any) -> bool:
        outputs = self.map_outputs.get(stage.shuffle_id)
        return (
            outputs is not None
            and len(outputs) == stage.num_partitions
            and all(o is not None for o in outputs)
        )

    # -- events: jobs -------------------------------------------------------------

    def submit_job(
        self, job_id: int, stage: Any, partitions: list[int], pool: str = DEFAULT_POOL
    ) -> list[Command]:
        """A new job wants ``stage.func`` on ``partitions`` of the result stage's RDD.

        Its tasks compete for slots in ``pool`` (under FAIR scheduling).  Job
        ids must grow with submission order: FIFO scheduling runs the lowest first.
        """
        if not partitions:
            return [JobFinished(job_id)]
        outputs = {p: i for i, p in enumerate(partitions)}
        self.jobs[job_id] = _Job(job_id, stage, outputs, set(partitions), pool)
        commands: list[Command] = []
        self._submit_stage(stage, job_id, commands)
        self._schedule(commands)
        return commands

    def cancel_job(self, job_id: int) -> list[Command]:
        """Forget a job; cancel the tasks that no other job needs."""
        commands: list[Command] = []
        if job_id in self.jobs:
            self._drop_job(job_id, commands)
            self._schedule(commands)  # its cores are free for the jobs waiting behind it
        return commands

    # -- events: tasks -------------------------------------------------------------

    def task_succeeded(
        self,
        task_id: int,
        result: Any = None,
        map_output: MapOutput | None = None,
        cached: list[tuple[int, int]] = (),  # type: ignore[assignment]
    ) -> list[Command]:
        """A task finished; ``result`` for result stages, ``map_output`` for map stages."""
        commands: list[Command] = []
        task = self._finish_task(task_id)
        if task is None:
            self._stopped(task_id, commands)
            return commands
        self.blocks_cached(task.worker_id, cached)
        run = self.stages.get(task.stage_id)
        if run is not None:
            self._partition_done(run, task, result, map_output, commands)
        self._schedule(commands)
        return commands

    def task_failed(
        self,
        task_id: int,
        error: Any,
        *,
        fetch_failed: tuple[int, list[int]] | None = None,
        counts: bool = True,
        blame_worker: bool = True,
    ) -> list[Command]:
        """A task failed with ``error``.

        ``fetch_failed=(shuffle_id, map_ids)`` when it could not read map
        outputs: those are recomputed, then the task is retried.  ``counts`` is
        False for failures that are nobody's fault (the task was cancelled).
        """
        commands: list[Command] = []
        task = self._finish_task(task_id)
        if task is None:
            self._stopped(task_id, commands)
            return commands
        run = self.stages.get(task.stage_id)
        if run is None or run.running.get(task.partition):
            self._schedule(commands)
            return commands  # stage gone, or another attempt of the partition still runs
        if not self._needs(run, task.partition):
            self._schedule(commands)
            return commands
        if fetch_failed is not None:
            self._fetch_failed(run, task, error, fetch_failed, commands)
        elif counts:
            attempts = run.attempts.get(task.partition, 0) + 1
            run.attempts[task.partition] = attempts
            run.excluded.setdefault(task.partition, set()).add(task.worker_id)
            now = self.clock()
            if blame_worker:
                recent = [f for f in self.worker_failures.get(task.worker_id, [])
                          if now - f[0] < FAILURE_WINDOW]
                self.worker_failures[task.worker_id] = [
                    *recent, (now, task.stage_id, task.partition)]
            if attempts >= self.max_attempts:
                # The error followed the task from worker to worker: it is the task's (the
                # user's code), not theirs, and must not keep them from other jobs.
                self._forgive(task.stage_id, task.partition)
                self._abort_stage(run, error, commands)
            else:
                delay = min(self.retry_backoff * 2 ** (attempts - 1), MAX_BACKOFF)
                run.not_before[task.partition] = now + delay
                self._enqueue(run, task.partition)
        else:
            self._enqueue(run, task.partition)
        self._schedule(commands)
        return commands

    # -- events: workers -------------------------------------------------------------

    def worker_added(self, worker_id: str, host: str, cores: int) -> list[Command]:
        """A worker joined (or came back); it can take tasks."""
        commands: list[Command] = []
        if worker_id not in self.workers:
            self.workers[worker_id] = _Worker(worker_id, host, max(1, cores))
        self._schedule(commands)
        return commands

    def worker_draining(self, worker_id: str) -> list[Command]:
        """A worker is leaving: it takes no new tasks; the running ones may finish.

        >>> state = SchedulerState()
        >>> _ = state.worker_added("w1", "host-a", 2)
        >>> _ = state.worker_draining("w1")
        >>> state.workers["w1"].free
        0
        """
        worker = self.workers.get(worker_id)
        if worker is not None:
            worker.draining = True
        return []

    def worker_lost(self, worker_id: str, error: Any = "worker lost") -> list[Command]:
        """A worker died or was cut off: rerun its tasks elsewhere, forget its cached splits.

        Tasks a draining worker hands back do not count as failed attempts.
        """
        commands: list[Command] = []
        worker = self.workers.pop(worker_id, None)
        if worker is None:
            return commands
        for task_id in worker.stopping:
            self._stopping.pop(task_id, None)
        for holders in self.cache.values():
            holders.discard(worker_id)
        for task_id in sorted(worker.running):
            commands.extend(self.task_failed(task_id, error, blame_worker=False,
                                             counts=not worker.draining))
        self._schedule(commands)
        return commands

    def tick(self) -> list[Command]:
        """Time passed (``wake_at`` was reached): place tasks that waited for locality."""
        commands: list[Command] = []
        self._reap(commands)
        if self.speculation:
            self._speculate(commands)
        self._schedule(commands)
        return commands

    def shuffle_outputs_lost(self, shuffle_url: str) -> list[Command]:
        """A shuffle service is gone: every map output it served must be recomputed."""
        commands: list[Command] = []
        self.map_epoch += 1
        for outputs in self.map_outputs.values():
            for i, out in enumerate(outputs):
                if out is not None and out.shuffle_url == shuffle_url:
                    outputs[i] = None
        self._recompute_lost(commands)
        self._schedule(commands)
        return commands

    def forget_cached(self, rdd_id: int) -> None:
        """An RDD was unpersisted."""
        for key in [k for k in self.cache if k[0] == rdd_id]:
            del self.cache[key]

    def blocks_cached(self, worker_id: str, keys: Iterable[tuple[int, int]]) -> None:
        """A worker holds these ``(rdd_id, split)`` blocks (told with a task's outcome)."""
        for key in keys:
            self.cache.setdefault(tuple(key), set()).add(worker_id)  # type: ignore[arg-type]

    def blocks_evicted(self, worker_id: str, keys: Iterable[tuple[int, int]]) -> None:
        """A worker no longer holds these blocks (evicted, or it answered "missing").

        Locality stops pointing at it; the next task needing one of them reads
        another copy or recomputes it from lineage.
        """
        for key in keys:
            holders = self.cache.get(tuple(key))  # type: ignore[arg-type]
            if holders is not None:
                holders.discard(worker_id)
                if not holders:
                    del self.cache[tuple(key)]  # type: ignore[arg-type]

    # -- internals -------------------------------------------------------------------

    def _finish_task(self, task_id: int) -> _Task | None:
        task = self.tasks.pop(task_id, None)
        if task is None:
            return None
        worker = self.workers.get(task.worker_id)
        if worker is not None:
            worker.running.discard(task_id)
        run = self.stages.get(task.stage_id)
        if run is not None:
            attempts = run.running.get(task.partition)
            if attempts is not None:
                attempts.discard(task_id)
                if not attempts:
                    del run.running[task.partition]
        return task

    def _cancel(self, task: _Task, commands: list[Command]) -> None:
        """Stop a task nobody needs; its core stays taken until its worker says it stopped,
        or its process is killed (``kill_timeout`` after now)."""
        commands.append(Cancel(task.id, task.worker_id))
        worker = self.workers.get(task.worker_id)
        if worker is None:
            return
        worker.running.discard(task.id)
        wait = self.kill_timeout if self.kill_timeout is not None else float("inf")
        worker.stopping[task.id] = self.clock() + wait
        self._stopping[task.id] = worker.id

    def _stopped(self, task_id: int, commands: list[Command]) -> None:
        """A cancelled task's worker answered for it: its core is free."""
        worker = self.workers.get(self._stopping.pop(task_id, ""))
        if worker is not None:
            worker.stopping.pop(task_id, None)
            worker.killed.discard(task_id)
            self._schedule(commands)

    def _reap(self, commands: list[Command]) -> None:
        """Kill the processes of cancelled tasks past their kill timeout; stop waiting for
        those killed ``KILL_GRACE`` ago whose worker never answered."""
        now = self.clock()
        for worker in self.workers.values():
            late = sorted(t for t, at in worker.stopping.items() if at <= now)
            to_kill = tuple(t for t in late if t not in worker.killed)
            for task_id in late:
                if task_id in worker.killed:  # given up: count the core free again
                    del worker.stopping[task_id]
                    worker.killed.discard(task_id)
                    self._stopping.pop(task_id, None)
                else:
                    worker.killed.add(task_id)
                    worker.stopping[task_id] = now + KILL_GRACE
            if to_kill:
                commands.append(Kill(worker.id, to_kill))

    def _needs(self, run: _StageRun, partition: int) -> bool:
        stage = run.stage
        if stage.shuffle_id is not None:
            outputs = self.map_outputs.get(stage.shuffle_id)
            return outputs is None or outputs[partition] is None
        return any(partition in self.jobs[j].remaining for j in run.jobs if j in self.jobs)

    def _submit_stage(self, stage: Any, job_id: int, commands: list[Command]) -> None:
        run = self.stages.get(stage.id)
        if run is not None:
            run.jobs.add(job_id)
            for parent in stage.parents:
                if parent.id in self.stages:
                    self._submit_stage(parent, job_id, commands)
            return
        run = _StageRun(stage, {job_id})
        self.stages[stage.id] = run
        if stage.shuffle_id is not None:
            self.map_outputs.setdefault(stage.shuffle_id, [None] * stage.num_partitions)
        missing = [p for p in stage.parents if not self._available(p)]
        for parent in missing:
            self._submit_stage(parent, job_id, commands)
        if not missing:
            self._start_stage(run, commands)

    def _start_stage(self, run: _StageRun, commands: list[Command]) -> None:
        run.waiting = False
        stage = run.stage
        todo = [p for p in range(stage.num_partitions) if self._needs(run, p)]
        if not todo:
            self._stage_complete(run, commands)
            return
        for partition in todo:
            if partition not in run.running:
                self._enqueue(run, partition)

    def _enqueue(self, run: _StageRun, partition: int) -> None:
        if partition not in run.to_run:
            run.to_run.add(partition)
            run.queued_at[partition] = self.clock()
            run.queue.append(partition)

    def _partition_done(
        self,
        run: _StageRun,
        task: _Task,
        result: Any,
        map_output: MapOutput | None,
        commands: list[Command],
    ) -> None:
        stage = run.stage
        if not self._needs(run, task.partition):
            return  # a duplicate (speculative) attempt finished second
        run.durations.append(self.clock() - task.started)
        for other in sorted(run.running.pop(task.partition, ())):
            other_task = self.tasks.pop(other, None)
            if other_task is not None:
                self._cancel(other_task, commands)
        if stage.shuffle_id is not None:
            self.map_outputs[stage.shuffle_id][task.partition] = map_output
            self.map_epoch += 1
            if self._available(stage) and not run.waiting:
                self._stage_complete(run, commands)
            return
        for job_id in sorted(run.jobs):
            job = self.jobs.get(job_id)
            if job is None or task.partition not in job.remaining:
                continue
            job.remaining.discard(task.partition)
            commands.append(PartitionDone(job_id, job.outputs[task.partition], result))
            if not job.remaining:
                commands.append(JobFinished(job_id))
                self._drop_job(job_id, commands)

    def _stage_complete(self, run: _StageRun, commands: list[Command]) -> None:
        stage = run.stage
        if stage.shuffle_id is None:
            return
        # Start every waiting stage whose parents are now all available.
        for other in list(self.stages.values()):
            if other.waiting and all(self._available(p) for p in other.stage.parents):
                self._start_stage(other, commands)
        if not run.running:
            self._release_stage(run.stage.id, commands)

    def _fetch_failed(
        self,
        run: _StageRun,
        task: _Task,
        error: Any,
        fetch_failed: tuple[int, list[int]],
        commands: list[Command],
    ) -> None:
        shuffle_id, map_ids = fetch_failed
        self.map_epoch += 1
        outputs = self.map_outputs.get(shuffle_id)
        if outputs is not None:
            for m in map_ids:
                if 0 <= m < len(outputs):
                    outputs[m] = None
        if not run.waiting:
            run.fetch_failures += 1
            if run.fetch_failures > self.max_stage_attempts:
                self._abort_stage(run, error, commands)
                return
            run.waiting = True
        run.to_run.discard(task.partition)
        self._recompute_lost(commands)
        if all(self._available(p) for p in run.stage.parents):
            self._start_stage(run, commands)

    def _recompute_lost(self, commands: list[Command]) -> None:
        # Every stage reading a shuffle with missing outputs waits (not only the one that
        # noticed): launching its tasks now would hand them an incomplete shuffle.
        for run in list(self.stages.values()):
            lost = [p for p in run.stage.parents if not self._available(p)]
            if not lost:
                continue
            run.waiting = True
            for parent in lost:
                for job_id in sorted(run.jobs):
                    self._resubmit_parent(parent, job_id, commands)

    def _resubmit_parent(self, stage: Any, job_id: int, commands: list[Command]) -> None:
        run = self.stages.get(stage.id)
        if run is not None and not run.waiting:
            run.jobs.add(job_id)
            self._start_stage(run, commands)
            return
        self._submit_stage(stage, job_id, commands)

    def _abort_stage(self, run: _StageRun, error: Any, commands: list[Command]) -> None:
        for job_id in sorted(run.jobs):
            if job_id in self.jobs:
                commands.append(JobAborted(job_id, error))
                self._drop_job(job_id, commands)

    def _drop_job(self, job_id: int, commands: list[Command]) -> None:
        job = self.jobs.pop(job_id)
        released = []
        for stage_id, run in list(self.stages.items()):
            run.jobs.discard(job_id)
            if run.jobs:
                continue
            for task_ids in run.running.values():
                for task_id in sorted(task_ids):
                    task = self.tasks.pop(task_id, None)
                    if task is not None:
                        self._cancel(task, commands)
            del self.stages[stage_id]
            released.append(stage_id)
        del job
        if released:
            commands.append(StagesFinished(tuple(sorted(released))))

    def _release_stage(self, stage_id: int, commands: list[Command]) -> None:
        run = self.stages.get(stage_id)
        if run is None:
            return
        # A finished map stage stays known through map_outputs; its run record can go
        # once no job waits on it.
        if all(
            not other.waiting or run.stage not in other.stage.parents
            for other in self.stages.values()
            if other is not run
        ):
            del self.stages[stage_id]
            commands.append(StagesFinished((stage_id,)))

    def _flaky(self, now: float) -> set[str]:
        """Workers that failed too many tasks lately; none if that would exclude every worker."""
        flaky: set[str] = set()
        if self.exclude_after is None:
            return flaky
        for worker_id, failures in self.worker_failures.items():
            recent = [f[0] for f in failures if now - f[0] < FAILURE_WINDOW]
            if len(recent) >= self.exclude_after and now - recent[-1] < EXCLUDE_FOR:
                flaky.add(worker_id)
        if flaky >= set(self.workers):
            return set()
        return flaky

    def _forgive(self, stage_id: int, partition: int) -> None:
        """Forget the workers' failures of a task that failed everywhere it ran."""
        for worker_id, failures in self.worker_failures.items():
            self.worker_failures[worker_id] = [
                f for f in failures if (f[1], f[2]) != (stage_id, partition)]

    def _wake(self, at: float) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)

    def _pick_worker(
        self, run: _StageRun, partition: int, avoid: set[str] | frozenset = frozenset()
    ) -> _Worker | None:
        now = self.clock()
        not_before = run.not_before.get(partition, 0.0)
        if now < not_before:
            self._wake(not_before)  # backing off after a failure
            return None
        free = [w for w in self.workers.values() if w.free > 0 and w.id not in avoid]
        if not free:
            return None
        excluded = run.excluded.get(partition, set()) | self._flaky(now)
        allowed = [w for w in free if w.id not in excluded]
        if not allowed:
            if any(w.id not in excluded for w in self.workers.values()):
                return None  # wait for a worker that has not failed this partition
            allowed = free
        preferred = run.stage.preferred(partition, self.cached_on)
        if preferred:
            local = [w for w in allowed if w.id in preferred or w.host in preferred]
            if local:
                allowed = local
            elif any(
                w.id in preferred or w.host in preferred
                for w in self.workers.values()
                if w.id not in excluded
            ):
                # Delay scheduling: the data's worker is busy; wait a little for it.
                ready_at = run.queued_at.get(partition, 0.0) + self.locality_wait
                if now < ready_at:
                    self._wake(ready_at)
                    return None
        return max(allowed, key=lambda w: (w.free, -len(w.running)))

    def _schedule(self, commands: list[Command]) -> None:
        self.wake_at = None
        free = sum(w.free for w in self.workers.values())
        if free > 0:
            self._launch_queued(free, commands)
        if self.speculation and self.tasks:
            self._wake(self.clock() + SPECULATION_INTERVAL)
        for worker_id in set(self._stopping.values()):  # few: cancelled, not yet stopped
            deadline = min(self.workers[worker_id].stopping.values())
            if deadline != float("inf"):
                self._wake(deadline)

    def _launch_queued(self, free: int, commands: list[Command]) -> None:
        """Fill up to ``free`` slots with queued tasks, the policy choosing whose.

        A stage's tasks are charged to its earliest live job (a map stage
        shared by several jobs runs once, in that job's pool).  Within a job,
        stages go in id order (parents before children).  Each pass looks at
        each queued partition at most once; those that cannot run yet
        (locality wait, retry backoff, excluded workers) keep their place.
        """
        waiting: dict[int, list[_StageRun]] = {}  # job id -> its runnable stages with work
        running: dict[int, int] = {}
        for run in self.stages.values():
            queued = run.to_run and not run.waiting
            if not (queued or run.running) or not run.jobs:
                continue
            job_id = min(run.jobs)
            if run.running:
                running[job_id] = running.get(job_id, 0) + len(run.running)
            if queued:
                runs = waiting.get(job_id)
                if runs is None:
                    waiting[job_id] = [run]
                else:
                    runs.append(run)
        if not waiting:
            return
        turn = None
        if len(waiting) > 1:  # only then does the policy have a choice to make
            jobs = self.jobs
            turn = self.policy.round({j: job.pool for j, job in jobs.items()}, running)
        for runs in waiting.values():
            if len(runs) > 1:
                runs.sort(key=_stage_id, reverse=True)  # the next one is last
        skipped: list[tuple[_StageRun, list[int]]] = []
        while waiting and free > 0:
            job_id = next(iter(waiting)) if turn is None else turn.next(waiting.keys())
            runs = waiting[job_id]
            run = runs[-1]
            held: list[int] = []
            if self._launch_one(run, held, commands):
                if turn is not None:
                    turn.launched(job_id)
                free -= 1
            else:
                runs.pop()  # nothing of this stage can run now
                if not runs:
                    del waiting[job_id]
            if held:
                skipped.append((run, held))
        for run, held in reversed(skipped):  # later passes over a stage held later partitions
            run.queue.extendleft(reversed(held))

    def _launch_one(self, run: _StageRun, held: list[int], commands: list[Command]) -> bool:
        """Launch the first of ``run``'s queued partitions that can run now.

        Partitions passed over are added to ``held`` (the caller puts them
        back at the front of the queue); stale entries are dropped.
        """
        queue = run.queue
        while queue:
            partition = queue.popleft()
            if partition not in run.to_run:
                continue
            worker = self._pick_worker(run, partition)
            if worker is None:
                held.append(partition)
                continue
            run.to_run.discard(partition)
            self._start_task(run, partition, worker, commands)
            return True
        return False

    def _start_task(
        self,
        run: _StageRun,
        partition: int,
        worker: _Worker,
        commands: list[Command],
        speculative: bool = False,
    ) -> None:
        self._next_task += 1
        task_id = self._next_task
        attempt = run.launches.get(partition, 0)
        run.launches[partition] = attempt + 1
        self.tasks[task_id] = _Task(
            task_id, run.stage.id, partition, attempt, worker.id, self.clock(), speculative
        )
        run.running.setdefault(partition, set()).add(task_id)
        worker.running.add(task_id)
        commands.append(Launch(task_id, run.stage, partition, attempt, worker.id))

    def _speculate(self, commands: list[Command]) -> None:
        """Launch a copy of each straggler: a task running far longer than its stage's median."""
        now = self.clock()
        for run in list(self.stages.values()):
            if run.waiting or not run.durations or not run.running:
                continue
            total = len(run.durations) + len(run.running) + len(run.to_run)
            if len(run.durations) < self.speculation_quantile * total:
                continue
            ordered = sorted(run.durations)
            median = ordered[len(ordered) // 2]
            threshold = max(self.speculation_multiplier * median, self.speculation_min_seconds)
            for partition, task_ids in list(run.running.items()):
                if partition in run.speculated or len(task_ids) != 1:
                    continue
                task = self.tasks[next(iter(task_ids))]
                if now - task.started <= threshold:
                    continue
                worker = self._pick_worker(run, partition, avoid={task.worker_id})
                if worker is None:
                    continue
                run.speculated.add(partition)
                self._start_task(run, partition, worker, commands, speculative=True)
