"""Cancelling a job stops its tasks whatever their code does, and user code never starves
the processes that keep the cluster alive.

A task that ignores cancellation (a blocking sleep, a busy loop, an endless generator,
one long C call holding the GIL) has its executor killed ``task_kill_timeout`` after the
cancel, and the worker's supervisor starts a fresh one; the next job then runs at once.
A task that checks its cancellation stops by itself and nothing is killed.  Liveness
comes from the supervisor, so a task holding the GIL far longer than the master's
worker timeout neither makes its worker "lost" nor disappears from the status.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from pathlib import Path

import pytest

import aiospark
from tests.conftest import hold_until, pid_alive, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]


def sleep_forever(x):
    time.sleep(3600)
    return x


def busy_forever(x):
    while True:
        x += 1


def endless(records):
    return itertools.count()


def gil_forever(x):
    return sum(range(10**13))  # one C call: no check, no signal handler gets in


def marked(folder: str, work):
    """``work`` applied to each partition, after marking the partition as started."""

    def run(index, records):
        Path(folder, f"started-{index}").touch()
        if work is endless:
            return (x for x in endless(records))
        return map(work, records)

    return run


async def supervisor_health(ctx) -> dict[str, dict]:
    """Each worker's supervisor's ``/v1/health``, by worker id."""
    answers = {}
    for worker_id, link in ctx._scheduler.links.items():
        async with ctx._session.get(f"{link.info.control_url}/v1/health") as resp:
            answers[worker_id] = await resp.json()
    return answers


def replaced(ctx, executors: dict[str, int]) -> bool:
    """Whether the driver is connected again to every worker, each with a new executor."""
    links = ctx._scheduler.links
    return set(links) == set(executors) and all(
        links[w].info.pid != pid for w, pid in executors.items())


async def start_stuck_job(
    ctx, tmp_path: Path, work, records: int = 2
) -> tuple[asyncio.Task, dict[str, int]]:
    """A 2-task job whose tasks both run ``work`` over ``records`` records; returns it once
    both started, with the pid of each worker's executor."""
    job = asyncio.create_task(
        ctx.parallelize(range(records), 2).map_partitions_with_index(
            marked(str(tmp_path), work)).collect()
    )
    await wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2, 30, "both tasks")
    return job, {w: link.info.pid for w, link in ctx._scheduler.links.items()}


@pytest.mark.parametrize("work", [sleep_forever, busy_forever, endless, gil_forever],
                         ids=["blocking sleep", "busy loop", "endless generator", "C call"])
async def test_a_cancelled_task_is_stopped_whatever_its_code_does(tmp_path, work):
    async with aiospark.Context(workers=2, task_kill_timeout=0.5) as ctx:
        job, executors = await start_stuck_job(ctx, tmp_path, work)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        # The next job runs as soon as the stuck executors are replaced.
        assert await asyncio.wait_for(ctx.range(10).sum(), 30) == 45
        await wait_until(lambda: not any(pid_alive(p) for p in executors.values()), 10,
                         "the stuck executors to be gone")
        await wait_until(lambda: replaced(ctx, executors), 30, "both workers back")
        health = await supervisor_health(ctx)
        assert {w: h["executors_killed"] for w, h in health.items()} == {w: 1 for w in executors}
        assert all(h["executor_pid"] != executors[w] for w, h in health.items())


async def test_a_timeout_stops_the_tasks_of_the_job_it_interrupts(tmp_path):
    async with aiospark.Context(workers=2, task_kill_timeout=0.5) as ctx:
        stuck = ctx.parallelize(range(2), 2).map_partitions_with_index(
            marked(str(tmp_path), sleep_forever))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(None) as deadline:

                async def expire_once_both_run() -> None:
                    await wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2, 30)
                    deadline.reschedule(asyncio.get_running_loop().time())
                    await asyncio.Event().wait()

                await asyncio.gather(stuck.collect(), expire_once_both_run())
        assert await asyncio.wait_for(ctx.parallelize([1, 2, 3], 2).sum(), 30) == 6


async def test_a_task_that_checks_its_cancellation_stops_and_nothing_is_killed(tmp_path):
    def slow(x):
        time.sleep(0.001)
        return x

    async with aiospark.Context(workers=2, task_kill_timeout=5) as ctx:
        # 60 s of work per task, checked every 256 records (0.26 s)
        job, executors = await start_stuck_job(ctx, tmp_path, slow, records=120_000)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        assert await asyncio.wait_for(ctx.range(10).sum(), 30) == 45
        health = await supervisor_health(ctx)
        assert all(h["executors_killed"] == 0 for h in health.values())
        assert all(pid_alive(p) for p in executors.values())


async def test_cached_blocks_of_a_killed_executor_are_recomputed(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()

    def tracked(x):
        (calls / f"{x}-{os.urandom(4).hex()}").touch()
        return x * 2

    async with aiospark.Context(workers=2, task_kill_timeout=0.5) as ctx:
        cached = ctx.parallelize(range(100), 4).map(tracked).cache()
        assert await cached.sum() == 2 * sum(range(100))
        gate = tmp_path / "gate"
        gate.mkdir()
        job, _ = await start_stuck_job(ctx, gate, sleep_forever)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        assert await asyncio.wait_for(cached.sum(), 30) == 2 * sum(range(100))
        assert sorted(await cached.collect()) == [2 * x for x in range(100)]
        assert len(list(calls.iterdir())) > 100  # the killed executors' blocks were recomputed


def gil_seconds(seconds: float) -> int:
    """An ``n`` for which ``sum(range(n))`` holds the GIL for about ``seconds`` here."""
    n = 10**7
    started = time.perf_counter()
    sum(range(n))
    return int(n * seconds / max(time.perf_counter() - started, 1e-6))


async def test_a_task_holding_the_gil_past_the_worker_timeout_succeeds_and_shows_running():
    n = gil_seconds(8.0)  # four times the master's worker timeout below
    async with aiospark.Context(workers=1, worker_timeout=2.0) as ctx:
        (worker_id,) = ctx._scheduler.links
        job = asyncio.create_task(ctx.parallelize([n], 1).map(lambda k: sum(range(k))).collect())

        async def shown_running() -> bool:
            async with ctx._session.get(f"{ctx._scheduler.master_url}/v1/status") as resp:
                status = await resp.json()
            return [w["running_tasks"] for w in status["workers"]] == [1]

        await wait_until(shown_running, 30, "the status to show the task running")
        assert await asyncio.wait_for(job, 120) == [n * (n - 1) // 2]
        async with ctx._session.get(f"{ctx._scheduler.master_url}/v1/status") as resp:
            status = await resp.json()
        assert status["counters"]["workers_lost"] == 0
        assert [w["worker_id"] for w in status["workers"]] == [worker_id]
        assert (await supervisor_health(ctx))[worker_id]["executors_started"] == 1


async def test_an_executor_that_crashes_is_restarted_and_the_job_completes(tmp_path):
    async with aiospark.Context(workers=2) as ctx:
        gate = tmp_path / "gate"
        gate.mkdir()

        def wait_for_gate(index, records):
            Path(gate, f"started-{index}").touch()
            if not hold_until(gate / "open", 60):
                raise TimeoutError("the test never opened the gate")
            return records

        job = asyncio.create_task(
            ctx.parallelize(range(100), 4).map_partitions_with_index(wait_for_gate).sum())
        await wait_until(lambda: len(list(gate.glob("started-*"))) == 2, 30, "two tasks")
        links = ctx._scheduler.links
        victim = next(iter(links))
        old_pid = links[victim].info.pid
        os.kill(old_pid, 9)  # as the kernel's out-of-memory killer would
        await wait_until(lambda: victim in links and links[victim].info.pid != old_pid, 30,
                         "the driver to reconnect to the restarted executor")
        (gate / "open").touch()
        assert await asyncio.wait_for(job, 60) == sum(range(100))
        health = (await supervisor_health(ctx))[victim]
        assert (health["executors_started"], health["executors_killed"]) == (2, 0)
