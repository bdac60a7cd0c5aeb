"""Unit tests for the pure scheduler state machine (``aiospark.scheduler.state``).

Stages are fakes (``SimpleNamespace``) with the attributes the state machine
reads; ``Sim`` feeds events in, records the commands that come out, keeps track
of which tasks are running where, and checks a few invariants on every launch.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from types import SimpleNamespace

import pytest

from aiospark.scheduler import events as ev
from aiospark.scheduler.state import (
    KILL_GRACE,
    Cancel,
    Command,
    JobAborted,
    JobFinished,
    Kill,
    Launch,
    MapOutput,
    PartitionDone,
    SchedulerState,
    StagesFinished,
)

# -- helpers ---------------------------------------------------------------------------


def make_stage(stage_id, num_partitions, parents=(), shuffle_id=None, prefer=None):
    """A fake stage; ``prefer`` maps partition -> locations, or is ``f(partition, cache)``."""
    if prefer is None:
        preferred = lambda partition, cache: []
    elif callable(prefer):
        preferred = prefer
    else:
        preferred = lambda partition, cache: list(prefer.get(partition, []))
    return SimpleNamespace(
        id=stage_id,
        num_partitions=num_partitions,
        parents=list(parents),
        shuffle_id=shuffle_id,
        preferred=preferred,
    )


def url_of(worker_id: str) -> str:
    return f"http://{worker_id}/shuffle"


def of_type(commands, kind):
    return [c for c in commands if isinstance(c, kind)]


def kinds(commands) -> list[str]:
    return [type(c).__name__ for c in commands]


class Sim:
    """Drives a ``SchedulerState`` the way the runner does, checking invariants as it goes."""

    def __init__(self, **options) -> None:
        # Backoff and flaky-worker exclusion depend on time: off unless a test asks.
        options.setdefault("retry_backoff", 0.0)
        options.setdefault("exclude_after", None)
        self.state = SchedulerState(**options)
        self.cores: dict[str, int] = {}
        #: task id -> its Launch, for tasks launched and not yet finished or cancelled
        self.running: dict[int, Launch] = {}
        #: cancelled tasks whose worker has not answered yet: they still take a core
        self.stopping: dict[int, Launch] = {}
        self.log: list[Command] = []

    # -- bookkeeping ------------------------------------------------------------------

    def apply(self, commands: list[Command]) -> list[Command]:
        for command in commands:
            self.log.append(command)
            if isinstance(command, Launch):
                self._check_launch(command)
                self.running[command.task_id] = command
            elif isinstance(command, Cancel):
                launch = self.running.pop(command.task_id)
                assert launch.worker_id == command.worker_id
                self.stopping[command.task_id] = launch
        return commands

    def _check_launch(self, launch: Launch) -> None:
        assert launch.task_id not in self.running, "task id reused"
        assert launch.worker_id in self.state.workers, "launched on an unknown worker"
        busy = sum(1 for t in [*self.running.values(), *self.stopping.values()]
                   if t.worker_id == launch.worker_id)
        assert busy < self.cores[launch.worker_id], "more tasks than cores"
        for parent in launch.stage.parents:
            outputs = self.state.map_outputs.get(parent.shuffle_id, [])
            assert len(outputs) == parent.num_partitions and all(outputs), (
                f"stage {launch.stage.id} launched before shuffle {parent.shuffle_id} is complete"
            )

    def _pop(self, task_id: int) -> Launch | None:
        self.stopping.pop(task_id, None)
        return self.running.pop(task_id, None)

    # -- events -----------------------------------------------------------------------

    def add_worker(self, worker_id: str, cores: int = 1, host: str | None = None):
        self.cores[worker_id] = cores
        return self.apply(
            self.state.handle(ev.WorkerAdded(worker_id, host or f"host-{worker_id}", cores)))

    def lose_worker(self, worker_id: str, error="lost"):
        commands = self.apply(self.state.handle(ev.WorkerLost(worker_id, error)))
        for tasks in (self.running, self.stopping):
            for task_id in [t for t, launch in tasks.items() if launch.worker_id == worker_id]:
                del tasks[task_id]
        return commands

    def submit(self, job_id: int, stage, partitions, pool: str = "default"):
        event = ev.JobSubmitted(job_id, stage, tuple(partitions), pool)
        return self.apply(self.state.handle(event))

    def cancel(self, job_id: int):
        return self.apply(self.state.handle(ev.CancelJob(job_id)))

    def succeed(self, task_id: int, result=None, cached=(), map_output=None):
        launch = self._pop(task_id)
        if launch is not None and launch.stage.shuffle_id is not None and map_output is None:
            map_output = MapOutput(launch.worker_id, url_of(launch.worker_id), (launch.partition,))
        if launch is not None and launch.stage.shuffle_id is None and result is None:
            result = f"s{launch.stage.id}p{launch.partition}"
        return self.apply(
            self.state.handle(ev.TaskFinished(task_id, result, map_output, tuple(cached)))
        )

    def fail(self, task_id: int, error="boom", fetch_failed=None, **kwargs):
        self._pop(task_id)
        if fetch_failed is not None:
            shuffle_id, map_ids = fetch_failed
            event = ev.FetchFailed(task_id, error, shuffle_id, tuple(map_ids))
        else:
            event = ev.TaskFailed(task_id, error, **kwargs)
        return self.apply(self.state.handle(event))

    def tick(self):
        return self.apply(self.state.handle(ev.Tick()))

    # -- queries ----------------------------------------------------------------------

    def task(self, stage_id: int, partition: int) -> Launch:
        """The one running task of ``stage_id`` for ``partition``."""
        found = [
            t for t in self.running.values() if t.stage.id == stage_id and t.partition == partition
        ]
        assert len(found) == 1, f"expected one running task for {stage_id}/{partition}: {found}"
        return found[0]

    def launches(self, stage_id: int | None = None) -> list[Launch]:
        return [c for c in of_type(self.log, Launch) if stage_id is None or c.stage.id == stage_id]

    def results(self, job_id: int) -> dict[int, object]:
        done = [c for c in of_type(self.log, PartitionDone) if c.job_id == job_id]
        indexes = [c.index for c in done]
        assert len(indexes) == len(set(indexes)), f"an output of job {job_id} delivered twice"
        return {c.index: c.result for c in done}

    def finished(self, job_id: int) -> int:
        return sum(1 for c in of_type(self.log, JobFinished) if c.job_id == job_id)

    def aborted(self, job_id: int) -> list[JobAborted]:
        return [c for c in of_type(self.log, JobAborted) if c.job_id == job_id]

    def run(self, max_steps: int = 1000) -> None:
        """Complete running tasks, oldest first, until none is left."""
        for _ in range(max_steps):
            if not self.running:
                return
            self.succeed(min(self.running))
        raise AssertionError("the simulation did not settle")


def two_stage(map_partitions=3, reduce_partitions=2, shuffle_id=10, map_id=1, reduce_id=2):
    """A shuffle-map stage and the result stage reading it."""
    map_stage = make_stage(map_id, map_partitions, shuffle_id=shuffle_id)
    result_stage = make_stage(reduce_id, reduce_partitions, parents=[map_stage])
    return map_stage, result_stage


# -- single-stage jobs -------------------------------------------------------------------


def test_launches_up_to_free_cores_then_as_slots_free():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    stage = make_stage(1, 5)

    first = sim.submit(7, stage, range(5))
    assert kinds(first) == ["Launch", "Launch"]
    assert [(c.partition, c.attempt, c.worker_id) for c in first] == [(0, 0, "w1"), (1, 0, "w1")]
    assert all(c.stage is stage for c in first)

    out = sim.succeed(first[0].task_id, result="r0")
    assert out[0] == PartitionDone(7, 0, "r0")
    assert [(type(c), getattr(c, "partition", None)) for c in out[1:]] == [(Launch, 2)]

    sim.run()
    assert sim.results(7) == {0: "r0", 1: "s1p1", 2: "s1p2", 3: "s1p3", 4: "s1p4"}
    assert sim.finished(7) == 1
    assert sorted(c.partition for c in sim.launches()) == [0, 1, 2, 3, 4]
    assert isinstance(sim.log[-1], StagesFinished)
    assert sim.state.jobs == {} and sim.state.stages == {} and sim.state.tasks == {}


def test_no_launch_without_workers_until_one_joins():
    sim = Sim()
    assert sim.submit(1, make_stage(1, 2), [0, 1]) == []
    launched = sim.add_worker("w1", cores=4)
    assert sorted(c.partition for c in launched) == [0, 1]
    sim.run()
    assert sim.finished(1) == 1


def test_partition_done_carries_output_index_for_a_subset_of_partitions():
    sim = Sim()
    sim.add_worker("w1", cores=4)
    launched = sim.submit(3, make_stage(1, 5), [3, 1])
    assert sorted(c.partition for c in launched) == [1, 3]

    by_partition = {c.partition: c.task_id for c in launched}
    assert sim.succeed(by_partition[3], result="three") == [PartitionDone(3, 0, "three")]
    out = sim.succeed(by_partition[1], result="one")
    assert out[:2] == [PartitionDone(3, 1, "one"), JobFinished(3)]
    assert sim.results(3) == {0: "three", 1: "one"}


def test_empty_partition_list_finishes_at_once():
    sim = Sim()
    sim.add_worker("w1")
    assert sim.submit(5, make_stage(1, 3), []) == [JobFinished(5)]
    assert sim.state.jobs == {} and sim.state.stages == {}
    # Nothing lingers: a later job on the same stage runs normally.
    assert len(sim.submit(6, make_stage(1, 3), [0])) == 1


def test_job_finished_exactly_once_even_with_late_reports():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    launched = sim.submit(1, make_stage(1, 2), [0, 1])
    sim.run()
    assert sim.finished(1) == 1
    # The same success reported again, and a failure for a finished task: both ignored.
    for task in launched:
        assert sim.state.handle(ev.TaskFinished(task.task_id, "again")) == []
        assert sim.state.handle(ev.TaskFailed(task.task_id, "late")) == []
    assert sim.finished(1) == 1


def test_stages_finished_is_emitted_when_the_job_finishes():
    sim = Sim()
    sim.add_worker("w1")
    launched = sim.submit(1, make_stage(4, 1), [0])
    out = sim.succeed(launched[0].task_id)
    assert out == [PartitionDone(1, 0, "s4p0"), JobFinished(1), StagesFinished((4,))]


# -- placement -----------------------------------------------------------------------------


def test_tasks_never_exceed_cores():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    sim.add_worker("w2", cores=1)
    launched = sim.submit(1, make_stage(1, 10), range(10))
    assert Counter(c.worker_id for c in launched) == {"w1": 2, "w2": 1}
    # A success frees exactly one slot, on the worker that ran the task.
    out = sim.succeed(launched[-1].task_id)
    assert [c.worker_id for c in of_type(out, Launch)] == [launched[-1].worker_id]
    sim.run()  # Sim checks the per-worker core limit on every launch
    assert sim.finished(1) == 1
    assert all(not w.running for w in sim.state.workers.values())


def test_load_spreads_over_workers_least_loaded_first():
    sim = Sim()
    sim.add_worker("w1", cores=4)
    sim.add_worker("w2", cores=4)
    launched = sim.submit(1, make_stage(1, 4), range(4))
    assert Counter(c.worker_id for c in launched) == {"w1": 2, "w2": 2}

    sim2 = Sim()
    sim2.add_worker("a", cores=2)
    sim2.add_worker("b", cores=2)
    sim2.add_worker("c", cores=2)
    first = sim2.submit(1, make_stage(1, 3), range(3))
    assert sorted(c.worker_id for c in first) == ["a", "b", "c"]
    # "b" is now the only worker with nothing running: the next task goes there.
    sim2.succeed(next(c.task_id for c in first if c.worker_id == "b"))
    second = sim2.submit(2, make_stage(2, 1), [0])
    assert [c.worker_id for c in second] == ["b"]


def test_a_new_worker_takes_queued_tasks():
    sim = Sim()
    sim.add_worker("w1", cores=1)
    sim.submit(1, make_stage(1, 3), range(3))
    out = sim.add_worker("w2", cores=2)
    assert [(c.worker_id, c.partition) for c in out] == [("w2", 1), ("w2", 2)]


# -- locality ------------------------------------------------------------------------------


def test_preferred_worker_id_is_used_when_it_has_a_free_slot():
    sim = Sim()
    for w in ("w1", "w2", "w3"):
        sim.add_worker(w)
    launched = sim.submit(1, make_stage(1, 2, prefer={0: ["w3"], 1: ["w2"]}), [0, 1])
    assert {c.partition: c.worker_id for c in launched} == {0: "w3", 1: "w2"}


def test_preferred_host_is_used_when_it_has_a_free_slot():
    sim = Sim()
    sim.add_worker("w1", host="h1")
    sim.add_worker("w2", host="h2")
    sim.add_worker("w3", host="h3")
    launched = sim.submit(1, make_stage(1, 1, prefer={0: ["h2"]}), [0])
    assert [c.worker_id for c in launched] == ["w2"]


def test_busy_preferred_worker_is_waited_for_then_given_up_on():
    now = [100.0]
    sim = Sim(locality_wait=2.0, clock=lambda: now[0])
    sim.add_worker("w1")
    sim.add_worker("w2")
    sim.submit(1, make_stage(1, 1, prefer={0: ["w2"]}), [0])
    assert sim.task(1, 0).worker_id == "w2"
    # w2 is busy: a task preferring w2 waits for it (delay scheduling) ...
    assert sim.submit(2, make_stage(2, 1, prefer={0: ["w2"]}), [0]) == []
    assert sim.state.wake_at == 102.0
    now[0] = 101.0
    assert sim.tick() == []
    # ... and runs elsewhere once the locality wait is over.
    now[0] = 102.5
    launched = sim.tick()
    assert [c.worker_id for c in launched] == ["w1"]
    assert sim.state.wake_at is None


def test_busy_preferred_worker_freeing_up_takes_the_waiting_task():
    now = [0.0]
    sim = Sim(locality_wait=5.0, clock=lambda: now[0])
    sim.add_worker("w1")
    sim.add_worker("w2")
    first = sim.submit(1, make_stage(1, 1, prefer={0: ["w2"]}), [0])
    assert sim.submit(2, make_stage(2, 1, prefer={0: ["w2"]}), [0]) == []
    launched = of_type(sim.succeed(first[0].task_id, result="r"), Launch)
    assert [c.worker_id for c in launched] == ["w2"]
    # An unknown location is no reason to wait either.
    sim.run()
    launched = sim.submit(3, make_stage(3, 1, prefer={0: ["nowhere"]}), [0])
    assert len(launched) == 1


def test_cached_split_attracts_the_next_task():
    sim = Sim()
    sim.add_worker("w1")
    sim.add_worker("w2")
    sim.add_worker("w3")
    launched = sim.submit(1, make_stage(1, 1, prefer={0: ["w2"]}), [0])
    sim.succeed(launched[0].task_id, cached=[(42, 0)])
    assert sim.state.cached_on(42, 0) == {"w2"}
    stage = make_stage(2, 1, prefer=lambda partition, cache: sorted(cache(42, partition)))
    assert [c.worker_id for c in sim.submit(2, stage, [0])] == ["w2"]


# -- shuffles ------------------------------------------------------------------------------


def test_result_stage_waits_for_every_map_output():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    sim.add_worker("w2", cores=2)
    _, result_stage = two_stage(map_partitions=3, reduce_partitions=2)

    launched = sim.submit(1, result_stage, [0, 1])
    assert {c.stage.id for c in launched} == {1}
    assert sorted(c.partition for c in launched) == [0, 1, 2]
    with pytest.raises(RuntimeError):
        sim.state.map_locations(10)

    # Finish map tasks out of order; no reduce task may start before the last one.
    order = [sim.task(1, p).task_id for p in (2, 0)]
    for task_id in order:
        assert of_type(sim.succeed(task_id), Launch) == []
    out = sim.succeed(sim.task(1, 1).task_id)
    assert sorted(c.partition for c in of_type(out, Launch)) == [0, 1]
    assert {c.stage.id for c in of_type(out, Launch)} == {2}

    locations = sim.state.map_locations(10)
    assert [loc.sizes for loc in locations] == [(0,), (1,), (2,)]
    assert all(loc.shuffle_url == url_of(loc.worker_id) for loc in locations)

    sim.run()
    assert sim.results(1) == {0: "s2p0", 1: "s2p1"}
    assert sim.finished(1) == 1
    finished = {s for c in of_type(sim.log, StagesFinished) for s in c.stage_ids}
    assert finished == {1, 2}
    assert sim.state.stages == {}


def test_map_locations_of_an_unknown_shuffle_is_empty():
    assert SchedulerState().map_locations(99) == []


def test_second_job_over_the_same_map_stage_skips_the_map_side():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    map_stage, result_stage = two_stage()
    sim.submit(1, result_stage, [0, 1])
    sim.run()
    assert len(sim.launches(1)) == 3

    again = make_stage(3, 2, parents=[map_stage])
    launched = sim.submit(2, again, [1, 0])
    assert {c.stage.id for c in launched} == {3}
    sim.run()
    assert len(sim.launches(1)) == 3, "the map side ran again"
    assert sim.results(2) == {0: "s3p1", 1: "s3p0"}
    assert sim.finished(2) == 1


def test_concurrent_jobs_sharing_a_map_stage_run_its_tasks_once():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    map_stage, first = two_stage(map_partitions=4)
    second = make_stage(3, 2, parents=[map_stage])
    sim.submit(1, first, [0, 1])
    sim.submit(2, second, [0, 1])
    sim.run()
    assert Counter(c.partition for c in sim.launches(1)) == {0: 1, 1: 1, 2: 1, 3: 1}
    assert sim.finished(1) == 1 and sim.finished(2) == 1
    assert sim.results(2) == {0: "s3p0", 1: "s3p1"}
    assert sim.state.stages == {}


def test_map_stage_chain():
    """A result stage over a map stage over another map stage."""
    sim = Sim()
    sim.add_worker("w1", cores=3)
    first = make_stage(1, 2, shuffle_id=10)
    middle = make_stage(2, 3, parents=[first], shuffle_id=11)
    last = make_stage(3, 2, parents=[middle])
    launched = sim.submit(1, last, [0, 1])
    assert {c.stage.id for c in launched} == {1}
    sim.run()
    assert [c.stage.id for c in sim.launches()] == [1, 1, 2, 2, 2, 3, 3]
    assert sim.finished(1) == 1


def test_result_stage_with_two_shuffle_parents():
    sim = Sim()
    sim.add_worker("w1", cores=1)
    left = make_stage(1, 2, shuffle_id=10)
    right = make_stage(2, 1, shuffle_id=11)
    join = make_stage(3, 2, parents=[left, right])
    sim.submit(1, join, [0, 1])
    sim.run()
    assert {c.stage.id for c in sim.launches()[:3]} == {1, 2}
    assert sim.finished(1) == 1
    assert sim.state.stages == {}


# -- retries -------------------------------------------------------------------------------


def test_failed_task_is_retried_on_another_worker():
    sim = Sim()
    sim.add_worker("w1")
    sim.add_worker("w2")
    first = sim.submit(1, make_stage(1, 1), [0])[0]
    out = sim.fail(first.task_id)
    (retry,) = of_type(out, Launch)
    assert retry.partition == 0 and retry.attempt == first.attempt + 1
    assert retry.worker_id != first.worker_id
    assert retry.task_id != first.task_id
    out = sim.fail(retry.task_id)
    (third,) = of_type(out, Launch)
    assert third.attempt == 2
    sim.run()
    assert sim.finished(1) == 1


def test_retry_waits_for_a_worker_that_has_not_failed_the_partition():
    sim = Sim()
    sim.add_worker("w1")
    sim.add_worker("w2")
    launched = sim.submit(1, make_stage(1, 2), [0, 1])
    bad = next(c for c in launched if c.worker_id == "w1")
    other = next(c for c in launched if c.worker_id == "w2")
    # w1 is free but failed this partition; w2 has not and will free up.
    assert of_type(sim.fail(bad.task_id), Launch) == []
    out = sim.succeed(other.task_id)
    assert [(c.partition, c.worker_id, c.attempt) for c in of_type(out, Launch)] == [
        (bad.partition, "w2", 1)
    ]


def test_retry_on_the_same_worker_when_it_is_the_only_one():
    sim = Sim()
    sim.add_worker("w1")
    first = sim.submit(1, make_stage(1, 1), [0])[0]
    (retry,) = of_type(sim.fail(first.task_id), Launch)
    assert retry.worker_id == "w1" and retry.attempt == 1


def test_retry_does_not_count_lost_workers_as_alternatives():
    sim = Sim()
    for w in ("w1", "w2", "w3"):
        sim.add_worker(w)
    launched = sim.submit(1, make_stage(1, 3), [0, 1, 2])
    on = {c.worker_id: c for c in launched}
    # The partition that ran on w3 is lost with w3, then retried on w1 where it fails.
    assert of_type(sim.lose_worker("w3"), Launch) == []  # nowhere free yet
    sim.succeed(on["w1"].task_id)
    retry = sim.task(1, on["w3"].partition)
    assert retry.worker_id == "w1"
    # w1 (free) failed it, w2 (busy) has not: wait for w2 rather than try w1 again.
    assert of_type(sim.fail(retry.task_id), Launch) == []
    out = sim.succeed(on["w2"].task_id)
    assert [(c.partition, c.worker_id) for c in of_type(out, Launch)] == [
        (on["w3"].partition, "w2")
    ]


def test_too_many_failures_abort_the_job_and_cancel_its_tasks():
    sim = Sim(max_attempts=3)
    sim.add_worker("w1", cores=3)
    sim.add_worker("w2", cores=3)
    launched = sim.submit(1, make_stage(1, 4), range(4))
    victim = launched[0].partition
    out = []
    workers = []
    for attempt, error in enumerate(["e1", "e2", "e3"]):
        task = sim.task(1, victim)
        assert task.attempt == attempt
        workers.append(task.worker_id)
        out = sim.fail(task.task_id, error)
    # Retried on the other worker, then (both having failed it) wherever there is room.
    assert workers[:2] == ["w1", "w2"]
    assert of_type(out, JobAborted) == [JobAborted(1, "e3")]
    cancelled = of_type(out, Cancel)
    assert {c.task_id for c in cancelled} == {c.task_id for c in launched[1:]}
    assert sim.running == {}
    assert of_type(out, Launch) == []
    assert StagesFinished((1,)) in out
    # Reports from the cancelled tasks change nothing; no more launches for the job.
    for c in cancelled:
        assert sim.state.handle(ev.TaskFinished(c.task_id, "late")) == []
    assert sim.results(1) == {}
    assert sim.finished(1) == 0
    assert sim.state.jobs == {} and sim.state.stages == {} and sim.state.tasks == {}
    assert all(not w.running for w in sim.state.workers.values())


def test_failures_that_do_not_count_never_abort():
    sim = Sim(max_attempts=2)
    sim.add_worker("w1")
    sim.submit(1, make_stage(1, 1), [0])
    for _ in range(5):
        out = sim.fail(sim.task(1, 0).task_id, "cancelled", counts=False)
        assert of_type(out, JobAborted) == []
        assert len(of_type(out, Launch)) == 1
    # Counted failures still count: the first is retried, the second aborts.
    assert len(of_type(sim.fail(sim.task(1, 0).task_id, "x"), Launch)) == 1
    assert sim.task(1, 0).attempt == 6  # every launch gets its own attempt number
    out = sim.fail(sim.task(1, 0).task_id, "y")
    assert of_type(out, JobAborted) == [JobAborted(1, "y")]


def test_abort_of_one_job_leaves_another_alone():
    sim = Sim(max_attempts=1)
    sim.add_worker("w1", cores=2)
    sim.submit(1, make_stage(1, 1), [0])
    sim.submit(2, make_stage(2, 1), [0])
    out = sim.fail(sim.task(1, 0).task_id, "bad")
    assert of_type(out, JobAborted) == [JobAborted(1, "bad")]
    assert of_type(out, Cancel) == []
    sim.run()
    assert sim.finished(2) == 1


# -- workers coming and going -------------------------------------------------------------


def test_lost_worker_tasks_are_relaunched_elsewhere():
    sim = Sim()
    sim.add_worker("w1", cores=3)
    sim.add_worker("w2", cores=2)
    sim.add_worker("w3", cores=2)
    launched = sim.submit(1, make_stage(1, 3), range(3))
    # Most free slots first; ties go to the worker with fewer tasks running.
    assert [c.worker_id for c in launched] == ["w1", "w2", "w3"]
    sim.submit(2, make_stage(2, 1), [0])
    assert sim.task(2, 0).worker_id == "w1"
    lost = {(c.stage.id, c.partition) for c in sim.running.values() if c.worker_id == "w1"}
    assert lost == {(1, 0), (2, 0)}

    out = sim.lose_worker("w1")
    relaunched = of_type(out, Launch)
    assert {(c.stage.id, c.partition) for c in relaunched} == lost
    assert sorted(c.worker_id for c in relaunched) == ["w2", "w3"]
    assert all(c.attempt == 1 for c in relaunched)
    assert "w1" not in sim.state.workers
    sim.run()
    assert sim.finished(1) == 1 and sim.finished(2) == 1
    assert "w1" not in {c.worker_id for c in sim.launches()[4:]}


def test_lost_worker_cached_blocks_are_forgotten():
    sim = Sim()
    sim.add_worker("w1")
    sim.add_worker("w2")
    launched = sim.submit(1, make_stage(1, 2), [0, 1])
    for c in launched:
        sim.succeed(c.task_id, cached=[(5, c.partition), (6, 0)])
    assert sim.state.cached_on(5, 0) | sim.state.cached_on(5, 1) == {"w1", "w2"}
    assert sim.state.cached_on(6, 0) == {"w1", "w2"}
    assert sim.lose_worker("w1") == []
    assert sim.state.cached_on(6, 0) == {"w2"}
    assert "w1" not in sim.state.cached_on(5, 0) | sim.state.cached_on(5, 1)


def test_job_waits_without_workers_and_resumes_when_one_joins():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    launched = sim.submit(1, make_stage(1, 3), range(3))
    out = sim.lose_worker("w1")
    assert of_type(out, Launch) == [] and of_type(out, JobAborted) == []
    assert 1 in sim.state.jobs
    # A late report from the lost worker changes nothing.
    assert sim.state.handle(ev.TaskFinished(launched[0].task_id, "ghost")) == []

    out = sim.add_worker("w2", cores=1)
    assert [c.worker_id for c in out] == ["w2"]
    sim.run()
    assert sim.finished(1) == 1
    assert sorted(sim.results(1)) == [0, 1, 2]
    assert "ghost" not in sim.results(1).values()


def test_worker_coming_back_under_the_same_id_gets_work():
    sim = Sim()
    sim.add_worker("w1")
    sim.submit(1, make_stage(1, 1), [0])
    sim.lose_worker("w1")
    (again,) = sim.add_worker("w1")
    assert again.worker_id == "w1" and again.attempt == 1


def test_unknown_worker_lost_is_a_no_op():
    sim = Sim()
    sim.add_worker("w1")
    sim.submit(1, make_stage(1, 1), [0])
    assert sim.lose_worker("nobody") == []
    assert sim.state.workers["w1"].running


def test_adding_a_known_worker_twice_keeps_one():
    sim = Sim()
    sim.add_worker("w1", cores=1)
    assert sim.state.handle(ev.WorkerAdded("w1", "host-w1", 1)) == []
    assert list(sim.state.workers) == ["w1"]


def test_losing_workers_repeatedly_aborts_after_max_attempts():
    sim = Sim(max_attempts=2)
    sim.add_worker("w1")
    sim.submit(1, make_stage(1, 1), [0])
    sim.submit(2, make_stage(2, 1), [0])  # queued behind job 1
    sim.lose_worker("w1", error="gone-1")
    sim.add_worker("w2", cores=2)
    assert {t.stage.id for t in sim.running.values()} == {1, 2}
    out = sim.lose_worker("w2", error="gone-2")
    # Job 1 used up its attempts; job 2 lost its first only and waits for a worker.
    assert of_type(out, JobAborted) == [JobAborted(1, "gone-2")]
    assert 2 in sim.state.jobs
    sim.add_worker("w3")
    sim.run()
    assert sim.finished(2) == 1 and sim.finished(1) == 0


def test_a_draining_worker_finishes_its_tasks_and_gets_no_new_ones():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    sim.add_worker("w2", cores=1)
    sim.submit(1, make_stage(1, 6), range(6))
    on_w1 = [t for t, launch in sim.running.items() if launch.worker_id == "w1"]
    assert len(on_w1) == 2
    assert sim.apply(sim.state.handle(ev.WorkerDraining("w1"))) == []
    for task_id in on_w1:  # its running tasks may still finish, and count
        assert not of_type(sim.succeed(task_id), Launch)
    sim.run()
    assert sim.finished(1) == 1 and len(sim.results(1)) == 6
    assert [c.worker_id for c in sim.launches()[3:]] == ["w2"] * 3


def test_tasks_a_draining_worker_hands_back_do_not_count_as_attempts():
    sim = Sim(max_attempts=1)
    sim.add_worker("w1")
    sim.submit(1, make_stage(1, 1), [0])
    sim.apply(sim.state.handle(ev.WorkerDraining("w1")))
    sim.add_worker("w2")
    assert not sim.aborted(1) and sim.task(1, 0).worker_id == "w1"
    out = sim.lose_worker("w1", error="left")  # drain timeout: the task is handed back
    assert not of_type(out, JobAborted)
    assert [c.worker_id for c in of_type(out, Launch)] == ["w2"]
    sim.run()
    assert sim.finished(1) == 1


def test_a_task_refused_by_a_draining_worker_runs_elsewhere_without_counting():
    sim = Sim(max_attempts=1)
    sim.add_worker("w1")
    sim.submit(1, make_stage(1, 1), [0])
    refused = sim.task(1, 0).task_id
    sim.apply(sim.state.handle(ev.WorkerDraining("w1")))
    assert not of_type(sim.fail(refused, "draining", counts=False), Launch)  # nowhere to go
    sim.add_worker("w2")
    assert sim.task(1, 0).worker_id == "w2"
    sim.run()
    assert sim.finished(1) == 1 and not sim.aborted(1)


# -- fetch failures -----------------------------------------------------------------------


def run_map_side(sim: Sim, job_id: int, result_stage, partitions=(0, 1)) -> list[Launch]:
    """Submit a two-stage job and finish its map side; returns the reduce launches."""
    sim.submit(job_id, result_stage, partitions)
    while any(t.stage.shuffle_id is not None for t in sim.running.values()):
        task = min(t for t, launch in sim.running.items() if launch.stage.shuffle_id is not None)
        sim.succeed(task)
    return [t for t in sim.running.values() if t.stage is result_stage]


def test_fetch_failure_recomputes_only_the_lost_map_outputs():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    _, result_stage = two_stage(map_partitions=3, reduce_partitions=2)
    reducers = run_map_side(sim, 1, result_stage)
    assert sorted(c.partition for c in reducers) == [0, 1]
    epoch = sim.state.map_epoch

    out = sim.fail(reducers[0].task_id, "fetch", fetch_failed=(10, [1]))
    assert [(c.stage.id, c.partition) for c in of_type(out, Launch)] == [(1, 1)]
    assert sim.state.map_epoch > epoch
    with pytest.raises(RuntimeError):
        sim.state.map_locations(10)

    out = sim.succeed(sim.task(1, 1).task_id)
    assert [(c.stage.id, c.partition) for c in of_type(out, Launch)] == [(2, 0)]
    assert len(sim.state.map_locations(10)) == 3
    sim.run()
    assert sim.results(1) == {0: "s2p0", 1: "s2p1"}
    assert sim.finished(1) == 1
    assert Counter(c.partition for c in sim.launches(1)) == {0: 1, 1: 2, 2: 1}
    assert sim.aborted(1) == []


def test_fetch_failures_of_other_reducers_while_recomputing():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    sim.add_worker("w2", cores=2)
    _, result_stage = two_stage(map_partitions=2, reduce_partitions=2)
    reducers = run_map_side(sim, 1, result_stage)
    sim.fail(reducers[0].task_id, "f1", fetch_failed=(10, [0]))
    out = sim.fail(reducers[1].task_id, "f2", fetch_failed=(10, [0, 1]))
    assert [(c.stage.id, c.partition) for c in of_type(out, Launch)] == [(1, 1)]
    sim.run()
    assert sim.finished(1) == 1
    assert Counter(c.partition for c in sim.launches(1)) == {0: 2, 1: 2}
    assert len(sim.launches(2)) == 4


def test_repeated_fetch_failures_abort_the_job():
    sim = Sim(max_stage_attempts=2)
    sim.add_worker("w1", cores=2)
    _, result_stage = two_stage(map_partitions=2, reduce_partitions=2)
    reducers = run_map_side(sim, 1, result_stage)
    other = next(c for c in reducers if c.partition == 1)
    for n in range(2):
        out = sim.fail(sim.task(2, 0).task_id, f"fetch-{n}", fetch_failed=(10, [0]))
        assert of_type(out, JobAborted) == []
        sim.succeed(sim.task(1, 0).task_id)
    out = sim.fail(sim.task(2, 0).task_id, "fetch-last", fetch_failed=(10, [0]))
    assert of_type(out, JobAborted) == [JobAborted(1, "fetch-last")]
    assert [c.task_id for c in of_type(out, Cancel)] == [other.task_id]
    assert of_type(out, Launch) == []
    assert sim.state.jobs == {} and sim.state.stages == {}


@pytest.mark.parametrize(("mode", "first_reducers"), [("fifo", {2}), ("fair", {2, 3})])
def test_fetch_failure_holds_back_other_stages_reading_the_shuffle(mode, first_reducers):
    """Job 2's queued reducers must not start while job 1 recomputes the shared shuffle."""
    sim = Sim(scheduler_mode=mode)
    sim.add_worker("w1", cores=2)
    map_stage, first = two_stage(map_partitions=2, reduce_partitions=2)
    second = make_stage(3, 4, parents=[map_stage])
    sim.submit(1, first, [0, 1])
    sim.submit(2, second, range(4))
    for p in (0, 1):
        sim.succeed(sim.task(1, p).task_id)
    # FIFO: job 1's reducers take both cores; FAIR: one core each.
    assert {t.stage.id for t in sim.running.values()} == first_reducers
    # A reducer of job 1 cannot fetch map output 0: its slot must not go to a job-2
    # reducer (Sim asserts that no task starts while shuffle 10 is incomplete).
    out = sim.fail(sim.task(2, 0).task_id, "fetch", fetch_failed=(10, [0]))
    assert [(c.stage.id, c.partition) for c in of_type(out, Launch)] == [(1, 0)]
    sim.run()
    assert sim.finished(1) == 1 and sim.finished(2) == 1
    assert sim.results(2) == {i: f"s3p{i}" for i in range(4)}


def test_fetch_failure_of_one_job_is_recovered_by_the_other_after_cancel():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    map_stage, first = two_stage(map_partitions=2, reduce_partitions=2)
    second = make_stage(3, 2, parents=[map_stage])
    sim.submit(1, first, [0, 1])
    sim.submit(2, second, [0, 1])
    for p in (0, 1):
        sim.succeed(sim.task(1, p).task_id)
    sim.fail(sim.task(2, 0).task_id, "fetch", fetch_failed=(10, [1]))
    sim.cancel(1)
    sim.run()
    assert sim.finished(2) == 1
    assert sim.results(2) == {0: "s3p0", 1: "s3p1"}


def test_shuffle_outputs_lost_then_fetch_failure_recovers():
    sim = Sim()
    sim.add_worker("w1", cores=1)
    sim.add_worker("w2", cores=1)
    _, result_stage = two_stage(map_partitions=2, reduce_partitions=2)
    run_map_side(sim, 1, result_stage)
    on = [loc.worker_id for loc in sim.state.map_locations(10)]
    assert sorted(on) == ["w1", "w2"]
    epoch = sim.state.map_epoch
    assert of_type(sim.apply(sim.state.handle(ev.ShuffleOutputsLost(url_of("w1")))), Launch) == []
    assert sim.state.map_epoch > epoch
    assert [o is None for o in sim.state.map_outputs[10]] == [w == "w1" for w in on]
    sim.fail(sim.task(2, 0).task_id, "fetch", fetch_failed=(10, [0, 1]))
    sim.run()
    assert sim.finished(1) == 1


def test_shuffle_outputs_lost_while_the_map_stage_runs():
    sim = Sim()
    sim.add_worker("w1", cores=1)
    sim.add_worker("w2", cores=1)
    _, result_stage = two_stage(map_partitions=2, reduce_partitions=1)
    sim.submit(1, result_stage, [0])
    done = sim.task(1, 0)
    sim.succeed(done.task_id)
    # The shuffle service holding map output 0 dies before map task 1 finishes.
    sim.apply(sim.state.handle(ev.ShuffleOutputsLost(url_of(done.worker_id))))
    sim.run()
    assert sim.finished(1) == 1
    assert Counter(c.partition for c in sim.launches(1)) == {0: 2, 1: 1}


# -- duplicate attempts -------------------------------------------------------------------


def speculate(sim: Sim, stage_id: int, partition: int) -> Launch:
    """Start a second attempt of a running partition.

    The state machine has no speculation event yet, so this reaches into its queue
    the way a speculative re-launch would.
    """
    state = sim.state
    state.stages[stage_id].tasks.enqueue(partition, now=0.0)
    (launch,) = sim.tick()
    assert launch.partition == partition
    return launch


def test_same_success_reported_twice_is_delivered_once():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    launched = sim.submit(1, make_stage(1, 2), [0, 1])
    assert sim.succeed(launched[0].task_id, result="a") == [PartitionDone(1, 0, "a")]
    assert sim.state.handle(ev.TaskFinished(launched[0].task_id, "a")) == []
    sim.run()
    assert sim.results(1) == {0: "a", 1: "s1p1"}
    assert sim.finished(1) == 1


def test_two_attempts_of_a_partition_deliver_once_and_the_loser_is_cancelled():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    sim.add_worker("w2", cores=2)
    launched = sim.submit(1, make_stage(1, 2), [0, 1])
    original = next(c for c in launched if c.partition == 0)
    copy = speculate(sim, 1, 0)
    assert copy.task_id != original.task_id

    out = sim.succeed(copy.task_id, result="copy")
    assert sorted(out, key=repr) == [
        Cancel(original.task_id, original.worker_id),
        PartitionDone(1, 0, "copy"),
    ]
    assert sim.state.handle(ev.TaskFinished(original.task_id, "original")) == []
    sim.run()
    assert sim.results(1) == {0: "copy", 1: "s1p1"}
    assert sim.finished(1) == 1


def test_failure_of_one_attempt_while_another_runs_is_ignored():
    sim = Sim(max_attempts=1)
    sim.add_worker("w1", cores=2)
    original = sim.submit(1, make_stage(1, 1), [0])[0]
    copy = speculate(sim, 1, 0)
    assert sim.fail(original.task_id, "bad") == []
    assert sim.succeed(copy.task_id, result="ok")[:2] == [PartitionDone(1, 0, "ok"), JobFinished(1)]


def test_two_attempts_of_a_map_partition_register_one_output():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    sim.add_worker("w2", cores=2)
    _, result_stage = two_stage(map_partitions=1, reduce_partitions=1)
    sim.submit(1, result_stage, [0])
    original = sim.task(1, 0)
    copy = speculate(sim, 1, 0)
    out = sim.succeed(original.task_id)
    assert Cancel(copy.task_id, copy.worker_id) in out
    assert sim.state.map_locations(10)[0].worker_id == original.worker_id
    assert sim.state.handle(ev.TaskFinished(copy.task_id, map_output=MapOutput("x", "y"))) == []
    assert sim.state.map_locations(10)[0].worker_id == original.worker_id
    sim.run()
    assert sim.finished(1) == 1


# -- cancellation -------------------------------------------------------------------------


def test_cancel_job_cancels_its_running_tasks():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    launched = sim.submit(1, make_stage(1, 5), range(5))
    out = sim.cancel(1)
    assert sorted((c.task_id, c.worker_id) for c in of_type(out, Cancel)) == sorted(
        (c.task_id, c.worker_id) for c in launched
    )
    assert StagesFinished((1,)) in out
    assert of_type(out, Launch) == []
    assert sim.state.jobs == {} and sim.state.tasks == {}
    # The cancelled tasks report back; nothing else for job 1 happens.
    for c in launched:
        assert sim.fail(c.task_id, "cancelled", counts=False) == []
    # Its slots are free for the next job, and its queued partitions never run.
    assert len(sim.submit(2, make_stage(2, 2), [0, 1])) == 2
    sim.run()
    assert {c.stage.id for c in sim.launches()} == {1, 2}
    assert len(sim.launches(1)) == 2
    assert sim.results(1) == {}
    assert sim.finished(1) == 0 and sim.finished(2) == 1


def test_cancel_unknown_job_is_a_no_op():
    assert SchedulerState().handle(ev.CancelJob(12)) == []


def test_cancel_keeps_a_shared_map_stage_running_for_the_other_job():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    map_stage, first = two_stage(map_partitions=3)
    second = make_stage(3, 2, parents=[map_stage])
    sim.submit(1, first, [0, 1])
    sim.submit(2, second, [0, 1])
    out = sim.cancel(1)
    assert of_type(out, Cancel) == []
    assert StagesFinished((2,)) in out
    sim.run()
    assert sim.finished(1) == 0 and sim.finished(2) == 1
    assert sim.results(1) == {}
    assert len(sim.launches(2)) == 0
    assert Counter(c.partition for c in sim.launches(1)) == {0: 1, 1: 1, 2: 1}


def test_cancel_the_last_job_of_a_map_stage_cancels_its_tasks():
    sim = Sim()
    sim.add_worker("w1", cores=2)
    _, result_stage = two_stage(map_partitions=3)
    launched = sim.submit(1, result_stage, [0, 1])
    out = sim.cancel(1)
    assert {c.task_id for c in of_type(out, Cancel)} == {c.task_id for c in launched}
    assert sorted(s for c in of_type(out, StagesFinished) for s in c.stage_ids) == [1, 2]
    assert sim.state.stages == {}


# -- cache ---------------------------------------------------------------------------------


def test_cached_splits_are_recorded_and_forgotten():
    sim = Sim()
    sim.add_worker("w1")
    sim.add_worker("w2")
    assert sim.state.cached_on(5, 0) == set()
    launched = sim.submit(1, make_stage(1, 2), [0, 1])
    sim.succeed(launched[0].task_id, cached=[(5, 0), [6, 0]])
    sim.succeed(launched[1].task_id, cached=[(5, 0)])
    assert sim.state.cached_on(5, 0) == {"w1", "w2"}
    assert sim.state.cached_on(6, 0) == {launched[0].worker_id}
    assert sim.state.handle(ev.Unpersisted(5)) == []
    assert sim.state.cached_on(5, 0) == set()
    assert sim.state.cached_on(6, 0) == {launched[0].worker_id}


def test_cached_is_recorded_for_map_tasks_too():
    sim = Sim()
    sim.add_worker("w1")
    _, result_stage = two_stage(map_partitions=1, reduce_partitions=1)
    sim.submit(1, result_stage, [0])
    sim.succeed(sim.task(1, 0).task_id, cached=[(8, 0)])
    assert sim.state.cached_on(8, 0) == {"w1"}
    sim.run()
    assert sim.state.cached_on(8, 0) == {"w1"}, "finishing the job must not drop cache entries"


# -- a randomized soak over the whole event vocabulary ------------------------------------


@pytest.mark.parametrize("seed", range(30))
def test_random_interleavings_finish_every_job(seed):
    """Random successes, failures, lost shuffles and worker churn: every job ends once."""
    rng = random.Random(seed)
    sim = Sim(max_attempts=1000, max_stage_attempts=1000)
    names = (f"w{i}" for i in itertools.count())
    for _ in range(2):
        sim.add_worker(next(names), cores=rng.randint(1, 3))
    map_stage, first = two_stage(map_partitions=4, reduce_partitions=3)
    second = make_stage(3, 2, parents=[map_stage])
    single = make_stage(4, 5, prefer=lambda partition, cache: [f"w{partition}"])
    sim.submit(1, first, [2, 0, 1])
    sim.submit(2, second, [0, 1])
    sim.submit(3, single, range(5))
    for _ in range(2000):
        if all(sim.finished(j) for j in (1, 2, 3)):
            break
        roll = rng.random()
        if not sim.running or roll < 0.05:
            sim.add_worker(next(names), cores=rng.randint(1, 3))
            continue
        task_id = rng.choice(sorted(sim.running))
        launch = sim.running[task_id]
        if roll < 0.10 and len(sim.state.workers) > 1:
            sim.lose_worker(launch.worker_id)
        elif roll < 0.12:
            sim.apply(sim.state.handle(ev.ShuffleOutputsLost(url_of(rng.choice(sorted(sim.cores))))))
        elif roll < 0.20:
            sim.fail(task_id, "flaky")
        elif roll < 0.30 and launch.stage.parents:
            sim.fail(task_id, "fetch", fetch_failed=(10, [rng.randrange(4)]))
        else:
            sim.succeed(task_id)
    for job in (1, 2, 3):
        assert sim.finished(job) == 1, f"job {job} did not finish"
    assert sim.results(1) == {0: "s2p2", 1: "s2p0", 2: "s2p1"}
    assert sim.results(2) == {0: "s3p0", 1: "s3p1"}
    assert sim.results(3) == {i: f"s4p{i}" for i in range(5)}
    assert sim.state.jobs == {} and sim.state.stages == {} and sim.state.tasks == {}
    assert all(not w.running for w in sim.state.workers.values())


# -- backoff, flaky workers, speculation (time-dependent, with a fake clock) -------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_retry_waits_for_its_backoff():
    clock = FakeClock()
    sim = Sim(clock=clock, retry_backoff=0.5)
    sim.add_worker("w1")
    sim.submit(1, make_stage(1, 1), [0])
    assert of_type(sim.fail(sim.task(1, 0).task_id, "boom"), Launch) == []
    assert sim.state.wake_at == 1000.5
    clock.now += 0.4
    assert of_type(sim.tick(), Launch) == []
    clock.now += 0.2
    assert len(of_type(sim.tick(), Launch)) == 1
    # The second retry waits twice as long.
    sim.fail(sim.task(1, 0).task_id, "boom")
    assert sim.state.wake_at == clock.now + 1.0


def test_a_worker_that_keeps_failing_is_excluded_for_a_while():
    clock = FakeClock()
    sim = Sim(clock=clock, exclude_after=2)
    sim.add_worker("bad", cores=2)
    sim.add_worker("good", cores=1)
    sim.submit(1, make_stage(1, 3), [0, 1, 2])
    on_bad = [t for t in sim.running.values() if t.worker_id == "bad"]
    assert len(on_bad) == 2
    for launch in on_bad:
        sim.fail(launch.task_id, "flaky")
    # Two failures: "bad" gets nothing new, even for a fresh job, until the exclusion ends.
    sim.submit(2, make_stage(2, 2), [0, 1])
    assert all(t.worker_id == "good" for t in sim.running.values())
    clock.now += 31
    launched = of_type(sim.tick(), Launch)
    assert {c.worker_id for c in launched} == {"bad"}


def test_a_task_failing_on_every_worker_excludes_none_of_them():
    clock = FakeClock()
    sim = Sim(clock=clock, exclude_after=2, max_attempts=4)
    sim.add_worker("w1")
    sim.add_worker("w2")
    sim.submit(1, make_stage(1, 1), [0])
    for _ in range(4):  # a deterministic user error, wherever the task runs
        out = sim.fail(sim.task(1, 0).task_id, ZeroDivisionError("x"))
    assert kinds(out)[0] == "JobAborted"
    # The next job, at once, may use both workers.
    launched = of_type(sim.submit(2, make_stage(2, 2), [0, 1]), Launch)
    assert sorted(c.worker_id for c in launched) == ["w1", "w2"]


def test_exclusion_never_leaves_a_job_without_workers():
    clock = FakeClock()
    sim = Sim(clock=clock, exclude_after=1, max_attempts=3)
    sim.add_worker("only")
    sim.submit(1, make_stage(1, 1), [0])
    out = sim.fail(sim.task(1, 0).task_id, "x")
    assert [c.worker_id for c in of_type(out, Launch)] == ["only"]


def test_stragglers_get_a_speculative_copy_and_the_first_result_wins():
    clock = FakeClock()
    sim = Sim(clock=clock, speculation=True, speculation_min_seconds=0.1)
    for name in ("w1", "w2", "w3", "w4"):
        sim.add_worker(name)
    sim.submit(1, make_stage(1, 4), [0, 1, 2, 3])
    slow = sim.task(1, 3)
    for p in (0, 1, 2):
        clock.now += 0.1
        sim.succeed(sim.task(1, p).task_id)
    # 3 of 4 done, median 0.2 s; the last one has run 0.3 s: not yet 1.5 x median.
    assert of_type(sim.tick(), Launch) == []
    clock.now += 1.0
    copies = of_type(sim.tick(), Launch)
    assert len(copies) == 1 and copies[0].partition == 3
    assert copies[0].worker_id != slow.worker_id and copies[0].attempt == 1
    # Only one copy per partition.
    clock.now += 5
    assert of_type(sim.tick(), Launch) == []
    done = sim.succeed(copies[0].task_id, result="from the copy")
    assert [c.result for c in of_type(done, PartitionDone)] == ["from the copy"]
    assert of_type(done, Cancel) == [Cancel(slow.task_id, slow.worker_id)]
    assert len(of_type(sim.log, JobFinished)) == 1


def test_no_speculation_unless_enabled():
    clock = FakeClock()
    sim = Sim(clock=clock)
    sim.add_worker("w1")
    sim.add_worker("w2")
    sim.submit(1, make_stage(1, 2), [0, 1])
    clock.now += 0.1
    sim.succeed(sim.task(1, 0).task_id)
    clock.now += 100
    assert of_type(sim.tick(), Launch) == []


def test_cancelling_a_job_hands_its_cores_to_the_jobs_queued_behind_it():
    sim = Sim()
    sim.add_worker("w1")
    sim.add_worker("w2")
    sim.submit(1, make_stage(1, 2), [0, 1])
    assert sim.submit(2, make_stage(2, 2), [0, 1]) == []  # every core is busy with job 1
    out = sim.cancel(1)
    assert len(of_type(out, Cancel)) == 2
    assert of_type(out, Launch) == []  # the cancelled tasks still run until their workers say
    launched = []
    for cancel in of_type(out, Cancel):
        launched += of_type(sim.fail(cancel.task_id, "cancelled", counts=False), Launch)
    assert sorted(c.partition for c in launched if c.stage.id == 2) == [0, 1]


def test_a_cancelled_task_that_runs_on_gets_its_process_killed_after_the_kill_timeout():
    clock = FakeClock()
    sim = Sim(clock=clock, kill_timeout=2.0)
    sim.add_worker("w1")
    sim.submit(1, make_stage(1, 1), [0])
    sim.submit(2, make_stage(2, 1), [0])
    (cancel,) = of_type(sim.cancel(1), Cancel)
    assert sim.state.wake_at == clock.now + 2.0
    clock.now += 1.9
    assert of_type(sim.tick(), Kill) == []
    clock.now += 0.2
    out = sim.tick()
    assert of_type(out, Kill) == [Kill("w1", (cancel.task_id,))]
    assert of_type(out, Launch) == []  # the core is taken until the worker is gone
    out = sim.lose_worker("w1")  # the killed process's connection closes
    assert sim.state.workers == {}
    out = sim.add_worker("w1")  # its supervisor started a fresh executor
    assert [c.stage.id for c in of_type(out, Launch)] == [2]


def test_a_kill_nobody_answers_frees_the_core_after_the_grace_period():
    clock = FakeClock()
    sim = Sim(clock=clock, kill_timeout=1.0)
    sim.add_worker("w1")
    sim.submit(1, make_stage(1, 1), [0])
    sim.submit(2, make_stage(2, 1), [0])
    sim.cancel(1)
    clock.now += 1.0
    assert kinds(sim.tick()) == ["Kill"]
    clock.now += KILL_GRACE - 0.1
    assert of_type(sim.tick(), Launch) == []
    clock.now += 0.2
    sim.stopping.clear()  # the simulated worker gave up on it too
    out = sim.tick()
    assert [c.stage.id for c in of_type(out, Launch)] == [2]
    assert of_type(out, Kill) == []  # asked once


def test_without_a_kill_timeout_a_cancelled_task_keeps_its_core_and_nothing_is_killed():
    clock = FakeClock()
    sim = Sim(clock=clock, kill_timeout=None)
    sim.add_worker("w1")
    sim.submit(1, make_stage(1, 1), [0])
    (cancel,) = of_type(sim.cancel(1), Cancel)
    assert sim.state.wake_at is None
    clock.now += 3600
    assert sim.tick() == []
    sim.submit(2, make_stage(2, 1), [0])
    out = sim.fail(cancel.task_id, "cancelled", counts=False)
    assert [c.stage.id for c in of_type(out, Launch)] == [2]


# -- sharing the cluster between jobs (FAIR and FIFO, pools) -------------------------------


def running_per_job(sim: Sim) -> Counter:
    """Running tasks per stage id (each test's jobs have one stage each, id = job id)."""
    return Counter(t.stage.id for t in sim.running.values())


def test_a_tiny_job_gets_the_next_free_slot():
    sim = Sim()
    sim.add_worker("w1")
    sim.add_worker("w2")
    sim.submit(1, make_stage(1, 20), range(20))
    assert sim.submit(2, make_stage(2, 1), [0]) == []  # both cores busy with job 1
    out = sim.succeed(sim.task(1, 0).task_id)
    assert [(c.stage.id, c.partition) for c in of_type(out, Launch)] == [(2, 0)]
    out = sim.succeed(sim.task(2, 0).task_id)
    assert sim.finished(2) == 1
    assert [(c.stage.id, c.partition) for c in of_type(out, Launch)] == [(1, 2)]
    sim.run()
    assert sim.finished(1) == 1


def test_fifo_mode_runs_jobs_in_submission_order():
    sim = Sim(scheduler_mode="fifo")
    sim.add_worker("w1")
    sim.add_worker("w2")
    sim.submit(1, make_stage(1, 6), range(6))
    sim.submit(2, make_stage(2, 1), [0])
    sim.run()
    order = [c.stage.id for c in sim.launches()]
    assert order == [1] * 6 + [2], "the second job waits for every task of the first"


def test_fifo_mode_retries_the_earlier_job_first():
    # As in Spark's FIFO: a retry of job 1 goes before job 2's queued tasks.
    sim = Sim(scheduler_mode="fifo")
    sim.add_worker("w1")
    sim.submit(1, make_stage(1, 1), [0])
    sim.submit(2, make_stage(2, 2), [0, 1])
    out = sim.fail(sim.task(1, 0).task_id, "flaky")
    assert [(c.stage.id, c.partition, c.attempt) for c in of_type(out, Launch)] == [(1, 0, 1)]


def test_two_big_jobs_converge_to_equal_shares():
    sim = Sim()
    sim.add_worker("w1", cores=4)
    sim.submit(1, make_stage(1, 50), range(50))
    sim.submit(2, make_stage(2, 50), range(50))
    assert running_per_job(sim) == {1: 4}
    # Each slot job 1 frees goes to job 2 until both run 2; then they alternate.
    for _ in range(2):
        sim.succeed(min(t for t, c in sim.running.items() if c.stage.id == 1))
    assert running_per_job(sim) == {1: 2, 2: 2}
    for _ in range(10):
        sim.succeed(min(sim.running))
        assert running_per_job(sim) == {1: 2, 2: 2}


def test_pool_weights_share_the_slots():
    sim = Sim(pools={"a": {"weight": 1}, "b": {"weight": 2}})
    sim.submit(1, make_stage(1, 50), range(50), pool="a")
    sim.submit(2, make_stage(2, 50), range(50), pool="b")
    sim.add_worker("w1", cores=6)
    assert running_per_job(sim) == {1: 2, 2: 4}
    for _ in range(12):  # whoever finishes, the shares hold
        sim.succeed(min(sim.running))
        assert running_per_job(sim) == {1: 2, 2: 4}


def test_min_share_is_served_before_weights():
    pools = {"batch": {"weight": 10}, "web": {"weight": 1, "min_share": 2}}
    sim = Sim(pools=pools)
    sim.submit(1, make_stage(1, 50), range(50), pool="batch")
    sim.submit(2, make_stage(2, 50), range(50), pool="web")
    sim.add_worker("w1", cores=4)
    assert running_per_job(sim) == {1: 2, 2: 2}
    # Without the min_share, weight 10 takes 3 of the 4 cores.
    sim = Sim(pools={**pools, "web": {"weight": 1}})
    sim.submit(1, make_stage(1, 50), range(50), pool="batch")
    sim.submit(2, make_stage(2, 50), range(50), pool="web")
    sim.add_worker("w1", cores=4)
    assert running_per_job(sim) == {1: 3, 2: 1}


def test_jobs_of_a_fifo_pool_run_one_after_the_other():
    sim = Sim(pools={"etl": {"mode": "fifo"}})
    sim.add_worker("w1", cores=2)
    sim.submit(1, make_stage(1, 4), range(4), pool="etl")
    sim.submit(2, make_stage(2, 4), range(4), pool="etl")
    sim.submit(3, make_stage(3, 1), [0])  # the default pool
    sim.succeed(sim.task(1, 0).task_id)
    assert running_per_job(sim) == {1: 1, 3: 1}, "the default pool gets its share"
    sim.succeed(sim.task(3, 0).task_id)
    sim.succeed(sim.task(1, 1).task_id)
    assert running_per_job(sim) == {1: 2}, "inside pool etl, job 1 first"
    sim.run()
    launches = [c.stage.id for c in sim.launches() if c.stage.id in (1, 2)]
    assert launches == [1, 1, 1, 1, 2, 2, 2, 2]


def test_a_job_held_back_for_locality_does_not_block_another():
    clock = FakeClock()
    sim = Sim(clock=clock, locality_wait=3.0)
    sim.add_worker("w1")
    sim.add_worker("w2")
    sim.submit(1, make_stage(1, 3, prefer={p: ["w1"] for p in range(3)}), range(3))
    assert running_per_job(sim) == {1: 1}  # w2 is free, but partitions 1, 2 wait for w1
    out = sim.submit(2, make_stage(2, 1), [0])
    assert [(c.stage.id, c.worker_id) for c in of_type(out, Launch)] == [(2, "w2")]
    # Job 1's partitions keep their order: 1 runs before 2.
    out = sim.succeed(sim.task(1, 0).task_id)
    assert [(c.stage.id, c.partition, c.worker_id) for c in of_type(out, Launch)] == [
        (1, 1, "w1")
    ]


def test_a_shared_map_stage_is_charged_to_its_first_job():
    sim = Sim()
    map_stage, first = two_stage(map_partitions=4, reduce_partitions=1)
    second = make_stage(3, 1, parents=[map_stage])
    sim.submit(1, first, [0])
    sim.submit(2, second, [0])
    sim.submit(3, make_stage(4, 4), range(4))
    sim.add_worker("w1", cores=4)
    # Jobs 1 and 2 share the map stage, counted once (for job 1): job 3 gets half.
    assert running_per_job(sim) == {1: 2, 4: 2}
    sim.cancel(1)  # the map stage now belongs to job 2: it keeps running
    assert running_per_job(sim) == {1: 2, 4: 2}
    sim.run()
    assert sim.finished(2) == 1 and sim.finished(3) == 1


def test_many_jobs_each_get_a_slot_before_any_gets_two():
    sim = Sim()
    for job in range(1, 9):
        sim.submit(job, make_stage(job, 3), range(3))
    sim.add_worker("w1", cores=8)
    assert running_per_job(sim) == dict.fromkeys(range(1, 9), 1)
    sim.run()
    assert all(sim.finished(job) == 1 for job in range(1, 9))


def test_the_masters_share_caps_running_tasks_and_never_preempts():
    sim = Sim()
    for worker_id in ("w1", "w2", "w3"):
        sim.add_worker(worker_id, cores=2)
    sim.apply(sim.state.handle(ev.ShareChanged(2)))
    stage = make_stage(0, 8)
    sim.submit(1, stage, range(8))
    assert len(sim.running) == 2  # six free cores, a share of two
    sim.apply(sim.state.handle(ev.ShareChanged(1)))
    assert len(sim.running) == 2 and not sim.stopping  # smaller: nothing preempted
    sim.succeed(next(iter(sim.running)))
    assert len(sim.running) == 1  # the freed core is not refilled: over the share
    sim.succeed(next(iter(sim.running)))
    assert len(sim.running) == 1
    assert len(sim.apply(sim.state.handle(ev.ShareChanged(None)))) == 5  # no cap: all free cores
    while sim.running:
        sim.succeed(next(iter(sim.running)))
    assert len(sim.results(1)) == 8
