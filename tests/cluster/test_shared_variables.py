"""Broadcast variables and accumulators on the real cluster."""

from __future__ import annotations

import operator
import os

import numpy as np
import pytest

import aiospark
from aiospark import AccumulatorParam
from aiospark.errors import AiosparkError
from tests.conftest import worker_health

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


async def test_broadcast_is_sent_once_per_worker_not_per_task(ctx):
    before = await worker_health(ctx)
    array = np.arange(2_000_000, dtype=np.int64)  # 16 MB
    big = ctx.broadcast(array)
    sums = await ctx.parallelize(range(200), 200).map(lambda i: int(big.value[i * 1000])).collect()
    assert sums == [i * 1000 for i in range(200)]
    after = await worker_health(ctx)
    inline = sum(a["broadcasts"]["inline"] - b["broadcasts"]["inline"]
                 for a, b in zip(after, before, strict=True))
    peer = sum(a["broadcasts"]["peer"] - b["broadcasts"]["peer"]
               for a, b in zip(after, before, strict=True))
    # The driver sent it to one worker; the other got it from that peer.
    assert (inline, peer) == (1, 1)
    # A second job reuses the copies already on the workers.
    total = await ctx.parallelize(range(4), 4).map(lambda i: int(big.value.sum())).sum()
    assert total == 4 * int(array.sum())
    again = await worker_health(ctx)
    assert sum(h["broadcasts"]["inline"] + h["broadcasts"]["peer"] for h in again) == sum(
        h["broadcasts"]["inline"] + h["broadcasts"]["peer"] for h in after
    )
    big.destroy()


async def test_broadcast_unpersist_and_destroy(ctx):
    table = ctx.broadcast({"a": 1})
    assert await ctx.parallelize(["a"] * 4, 2).map(lambda k: table.value[k]).sum() == 4
    table.unpersist()
    assert await ctx.parallelize(["a"] * 4, 2).map(lambda k: table.value[k]).sum() == 4
    table.destroy()
    with pytest.raises(AiosparkError, match="destroyed"):
        await ctx.parallelize(["a"]).map(lambda k: table.value[k]).collect()
    with pytest.raises(AiosparkError, match="destroyed"):
        table.value  # noqa: B018


async def test_accumulator_counts_once_per_partition_despite_retries(ctx, tmp_path):
    acc = ctx.accumulator(0)
    flag = tmp_path / "failed"

    def work(x):
        acc.add(1)
        if x == 55 and not flag.exists():
            flag.touch()
            raise OSError("transient failure after adding to the accumulator")
        return x

    assert await ctx.parallelize(range(100), 4).map(work).count() == 100
    assert flag.exists()
    assert acc.value == 100


async def test_accumulators_in_map_stages_and_custom_params(ctx):
    class SetParam(AccumulatorParam):
        def zero(self, value):
            return set()

        def add_in_place(self, value1, value2):
            value1 |= value2
            return value1

    seen = ctx.accumulator(set(), SetParam())
    total = ctx.accumulator(0.0)
    vector = ctx.accumulator(np.zeros(3))

    def track(kv):
        seen.add({kv[0]})
        total.add(kv[1])
        vector.add(np.array([1.0, kv[1], 0.0]))
        return kv

    pairs = [(f"k{i % 7}", float(i)) for i in range(70)]
    result = await ctx.parallelize(pairs, 5).map(track).reduce_by_key(operator.add).collect()
    assert len(result) == 7
    assert seen.value == {f"k{i}" for i in range(7)}
    assert total.value == sum(v for _, v in pairs)
    assert vector.value.tolist() == [70.0, sum(v for _, v in pairs), 0.0]
    # A second action over the same shuffle does not rerun (or recount) the map side.
    assert await ctx.parallelize(pairs, 5).count() == 70
    assert seen.value == {f"k{i}" for i in range(7)}


async def test_accumulator_value_is_driver_only(ctx):
    acc = ctx.accumulator(0)

    def peek(x):
        return acc.value

    with pytest.raises(AiosparkError, match="inside a task"):
        await ctx.parallelize([1]).map(peek).collect()
    with pytest.raises(TypeError, match="AccumulatorParam"):
        ctx.accumulator(0, "not a param")


async def test_broadcast_survives_its_holder_dying(tmp_path):
    async with aiospark.Context(workers=2) as ctx:
        data = ctx.broadcast(list(range(1000)))
        assert await ctx.parallelize(range(10), 10).map(lambda i: data.value[i]).sum() == 45
        victim = ctx._cluster.processes["worker-0"]
        os.kill(victim.pid, 9)
        assert await ctx.parallelize(range(10), 10).map(lambda i: data.value[i + 1]).sum() == 55


async def test_add_file_reaches_workers_that_join_later(tmp_path):
    from tests.conftest import wait_until

    data = tmp_path / "table.csv"
    data.write_text("a,1\nb,2\n")
    module = tmp_path / "shipped_module.py"
    module.write_text("FACTOR = 7\n")
    async with aiospark.Context(workers=1) as ctx:
        ctx.add_file(str(data))
        ctx.add_py_file(str(module))
        await ctx._cluster.start_worker(1)
        await wait_until(lambda: len(ctx._scheduler.links) == 2, 20, "the new worker")

        def probe(_):
            import shipped_module

            from aiospark import files

            with open(files.get("table.csv")) as f:
                return os.getpid(), f.read().count("\n") * shipped_module.FACTOR

        results = await ctx.parallelize(range(40), 40).map(probe).collect()
        assert {value for _, value in results} == {14}
        assert len({pid for pid, _ in results}) == 2, "both workers ran tasks"
        with pytest.raises(ValueError, match="plain name"):
            from aiospark.files import get

            get("../x")
