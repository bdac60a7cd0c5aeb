"""map_async, flat_map_async and foreach_async: async user functions run concurrently per task."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import wait_for_idle

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


async def test_map_async_keeps_order_and_runs_calls_concurrently(ctx):
    state = {"running": 0}

    async def probe(x):
        state["running"] += 1
        seen = state["running"]
        await asyncio.sleep(0.05 if x % 3 else 0.01)  # finish out of order
        state["running"] -= 1
        return (x, seen)

    out = await ctx.parallelize(range(60), 2).map_async(probe, concurrency=10).collect()
    assert [x for x, _ in out] == list(range(60))
    assert max(seen for _, seen in out) == 10, "calls did not overlap up to the limit"


async def test_flat_map_async_and_foreach_async(ctx, tmp_path):
    async def split(line):
        await asyncio.sleep(0)
        return line.split()

    lines = ["a b", "", "c", "d e f"]
    assert await ctx.parallelize(lines, 3).flat_map_async(split, 2).collect() == [
        "a", "b", "c", "d", "e", "f"
    ]

    async def touch(x):
        await asyncio.sleep(0)
        (tmp_path / str(x)).touch()

    await ctx.parallelize(range(25), 4).foreach_async(touch, concurrency=3)
    assert sorted(int(p.name) for p in tmp_path.iterdir()) == list(range(25))


async def test_async_errors_and_bad_arguments(ctx):
    async def boom(x):
        if x == 5:
            raise KeyError("five")
        return x

    with pytest.raises(KeyError, match="five"):
        await ctx.parallelize(range(10), 2).map_async(boom).collect()
    with pytest.raises(TypeError, match="async def"):
        await ctx.parallelize(range(3)).map_async(lambda x: x).collect()
    with pytest.raises(ValueError, match="concurrency"):
        ctx.parallelize(range(3)).map_async(boom, concurrency=0)


async def test_deadline_cancels_long_async_calls(ctx):
    async def forever(x):
        await asyncio.sleep(3600)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await ctx.parallelize(range(4), 2).map_async(forever).collect()
    assert time.monotonic() - started < 5

    await wait_for_idle(ctx)
