"""Jobs, stages and map outputs (Spark's ``DAGScheduler`` and ``MapOutputTracker``):
which stages a job needs, when each may start (its parents' shuffles are
complete), what a finished task delivers, and how lost map outputs are
recomputed (fetch failures, a lost shuffle service).

Pure logic for ``aiospark.scheduler.state``, which owns the tasks: a
``StageGraph`` queues partitions in each stage's ``TaskSet`` and asks its
owner to cancel tasks nobody needs any more (``cancel``).

>>> from types import SimpleNamespace as NS
>>> mapper = NS(id=1, num_partitions=2, parents=[], shuffle_id=5)
>>> reducer = NS(id=2, num_partitions=1, parents=[mapper], shuffle_id=None)
>>> graph = StageGraph(cancel=lambda task_id, commands: None, clock=lambda: 0.0)
>>> graph.submit_job(1, reducer, [0], "default", commands := [])
>>> sorted(graph.runs[1].tasks.to_run), graph.runs[2].waiting   # map side first
([0, 1], True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from aiospark.scheduler.actions import (
    Command,
    JobAborted,
    JobFinished,
    MapOutput,
    PartitionDone,
    StagesFinished,
)
from aiospark.scheduler.pools import DEFAULT_POOL
from aiospark.scheduler.protocols import SchedulerStage
from aiospark.scheduler.tasksets import Task, TaskSet


@dataclasses.dataclass
class Job:
    id: int
    stage: SchedulerStage
    #: partition -> output index
    outputs: dict[int, int]
    remaining: set[int]
    #: the scheduling pool the job's tasks compete in (see ``aiospark.scheduler.pools``)
    pool: str = DEFAULT_POOL


@dataclasses.dataclass
class StageRun:
    """A stage some live job needs: the jobs, whether it waits for its parents, its tasks."""

    stage: SchedulerStage
    jobs: set[int]
    tasks: TaskSet
    waiting: bool = True
    fetch_failures: int = 0
    #: a barrier stage: its tasks start together and are retried together
    barrier: bool = False
    #: barrier stage: attempts that failed so far
    barrier_failures: int = 0
    #: barrier result stage: the results of the running attempt, delivered (in
    #: partition order) once every task of the attempt succeeded
    held: dict[int, object] = dataclasses.field(default_factory=dict)
    #: barrier stage: since when the cluster has had too few cores for its tasks
    short_since: float | None = None


@dataclasses.dataclass(frozen=True)
class JobView:
    """A live job, read-only: ``remaining`` result partitions not computed yet."""

    job_id: int
    pool: str
    partitions: int
    remaining: int


@dataclasses.dataclass(frozen=True)
class StageView:
    """A stage some live job needs, read-only: whether it waits for its parents'
    shuffles, how many partitions run (``running``) or wait for a slot (``queued``),
    and how many times it restarted after losing a shuffle input (``attempt``)."""

    stage_id: int
    waiting: bool
    running: int
    queued: int
    attempt: int = 0


class MapOutputs:
    """Where each map output of each shuffle lives (None: not computed, or lost).

    >>> outputs = MapOutputs()
    >>> outputs.register(5, 2)
    >>> outputs.put(5, 0, MapOutput("w1", "http://w1")); outputs.complete(5, 2)
    False
    >>> outputs.put(5, 1, MapOutput("w2", "http://w2")); outputs.complete(5, 2)
    True
    >>> outputs.lose_url("http://w1"), outputs.missing(5)
    (True, 1)
    """

    def __init__(self) -> None:
        self.by_shuffle: dict[int, list[MapOutput | None]] = {}
        self._missing: dict[int, int] = {}
        #: Bumped whenever a map output appears or is lost (lets callers cache locations).
        self.epoch = 0

    def register(self, shuffle_id: int, maps: int) -> None:
        if shuffle_id not in self.by_shuffle:
            self.by_shuffle[shuffle_id] = [None] * maps
            self._missing[shuffle_id] = maps

    def missing(self, shuffle_id: int) -> int | None:
        """How many map outputs of ``shuffle_id`` are missing (None: unknown shuffle)."""
        return self._missing.get(shuffle_id)

    def progress(self, shuffle_id: int) -> tuple[int, int] | None:
        """``(outputs present, outputs)`` of ``shuffle_id`` (None: unknown shuffle)."""
        missing = self._missing.get(shuffle_id)
        if missing is None:
            return None
        total = len(self.by_shuffle[shuffle_id])
        return total - missing, total

    def complete(self, shuffle_id: int | None, maps: int) -> bool:
        """Whether every one of the ``maps`` outputs of ``shuffle_id`` is there."""
        if shuffle_id is None:
            return False
        outputs = self.by_shuffle.get(shuffle_id)
        return outputs is not None and len(outputs) == maps and self._missing[shuffle_id] == 0

    def put(self, shuffle_id: int, map_id: int, output: MapOutput | None) -> None:
        outputs = self.by_shuffle[shuffle_id]
        if (outputs[map_id] is None) != (output is None):
            self._missing[shuffle_id] += 1 if output is None else -1
        outputs[map_id] = output
        self.epoch += 1

    def lose(self, shuffle_id: int, map_ids: Iterable[int]) -> None:
        """Map outputs a reader could not fetch are gone."""
        self.epoch += 1
        outputs = self.by_shuffle.get(shuffle_id)
        if outputs is None:
            return
        for m in map_ids:
            if 0 <= m < len(outputs) and outputs[m] is not None:
                outputs[m] = None
                self._missing[shuffle_id] += 1

    def forget(self, shuffle_id: int) -> None:
        """The shuffle is gone for good (cleaned): drop what was known of it."""
        if self.by_shuffle.pop(shuffle_id, None) is not None:
            del self._missing[shuffle_id]
            self.epoch += 1

    def lose_url(self, shuffle_url: str) -> bool:
        """Every map output served at ``shuffle_url`` is gone; True if there were some."""
        self.epoch += 1
        lost = False
        for shuffle_id, outputs in self.by_shuffle.items():
            for i, out in enumerate(outputs):
                if out is not None and out.shuffle_url == shuffle_url:
                    outputs[i] = None
                    self._missing[shuffle_id] += 1
                    lost = True
        return lost


class StageGraph:
    """The live jobs and the stages they need; the lifecycle of a stage run."""

    def __init__(
        self,
        cancel: Callable[[int, list[Command]], None],
        clock: Callable[[], float],
        max_stage_attempts: int = 4,
    ) -> None:
        #: called to cancel a running task (by id) nobody needs any more
        self._cancel = cancel
        self._clock = clock
        self.max_stage_attempts = max_stage_attempts
        self.jobs: dict[int, Job] = {}
        self.runs: dict[int, StageRun] = {}
        self.outputs = MapOutputs()

    # -- queries ---------------------------------------------------------------------------

    def available(self, stage: SchedulerStage) -> bool:
        """Whether a map stage's shuffle is complete."""
        return self.outputs.complete(stage.shuffle_id, stage.num_partitions)

    def needs(self, run: StageRun, partition: int) -> bool:
        """Whether ``partition`` of ``run`` still has to be computed."""
        shuffle_id = run.stage.shuffle_id
        if shuffle_id is not None:
            outputs = self.outputs.by_shuffle.get(shuffle_id)
            return outputs is None or outputs[partition] is None
        jobs = self.jobs
        return any(partition in jobs[j].remaining for j in run.jobs if j in jobs)

    def map_locations(self, shuffle_id: int) -> list[MapOutput]:
        """Every map output of a complete shuffle, in map order."""
        outputs = self.outputs.by_shuffle.get(shuffle_id, [])
        found = [o for o in outputs if o is not None]
        if len(found) != len(outputs):
            raise RuntimeError(f"shuffle {shuffle_id} is incomplete")
        return found

    def job_view(self, job_id: int) -> JobView | None:
        job = self.jobs.get(job_id)
        if job is None:
            return None
        return JobView(job.id, job.pool, len(job.outputs), len(job.remaining))

    def stage_view(self, stage_id: int) -> StageView | None:
        run = self.runs.get(stage_id)
        if run is None:
            return None
        return StageView(stage_id, run.waiting, len(run.tasks.running), len(run.tasks.to_run),
                         run.fetch_failures)

    # -- jobs ------------------------------------------------------------------------------

    def submit_job(
        self,
        job_id: int,
        stage: SchedulerStage,
        partitions: list[int],
        pool: str,
        commands: list[Command],
    ) -> None:
        outputs = {p: i for i, p in enumerate(partitions)}
        self.jobs[job_id] = Job(job_id, stage, outputs, set(partitions), pool)
        self.submit_stage(stage, job_id, commands)

    def drop_job(self, job_id: int, commands: list[Command]) -> None:
        """Forget a job; cancel the tasks of the stages no other job needs."""
        self.jobs.pop(job_id)
        released = []
        for stage_id, run in list(self.runs.items()):
            run.jobs.discard(job_id)
            if run.jobs:
                continue
            for task_ids in run.tasks.running.values():
                for task_id in sorted(task_ids):
                    self._cancel(task_id, commands)
            del self.runs[stage_id]
            released.append(stage_id)
        if released:
            commands.append(StagesFinished(tuple(sorted(released))))

    def abort_stage(self, run: StageRun, error: object, commands: list[Command]) -> None:
        """Fail every job needing ``run``."""
        for job_id in sorted(run.jobs):
            if job_id in self.jobs:
                commands.append(JobAborted(job_id, error))
                self.drop_job(job_id, commands)

    # -- stages ----------------------------------------------------------------------------

    def submit_stage(self, stage: SchedulerStage, job_id: int, commands: list[Command]) -> None:
        run = self.runs.get(stage.id)
        if run is not None:
            run.jobs.add(job_id)
            for parent in stage.parents:
                if parent.id in self.runs:
                    self.submit_stage(parent, job_id, commands)
            return
        barrier = bool(getattr(stage, "barrier", False))
        run = StageRun(stage, {job_id}, TaskSet(stage), barrier=barrier)
        self.runs[stage.id] = run
        if stage.shuffle_id is not None:
            self.outputs.register(stage.shuffle_id, stage.num_partitions)
        missing = [p for p in stage.parents if not self.available(p)]
        for parent in missing:
            self.submit_stage(parent, job_id, commands)
        if not missing:
            self.start_stage(run, commands)

    def start_stage(self, run: StageRun, commands: list[Command]) -> None:
        run.waiting = False
        todo = [p for p in range(run.stage.num_partitions) if self.needs(run, p)]
        if todo and run.barrier and run.stage.shuffle_id is not None:
            # A barrier map stage runs whole: the outputs left of an earlier run go.
            self.outputs.lose(run.stage.shuffle_id, range(run.stage.num_partitions))
            todo = list(range(run.stage.num_partitions))
        if not todo:
            self.stage_complete(run, commands)
            return
        now = self._clock()
        for partition in todo:
            if partition not in run.tasks.running:
                run.tasks.enqueue(partition, now)

    def partition_done(
        self,
        run: StageRun,
        task: Task,
        result: object,
        map_output: MapOutput | None,
        commands: list[Command],
        ran: float | None = None,
    ) -> None:
        """``task`` computed its partition (running ``ran`` seconds on its worker, if
        known): record the map output, or deliver the result."""
        stage = run.stage
        if not self.needs(run, task.partition):
            return  # a duplicate (speculative) attempt finished second
        run.tasks.succeeded(self._clock() - task.started, ran)
        for other in sorted(run.tasks.running.pop(task.partition, ())):
            self._cancel(other, commands)
        if stage.shuffle_id is not None:
            self.outputs.put(stage.shuffle_id, task.partition, map_output)
            if self.available(stage) and not run.waiting:
                self.stage_complete(run, commands)
            return
        if not run.barrier:
            self.deliver(run, {task.partition: result}, commands)
            return
        run.held[task.partition] = result
        if len(run.held) == stage.num_partitions:  # every task of the attempt succeeded
            held, run.held = run.held, {}
            self.deliver(run, dict(sorted(held.items())), commands)

    def deliver(self, run: StageRun, results: dict[int, object], commands: list[Command]) -> None:
        """Hand the results of a result stage's partitions to the jobs waiting for them."""
        for partition, result in results.items():
            for job_id in sorted(run.jobs):
                job = self.jobs.get(job_id)
                if job is None or partition not in job.remaining:
                    continue
                job.remaining.discard(partition)
                commands.append(PartitionDone(job_id, job.outputs[partition], result))
                if not job.remaining:
                    commands.append(JobFinished(job_id))
                    self.drop_job(job_id, commands)

    def reset_barrier(self, run: StageRun, commands: list[Command]) -> None:
        """A task of barrier stage ``run`` failed: cancel the others, forget what the
        attempt computed (held results, map outputs); the caller runs it again."""
        for task_ids in run.tasks.running.values():
            for task_id in sorted(task_ids):
                self._cancel(task_id, commands)
        run.tasks.running.clear()
        run.tasks.to_run.clear()
        run.tasks.queue.clear()
        run.held.clear()
        if run.stage.shuffle_id is not None:
            self.outputs.lose(run.stage.shuffle_id, range(run.stage.num_partitions))

    def stage_complete(self, run: StageRun, commands: list[Command]) -> None:
        if run.stage.shuffle_id is None:
            return
        # Start every waiting stage whose parents are now all available.
        for other in list(self.runs.values()):
            if other.waiting and all(self.available(p) for p in other.stage.parents):
                self.start_stage(other, commands)
        if not run.tasks.running:
            self.release_stage(run.stage.id, commands)

    def release_stage(self, stage_id: int, commands: list[Command]) -> None:
        run = self.runs.get(stage_id)
        if run is None:
            return
        # A finished map stage stays known through its map outputs; its run record can go
        # once no job waits on it.
        if all(
            not other.waiting or run.stage not in other.stage.parents
            for other in self.runs.values()
            if other is not run
        ):
            del self.runs[stage_id]
            commands.append(StagesFinished((stage_id,)))

    def forget_shuffle(self, shuffle_id: int) -> None:
        """Drop a cleaned shuffle's map outputs, unless a live stage still uses it."""
        for run in self.runs.values():
            if run.stage.shuffle_id == shuffle_id or any(
                p.shuffle_id == shuffle_id for p in run.stage.parents
            ):
                return  # cannot happen (a live stage holds its dependency): keep it safe
        self.outputs.forget(shuffle_id)

    # -- lost map outputs ------------------------------------------------------------------

    def fetch_failed(
        self,
        run: StageRun,
        task: Task,
        error: object,
        shuffle_id: int,
        map_ids: Iterable[int],
        commands: list[Command],
    ) -> None:
        """``task`` could not read these map outputs: recompute them, then retry it."""
        self.outputs.lose(shuffle_id, map_ids)
        if not run.waiting:
            run.fetch_failures += 1
            if run.fetch_failures > self.max_stage_attempts:
                self.abort_stage(run, error, commands)
                return
            run.waiting = True
        run.tasks.to_run.discard(task.partition)
        self.recompute_lost(commands)
        if all(self.available(p) for p in run.stage.parents):
            self.start_stage(run, commands)

    def outputs_lost(self, shuffle_url: str, commands: list[Command]) -> None:
        """The shuffle service at ``shuffle_url`` is gone with its map outputs."""
        self.outputs.lose_url(shuffle_url)
        self.recompute_lost(commands)

    def recompute_lost(self, commands: list[Command]) -> None:
        # Every stage reading a shuffle with missing outputs waits (not only the one that
        # noticed): launching its tasks now would hand them an incomplete shuffle.
        for run in list(self.runs.values()):
            lost = [p for p in run.stage.parents if not self.available(p)]
            if not lost:
                continue
            run.waiting = True
            for parent in lost:
                for job_id in sorted(run.jobs):
                    self._resubmit_parent(parent, job_id, commands)

    def _resubmit_parent(
        self, stage: SchedulerStage, job_id: int, commands: list[Command]
    ) -> None:
        run = self.runs.get(stage.id)
        if run is not None and not run.waiting:
            run.jobs.add(job_id)
            self.start_stage(run, commands)
            return
        self.submit_stage(stage, job_id, commands)
