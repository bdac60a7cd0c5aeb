"""The pure cleaner (``aiospark.scheduler.cleaner``) and what keeps a shuffle alive.

A shuffle dependency is cleaned only once nothing references it: not the
program, not a job's stages (``StageBuilder`` holds map stages weakly, the
state machine holds a running job's stages), not the job reports.
"""

from __future__ import annotations

import gc
import threading

from aiospark.lineage import HashPartitioner, ShuffleDependency
from aiospark.scheduler import events as ev
from aiospark.scheduler.actions import MapOutput
from aiospark.scheduler.cleaner import Cleaner
from aiospark.scheduler.dag import StageBuilder
from aiospark.scheduler.jobs import JobTable
from aiospark.scheduler.state import SchedulerState


class FakeDriver:
    def __init__(self, cleaner: Cleaner) -> None:
        self.cleaner = cleaner

    def shuffle_codec(self):
        return None

    def watch(self, obj, kind, key):
        self.cleaner.watch(obj, kind, key)


class FakeRDD:
    storage_level = None
    checkpoint_data = None

    def __init__(self, rdd_id, deps, ctx, partitions=2):
        self.id = rdd_id
        self.deps = deps
        self.ctx = ctx
        self._partitions = partitions

    def splits(self):
        return list(range(self._partitions))

    def preferred_locations(self, split):
        return []


def lineage(cleaner: Cleaner, shuffle_id: int = 5) -> FakeRDD:
    """``source -> shuffle(shuffle_id) -> reduced``: the reduced RDD."""
    driver = FakeDriver(cleaner)
    source = FakeRDD(1, [], driver)
    dep = ShuffleDependency(source, shuffle_id, HashPartitioner(2))
    return FakeRDD(2, [dep], driver)


def test_a_collected_object_is_queued_once_and_wakes_the_driver():
    woken = []
    cleaner = Cleaner(wake=lambda: woken.append(threading.get_ident()))
    objects = [type("T", (), {})() for _ in range(3)]
    cleaner.watch(objects[0], "shuffle", 1)
    cleaner.watch(objects[1], "rdd", 4)
    cleaner.watch(objects[2], "broadcast", 2)
    assert cleaner.pending == 0
    done = threading.Thread(target=objects.clear)  # collected on another thread
    done.start()
    done.join()
    assert cleaner.pending == 3 and len(woken) == 3 and threading.get_ident() not in woken
    batch = cleaner.take()
    assert (batch.shuffles, batch.rdds, batch.broadcasts) == ([1], [4], [2])
    assert cleaner.take().empty


def test_a_wake_that_fails_keeps_the_work_queued():
    def closed_loop():
        raise RuntimeError("Event loop is closed")

    cleaner = Cleaner(wake=closed_loop)
    thing = type("T", (), {})()
    cleaner.watch(thing, "checkpoint", "/tmp/x/rdd-3")
    del thing
    assert cleaner.take().checkpoints == ["/tmp/x/rdd-3"]


def test_batches_are_bounded():
    cleaner = Cleaner()
    for i in range(5):
        cleaner._collected("shuffle", i)
    assert cleaner.take(max_items=2).shuffles == [0, 1]
    assert cleaner.take(max_items=10).shuffles == [2, 3, 4]


def test_disabled_cleaner_watches_nothing():
    cleaner = Cleaner(enabled=False)
    rdd = lineage(cleaner)
    del rdd
    gc.collect()
    assert cleaner.pending == 0


def test_a_shuffle_is_collected_with_its_rdd():
    cleaner = Cleaner()
    rdd = lineage(cleaner)
    assert cleaner.pending == 0
    del rdd
    gc.collect()
    assert cleaner.take().shuffles == [5]


def test_a_running_job_keeps_its_shuffle_then_lets_it_go():
    cleaner = Cleaner()
    state = SchedulerState()
    table = JobTable(state)
    builder = StageBuilder()
    stage = builder.result_stage(lineage(cleaner), lambda i, it: None)
    stages = builder.ancestors(stage)
    table.submitted(1, "count", stages, 2)
    state.handle(ev.JobSubmitted(1, stage, (0, 1)))
    del stage, stages
    gc.collect()
    assert cleaner.pending == 0, "a running job's map stage must hold its shuffle"
    state.handle(ev.CancelJob(1))
    table.ended(1, "cancelled")
    gc.collect()
    # The job's report keeps stage summaries only: the shuffle can go.
    assert cleaner.take().shuffles == [5]
    assert [s["kind"] for s in table.changes()[0]["stages"]] == ["shuffle_map", "result"]


def test_a_kept_rdd_reuses_its_map_outputs_through_a_new_stage():
    cleaner = Cleaner()
    state = SchedulerState()
    builder = StageBuilder()
    state.handle(ev.WorkerAdded("w1", "h", 2))
    reduced = lineage(cleaner)
    first = builder.result_stage(reduced, lambda i, it: None)
    commands = state.handle(ev.JobSubmitted(1, first, (0, 1)))
    for _ in range(2):  # the map stage's two tasks, then the result stage's
        for launch in [c for c in commands if type(c).__name__ == "Launch"]:
            output = MapOutput("w1", "http://w1", (1, 1)) if launch.stage.shuffle_id else None
            commands = state.handle(ev.TaskFinished(launch.task_id, None, output))
    assert 1 not in state.jobs and state.shuffle_progress(5) == (2, 2)
    del first, commands
    gc.collect()
    second = builder.result_stage(reduced, lambda i, it: None)
    launches = [c for c in state.handle(ev.JobSubmitted(2, second, (0, 1)))
                if type(c).__name__ == "Launch"]
    assert {c.stage.id for c in launches} == {second.id}, "the map side was rerun"
    assert cleaner.pending == 0


def test_a_removed_shuffle_is_forgotten_unless_a_live_stage_reads_it():
    cleaner = Cleaner()
    state = SchedulerState()
    builder = StageBuilder()
    stage = builder.result_stage(lineage(cleaner), lambda i, it: None)
    state.handle(ev.JobSubmitted(1, stage, (0, 1)))
    state.handle(ev.ShuffleRemoved(5))
    assert 5 in state.map_outputs
    state.handle(ev.CancelJob(1))
    state.handle(ev.ShuffleRemoved(5))
    assert 5 not in state.map_outputs
