"""The scheduler's decisions, as a pure state machine: events in, commands out.

Nothing here does I/O or knows about asyncio.  The async shell
(``aiospark.scheduler.runner``) feeds it events (``aiospark.scheduler.events``:
a job was submitted, a task finished or failed, a worker came or went) through
one entry point, ``SchedulerState.handle``, and carries out the commands it
returns (``aiospark.scheduler.actions``: launch this task there, cancel that
one, deliver a result, fail a job).  That makes every scheduling decision
unit-testable without sockets.

The work is split by concern, as in Spark:

- ``stages``: jobs, stage lifecycle, map outputs, fetch-failure recovery
  (Spark's ``DAGScheduler``);
- ``tasksets``: one stage's tasks: placement, locality, retries, speculation
  (Spark's ``TaskSetManager``);
- ``workers``: slots, cancelled tasks still running, flaky workers, cached blocks;
- ``pools``: which job gets the next free slot (FAIR or FIFO).

This module ties them together and decides when to fill free slots.

>>> from types import SimpleNamespace as NS
>>> from aiospark.scheduler.events import JobSubmitted, TaskFinished, WorkerAdded
>>> stage = NS(id=1, num_partitions=2, parents=[], shuffle_id=None,
...            preferred=lambda partition, cache: [])
>>> state = SchedulerState()
>>> state.handle(WorkerAdded("w1", host="h", cores=1))
[]
>>> [type(c).__name__ for c in state.handle(JobSubmitted(7, stage, (0, 1)))]
['Launch']
>>> [type(c).__name__ for c in state.handle(TaskFinished(1, result="r0"))]
['PartitionDone', 'Launch']
>>> [type(c).__name__ for c in state.handle(TaskFinished(2, result="r1"))]
['PartitionDone', 'JobFinished', 'StagesFinished']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from aiospark.scheduler import barrier as bar
from aiospark.scheduler import events as ev
from aiospark.scheduler.actions import (
    Action,
    BarrierReply,
    Cancel,
    Command,
    JobAborted,
    JobFinished,
    Kill,
    Launch,
    MapOutput,
    PartitionDone,
    StagesFinished,
)
from aiospark.scheduler.pools import FAIR, Policy, Pool
from aiospark.scheduler.protocols import SchedulerStage
from aiospark.scheduler.stages import Job, JobView, StageGraph, StageRun, StageView
from aiospark.scheduler.tasksets import MAX_BACKOFF, Placement, Task
from aiospark.scheduler.workers import (
    EXCLUDE_AFTER,
    EXCLUDE_FOR,
    FAILURE_WINDOW,
    KILL_GRACE,
    BlockLocations,
    Cluster,
    Worker,
)

__all__ = [  # with what it re-exports for the runner and older imports
    "EXCLUDE_AFTER", "EXCLUDE_FOR", "FAILURE_WINDOW", "KILL_GRACE", "MAX_BACKOFF",
    "SPECULATION_INTERVAL", "Action", "BarrierReply", "Cancel", "Command", "JobAborted",
    "JobFinished", "Kill", "Launch", "MapOutput", "PartitionDone", "SchedulerState",
    "StagesFinished",
]

#: How often to look for stragglers while speculation is on.
SPECULATION_INTERVAL = 0.1


#: A task queued on a worker (``prefetch``) behind one running longer than this is
#: taken back when a worker it may run on has an idle core.
STUCK_AFTER = 0.1


def _stage_id(run: StageRun) -> int:
    return run.stage.id


def _launch_order(task: Task) -> tuple[float, int]:
    return (task.started, task.id)


class SchedulerState:
    """All the scheduler knows: workers, jobs, stages, tasks, map outputs, cached splits.

    Change it only through ``handle(event)``; the mappings it exposes
    (``workers``, ``jobs``, ``stages``, ``tasks``, ``map_outputs``, ``cache``)
    are for reading.  ``log`` (a number of events, default from the
    ``AIOSPARK_SCHEDULER_LOG`` environment variable) keeps the last events
    handled in ``self.log``, to debug or replay (``aiospark.scheduler.replay``).
    """

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
        pools: Mapping[str, Mapping[str, Any] | Pool] | None = None,
        prefetch: int = 0,
        barrier_timeout: float = bar.DEFAULT_TIMEOUT,
        barrier_slot_wait: float = bar.SLOT_WAIT,
        log: int | None = None,
    ) -> None:
        options = {k: v for k, v in locals().items() if k not in ("self", "clock", "log")}
        self.max_attempts = max_attempts
        #: How long a task waits for a busy worker holding its data before running elsewhere.
        self.locality_wait = locality_wait
        self.clock = clock
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
        #: How free slots are shared between jobs: FAIR (in pools) or FIFO.
        self.policy = Policy(scheduler_mode, pools)
        #: Tasks each busy core may have queued on its worker while every stage with
        #: tasks to run has short ones (``tasksets.SHORT_TASK``) and this application
        #: has the whole cluster: the worker starts the next one without waiting for a
        #: round trip, and messages carry several tasks (0: never, as in Spark).
        self.prefetch = prefetch
        #: matches the barrier() / all_gather() calls of barrier stages' tasks
        self.barrier = bar.BarrierCoordinator(barrier_timeout)
        #: Seconds a barrier stage waits for the cluster to have cores for all its tasks.
        self.barrier_slot_wait = barrier_slot_wait
        self._next_barrier = 0
        size = ev.log_size_from_env() if log is None else log
        #: The last events handled, with their times (None unless asked for).
        self.log: ev.EventLog | None = ev.EventLog(size, options) if size > 0 else None
        self._now = 0.0
        #: the most cores this application may take at once (the master's share; None: all)
        self.share: int | None = None
        self._wake_at: float | None = None
        self._next_task = 0
        self._cluster = Cluster()
        self._blocks = BlockLocations()
        self._tasks: dict[int, Task] = {}
        self._graph = StageGraph(self._cancel_task, self._time, max_stage_attempts)
        self._handlers: dict[type, Callable[[Any], list[Command]]] = {
            ev.JobSubmitted: self._job_submitted,
            ev.CancelJob: self._cancel_job,
            ev.TaskFinished: self._task_finished,
            ev.TaskFailed: self._task_failed,
            ev.FetchFailed: self._fetch_failed,
            ev.BarrierSync: self._barrier_sync,
            ev.WorkerAdded: self._worker_added,
            ev.WorkerDraining: self._worker_draining,
            ev.WorkerLost: self._worker_lost,
            ev.BlocksCached: self._blocks_cached,
            ev.BlocksEvicted: self._blocks_evicted,
            ev.Unpersisted: self._unpersisted,
            ev.ShuffleOutputsLost: self._shuffle_outputs_lost,
            ev.ShuffleRemoved: self._shuffle_removed,
            ev.ShareChanged: self._share_changed,
            ev.Tick: self._tick,
        }
        self.workers: Mapping[str, Worker] = self._cluster.workers
        self.jobs: Mapping[int, Job] = MappingProxyType(self._graph.jobs)
        self.stages: Mapping[int, StageRun] = MappingProxyType(self._graph.runs)
        self.tasks: Mapping[int, Task] = MappingProxyType(self._tasks)
        self.map_outputs: Mapping[int, Sequence[MapOutput | None]] = MappingProxyType(
            self._graph.outputs.by_shuffle)
        self.cache: Mapping[tuple[int, int], set[str]] = MappingProxyType(self._blocks.holders)

    # -- the entry point ---------------------------------------------------------------

    def handle(self, event: ev.Event) -> list[Command]:
        """Apply one event; return what the shell must do, in order."""
        now = self._now = self.clock()
        if self.log is not None:
            self.log.record(now, event)
        return self._handlers[type(event)](event)

    # -- queries -------------------------------------------------------------------------

    @property
    def wake_at(self) -> float | None:
        """When to send a ``Tick``: a task held back (locality, backoff) may run, a
        cancelled task is to be killed, or stragglers are to be looked for."""
        return self._wake_at

    @property
    def map_epoch(self) -> int:
        """Bumped whenever a map output appears or is lost (lets callers cache locations)."""
        return self._graph.outputs.epoch

    def cached_on(self, rdd_id: int, split: int) -> set[str]:
        """Workers holding a cached split."""
        return self._blocks.on(rdd_id, split)

    def map_locations(self, shuffle_id: int) -> list[MapOutput]:
        """Every map output of a complete shuffle, in map order."""
        return self._graph.map_locations(shuffle_id)

    def job_view(self, job_id: int) -> JobView | None:
        """A live job, read-only (None once it ended)."""
        return self._graph.job_view(job_id)

    def stage_view(self, stage_id: int) -> StageView | None:
        """A stage some live job needs, read-only (None otherwise)."""
        return self._graph.stage_view(stage_id)

    def stage_job(self, stage_id: int) -> int | None:
        """The job a live stage's tasks run for: the earliest live job needing it."""
        run = self._graph.runs.get(stage_id)
        return min(run.jobs) if run is not None and run.jobs else None

    def shuffle_progress(self, shuffle_id: int) -> tuple[int, int] | None:
        """``(map outputs present, map outputs)`` of a shuffle; None if never run."""
        return self._graph.outputs.progress(shuffle_id)

    # -- events: jobs ----------------------------------------------------------------------

    def _job_submitted(self, event: ev.JobSubmitted) -> list[Command]:
        if not event.partitions:
            return [JobFinished(event.job_id)]
        short = self._barrier_short(event.stage)
        if short is not None:  # fail fast, as Spark's slots check
            return [JobAborted(event.job_id, short)]
        commands: list[Command] = []
        self._graph.submit_job(
            event.job_id, event.stage, list(event.partitions), event.pool, commands)
        self._schedule(commands)
        return commands

    def _cancel_job(self, event: ev.CancelJob) -> list[Command]:
        commands: list[Command] = []
        if event.job_id in self._graph.jobs:
            self._graph.drop_job(event.job_id, commands)
            commands.extend(self.barrier.end_stages(self._graph.runs.__contains__))
            self._schedule(commands)  # its cores are free for the jobs waiting behind it
        return commands

    # -- events: tasks ---------------------------------------------------------------------

    def _task_finished(self, event: ev.TaskFinished) -> list[Command]:
        commands: list[Command] = []
        task = self._finish_task(event.task_id)
        if task is None:
            self._stopped(event.task_id, commands)
            return commands
        self._blocks.cached(task.worker_id, event.cached)
        if task.barrier_attempt >= 0:
            commands.extend(self.barrier.task_finished(task.barrier_attempt, task.partition))
        run = self._graph.runs.get(task.stage_id)
        if run is not None:
            self._graph.partition_done(
                run, task, event.result, event.map_output, commands, event.seconds)
        self._schedule(commands)
        return commands

    def _task_failed(self, event: ev.TaskFailed) -> list[Command]:
        return self._failed(event.task_id, event.error, None, event.counts, event.blame_worker)

    def _fetch_failed(self, event: ev.FetchFailed) -> list[Command]:
        return self._failed(event.task_id, event.error, (event.shuffle_id, event.map_ids))

    def _failed(
        self,
        task_id: int,
        error: object,
        fetch: tuple[int, Iterable[int]] | None,
        counts: bool = True,
        blame_worker: bool = True,
    ) -> list[Command]:
        commands: list[Command] = []
        task = self._finish_task(task_id)
        if task is None:
            self._stopped(task_id, commands)
            return commands
        graph = self._graph
        run = graph.runs.get(task.stage_id)
        if run is not None and run.barrier and task.barrier_attempt >= 0:
            self._barrier_failed(run, task, error, fetch, counts, commands)
            self._schedule(commands)
            return commands
        if run is None or run.tasks.running.get(task.partition):
            self._schedule(commands)
            return commands  # stage gone, or another attempt of the partition still runs
        if not graph.needs(run, task.partition):
            self._schedule(commands)
            return commands
        now = self._now
        if fetch is not None:
            graph.fetch_failed(run, task, error, fetch[0], fetch[1], commands)
        elif counts:
            attempts = run.tasks.failed(task.partition, task.worker_id)
            if blame_worker:
                self._cluster.record_failure(task.worker_id, now, task.stage_id, task.partition)
            if attempts >= self.max_attempts:
                # The error followed the task from worker to worker: it is the task's (the
                # user's code), not theirs, and must not keep them from other jobs.
                self._cluster.forgive(task.stage_id)
                graph.abort_stage(run, error, commands)
            else:
                run.tasks.retry(task.partition, now, attempts, self.retry_backoff)
        else:
            run.tasks.enqueue(task.partition, now)
        self._schedule(commands)
        return commands

    # -- barrier stages --------------------------------------------------------------------

    def _barrier_sync(self, event: ev.BarrierSync) -> list[Command]:
        commands: list[Command] = []
        commands += self.barrier.arrive(
            event.barrier_attempt, event.partition, event.task_id, event.epoch, event.call,
            event.message, self._now, event.worker_id)
        self._schedule(commands)  # (recomputes wake_at, with the calls' deadlines)
        return commands

    def _barrier_failed(self, run: StageRun, task: Task, error: object,
                        fetch: tuple[int, Iterable[int]] | None, counts: bool,
                        commands: list[Command]) -> None:
        """A task of barrier stage ``run`` failed: every other one is cancelled and the
        whole stage runs again (``max_attempts`` times at most, counting the attempts
        that failed for reasons that count)."""
        graph = self._graph
        commands.extend(self.barrier.end(task.barrier_attempt, (
            f"the task of partition {task.partition} of the barrier stage failed; the "
            "stage is retried")))
        graph.reset_barrier(run, commands)
        if fetch is not None:
            graph.fetch_failed(run, task, error, fetch[0], fetch[1], commands)
            return
        if counts:
            run.barrier_failures += 1
            if run.barrier_failures >= self.max_attempts:
                graph.abort_stage(run, error, commands)
                return
        graph.start_stage(run, commands)

    def _barrier_short(self, stage: SchedulerStage) -> Exception | None:
        """The error of a job with a barrier stage that has more tasks than the cluster
        has cores (None if there is none)."""
        slots = bar.capacity(self._cluster, self.share)
        stack = [stage]
        while stack:
            node = stack.pop()
            if getattr(node, "barrier", False) and node.num_partitions > slots \
                    and not self._graph.available(node):
                return bar.too_few_slots(node.num_partitions, slots)
            stack.extend(node.parents)
        return None

    def _launch_barrier(self, run: StageRun, free: int, place: Placement,
                        commands: list[Command]) -> int:
        """Launch every queued task of barrier stage ``run`` if all can start now, each
        on an idle core; return how many were launched."""
        partitions = sorted(run.tasks.to_run)
        if len(partitions) > free:
            return 0
        placed = bar.place_all(partitions, self._cluster,
                               lambda p: run.stage.preferred(p, place.cache), place.flaky)
        if placed is None:
            return 0
        self._next_barrier += 1
        attempt = self._next_barrier
        peers = tuple(placed[p] for p in partitions)
        tasks = {}
        for partition in partitions:
            run.tasks.to_run.discard(partition)
            worker = self._cluster.workers[placed[partition]]
            tasks[partition] = (self._start_task(run, partition, worker, commands,
                                                 barrier=(attempt, peers)), worker.id)
        run.short_since = None
        self.barrier.begin(attempt, run.stage.id, tasks)
        return len(partitions)

    def _check_barrier_slots(self, commands: list[Command]) -> None:
        """Barrier stages waiting for cores the cluster lacks (a worker was lost) fail
        after ``barrier_slot_wait`` seconds."""
        slots = bar.capacity(self._cluster, self.share)
        for run in list(self._graph.runs.values()):
            if not run.barrier or run.waiting or not run.tasks.to_run \
                    or run.stage.id not in self._graph.runs:
                continue
            if len(run.tasks.to_run) <= slots:
                run.short_since = None
                continue
            if run.short_since is None:
                run.short_since = self._now
            if self._now >= run.short_since + self.barrier_slot_wait:
                self._graph.abort_stage(run, bar.too_few_slots(len(run.tasks.to_run), slots),
                                        commands)
            else:
                self._wake(run.short_since + self.barrier_slot_wait)

    # -- events: workers and what they hold ------------------------------------------------

    def _worker_added(self, event: ev.WorkerAdded) -> list[Command]:
        commands: list[Command] = []
        self._cluster.add(event.worker_id, event.host, event.cores)
        self._schedule(commands)
        return commands

    def _worker_draining(self, event: ev.WorkerDraining) -> list[Command]:
        self._cluster.drain(event.worker_id)
        return []

    def _worker_lost(self, event: ev.WorkerLost) -> list[Command]:
        commands: list[Command] = []
        worker = self._cluster.remove(event.worker_id)
        if worker is None:
            return commands
        self._blocks.worker_lost(event.worker_id)
        # Tasks a draining worker hands back do not count as failed attempts.
        for task_id in sorted(worker.running):
            commands.extend(self._failed(task_id, event.error, None,
                                         counts=not worker.draining, blame_worker=False))
        self._schedule(commands)
        return commands

    def _blocks_cached(self, event: ev.BlocksCached) -> list[Command]:
        self._blocks.cached(event.worker_id, event.keys)
        return []

    def _blocks_evicted(self, event: ev.BlocksEvicted) -> list[Command]:
        # Locality stops pointing at the worker; the next task needing one of these blocks
        # reads another copy or recomputes it from lineage.
        self._blocks.evicted(event.worker_id, event.keys)
        return []

    def _unpersisted(self, event: ev.Unpersisted) -> list[Command]:
        self._blocks.unpersisted(event.rdd_id)
        return []

    def _shuffle_outputs_lost(self, event: ev.ShuffleOutputsLost) -> list[Command]:
        commands: list[Command] = []
        self._graph.outputs_lost(event.shuffle_url, commands)
        self._schedule(commands)
        return commands

    def _shuffle_removed(self, event: ev.ShuffleRemoved) -> list[Command]:
        self._graph.forget_shuffle(event.shuffle_id)
        return []

    def _share_changed(self, event: ev.ShareChanged) -> list[Command]:
        self.share = event.cores
        commands: list[Command] = []
        self._schedule(commands)  # a bigger share may start waiting tasks at once
        return commands

    def _tick(self, event: ev.Tick) -> list[Command]:
        commands: list[Command] = []
        for worker_id, task_ids in self._cluster.reap(self._now):
            commands.append(Kill(worker_id, task_ids))
        commands.extend(self.barrier.expire(self._now))
        if self.speculation:
            self._speculate(commands)
        self._unqueue_stuck(commands)
        self._schedule(commands)
        return commands

    # -- internals -------------------------------------------------------------------------

    def _time(self) -> float:
        """The time of the event being handled."""
        return self._now

    def _wake(self, at: float | None) -> None:
        if at is not None and (self._wake_at is None or at < self._wake_at):
            self._wake_at = at

    def _finish_task(self, task_id: int) -> Task | None:
        task = self._tasks.pop(task_id, None)
        if task is None:
            return None
        self._cluster.finish(task.worker_id, task_id)
        run = self._graph.runs.get(task.stage_id)
        if run is not None:
            run.tasks.ended(task.partition, task_id)
        return task

    def _cancel_task(self, task_id: int, commands: list[Command]) -> None:
        """Stop a task nobody needs; its core stays taken until its worker says it stopped,
        or its process is killed (``kill_timeout`` after now)."""
        task = self._tasks.pop(task_id, None)
        if task is None:
            return
        commands.append(Cancel(task.id, task.worker_id))
        wait = self.kill_timeout if self.kill_timeout is not None else float("inf")
        self._cluster.cancel(task.worker_id, task.id, self._now + wait)

    def _stopped(self, task_id: int, commands: list[Command]) -> None:
        """A cancelled task's worker answered for it: its core is free."""
        if self._cluster.stopped(task_id):
            self._schedule(commands)

    def _placement(self) -> Placement:
        return Placement(
            self._cluster, self._now, self.locality_wait,
            self._cluster.flaky(self._now, self.exclude_after), self._blocks.on,
        )

    def _schedule(self, commands: list[Command]) -> None:
        self._wake_at = None
        if self.prefetch:
            self._cluster.set_depth(self._prefetch_depth())
        if any(run.barrier for run in self._graph.runs.values()):
            self._check_barrier_slots(commands)
        free = self._free_in_share()
        if free > 0:
            self._launch_queued(free, commands)
        if self.speculation and self._tasks:
            self._wake(self._now + SPECULATION_INTERVAL)
        if self._cluster.queueing:  # look for tasks queued behind a long one
            self._wake(self._now + STUCK_AFTER)
        self._wake(self._cluster.next_deadline())
        self._wake(self.barrier.wake_at)

    def _unqueue_stuck(self, commands: list[Command]) -> None:
        """Tasks queued on a worker behind one that turned out long (running more than
        ``STUCK_AFTER``) while a worker they may run on has an idle core: ask for them
        back (``Cancel(if_waiting=True)``, once each).  A worker that had not started
        one answers it cancelled, and it is queued here again, for the idle core."""
        cluster = self._cluster
        if not cluster.queueing:
            return
        flaky = cluster.flaky(self._now, self.exclude_after)
        idle = {w.id for w in cluster if not w.draining and w.id not in flaky
                and len(w.running) + len(w.stopping) < w.cores}
        if not idle:
            return
        for worker_id in sorted(cluster.queueing):
            worker = cluster.workers[worker_id]
            tasks = sorted((self._tasks[t] for t in worker.running), key=_launch_order)
            if all(self._now - t.started <= STUCK_AFTER for t in tasks[: worker.cores]):
                continue
            for task in tasks[worker.cores:]:  # those the worker may not have started
                run = self._graph.runs.get(task.stage_id)
                if task.recalled or run is None or run.barrier or idle <= run.tasks.excluded.get(
                        task.partition, set()):
                    continue
                task.recalled = True
                # If it comes back, it runs elsewhere (not in that queue again).
                run.tasks.excluded.setdefault(task.partition, set()).add(task.worker_id)
                commands.append(Cancel(task.id, task.worker_id, if_waiting=True))

    def _prefetch_depth(self) -> int:
        """``prefetch`` while this application may use the whole cluster and every stage
        with tasks waiting has short ones; else 0 (a task waits only for a free core)."""
        cluster = self._cluster
        if self.share is not None and self.share < cluster.total_cores:
            return 0
        for run in self._graph.runs.values():
            tasks = run.tasks
            if tasks.to_run and run.jobs and not run.waiting and not tasks.quick():
                return 0
        return self.prefetch

    def _free_in_share(self) -> int:
        """Free slots this application may take: the cluster's, within its share (and
        the queue slots the share's cores have, ``prefetch``)."""
        cluster = self._cluster
        free = cluster.free_slots
        if self.share is not None and free > 0:
            taken = sum(len(w.running) + len(w.stopping) for w in cluster.workers.values())
            free = min(free, self.share * (1 + cluster.depth) - taken)
        return free

    def _launch_queued(self, free: int, commands: list[Command]) -> None:
        """Fill up to ``free`` slots with queued tasks, the policy choosing whose.

        A stage's tasks are charged to its earliest live job (a shared map stage
        runs once, in that job's pool); within a job, stages go in id order.
        Each pass looks at each queued partition at most once; those that cannot
        run yet (locality wait, backoff, excluded workers) keep their place."""
        waiting: dict[int, list[StageRun]] = {}  # job id -> its runnable stages with work
        running: dict[int, int] = {}
        for run in self._graph.runs.values():
            tasks = run.tasks
            queued = tasks.to_run and not run.waiting
            if not (queued or tasks.running) or not run.jobs:
                continue
            job_id = min(run.jobs)
            if tasks.running:
                running[job_id] = running.get(job_id, 0) + len(tasks.running)
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
            jobs = self._graph.jobs
            turn = self.policy.round({j: job.pool for j, job in jobs.items()}, running)
        for runs in waiting.values():
            if len(runs) > 1:
                runs.sort(key=_stage_id, reverse=True)  # the next one is last
        place = self._placement()
        skipped: list[tuple[StageRun, list[int]]] = []
        while waiting and free > 0:
            job_id = next(iter(waiting)) if turn is None else turn.next(waiting.keys())
            runs = waiting[job_id]
            run = runs[-1]
            if run.barrier:
                started = self._launch_barrier(run, free, place, commands)
                runs.pop()
                if not runs:
                    del waiting[job_id]
                if started:
                    free -= started
                    if turn is not None:
                        for _ in range(started):
                            turn.launched(job_id)
                elif len(run.tasks.to_run) <= bar.capacity(self._cluster, self.share):
                    break  # keep the cores that free up for it, or it may never start
                continue
            held: list[int] = []
            found = run.tasks.next_launch(place, held)
            if found is not None:
                self._start_task(run, found[0], found[1], commands)
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
            run.tasks.queue.extendleft(reversed(held))
        self._wake(place.wake_at)

    def _start_task(
        self,
        run: StageRun,
        partition: int,
        worker: Worker,
        commands: list[Command],
        speculative: bool = False,
        barrier: tuple[int, tuple[str, ...]] = (-1, ()),
    ) -> int:
        self._next_task += 1
        task_id = self._next_task
        attempt = run.tasks.started(partition, task_id)
        self._tasks[task_id] = Task(
            task_id, run.stage.id, partition, attempt, worker.id, self._now, speculative,
            barrier_attempt=barrier[0],
        )
        self._cluster.start(worker.id, task_id)
        commands.append(Launch(task_id, run.stage, partition, attempt, worker.id, *barrier))
        return task_id

    def _speculate(self, commands: list[Command]) -> None:
        """Launch a copy of each straggler: a task running far longer than its stage's median."""
        place = self._placement()
        for run in list(self._graph.runs.values()):
            if run.waiting or run.barrier:  # a copy of a barrier task would wait forever
                continue
            for task in run.tasks.stragglers(
                self._now, self._tasks, self.speculation_quantile,
                self.speculation_multiplier, self.speculation_min_seconds,
            ):
                if self.share is not None and self._free_in_share() <= 0:
                    break  # copies stay within the share too
                worker = run.tasks.pick_worker(task.partition, place, avoid=(task.worker_id,))
                if worker is None:
                    continue
                run.tasks.speculated.add(task.partition)
                self._start_task(run, task.partition, worker, commands, speculative=True)
        self._wake(place.wake_at)

