"""Jobs of one context share the cluster: a tiny job is not stuck behind a long one."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.conftest import hold_until, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

LONG_TASKS = 20


def gated(folder: str):
    """A partition function: marks partition ``i`` started, then holds until ``gate-i`` exists."""
    def run(index, items):
        open(os.path.join(folder, f"started-{index}"), "w").close()
        hold_until(os.path.join(folder, f"gate-{index}"))
        return items
    return run


async def test_a_tiny_job_gets_the_next_free_slot_while_a_long_job_saturates_the_cluster(
    ctx, tmp_path
):
    folder = str(tmp_path)
    assert ctx.default_parallelism == 2, "the test saturates two single-core workers"

    def started(index: int) -> bool:
        return os.path.exists(os.path.join(folder, f"started-{index}"))

    def open_gate(index: int) -> None:
        open(os.path.join(folder, f"gate-{index}"), "w").close()

    long_rdd = ctx.parallelize(range(LONG_TASKS), LONG_TASKS).map_partitions_with_index(
        gated(folder)
    )
    long_job = asyncio.create_task(long_rdd.collect())
    try:
        await wait_until(lambda: started(0) and started(1), 30, "the long job on both workers")
        jobs = ctx._scheduler.state.jobs
        before = set(jobs)
        tiny = ctx.parallelize([1, 2, 3], 1).map(lambda x: -x)
        with ctx.pool("interactive"):  # a pool of its own, with the default settings
            tiny_job = asyncio.create_task(tiny.collect())
        await wait_until(lambda: len(set(jobs) - before) == 1, 10, "the tiny job submitted")
        # Let the long job's tasks finish one at a time; after each, the freed slot
        # goes either to the tiny job or to the long job's next task.
        finished = 0
        while not tiny_job.done() and finished < LONG_TASKS:
            open_gate(finished)
            finished += 1
            following = finished + 1  # the long job's next task, when it gets the slot
            await wait_until(
                lambda f=following: tiny_job.done() or f >= LONG_TASKS or started(f),
                30, "the freed slot to be used",
            )
        assert finished <= 2, f"the tiny job waited for {finished} tasks of the long job"
        assert await tiny_job == [-1, -2, -3]
        assert not long_job.done()
    finally:
        for index in range(LONG_TASKS):
            open_gate(index)
    assert await long_job == list(range(LONG_TASKS))
