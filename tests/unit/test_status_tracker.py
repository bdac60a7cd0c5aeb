"""The status tracker's answers, read from a JobTable and a SchedulerState driven by events
(no cluster): active jobs and stages, job and stage infos, groups, forgotten jobs."""

from __future__ import annotations

from types import SimpleNamespace as NS

from aiospark.scheduler.events import FetchFailed, JobSubmitted, TaskFinished, WorkerAdded
from aiospark.scheduler.jobs import JobTable
from aiospark.scheduler.state import MapOutput, SchedulerState
from aiospark.scheduler.tracker import JobInfo, StageInfo, StatusTracker


def stage(stage_id, partitions, parents=(), shuffle_id=None):
    return NS(id=stage_id, num_partitions=partitions, parents=list(parents),
              shuffle_id=shuffle_id, preferred=lambda partition, cache: [])


def setup(keep=50):
    state = SchedulerState()
    state.handle(WorkerAdded("w1", host="h", cores=1))
    table = JobTable(state, clock=lambda: 0.0, keep=keep)
    return state, table, StatusTracker(table, state)


def submit(state, table, job_id, result, stages, group="", partitions=None):
    partitions = tuple(range(result.num_partitions)) if partitions is None else partitions
    table.submitted(job_id, f"collect at app.py:{job_id}", stages, len(partitions), group=group)
    return state.handle(JobSubmitted(job_id, result, partitions))


def test_a_running_map_stage_is_active_and_its_result_stage_waits():
    state, table, tracker = setup()
    mapper = stage(1, 2, shuffle_id=7)
    result = stage(2, 1, parents=[mapper])
    submit(state, table, 1, result, [mapper, result])
    assert tracker.get_active_job_ids() == [1]
    assert tracker.get_active_stage_ids() == [1], "the result stage waits for the shuffle"
    assert tracker.get_job_info(1) == JobInfo(1, [1, 2], "RUNNING")
    assert tracker.get_stage_info(1) == StageInfo(
        1, 0, "collect at app.py:1", num_tasks=2, num_active_tasks=1, num_completed_tasks=0,
        num_failed_tasks=0)
    state.handle(TaskFinished(1, None, MapOutput("w1", "http://w1")))
    assert tracker.get_stage_info(1).num_completed_tasks == 1
    state.handle(TaskFinished(2, None, MapOutput("w1", "http://w1")))
    assert tracker.get_active_stage_ids() == [2], "the map stage is done, the result one runs"
    assert tracker.get_stage_info(1).num_completed_tasks == 2


def test_ended_jobs_keep_their_status_and_counts():
    state, table, tracker = setup()
    result = stage(1, 3)
    submit(state, table, 1, result, [result])
    table.task_failed(1)
    table.task_failed(1)
    table.ended(1, "succeeded")
    submit(state, table, 2, stage(2, 1), [stage(2, 1)])
    table.ended(2, "cancelled", "job group 'x' was cancelled")
    submit(state, table, 3, stage(3, 1), [stage(3, 1)])
    table.ended(3, "failed", "ZeroDivisionError")
    assert [tracker.get_job_info(j).status for j in (1, 2, 3)] == ["SUCCEEDED", "FAILED", "FAILED"]
    info = tracker.get_stage_info(1)
    assert (info.num_tasks, info.num_completed_tasks, info.num_active_tasks,
            info.num_failed_tasks) == (3, 3, 0, 2)
    assert tracker.get_active_job_ids() == [] and tracker.get_active_stage_ids() == []


def test_jobs_by_group_none_is_the_jobs_without_a_group():
    state, table, tracker = setup()
    for job_id, group in ((1, "a"), (2, ""), (3, "a"), (4, "b")):
        submit(state, table, job_id, stage(job_id, 1), [stage(job_id, 1)], group=group)
    assert tracker.get_job_ids_for_group("a") == [1, 3]
    assert tracker.get_job_ids_for_group(None) == [2]
    assert tracker.get_job_ids_for_group("") == [2]
    assert tracker.get_job_ids_for_group("nobody") == []
    assert table.running_ids("a") == [1, 3] and table.running_ids() == [1, 2, 3, 4]


def test_a_skipped_stage_is_described_by_the_job_that_ran_it():
    state, table, tracker = setup()
    mapper = stage(1, 1, shuffle_id=7)
    first = stage(2, 1, parents=[mapper])
    submit(state, table, 1, first, [mapper, first])
    state.handle(TaskFinished(1, None, MapOutput("w1", "http://w1")))
    state.handle(TaskFinished(2, "r"))
    table.ended(1, "succeeded")
    second = stage(3, 1, parents=[mapper])
    submit(state, table, 2, second, [mapper, second])  # the shuffle exists: map stage skipped
    assert tracker.get_stage_info(1).name == "collect at app.py:1"
    assert tracker.get_job_info(2).stage_ids == [1, 3]


def test_unknown_and_forgotten_ids_answer_none():
    state, table, tracker = setup(keep=2)
    for job_id in (1, 2, 3):
        submit(state, table, job_id, stage(job_id, 1), [stage(job_id, 1)])
        table.ended(job_id, "succeeded")
    assert tracker.get_job_info(1) is None and tracker.get_stage_info(1) is None
    assert tracker.get_job_info(3).status == "SUCCEEDED"
    assert tracker.get_job_info(99) is None and tracker.get_stage_info(99) is None


def test_a_stage_shared_by_two_jobs_runs_for_the_earliest():
    state, _, _ = setup()
    mapper = stage(1, 2, shuffle_id=7)
    state.handle(JobSubmitted(5, stage(2, 1, parents=[mapper]), (0,)))
    state.handle(JobSubmitted(6, stage(3, 1, parents=[mapper]), (0,)))
    assert state.stage_job(1) == 5 and state.stage_job(3) == 6 and state.stage_job(42) is None


def test_a_stage_restarted_after_a_lost_shuffle_input_counts_an_attempt():
    state, table, tracker = setup()
    mapper = stage(1, 1, shuffle_id=7)
    result = stage(2, 1, parents=[mapper])
    submit(state, table, 1, result, [mapper, result])
    state.handle(TaskFinished(1, None, MapOutput("w1", "http://w1")))
    assert tracker.get_stage_info(2).current_attempt_id == 0
    state.handle(FetchFailed(2, "lost", 7, (0,)))  # the result task could not read map 0
    assert tracker.get_stage_info(2).current_attempt_id == 1
    assert tracker.get_active_stage_ids() == [1], "the map stage runs again, the result waits"
