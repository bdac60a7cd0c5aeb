"""Barrier execution on a real cluster: ``rdd.barrier()`` stages, ``BarrierTaskContext``
calls across worker processes, retrying the whole stage, and what barrier mode refuses.

Tasks tell the test what they did through files (they run in other processes);
every wait is on a condition, with a bound.
"""

from __future__ import annotations

import asyncio
import os
import signal
from operator import add
from pathlib import Path

import pytest

import aiospark
from aiospark import BarrierTaskContext
from aiospark.errors import BarrierError
from tests.conftest import hold_until, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session"),
              pytest.mark.timeout(180)]


def attempts_seen(folder: Path) -> dict[int, list[int]]:
    """partition -> the attempt numbers of its tasks that started (from their files)."""
    seen: dict[int, list[int]] = {}
    for path in folder.glob("start-*"):
        _, partition, attempt = path.name.split("-")
        seen.setdefault(int(partition), []).append(int(attempt))
    return {p: sorted(a) for p, a in sorted(seen.items())}


def mark_start(folder: Path) -> BarrierTaskContext:
    tc = BarrierTaskContext.get()
    Path(folder, f"start-{tc.partition_id()}-{tc.attempt_number()}").write_text(str(os.getpid()))
    return tc


async def test_all_gather_returns_every_tasks_message_across_worker_processes(ctx):
    def gather(it):
        tc = BarrierTaskContext.get()
        pids = tc.all_gather(str(os.getpid()))
        infos = [info.address for info in tc.get_task_infos()]
        return [(tc.partition_id(), pids, infos)]

    out = await ctx.parallelize(range(4), 2).barrier().map_partitions(gather).collect()
    assert [partition for partition, _, _ in out] == [0, 1]
    assert out[0][1] == out[1][1] and len(set(out[0][1])) == 2  # two executor processes
    addresses = {urlsplit_netloc(link.info.url) for link in ctx._scheduler.links.values()}
    assert out[0][2] == out[1][2] and set(out[0][2]) == addresses


def urlsplit_netloc(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc


async def test_barrier_waits_until_every_task_got_there(ctx, tmp_path):
    def steps(index, it):
        tc = BarrierTaskContext.get()
        for step in range(3):
            Path(tmp_path, f"{step}-{index}").touch()
            tc.barrier()
            # Past the barrier, every task has written its file of this step.
            missing = [p for p in range(2) if not Path(tmp_path, f"{step}-{p}").exists()]
            if missing:
                raise AssertionError(f"step {step}: partitions {missing} not there yet")
        return [index]

    rdd = ctx.parallelize(range(2), 2).barrier().map_partitions_with_index(steps)
    assert await rdd.collect() == [0, 1]


async def test_a_failing_task_reruns_the_whole_stage_with_the_next_attempt_number(ctx, tmp_path):
    def flaky(it):
        tc = mark_start(tmp_path)
        if tc.partition_id() == 1 and tc.attempt_number() == 0:
            raise ValueError("first attempt fails")
        tc.barrier()  # partition 0 waits here on attempt 0: it is cancelled, not hung
        return [(tc.partition_id(), tc.attempt_number())]

    pids = {link.info.pid for link in ctx._scheduler.links.values()}
    out = await ctx.parallelize(range(2), 2).barrier().map_partitions(flaky).collect()
    assert out == [(0, 1), (1, 1)]
    # The task waiting in barrier() stopped when cancelled: no executor had to be killed.
    assert {link.info.pid for link in ctx._scheduler.links.values()} == pids
    assert attempts_seen(tmp_path)[1] == [0, 1]
    assert attempts_seen(tmp_path)[0][-1] == 1  # partition 0 ran again too


async def test_a_task_failing_every_time_fails_the_job_with_the_users_error(ctx, tmp_path):
    def always(it):
        tc = mark_start(tmp_path)
        if tc.partition_id() == 0:
            raise KeyError("never works")
        tc.barrier()
        return [1]

    with pytest.raises(KeyError, match="never works"):
        await ctx.parallelize(range(2), 2).barrier().map_partitions(always).collect()
    assert attempts_seen(tmp_path)[0] == [0, 1, 2, 3]  # max_task_attempts (4) stage attempts


async def test_more_tasks_than_slots_is_refused_before_any_task_runs(ctx, tmp_path):
    rdd = ctx.parallelize(range(6), 3).barrier().map_partitions(lambda it: mark_start(tmp_path))
    with pytest.raises(BarrierError, match="3 tasks must run at once, the cluster has 2 cores"):
        await rdd.collect()
    # After a shuffle into more partitions than slots, too.
    shuffled = ctx.parallelize([(i, i) for i in range(6)], 2).reduce_by_key(add, 3)
    with pytest.raises(BarrierError, match="needs more slots"):
        await shuffled.barrier().map_partitions(lambda it: it).collect()
    assert list(tmp_path.iterdir()) == []


async def test_what_barrier_mode_refuses_fails_with_a_clear_error(ctx):
    barrier = ctx.parallelize(range(4), 2).barrier().map_partitions(lambda it: it)
    with pytest.raises(BarrierError, match="only some partitions"):
        await barrier.take(1)
    with pytest.raises(BarrierError, match="an RDD of 2 partitions in a barrier stage of 1 tasks"):
        await barrier.coalesce(1).collect()
    other = ctx.parallelize(range(4), 2).barrier().map_partitions(lambda it: it)
    with pytest.raises(BarrierError, match="depending on 2 barrier RDDs"):
        await barrier.zip(other).collect()
    with pytest.raises(RuntimeError, match="only available in a task of a barrier stage"):
        await ctx.parallelize([1]).map(lambda _: BarrierTaskContext.get()).collect()


async def test_a_barrier_stage_before_a_shuffle_and_after_one(ctx):
    def tagged(it):
        BarrierTaskContext.get().barrier()
        return ((x % 3, x) for x in it)

    rdd = ctx.parallelize(range(10), 2).barrier().map_partitions(tagged).reduce_by_key(add, 2)
    assert sorted(await rdd.collect()) == [(0, 18), (1, 12), (2, 15)]
    after = rdd.barrier().map_partitions(lambda it: [BarrierTaskContext.get().all_gather("x")])
    assert await after.collect() == [["x", "x"], ["x", "x"]]


async def test_mismatched_calls_make_the_waiting_task_raise_not_hang(ctx):
    def uneven(it):
        tc = BarrierTaskContext.get()
        tc.barrier()
        if tc.partition_id() == 0:
            tc.barrier()  # partition 1 never makes a second call
        return [1]

    with pytest.raises(BarrierError, match="can never complete"):
        await asyncio.wait_for(
            ctx.parallelize(range(2), 2).barrier().map_partitions(uneven).collect(), 120)

    def different(it):
        tc = BarrierTaskContext.get()
        tc.barrier() if tc.partition_id() == 0 else tc.all_gather("x")
        return [1]

    with pytest.raises(BarrierError, match="mismatched calls"):
        await asyncio.wait_for(
            ctx.parallelize(range(2), 2).barrier().map_partitions(different).collect(), 120)


async def test_a_barrier_call_times_out_with_a_clear_error(tmp_path):
    gate = tmp_path / "open"

    def late(it):
        tc = BarrierTaskContext.get()
        if tc.partition_id() == 1:
            hold_until(gate, 60)  # computes "too long": never reaches barrier() in time
        tc.barrier()
        return [1]

    async with aiospark.Context(workers=2, barrier_timeout=0.5, max_task_attempts=1) as small:
        try:
            with pytest.raises(BarrierError, match=r"timed out after 0.5s: partitions \[1\]"):
                await asyncio.wait_for(
                    small.parallelize(range(2), 2).barrier().map_partitions(late).collect(),
                    60)
        finally:
            gate.touch()


async def test_killing_a_worker_mid_barrier_reruns_the_stage(tmp_path):
    gate = tmp_path / "open"

    def train(it):
        tc = mark_start(tmp_path)
        if tc.partition_id() == 1 and tc.attempt_number() == 0:
            hold_until(gate, 60)  # partition 0 waits in barrier() meanwhile
        tc.barrier()
        return [(tc.partition_id(), tc.attempt_number(), os.getpid())]

    async with aiospark.Context(workers=2) as small:
        job = asyncio.create_task(
            small.parallelize(range(2), 2).barrier().map_partitions(train).collect())
        try:
            await wait_until(lambda: set(attempts_seen(tmp_path)) == {0, 1}, 60,
                             "both tasks to start")
            victim = int((tmp_path / "start-0-0").read_text())
            os.kill(victim, signal.SIGKILL)
            await wait_until(lambda: any(tmp_path.glob("start-0-1")), 60,
                             "the stage to run again")
        finally:
            gate.touch()
        out = await asyncio.wait_for(job, 120)
        assert [(p, a) for p, a, _ in out] == [(0, 1), (1, 1)]
        assert victim not in {pid for _, _, pid in out}
