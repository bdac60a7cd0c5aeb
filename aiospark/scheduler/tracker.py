"""PySpark's ``StatusTracker``: the driver's jobs and stages, as its scheduler knows them.

``Context.status_tracker()`` returns one.  It reads the driver's ``JobTable``
(the jobs the status page shows: every running job and the most recent ended
ones) and the scheduler's state (the tasks running now) when asked, so it holds
no state of its own and costs the scheduler nothing between calls.

>>> from types import SimpleNamespace as NS
>>> from aiospark.scheduler.jobs import JobTable
>>> from aiospark.scheduler.state import SchedulerState
>>> state = SchedulerState()
>>> table = JobTable(state)
>>> stages = [NS(id=1, num_partitions=4, parents=[], shuffle_id=None)]
>>> table.submitted(1, "count at app.py:3", stages, partitions=4, group="etl")
>>> tracker = StatusTracker(table, state)
>>> tracker.get_active_job_ids(), tracker.get_job_ids_for_group("etl")
([1], [1])
>>> tracker.get_job_info(1)
JobInfo(job_id=1, stage_ids=[1], status='RUNNING')
>>> table.ended(1, "succeeded")
>>> tracker.get_job_info(1).status, tracker.get_stage_info(1).num_completed_tasks
('SUCCEEDED', 4)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiospark.scheduler.jobs import JobRecord, JobTable, StageRecord
    from aiospark.scheduler.state import SchedulerState

#: A job's state in the table -> PySpark's ``JobExecutionStatus`` (a cancelled job failed).
STATUS = {"running": "RUNNING", "succeeded": "SUCCEEDED", "failed": "FAILED",
          "cancelled": "FAILED"}


@dataclasses.dataclass(frozen=True)
class JobInfo:
    """A job, as ``StatusTracker.get_job_info`` reports it.

    Parameters
    ----------
    job_id : int
        The job's id (``get_active_job_ids`` lists them).
    stage_ids : list of int
        Its stages, the skipped ones (shuffle outputs already there) included.
    status : str
        ``"RUNNING"``, ``"SUCCEEDED"``, ``"FAILED"`` (also a cancelled job, as in
        PySpark) or ``"UNKNOWN"``.

    Examples
    --------
    >>> JobInfo(3, [5, 6], "RUNNING").status
    'RUNNING'
    """

    job_id: int
    stage_ids: list[int]
    status: str


@dataclasses.dataclass(frozen=True)
class StageInfo:
    """A stage, as ``StatusTracker.get_stage_info`` reports it.

    Parameters
    ----------
    stage_id : int
        The stage's id.
    current_attempt_id : int
        Its restarts after a lost shuffle input while it runs (0 once its jobs ended).
    name : str
        The call site of the job running it (``"count at app.py:3"``).
    num_tasks : int
        Its tasks, one per partition it computes.
    num_active_tasks, num_completed_tasks, num_failed_tasks : int
        How many of them run now, have completed, and have failed (attempts).

    Examples
    --------
    >>> StageInfo(1, 0, "count at app.py:3", 4, 1, 3, 0).num_tasks
    4
    """

    stage_id: int
    current_attempt_id: int
    name: str
    num_tasks: int
    num_active_tasks: int
    num_completed_tasks: int
    num_failed_tasks: int


class StatusTracker:
    """Read-only views of the driver's jobs and stages (PySpark's ``StatusTracker``).

    It knows every running job and the most recent ended ones (those the status
    page shows); older jobs and their stages are forgotten, so the lookups
    below may answer None for an id that once existed.

    Parameters
    ----------
    table : JobTable
        The driver's jobs (``Scheduler.jobs``).
    state : SchedulerState
        The scheduler's state, for the stages running now.

    Examples
    --------
    >>> tracker = ctx.status_tracker()
    >>> await ctx.parallelize(range(4), 2).count()
    4
    >>> job_id = max(tracker.get_job_ids_for_group())
    >>> tracker.get_job_info(job_id).status, tracker.get_active_job_ids()
    ('SUCCEEDED', [])
    """

    def __init__(self, table: JobTable, state: SchedulerState) -> None:
        self._table = table
        self._state = state

    def get_job_ids_for_group(self, job_group: str | None = None) -> list[int]:
        """The ids of the known jobs of ``job_group``, running and ended, oldest first.

        Parameters
        ----------
        job_group : str or None, optional
            The job group (``Context.set_job_group``); None gives the jobs
            submitted outside any group.

        Returns
        -------
        list of int
            Their job ids.

        Examples
        --------
        >>> with ctx.job_group("tracked"):
        ...     await ctx.parallelize([1, 2]).count()
        2
        >>> len(ctx.status_tracker().get_job_ids_for_group("tracked"))
        1
        """
        group = job_group or ""
        return sorted(job.job_id for job in self._table.known() if job.group == group)

    def get_active_job_ids(self) -> list[int]:
        """The ids of the running jobs, oldest first.

        Returns
        -------
        list of int
            Empty when no job runs.

        Examples
        --------
        >>> ctx.status_tracker().get_active_job_ids()
        []
        """
        return self._table.running_ids()

    def get_active_stage_ids(self) -> list[int]:
        """The ids of the stages running now (not those waiting for their parents).

        Returns
        -------
        list of int
            In increasing order; empty when no job runs.

        Examples
        --------
        >>> ctx.status_tracker().get_active_stage_ids()
        []
        """
        table = self._table
        return sorted({
            stage.id
            for job_id in table.running_ids()
            if (job := table.find(job_id)) is not None
            for stage in job.stages
            if table.stage_report(job, stage)["state"] == "running"
        })

    def get_job_info(self, job_id: int) -> JobInfo | None:
        """A job's stages and status, or None if the job is unknown (or forgotten).

        Parameters
        ----------
        job_id : int
            The job's id (``get_active_job_ids``, ``get_job_ids_for_group``).

        Returns
        -------
        JobInfo or None
            ``JobInfo(job_id, stage_ids, status)``.

        Examples
        --------
        >>> print(ctx.status_tracker().get_job_info(10**9))
        None
        """
        job = self._table.find(job_id)
        if job is None:
            return None
        return JobInfo(job.job_id, [stage.id for stage in job.stages],
                       STATUS.get(job.state, "UNKNOWN"))

    def get_stage_info(self, stage_id: int) -> StageInfo | None:
        """A stage's task counts, or None if no known job has that stage.

        Parameters
        ----------
        stage_id : int
            The stage's id (``get_active_stage_ids``, ``JobInfo.stage_ids``).

        Returns
        -------
        StageInfo or None
            Read from the most recent job that ran the stage (a job finding
            its map outputs computed already skips it).

        Examples
        --------
        >>> tracker = ctx.status_tracker()
        >>> await ctx.parallelize(range(6), 3).count()
        6
        >>> job = tracker.get_job_info(max(tracker.get_job_ids_for_group()))
        >>> info = tracker.get_stage_info(job.stage_ids[-1])
        >>> info.num_tasks, info.num_completed_tasks, info.num_active_tasks
        (3, 3, 0)
        """
        found = _ran(self._table.known(), stage_id)
        if found is None:
            return None
        job, stage = found
        report = self._table.stage_report(job, stage)
        view = self._state.stage_view(stage_id)
        failed = max((j.failed_tasks.get(stage_id, 0) for j in self._table.known()), default=0)
        return StageInfo(
            stage_id=stage_id,
            current_attempt_id=0 if view is None else view.attempt,
            name=job.description,
            num_tasks=report["tasks"],
            num_active_tasks=report["running"],
            num_completed_tasks=report["done"],
            num_failed_tasks=failed,
        )


def _ran(jobs: list[JobRecord], stage_id: int) -> tuple[JobRecord, StageRecord] | None:
    """The most recent of ``jobs`` (oldest first) with stage ``stage_id``, preferring one
    that ran it over one that skipped it, and that stage.

    >>> from types import SimpleNamespace as NS
    >>> stage = NS(id=2)
    >>> first, second = NS(job_id=1, stages=[stage], skipped=set()), NS(
    ...     job_id=2, stages=[stage], skipped={2})
    >>> _ran([first, second], 2)[0].job_id, _ran([first, second], 3)
    (1, None)
    """
    found = None
    for job in jobs:
        for stage in job.stages:
            if stage.id == stage_id and (found is None or stage.id not in job.skipped):
                found = (job, stage)
    return found
