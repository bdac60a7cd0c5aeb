"""Approximate actions on the real cluster: exact in time, an estimate from the finished
partitions at the deadline, and the overrunning tasks cancelled on the workers."""

from __future__ import annotations

import asyncio
import math
import os
import time
from pathlib import Path

import pytest

from aiospark import BoundedFloat
from aiospark.errors import TaskCancelled
from aiospark.taskcontext import current_task_context
from tests.conftest import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

#: The partition that holds back, of four.
HELD = 3
#: Each other partition's records (the same in every one, so that the estimate is known
#: whichever of them finished by the deadline).
VALUES = [float(v) for v in range(1, 101)]
#: Milliseconds given to a job with a held partition: ample for three small partitions.
TIMEOUT_MS = 3000


def holding_back(gate: str, marks: str):
    """Partition ``HELD`` waits (checking its cancellation) until ``gate`` exists; the others
    give ``VALUES`` at once.  A held task leaves a file in ``marks`` when it starts, and
    one when it is cancelled."""

    def run(index, records):
        if index != HELD:
            return iter(VALUES)
        task = current_task_context()
        Path(marks, f"started-{task.task_id}").touch()
        deadline = time.monotonic() + 120  # the bound, should the test never open the gate
        try:
            while not os.path.exists(gate) and time.monotonic() < deadline:
                task.check()
                time.sleep(0.01)
        except TaskCancelled:
            Path(marks, f"cancelled-{task.task_id}").touch()
            raise
        return iter([1e9] * len(VALUES))  # would spoil the estimate, were it counted

    return run


def held_rdd(ctx, tmp_path):
    return ctx.parallelize(range(4), 4).map_partitions_with_index(
        holding_back(str(tmp_path / "gate"), str(tmp_path)))


async def test_approximate_actions_are_exact_when_the_job_ends_in_time(ctx, tmp_path):
    data = [x * 0.5 for x in range(-300, 1700)]
    rdd = ctx.parallelize(data, 7)
    count = await rdd.count_approx(60_000)
    assert type(count) is int and count == len(data) == await rdd.count()
    total = await rdd.sum_approx(60_000, confidence=0.5)
    assert isinstance(total, BoundedFloat)
    assert total == total.low == total.high == math.fsum(data) and total.confidence == 1.0
    mean = await rdd.mean_approx(60_000)
    assert mean == mean.low == mean.high == pytest.approx(await rdd.mean())
    # After a shuffle, and on ints (summed as floats, as in PySpark).
    pairs = ctx.parallelize([(x % 5, x) for x in range(1000)], 4).reduce_by_key(
        lambda a, b: a + b, 3).values()
    assert await pairs.sum_approx(60_000) == float(sum(range(1000)))
    assert await pairs.count_approx(60_000) == 5
    # An empty RDD: PySpark's answers.
    empty = ctx.parallelize([], 3)
    assert await empty.count_approx(60_000) == 0 and await empty.sum_approx(60_000) == 0.0
    assert math.isnan(await empty.mean_approx(60_000))
    # No checkpoint is written: that would be a second job, after the deadline.
    ctx.set_checkpoint_dir(str(tmp_path / "ckpt"))
    marked = ctx.parallelize(range(10), 2)
    marked.checkpoint()
    assert await marked.count_approx(60_000) == 10 and not marked.is_checkpointed()


async def test_arguments_are_checked_before_any_job_and_record_errors_come_from_the_job(ctx):
    rdd = ctx.parallelize(range(10), 2)
    for action in (rdd.count_approx, rdd.sum_approx, rdd.mean_approx):
        with pytest.raises(ValueError, match="timeout must be >= 0 milliseconds, got -5"):
            await action(-5)
        with pytest.raises(ValueError, match=r"confidence must be within \[0, 1\], got 1.2"):
            await action(1000, 1.2)
        with pytest.raises(TypeError, match="timeout must be a number of milliseconds"):
            await action("1000")
        with pytest.raises(TypeError, match="keep_running must be a bool"):
            await action(1000, keep_running="yes")
    # Records that are not numbers fail the job as the user's own sum/mean would.
    words = ctx.parallelize(["a", "b"], 1)
    with pytest.raises(TypeError, match="unsupported operand type"):
        await words.sum_approx(60_000)
    with pytest.raises(TypeError, match="unsupported operand type"):
        await words.mean_approx(60_000)


async def test_at_the_deadline_the_finished_partitions_give_the_estimate(ctx, tmp_path):
    rdd = held_rdd(ctx, tmp_path)
    expected_sum = 4 * math.fsum(VALUES)

    count = await asyncio.wait_for(rdd.count_approx(TIMEOUT_MS), 60)
    assert count == 4 * len(VALUES)  # the held partition's records never counted
    total = await asyncio.wait_for(rdd.sum_approx(TIMEOUT_MS, confidence=0.9), 60)
    assert total == pytest.approx(expected_sum) and total.confidence == 0.9
    assert total.low < total < total.high
    mean = await asyncio.wait_for(rdd.mean_approx(TIMEOUT_MS), 60)
    assert mean == pytest.approx(50.5) and mean.confidence == 0.95
    assert mean.low < 50.5 < mean.high and mean.high - mean.low < 20

    # Each job's held task was cancelled on its worker, and the cluster runs the next job.
    await wait_until(lambda: len(list(tmp_path.glob("cancelled-*"))) == 3, 30,
                     "the three held tasks to be cancelled")
    assert await asyncio.wait_for(ctx.range(10).sum(), 30) == 45


async def test_keep_running_lets_the_job_finish_after_the_estimate(ctx, tmp_path):
    seen = ctx.accumulator(0)

    def counted(x):
        seen.add(1)
        return x

    rdd = held_rdd(ctx, tmp_path).map(counted)
    estimate = await asyncio.wait_for(rdd.count_approx(TIMEOUT_MS, keep_running=True), 60)
    assert estimate == 4 * len(VALUES)
    assert not list(tmp_path.glob("cancelled-*"))  # still running
    (tmp_path / "gate").touch()
    # The held partition ends too: every record was seen, none cancelled.
    await wait_until(lambda: seen.value == 4 * len(VALUES), 30, "the job to run to its end")
    assert not list(tmp_path.glob("cancelled-*"))


async def test_cancelling_the_caller_cancels_the_job(ctx, tmp_path):
    call = asyncio.create_task(held_rdd(ctx, tmp_path).sum_approx(600_000))
    await wait_until(lambda: list(tmp_path.glob("started-*")), 30, "the held task to start")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await wait_until(lambda: len(list(tmp_path.glob("cancelled-*"))) == 1, 30,
                     "the held task to be cancelled")
