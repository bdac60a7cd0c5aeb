"""Unit tests of the scheduler core's parts: ``workers`` (slots, kills, flaky workers,
cached blocks), ``tasksets`` (placement, retries, speculation) and ``stages`` (map outputs)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from aiospark.scheduler.actions import MapOutput
from aiospark.scheduler.stages import MapOutputs
from aiospark.scheduler.tasksets import MAX_BACKOFF, Placement, TaskSet
from aiospark.scheduler.workers import EXCLUDE_FOR, KILL_GRACE, Cluster


def brute_best(cluster: Cluster, skip=()):
    """The worker a task should go to, by scanning every worker (the rule the index keeps)."""
    free = [w for w in cluster if w.free > 0 and w.id not in skip]
    return max(free, key=lambda w: (w.free, -len(w.running)), default=None)


@pytest.mark.parametrize("seed", range(8))
def test_the_free_slot_index_agrees_with_a_scan_of_every_worker(seed):
    rng = random.Random(seed)
    cluster = Cluster()
    running: dict[int, str] = {}
    next_task = 0
    for _ in range(600):
        roll = rng.random()
        ids = [w.id for w in cluster]
        if roll < 0.1 or not ids:
            cluster.add(f"w{rng.randrange(12)}", f"h{rng.randrange(3)}", rng.randint(1, 4))
        elif roll < 0.45:
            worker = cluster.best()
            if worker is not None:
                next_task += 1
                cluster.start(worker.id, next_task)
                running[next_task] = worker.id
        elif roll < 0.7 and running:
            task_id = rng.choice(sorted(running))
            cluster.finish(running.pop(task_id), task_id)
        elif roll < 0.8 and running:
            task_id = rng.choice(sorted(running))
            cluster.cancel(running.pop(task_id), task_id, deadline=rng.random())
        elif roll < 0.85 and cluster.stopping:
            cluster.stopped(rng.choice(sorted(cluster.stopping)))
        elif roll < 0.9:
            cluster.reap(now=rng.random() * 2)
        elif roll < 0.95:
            cluster.drain(rng.choice(ids))
        else:
            gone = cluster.remove(rng.choice(ids))
            for task_id in gone.running:
                running.pop(task_id, None)
        assert cluster.free_slots == sum(w.free for w in cluster)
        skip = set(rng.sample(sorted(w.id for w in cluster), k=min(2, len(cluster))))
        assert cluster.best() is brute_best(cluster)
        assert cluster.best(skip) is brute_best(cluster, skip)


def test_a_cancelled_task_keeps_its_core_until_stopped_or_killed_and_given_up_on():
    cluster = Cluster()
    cluster.add("w1", "h", 1)
    cluster.start("w1", 7)
    cluster.cancel("w1", 7, deadline=5.0)
    assert cluster.free_slots == 0 and cluster.next_deadline() == 5.0
    assert cluster.reap(now=4.0) == []
    assert cluster.reap(now=5.0) == [("w1", (7,))], "past the deadline: kill its process"
    assert cluster.free_slots == 0 and cluster.next_deadline() == 5.0 + KILL_GRACE
    assert cluster.reap(now=5.0 + KILL_GRACE) == [], "killed once, then given up on"
    assert cluster.free_slots == 1 and cluster.stopping == {}
    assert cluster.stopped(7) is False


def test_a_worker_failing_often_is_excluded_for_a_while_unless_it_is_the_only_one():
    cluster = Cluster()
    cluster.add("w1", "h", 1)
    for i in range(3):
        cluster.record_failure("w1", now=10.0 + i, stage_id=1, partition=i)
    assert cluster.flaky(12.0, exclude_after=3) == set(), "excluding it would exclude everyone"
    cluster.add("w2", "h", 1)
    assert cluster.flaky(12.0, exclude_after=3) == {"w1"}
    assert cluster.flaky(12.0 + EXCLUDE_FOR, exclude_after=3) == set()
    assert cluster.flaky(12.0, exclude_after=None) == set()
    cluster.record_failure("w1", now=12.0, stage_id=2, partition=0)
    cluster.forgive(1)
    assert cluster.flaky(12.0, exclude_after=1) == {"w1"}, "stage 2's failure stays"
    assert cluster.flaky(12.0, exclude_after=2) == set(), "all of stage 1's failures forgiven"


def test_workers_are_found_by_id_or_host():
    cluster = Cluster()
    cluster.add("w1", "host-a", 1)
    cluster.add("w2", "host-b", 1)
    cluster.add("w3", "host-a", 1)
    assert [w.id for w in cluster.at(["host-a"])] == ["w1", "w3"]
    assert [w.id for w in cluster.at(["w2", "host-a"])] == ["w1", "w2", "w3"]
    cluster.remove("w1")
    assert [w.id for w in cluster.at(["host-a", "nowhere"])] == ["w3"]


# -- task sets -------------------------------------------------------------------------


def stage(prefer=()):
    return SimpleNamespace(id=1, num_partitions=4, parents=[], shuffle_id=None,
                           preferred=lambda partition, cache: list(prefer))


def test_a_retry_waits_its_backoff_and_avoids_the_worker_it_failed_on():
    cluster = Cluster()
    cluster.add("w1", "h", 2)
    cluster.add("w2", "h", 1)
    tasks = TaskSet(stage())
    assert tasks.failed(0, "w1") == 1
    tasks.retry(0, now=10.0, attempts=1, backoff=0.5)
    place = Placement(cluster, now=10.2, locality_wait=0.0)
    assert tasks.pick_worker(0, place) is None and place.wake_at == 10.5
    later = Placement(cluster, now=10.5, locality_wait=0.0)
    assert tasks.pick_worker(0, later).id == "w2", "not w1, though it has more free cores"
    cluster.start("w2", 1)
    assert tasks.pick_worker(0, later) is None, "wait for a worker it has not failed on"
    assert tasks.failed(0, "w2") == 2
    assert tasks.pick_worker(0, later).id == "w1", "failed everywhere: anywhere will do"
    tasks.retry(0, now=0.0, attempts=30, backoff=0.5)
    assert tasks.not_before[0] == MAX_BACKOFF


def test_a_task_waits_for_its_data_s_busy_worker_then_runs_anywhere():
    cluster = Cluster()
    cluster.add("w1", "host-a", 1)
    cluster.add("w2", "host-b", 1)
    cluster.start("w2", 99)
    tasks = TaskSet(stage(prefer=["host-b"]))
    tasks.enqueue(0, now=0.0)
    waiting = Placement(cluster, now=0.5, locality_wait=1.0)
    held: list[int] = []
    assert tasks.next_launch(waiting, held) is None and held == [0]
    assert waiting.wake_at == 1.0
    tasks.queue.extend(held)
    partition, worker = tasks.next_launch(Placement(cluster, now=1.0, locality_wait=1.0), [])
    assert (partition, worker.id) == (0, "w1")
    assert tasks.to_run == set()


def test_stale_queue_entries_are_skipped():
    cluster = Cluster()
    cluster.add("w1", "h", 1)
    tasks = TaskSet(stage())
    tasks.enqueue(0, now=0.0)
    tasks.enqueue(1, now=0.0)
    tasks.enqueue(1, now=0.0)  # queued once
    tasks.to_run.discard(0)    # launched by another path
    assert list(tasks.queue) == [0, 1]
    partition, _ = tasks.next_launch(Placement(cluster, 0.0, 0.0), [])
    assert partition == 1 and not tasks.queue


# -- map outputs ---------------------------------------------------------------------


def test_missing_map_outputs_are_counted_as_they_come_and_go():
    rng = random.Random(3)
    outputs = MapOutputs()
    outputs.register(1, 6)
    outputs.register(2, 3)
    epoch = outputs.epoch
    for _ in range(300):
        shuffle_id = rng.choice([1, 2])
        maps = len(outputs.by_shuffle[shuffle_id])
        roll = rng.random()
        if roll < 0.6:
            url = f"u{rng.randrange(3)}"
            outputs.put(shuffle_id, rng.randrange(maps), MapOutput("w", url))
        elif roll < 0.8:
            outputs.lose(shuffle_id, [rng.randrange(-1, maps + 1)])
        else:
            outputs.lose_url(f"u{rng.randrange(3)}")
        for sid, found in outputs.by_shuffle.items():
            missing = sum(o is None for o in found)
            assert outputs.missing(sid) == missing
            assert outputs.progress(sid) == (len(found) - missing, len(found))
            assert outputs.complete(sid, len(found)) == (missing == 0)
    assert outputs.epoch > epoch
    assert outputs.missing(99) is None and not outputs.complete(None, 0)
