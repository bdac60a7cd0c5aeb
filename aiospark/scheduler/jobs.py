"""The driver's jobs as the master's status page shows them.

``JobTable`` records each job the scheduler submits and how it ends.  Stage
progress is not counted task by task: it is read from the scheduler's state
(map outputs present, result partitions remaining, partitions running) when a
report is made, so a job costs the scheduler two calls however many tasks it
runs.  ``changes()`` gives the jobs that changed since the last report, as the
JSON of ``protocol.messages.JobReport``; ``aiospark.scheduler.reporter`` sends
them to the master.

>>> from types import SimpleNamespace as NS
>>> from aiospark.scheduler.state import SchedulerState
>>> table = JobTable(SchedulerState(), clock=lambda: 100.0)
>>> stage = NS(id=1, num_partitions=2, parents=[], shuffle_id=None)
>>> table.submitted(1, "count at app.py:3", [stage], partitions=2)
>>> [(j["state"], j["stages"][0]["done"]) for j in table.changes()]
[('running', 0)]
>>> table.ended(1, "succeeded")
>>> [(j["state"], j["completed"], j["stages"][0]["done"]) for j in table.changes()]
[('succeeded', 100.0, 2)]
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from aiospark.protocol.messages import KEEP_ENDED, MAX_TEXT
from aiospark.scheduler.protocols import SchedulerStage
from aiospark.scheduler.state import SchedulerState

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_ASYNCIO_DIR = os.path.dirname(os.path.abspath(asyncio.__file__)) + os.sep


def call_site(frame: FrameType | None = None) -> str:
    """``"count at app.py:12"``: the aiospark method the user called, and from where.

    Walks out of the aiospark frames on the stack: the outermost public one
    names the action, or ``async for`` when the outermost is an async
    generator (a job streamed to an ``async for``, whose methods have returned
    before it runs); the first frame outside aiospark (unless it is asyncio's
    own) gives the file and line.

    >>> call_site()   # called from no aiospark method: a plain "job"
    'job at <doctest aiospark.scheduler.jobs.call_site[0]>:1'
    """
    frame = frame or sys._getframe(1)
    action = ""
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR):
            break
        if frame.f_code.co_flags & inspect.CO_ASYNC_GENERATOR:
            action = "async for"
        elif not frame.f_code.co_name.startswith("_"):
            action = frame.f_code.co_name
        frame = frame.f_back
    if frame is None or frame.f_code.co_filename.startswith(_ASYNCIO_DIR):
        return action or "job"
    where = f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
    return f"{action or 'job'} at {where}"


@dataclasses.dataclass(frozen=True)
class StageRecord:
    """What a job's report needs of a stage: not the stage itself, which holds its RDDs
    (and shuffle dependency) alive, keeping the cleaner from collecting them."""

    id: int
    shuffle_id: int | None
    num_partitions: int


@dataclasses.dataclass
class JobRecord:
    """One job as the table keeps it (for the status page and ``StatusTracker``)."""

    job_id: int
    description: str
    submitted: float
    partitions: int
    stages: list[StageRecord]
    #: map stages whose outputs all existed when the job was submitted
    skipped: set[int]
    state: str = "running"
    completed: float | None = None
    error: str = ""
    #: result partitions computed, as last seen in the scheduler's state
    result_done: int = 0
    #: the scheduling pool the job ran in
    pool: str = "default"
    #: its job group and the program's description of it ("" when unset)
    group: str = ""
    user_description: str = ""
    #: stage id -> failed task attempts seen while the job ran
    failed_tasks: dict[int, int] = dataclasses.field(default_factory=dict)


class JobTable:
    """Running and recently ended jobs of one driver, read against its scheduler state."""

    def __init__(
        self,
        state: SchedulerState,
        clock: Callable[[], float] = time.time,
        keep: int = KEEP_ENDED,
    ) -> None:
        self._state = state
        self._clock = clock
        self._running: dict[int, JobRecord] = {}
        self._ended: deque[JobRecord] = deque(maxlen=keep)
        #: the last report sent per job id (only jobs still in the table)
        self._sent: dict[int, dict[str, Any]] = {}
        #: ended jobs pushed out of ``_ended`` before the master heard how they ended
        self._unsent: dict[int, JobRecord] = {}
        #: called on every job start and end (the reporter's wake-up)
        self.on_change: Callable[[], None] = lambda: None

    @property
    def running(self) -> int:
        """How many jobs are running."""
        return len(self._running)

    def submitted(
        self,
        job_id: int,
        description: str,
        stages: Sequence[SchedulerStage],
        partitions: int,
        pool: str = "default",
        group: str = "",
        user_description: str = "",
    ) -> None:
        """A job was submitted: ``stages`` are its result stage and all its ancestors.

        ``pool`` is the scheduling pool its tasks compete in; ``group`` and
        ``user_description`` its job group and description (``""``: none).

        Call it before the scheduler's state hears of the job, so map stages
        already computed by earlier jobs are told apart (shown as skipped).
        """
        state = self._state
        skipped = {
            s.id for s in stages
            if s.shuffle_id is not None
            and state.shuffle_progress(s.shuffle_id) == (s.num_partitions, s.num_partitions)
        }
        self._running[job_id] = JobRecord(
            job_id, description[:MAX_TEXT], self._clock(), partitions,
            [StageRecord(s.id, s.shuffle_id, s.num_partitions)
             for s in sorted(stages, key=lambda s: s.id)],
            skipped, pool=pool[:MAX_TEXT], group=group[:MAX_TEXT],
            user_description=user_description[:MAX_TEXT],
        )
        self.on_change()

    def task_failed(self, stage_id: int) -> None:
        """A task attempt of ``stage_id`` failed (counted for the status tracker)."""
        for job in self._running.values():
            if any(stage.id == stage_id for stage in job.stages):
                job.failed_tasks[stage_id] = job.failed_tasks.get(stage_id, 0) + 1

    def running_ids(self, group: str | None = None) -> list[int]:
        """The ids of the running jobs, oldest first; of job group ``group`` only if given."""
        return [job_id for job_id, job in self._running.items()
                if group is None or job.group == group]

    def known(self) -> list[JobRecord]:
        """The jobs the table holds, ended (oldest first) then running (oldest first)."""
        return [*self._unsent.values(), *self._ended, *self._running.values()]

    def find(self, job_id: int) -> JobRecord | None:
        """The job ``job_id`` if the table still holds it."""
        job = self._running.get(job_id)
        if job is not None:
            return job
        return next((job for job in self.known() if job.job_id == job_id), None)

    def ended(self, job_id: int, state: str, error: str = "") -> None:
        """A job ended: ``state`` is ``succeeded``, ``failed`` or ``cancelled``."""
        job = self._running.pop(job_id, None)
        if job is None:
            return
        job.state, job.error, job.completed = state, error[:MAX_TEXT], self._clock()
        if len(self._ended) == self._ended.maxlen:
            oldest = self._ended[0]
            last = self._sent.pop(oldest.job_id, None)
            if last is not None and last["state"] == "running":
                self._unsent[oldest.job_id] = oldest  # the master must still hear it ended
        self._ended.append(job)
        self.on_change()

    def running_reports(self) -> list[dict[str, Any]]:
        """The reports of the running jobs, oldest first, read now (for the progress bar)."""
        return [self._report(job) for job in self._running.values()]

    def changes(self, everything: bool = False) -> list[dict[str, Any]]:
        """Reports of the jobs that changed since ``sent`` was last called (or all of them)."""
        reports = []
        for job in self.known():
            report = self._report(job)
            if everything or self._sent.get(job.job_id) != report:
                reports.append(report)
        return reports

    def sent(self, reports: list[dict[str, Any]]) -> None:
        """The master has these reports."""
        known = {job.job_id for job in self._ended} | set(self._running)
        for report in reports:
            if report["job_id"] in known:
                self._sent[report["job_id"]] = report
            elif report["state"] != "running":
                self._unsent.pop(report["job_id"], None)

    # -- reading the scheduler state -----------------------------------------------------

    def _report(self, job: JobRecord) -> dict[str, Any]:
        live = self._state.job_view(job.job_id) if job.state == "running" else None
        if live is not None:
            job.result_done = job.partitions - live.remaining
        return {
            "job_id": job.job_id,
            "description": job.description,
            "state": job.state,
            "submitted": job.submitted,
            "completed": job.completed,
            "partitions": job.partitions,
            "error": job.error,
            "pool": job.pool,
            "group": job.group,
            "user_description": job.user_description,
            "stages": [self.stage_report(job, stage) for stage in job.stages],
        }

    def stage_report(self, job: JobRecord, stage: StageRecord) -> dict[str, Any]:
        if stage.shuffle_id is None:
            kind, tasks, done = "result", job.partitions, job.result_done
        else:
            progress = self._state.shuffle_progress(stage.shuffle_id)
            kind, tasks = "shuffle_map", stage.num_partitions
            done = 0 if progress is None else progress[0]
        run = self._state.stage_view(stage.id)
        running = run.running if run is not None and job.state == "running" else 0
        if stage.id in job.skipped:
            state = "skipped"
        elif job.state == "succeeded" or done >= tasks:
            state, done = "done", tasks
        elif job.state != "running":
            state = "stopped"
        elif run is not None and not run.waiting:
            state = "running"
        else:
            state = "waiting"
        return {"stage_id": stage.id, "kind": kind, "tasks": tasks, "done": done,
                "running": running, "state": state}
