"""Barrier stages in the pure scheduler (``scheduler.state`` with ``scheduler.barrier``):
all tasks launched together or none, the slots check, retrying the whole stage,
results held until every task succeeded, and the coordinator of ``barrier()`` calls."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from aiospark.errors import BarrierError
from aiospark.scheduler import events as ev
from aiospark.scheduler.barrier import BarrierCoordinator, check_job, place_all
from aiospark.scheduler.state import (
    BarrierReply,
    Cancel,
    JobAborted,
    JobFinished,
    Launch,
    MapOutput,
    PartitionDone,
    SchedulerState,
)
from aiospark.scheduler.workers import Cluster


def stage(stage_id, tasks, barrier=True, parents=(), shuffle_id=None):
    return SimpleNamespace(id=stage_id, num_partitions=tasks, parents=list(parents),
                           shuffle_id=shuffle_id, barrier=barrier,
                           preferred=lambda partition, cache: [])


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def of(commands, kind):
    return [c for c in commands if isinstance(c, kind)]


def cluster_state(workers=2, cores=1, **options):
    clock = Clock()
    state = SchedulerState(clock=clock, **options)
    for i in range(workers):
        state.handle(ev.WorkerAdded(f"w{i + 1}", host=f"h{i + 1}", cores=cores))
    return state, clock


def test_a_barrier_stage_launches_all_its_tasks_at_once_with_their_peers():
    state, _ = cluster_state(workers=2)
    launches = of(state.handle(ev.JobSubmitted(1, stage(1, 2), (0, 1))), Launch)
    assert [(launch.partition, launch.worker_id) for launch in launches] == [(0, "w1"), (1, "w2")]
    assert {launch.peers for launch in launches} == {("w1", "w2")}
    assert len({launch.barrier_attempt for launch in launches}) == 1
    assert launches[0].barrier_attempt >= 0


def test_none_start_until_all_can_and_freed_cores_are_kept_for_the_barrier_stage():
    state, _ = cluster_state(workers=2)
    busy = of(state.handle(ev.JobSubmitted(1, stage(1, 1, barrier=False), (0,))), Launch)
    assert of(state.handle(ev.JobSubmitted(2, stage(2, 2), (0, 1))), Launch) == []
    # A third job's task may not take the free core: the barrier stage waits for it.
    assert of(state.handle(ev.JobSubmitted(3, stage(3, 1, barrier=False), (0,))), Launch) == []
    commands = state.handle(ev.TaskFinished(busy[0].task_id, result="r"))
    launches = of(commands, Launch)
    assert sorted(launch.partition for launch in launches if launch.peers) == [0, 1]


def test_more_tasks_than_the_cluster_has_cores_fails_at_once():
    state, _ = cluster_state(workers=2)
    commands = state.handle(ev.JobSubmitted(1, stage(1, 3), (0, 1, 2)))
    (aborted,) = of(commands, JobAborted)
    assert isinstance(aborted.error, BarrierError)
    assert "3 tasks must run at once, the cluster has 2 cores" in str(aborted.error)
    assert of(commands, Launch) == []


def test_a_failure_cancels_the_other_tasks_and_reruns_the_whole_stage():
    state, _ = cluster_state(workers=2)
    first = of(state.handle(ev.JobSubmitted(1, stage(1, 2), (0, 1))), Launch)
    commands = state.handle(ev.TaskFailed(first[1].task_id, ValueError("boom")))
    assert [c.task_id for c in of(commands, Cancel)] == [first[0].task_id]
    # The cancelled task's core is taken until its worker answers: then both start again.
    commands = state.handle(ev.TaskFailed(first[0].task_id, "cancelled", counts=False))
    again = of(commands, Launch)
    assert [(launch.partition, launch.attempt) for launch in again] == [(0, 1), (1, 1)]
    assert again[0].barrier_attempt != first[0].barrier_attempt


def test_the_stage_fails_with_the_users_error_after_max_attempts():
    state, _ = cluster_state(workers=2, max_attempts=2)
    launches = of(state.handle(ev.JobSubmitted(1, stage(1, 2), (0, 1))), Launch)
    error = ValueError("always")
    state.handle(ev.TaskFailed(launches[0].task_id, error))
    launches = of(state.handle(ev.TaskFailed(launches[1].task_id, "x", counts=False)), Launch)
    commands = state.handle(ev.TaskFailed(launches[0].task_id, error))
    assert [a.error for a in of(commands, JobAborted)] == [error]


def test_results_are_delivered_only_once_every_task_of_the_attempt_succeeded():
    state, _ = cluster_state(workers=2)
    launches = of(state.handle(ev.JobSubmitted(1, stage(1, 2), (0, 1))), Launch)
    assert of(state.handle(ev.TaskFinished(launches[1].task_id, result="b")), PartitionDone) == []
    commands = state.handle(ev.TaskFinished(launches[0].task_id, result="a"))
    assert [(d.index, d.result) for d in of(commands, PartitionDone)] == [(0, "a"), (1, "b")]
    assert of(commands, JobFinished)


def test_a_late_failure_drops_the_held_results_and_reruns_everything():
    state, _ = cluster_state(workers=2)
    launches = of(state.handle(ev.JobSubmitted(1, stage(1, 2), (0, 1))), Launch)
    state.handle(ev.TaskFinished(launches[0].task_id, result="stale"))
    again = of(state.handle(ev.TaskFailed(launches[1].task_id, ValueError())), Launch)
    assert sorted(launch.partition for launch in again) == [0, 1]
    state.handle(ev.TaskFinished(again[0].task_id, result="a"))
    done = of(state.handle(ev.TaskFinished(again[1].task_id, result="b")), PartitionDone)
    assert [d.result for d in done] == ["a", "b"]


def test_a_barrier_map_stage_that_fails_loses_the_outputs_of_its_attempt():
    state, _ = cluster_state(workers=2)
    mapper = stage(1, 2, shuffle_id=7)
    launches = of(state.handle(ev.JobSubmitted(1, stage(2, 1, barrier=False, parents=[mapper]),
                                               (0,))), Launch)
    state.handle(ev.TaskFinished(launches[0].task_id, map_output=MapOutput("w1", "u1")))
    assert state.map_outputs[7][0] is not None
    state.handle(ev.TaskFailed(launches[1].task_id, ValueError()))
    assert list(state.map_outputs[7]) == [None, None]


def test_a_lost_worker_reruns_the_stage_once_cores_are_back():
    state, clock = cluster_state(workers=2)
    launches = of(state.handle(ev.JobSubmitted(1, stage(1, 2), (0, 1))), Launch)
    commands = state.handle(ev.WorkerLost("w1"))
    assert [c.task_id for c in of(commands, Cancel)] == [launches[1].task_id]
    state.handle(ev.TaskFailed(launches[1].task_id, "cancelled", counts=False))
    assert of(commands, Launch) == [] and of(commands, JobAborted) == []
    clock.now = 5.0
    again = of(state.handle(ev.WorkerAdded("w1", host="h1", cores=1)), Launch)
    assert sorted(launch.partition for launch in again) == [0, 1]


def test_a_stage_short_of_cores_for_too_long_fails_with_a_clear_error():
    state, clock = cluster_state(workers=2, barrier_slot_wait=30.0)
    launches = of(state.handle(ev.JobSubmitted(1, stage(1, 2), (0, 1))), Launch)
    state.handle(ev.WorkerLost("w2"))
    state.handle(ev.TaskFailed(launches[0].task_id, "cancelled", counts=False))
    assert state.wake_at == 30.0
    clock.now = 30.0
    (aborted,) = of(state.handle(ev.Tick()), JobAborted)
    assert isinstance(aborted.error, BarrierError)


def test_calls_are_answered_together_and_a_timeout_fails_the_waiting_ones():
    state, clock = cluster_state(workers=2, barrier_timeout=10.0)
    launches = of(state.handle(ev.JobSubmitted(1, stage(1, 2), (0, 1))), Launch)
    attempt = launches[0].barrier_attempt
    sync = [ev.BarrierSync(launch.task_id, attempt, launch.partition, 0, "all_gather",
                           f"m{launch.partition}") for launch in launches]
    assert state.handle(sync[0]) == []
    replies = state.handle(sync[1])
    assert [(r.task_id, r.messages) for r in replies] == [
        (launches[0].task_id, ("m0", "m1")), (launches[1].task_id, ("m0", "m1"))]
    clock.now = 1.0
    assert state.handle(ev.BarrierSync(launches[0].task_id, attempt, 0, 1, "barrier")) == []
    assert state.wake_at == 11.0
    clock.now = 11.0
    (reply,) = of(state.handle(ev.Tick()), BarrierReply)
    assert reply.task_id == launches[0].task_id and "timed out after 10s" in reply.error


def test_mismatched_calls_and_calls_of_a_finished_attempt_fail():
    coordinator = BarrierCoordinator(timeout=60.0)
    coordinator.begin(1, stage_id=1, tasks={0: (10, "w1"), 1: (11, "w2")})
    assert coordinator.arrive(1, 0, 10, 0, "barrier", "", now=0.0) == []
    replies = coordinator.arrive(1, 1, 11, 0, "all_gather", "x", now=0.0)
    assert sorted(r.task_id for r in replies) == [10, 11]
    assert all("mismatched calls" in r.error for r in replies)
    (late,) = coordinator.arrive(1, 0, 10, 1, "barrier", "", now=0.0)
    assert "mismatched" in late.error  # the attempt stays broken
    (stale,) = coordinator.arrive(5, 0, 99, 0, "barrier", "", now=0.0, worker_id="w1")
    assert (stale.worker_id, "is over" in stale.error) == ("w1", True)


def test_place_all_prefers_idle_workers_holding_the_data():
    cluster = Cluster()
    cluster.add("w1", "h1", 2)
    cluster.add("w2", "h2", 2)
    cluster.start("w1", task_id=1)
    assert place_all([0, 1], cluster, lambda p: ["h1"]) == {0: "w1", 1: "w2"}
    assert place_all([0, 1, 2, 3], cluster, lambda p: []) is None


def lineage(splits, deps=(), barrier=False, rdd_id=1):
    return SimpleNamespace(id=rdd_id, deps=list(deps), barrier_mode=barrier,
                           splits=lambda: list(range(splits)), storage_level=None)


def test_barrier_mode_refuses_other_partition_counts_and_two_barrier_parents():
    from aiospark.lineage import OneToOneDependency

    base = lineage(4, barrier=True)
    coalesced = lineage(2, [OneToOneDependency(base)], rdd_id=2)
    with pytest.raises(BarrierError, match="an RDD of 4 partitions in a barrier stage of 2"):
        check_job([SimpleNamespace(barrier=True, num_partitions=2, rdd=coalesced)],
                  SimpleNamespace(barrier=False), [0, 1])
    other = lineage(4, barrier=True, rdd_id=3)
    zipped = lineage(4, [OneToOneDependency(base), OneToOneDependency(other)], rdd_id=4)
    with pytest.raises(BarrierError, match="depending on 2 barrier RDDs"):
        check_job([SimpleNamespace(barrier=True, num_partitions=4, rdd=zipped)],
                  SimpleNamespace(barrier=False), [0])


def test_a_fetch_failure_reruns_the_map_side_then_the_whole_barrier_stage():
    state, _ = cluster_state(workers=2)
    mapper = stage(1, 1, barrier=False, shuffle_id=4)
    (map_task,) = of(state.handle(ev.JobSubmitted(1, stage(2, 2, parents=[mapper]), (0, 1))),
                     Launch)
    launches = of(state.handle(ev.TaskFinished(map_task.task_id,
                                               map_output=MapOutput("w1", "u1"))), Launch)
    assert sorted(launch.partition for launch in launches) == [0, 1]
    commands = state.handle(ev.FetchFailed(launches[0].task_id, "lost", 4, (0,)))
    assert [c.task_id for c in of(commands, Cancel)] == [launches[1].task_id]
    (again,) = of(commands, Launch)
    assert again.partition == 0 and again.peers == ()  # the map task, then the stage
    state.handle(ev.TaskFailed(launches[1].task_id, "cancelled", counts=False))
    rerun = of(state.handle(ev.TaskFinished(again.task_id, map_output=MapOutput("w2", "u2"))),
               Launch)
    assert sorted(launch.partition for launch in rerun) == [0, 1]
    assert {launch.attempt for launch in rerun} == {1}


def test_cancelling_the_job_fails_its_waiting_calls():
    state, _ = cluster_state(workers=2)
    launches = of(state.handle(ev.JobSubmitted(1, stage(1, 2), (0, 1))), Launch)
    attempt = launches[0].barrier_attempt
    state.handle(ev.BarrierSync(launches[0].task_id, attempt, 0, 0, "barrier"))
    commands = state.handle(ev.CancelJob(1))
    assert sorted(c.task_id for c in of(commands, Cancel)) == sorted(
        launch.task_id for launch in launches)
    (reply,) = of(commands, BarrierReply)
    assert reply.task_id == launches[0].task_id and "no longer running" in reply.error
    assert state.barrier.attempts == {}
