"""Job groups, descriptions and local properties (per asyncio task), carried by jobs to their
tasks, cancelled by group or all at once; the status tracker and the status page show them."""

from __future__ import annotations

import asyncio
import operator
import time
from pathlib import Path

import pytest

import aiospark
from aiospark import TaskContext
from tests.cluster.test_status_page import get_status, held_from, our_jobs
from tests.conftest import wait_for_idle, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session"),
              pytest.mark.timeout(180)]


def prop(key: str):
    """A map function giving the local property ``key`` of the task's job."""
    return lambda _: TaskContext.get().get_local_property(key)


def slow_marked(folder: str, name: str):
    """A partition function marking its start (file ``started-<name>``), then taking 1 ms per
    record: 100 s for 100,000 records, but it stops within 64 records of a cancellation."""
    def run(index, records):
        Path(folder, f"started-{name}").touch()
        for record in records:
            time.sleep(0.001)
            yield record
    return run


async def test_cancelling_a_group_stops_its_jobs_and_not_another_groups(ctx, tmp_path):
    await wait_for_idle(ctx, 20)
    executors = {w: link.info.pid for w, link in ctx._scheduler.links.items()}

    async def doomed(name: str) -> int:
        ctx.set_job_group("doomed", f"job {name}")  # this asyncio task's group from now on
        slow = ctx.parallelize(range(100_000), 1).map_partitions_with_index(
            slow_marked(str(tmp_path), name))
        return await slow.count()

    async def keeper() -> list:
        with ctx.job_group("keeper", "the one to keep"):
            return await ctx.parallelize(range(10), 2).map(lambda x: x * x).collect()

    first = asyncio.create_task(doomed("a"))
    second = asyncio.create_task(doomed("b"))
    await wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2, 60,
                     "both doomed jobs running on the two cores")
    kept = asyncio.create_task(keeper())
    tracker = ctx.status_tracker()
    await wait_until(lambda: tracker.get_job_ids_for_group("keeper"), 30, "the keeper submitted")
    [kept_id] = tracker.get_job_ids_for_group("keeper")
    doomed_ids = tracker.get_job_ids_for_group("doomed")
    assert len(doomed_ids) == 2 and set(tracker.get_active_job_ids()) >= {kept_id, *doomed_ids}

    await ctx.cancel_job_group("doomed")  # from this task, which is in no group

    for job in (first, second):
        with pytest.raises(aiospark.JobCancelled, match="job group 'doomed' was cancelled"):
            await job
    assert await asyncio.wait_for(kept, 60) == [x * x for x in range(10)]
    assert [tracker.get_job_info(j).status for j in doomed_ids] == ["FAILED", "FAILED"]
    assert tracker.get_job_info(kept_id).status == "SUCCEEDED"
    # The doomed tasks stopped by themselves (they read records): no executor was killed.
    await wait_for_idle(ctx, 20)
    assert {w: link.info.pid for w, link in ctx._scheduler.links.items()} == executors
    assert ctx.get_local_property("spark.jobGroup.id") is None, "the tasks' groups stayed theirs"


async def test_cancel_all_jobs_cancels_every_running_job(ctx, tmp_path):
    await wait_for_idle(ctx, 20)
    slow = ctx.parallelize(range(100_000), 1)

    async def grouped() -> int:
        with ctx.job_group("some group"):
            return await slow.map_partitions_with_index(slow_marked(str(tmp_path), "g")).count()

    jobs = [asyncio.create_task(grouped()), asyncio.create_task(
        slow.map_partitions_with_index(slow_marked(str(tmp_path), "plain")).count())]
    await wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2, 60, "both jobs running")
    assert len(ctx.status_tracker().get_active_job_ids()) == 2

    await ctx.cancel_all_jobs()

    for job in jobs:
        with pytest.raises(aiospark.JobCancelled, match="cancel_all_jobs"):
            await job
    assert ctx.status_tracker().get_active_job_ids() == []
    assert await asyncio.wait_for(ctx.parallelize(range(5), 2).sum(), 60) == 10


async def test_tasks_see_their_jobs_local_properties(ctx):
    ctx.set_local_property("team", "search")
    try:
        with ctx.job_group("etl", "load the logs"):
            seen = await ctx.parallelize(range(4), 4).map(
                lambda _: tuple(TaskContext.get().get_local_property(k) for k in (
                    "spark.jobGroup.id", "spark.job.description", "team"))).collect()
            # the map side of a shuffle (a stage of its own) sees them too
            pairs = await ctx.parallelize(range(6), 3).map(
                lambda x: (TaskContext.get().get_local_property("team"), x)
            ).reduce_by_key(operator.add, 2).collect()
        assert seen == [("etl", "load the logs", "search")] * 4
        assert pairs == [("search", 15)]
        assert await ctx.parallelize([1], 1).map(prop("spark.jobGroup.id")).collect() == [None]
        with ctx.pool("batch"):
            assert await ctx.parallelize([1]).map(prop("spark.scheduler.pool")).collect() == [
                "batch"]
    finally:
        ctx.set_local_property("team", None)
    assert await ctx.parallelize([1], 1).map(prop("team")).collect() == [None]


async def test_concurrent_asyncio_tasks_keep_their_own_groups(ctx):
    both_set = asyncio.Barrier(2)

    async def run_in(group: str) -> tuple[str | None, list, list]:
        ctx.set_job_group(group, f"work of {group}")
        await both_set.wait()  # the other task has set its group meanwhile
        here = ctx.get_local_property("spark.jobGroup.id")
        seen = await ctx.parallelize(range(4), 2).map(prop("spark.jobGroup.id")).collect()
        described = await ctx.parallelize([1], 1).map(prop("spark.job.description")).collect()
        return here, seen, described

    first, second = await asyncio.gather(run_in("a"), run_in("b"))
    assert first == ("a", ["a"] * 4, ["work of a"])
    assert second == ("b", ["b"] * 4, ["work of b"])
    assert ctx.get_local_property("spark.jobGroup.id") is None, "the caller's task is untouched"
    tracker = ctx.status_tracker()
    for group in ("a", "b"):
        ids = tracker.get_job_ids_for_group(group)
        assert len(ids) == 2 and all(tracker.get_job_info(i).status == "SUCCEEDED" for i in ids)
    assert not set(tracker.get_job_ids_for_group("a")) & set(tracker.get_job_ids_for_group("b"))


async def test_the_status_tracker_follows_a_running_job(ctx, tmp_path):
    await wait_for_idle(ctx, 20)
    gate = str(tmp_path / "go")
    tracker = ctx.status_tracker()
    held = ctx.parallelize(range(8), 2).map_partitions_with_index(held_from(gate, 0))

    async def count():
        return await held.count()  # the job's (and stage's) name: this line

    job = asyncio.create_task(count())
    try:
        def both_tasks_running():
            stages = tracker.get_active_stage_ids()
            return len(stages) == 1 and tracker.get_stage_info(stages[0]).num_active_tasks == 2

        await wait_until(both_tasks_running, 60, "the job's two tasks running")
        [job_id] = tracker.get_active_job_ids()
        info = tracker.get_job_info(job_id)
        assert info.status == "RUNNING" and info.stage_ids == tracker.get_active_stage_ids()
        stage = tracker.get_stage_info(info.stage_ids[0])
        assert (stage.num_tasks, stage.num_completed_tasks, stage.num_failed_tasks) == (2, 0, 0)
        line = count.__code__.co_firstlineno + 1
        assert stage.name == f"count at test_job_groups.py:{line}"
    finally:
        open(gate, "w").close()
    assert await job == 8
    assert tracker.get_job_info(job_id).status == "SUCCEEDED"
    assert tracker.get_active_job_ids() == [] and tracker.get_active_stage_ids() == []
    done = tracker.get_stage_info(info.stage_ids[0])
    assert (done.num_completed_tasks, done.num_active_tasks) == (2, 0)


async def test_a_failed_task_is_counted_in_its_stage(ctx):
    tracker = ctx.status_tracker()
    with pytest.raises(ZeroDivisionError), ctx.job_group("failing"):
        await ctx.parallelize([0], 1).map(lambda x: 1 / x).collect()
    [job_id] = tracker.get_job_ids_for_group("failing")
    info = tracker.get_job_info(job_id)
    assert info.status == "FAILED"
    assert tracker.get_stage_info(info.stage_ids[0]).num_failed_tasks == 4  # max_task_attempts


async def test_the_status_page_shows_each_jobs_group_and_description(ctx):
    with ctx.job_group("nightly", "load the logs"):
        await ctx.parallelize(range(4), 2).count()
    ctx.set_job_description("count the words")
    try:
        await ctx.parallelize(range(4), 2).count()
    finally:
        ctx.set_job_description(None)

    async def reported():
        jobs = sorted(our_jobs(ctx, await get_status(ctx)).values(), key=lambda j: j["job_id"])
        labels = [(j["group"], j["user_description"], j["state"]) for j in jobs[-2:]]
        return labels == [("nightly", "load the logs", "succeeded"),
                          ("", "count the words", "succeeded")] and jobs[-2:]

    await wait_until(reported, 20, "both jobs reported with their labels")
    grouped, described = await reported()
    assert grouped["description"].startswith("count at test_job_groups.py")
    assert described["description"].startswith("count at test_job_groups.py")
    async with ctx._session.get(f"{ctx.ui_web_url}/ui/static/status.js") as resp:
        script = await resp.text()
    assert "j.user_description" in script and "j.group" in script, "the page renders them"
