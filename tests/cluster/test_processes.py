"""The embedded cluster's processes: names, clean shutdown, driver death, killed workers."""

from __future__ import annotations

import asyncio
import json
import operator
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import aiospark
from tests.conftest import pid_alive, wait_until

pytestmark = pytest.mark.cluster


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


async def test_processes_are_named_by_role_and_gone_after_stop():
    ctx = aiospark.Context(workers=2)
    await ctx.start()
    try:
        cluster = ctx._cluster
        pids = cluster.pids()
        root = cluster.root
        assert set(pids) == {"master", "shuffle-service", "worker-0", "worker-1"}
        for name, pid in pids.items():
            role = name.split("-")[0] if name.startswith("worker") else name
            assert f"-m aiospark {role}" in _cmdline(pid)
        assert os.path.isdir(root)
        assert await ctx.parallelize(range(100), 4).map(lambda x: (x % 3, x)).reduce_by_key(
            operator.add
        ).count() == 3
        assert os.listdir(os.path.join(root, "shuffle")), "map outputs were written"
    finally:
        await ctx.stop()
    await wait_until(lambda: not any(pid_alive(p) for p in pids.values()), 10, "processes exit")
    assert not os.path.exists(root)


DRIVER = textwrap.dedent(
    """
    import asyncio, json, sys, aiospark

    async def main():
        ctx = await aiospark.Context(workers=2).start()
        assert await ctx.parallelize(range(10), 2).sum() == 45
        print(json.dumps({"pids": ctx._cluster.pids(), "root": ctx._cluster.root}), flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_cluster_exits_when_the_driver_is_killed():
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
        text=True,
    )
    info = None
    try:
        line = await asyncio.wait_for(asyncio.to_thread(driver.stdout.readline), 60)
        info = json.loads(line)
        assert all(pid_alive(p) for p in info["pids"].values())
    finally:
        driver.kill()
        driver.wait()
    if info is None:
        pytest.fail("the driver did not start its cluster")
    pids = info["pids"].values()
    await wait_until(lambda: not any(pid_alive(p) for p in pids), 15, "orphans to exit")
    await wait_until(lambda: not os.path.exists(info["root"]), 5, "session dir removal")


async def test_job_survives_a_worker_killed_mid_stage(tmp_path):
    def slow(x):
        time.sleep(0.002)
        (tmp_path / f"{x}-{os.urandom(3).hex()}").touch()
        return x * x

    async with aiospark.Context(workers=2) as ctx:
        victim = ctx._cluster.processes["worker-1"]
        data = ctx.parallelize(range(3000), 12)
        job = asyncio.ensure_future(data.map(slow).map(lambda x: (x % 10, x)).reduce_by_key(
            operator.add
        ).collect())
        await wait_until(lambda: len(os.listdir(tmp_path)) > 300, 30, "the job to be under way")
        os.kill(victim.pid, signal.SIGKILL)
        result = await asyncio.wait_for(job, 60)
        expected: dict[int, int] = {}
        for x in range(3000):
            expected[x * x % 10] = expected.get(x * x % 10, 0) + x * x
        assert dict(result) == expected
        # The embedded cluster restarts the dead worker, which joins as a new one.
        await wait_until(
            lambda: ctx._cluster.processes["worker-1"].pid != victim.pid
            and len(ctx._scheduler.links) == 2,
            30,
            "the replacement worker",
        )
        # Cached splits on the dead worker are gone; a second action recomputes them.
        cached = ctx.parallelize(range(1000), 4).map(lambda x: x + 1).cache()
        assert await cached.sum() == sum(range(1, 1001))
        assert await cached.count() == 1000


async def test_shuffle_output_of_a_dead_worker_is_still_served(tmp_path):
    def mark(x):
        (tmp_path / f"{x}").touch()
        return (x % 7, 1)

    async with aiospark.Context(workers=2) as ctx:
        counts = ctx.parallelize(range(700), 6).map(mark).reduce_by_key(operator.add, 3)
        assert sorted(await counts.collect()) == [(k, 100) for k in range(7)]
        assert len(os.listdir(tmp_path)) == 700
        for name in os.listdir(tmp_path):
            os.remove(tmp_path / name)
        victim = ctx._cluster.processes["worker-0"]
        victim_ids = [w for w, link in ctx._scheduler.links.items() if link.info.pid == victim.pid]
        os.kill(victim.pid, signal.SIGKILL)
        await wait_until(
            lambda: not set(victim_ids) & set(ctx._scheduler.links), 10, "the loss to be noticed"
        )
        assert sorted(await counts.map_values(lambda v: v * 2).collect()) == [
            (k, 200) for k in range(7)
        ]
        # The map side was not recomputed: the shuffle service still serves its files.
        assert os.listdir(tmp_path) == []


async def test_master_and_shuffle_service_are_restarted_on_the_same_address():
    async with aiospark.Context(workers=2) as ctx:
        pairs = ctx.parallelize([(i % 5, 1) for i in range(500)], 4)
        assert sorted(await pairs.reduce_by_key(operator.add).collect()) == [
            (k, 100) for k in range(5)
        ]
        old = {name: ctx._cluster.processes[name].pid for name in ("master", "shuffle-service")}
        for pid in old.values():
            os.kill(pid, signal.SIGKILL)
        await wait_until(
            lambda: all(ctx._cluster.processes[n].pid != p for n, p in old.items()), 20,
            "restarts",
        )
        # Workers re-register with the new master; jobs keep working, links stay up.
        async def master_knows_both():
            async with ctx._session.get(f"{ctx._cluster.master_url}/v1/status") as resp:
                return len((await resp.json())["workers"]) == 2

        await wait_until(master_knows_both, 20, "workers to re-register")
        assert len(ctx._scheduler.links) == 2
        assert sorted(await pairs.reduce_by_key(operator.add, 3).collect()) == [
            (k, 100) for k in range(5)
        ]


async def test_job_survives_a_worker_killed_mid_reduce(tmp_path):
    def slow_reduce(i, it):
        out = []
        for kv in it:
            time.sleep(0.001)
            out.append(kv)
        (tmp_path / f"reduce-{i}-{os.urandom(3).hex()}").touch()
        return out

    async with aiospark.Context(workers=2) as ctx:
        pairs = ctx.parallelize([(i % 400, i) for i in range(8000)], 8)
        reduced = pairs.reduce_by_key(operator.add, 24).map_partitions_with_index(slow_reduce)
        job = asyncio.ensure_future(reduced.collect())
        await wait_until(lambda: len(os.listdir(tmp_path)) >= 4, 30, "reducers to be running")
        os.kill(ctx._cluster.processes["worker-0"].pid, signal.SIGKILL)
        result = await asyncio.wait_for(job, 60)
        expected: dict[int, int] = {}
        for i in range(8000):
            expected[i % 400] = expected.get(i % 400, 0) + i
        assert dict(result) == expected and len(result) == 400


async def test_lost_cached_splits_are_recomputed_from_lineage(tmp_path):
    def mark(x):
        (tmp_path / f"{x}-{os.urandom(3).hex()}").touch()
        return x * 3

    async with aiospark.Context(workers=2) as ctx:
        cached = ctx.parallelize(range(400), 8).map(mark).cache()
        assert await cached.sum() == 3 * sum(range(400))
        assert len(os.listdir(tmp_path)) == 400
        # One worker loses its blocks (as if evicted); the driver still thinks it has them.
        from aiospark.protocol.envelope import pack

        link = next(iter(ctx._scheduler.links.values()))
        holders = {k for k, ws in ctx._scheduler.state.cache.items() if link.info.worker_id in ws}
        assert holders, "that worker cached some splits"
        link.send(pack({"type": "unpersist", "rdd_id": cached.id}))  # sent before later tasks
        assert await cached.count() == 400
        assert sorted(await cached.collect()) == [3 * x for x in range(400)]
        recomputed = len(os.listdir(tmp_path)) - 400
        assert recomputed == 50 * len(holders), "exactly the lost splits were recomputed"


async def test_cached_splits_are_fetched_from_their_worker_not_recomputed(tmp_path):
    from tests.conftest import worker_health

    def mark(x):
        (tmp_path / f"{x}-{os.urandom(3).hex()}").touch()
        return x + 1

    # No locality wait: tasks often land on the worker that does not hold their split.
    async with aiospark.Context(workers=2, locality_wait=0) as ctx:
        cached = ctx.parallelize(range(2000), 16).map(mark).cache()
        assert await cached.count() == 2000
        async def a_task_ran_away() -> bool:  # one job per poll, until one read a remote block
            assert await cached.map(lambda x: (x % 3, 1)).reduce_by_key(operator.add).count() == 3
            return sum(h["blocks_fetched"] for h in await worker_health(ctx)) > 0

        await wait_until(a_task_ran_away, 60, "a task to run away from its cached split")
        assert sorted(await cached.collect()) == list(range(1, 2001))
        assert len(os.listdir(tmp_path)) == 2000, "a cached split was recomputed"
        # A holder that lost its copy answers "missing": the split is recomputed once.
        from aiospark.protocol.envelope import pack

        for link in ctx._scheduler.links.values():
            link.send(pack({"type": "unpersist", "rdd_id": cached.id}))
        assert await cached.sum() == sum(range(1, 2001))
        assert len(os.listdir(tmp_path)) == 4000
