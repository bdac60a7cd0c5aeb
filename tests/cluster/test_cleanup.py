"""What the program no longer references is cleaned up while the context lives (issue 14).

Each test drops its references, runs ``gc.collect()``, then waits for the
driver's cleaner to have done its batch (``ctx._clean_now()``); what the
workers do with the messages they got is awaited with bounded polls of their
``/v1/health``.
"""

from __future__ import annotations

import gc
import os
from operator import add

import pytest

import aiospark
from tests.conftest import wait_until, worker_health

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


async def settle(ctx) -> None:
    """Collect garbage; wait for the cleaner to clean what that freed."""
    gc.collect()
    clean_now = getattr(ctx, "_clean_now", None)  # absent before the cleaner existed
    if clean_now is not None:
        await clean_now()


def shuffle_files(ctx, shuffle_ids) -> int:
    root = os.path.join(ctx._cluster.root, "shuffle", ctx.app_id)
    return sum(
        len(files) for shuffle_id in shuffle_ids
        for _, _, files in os.walk(os.path.join(root, str(shuffle_id)))
    )


def new_shuffles(ctx, first: int) -> range:
    return range(first + 1, ctx._next_shuffle + 1)


async def test_finished_jobs_leave_a_bounded_shuffle_directory(ctx):
    await settle(ctx)
    first = ctx._next_shuffle
    for _ in range(30):  # keeping no RDD, as a web service's request handlers do
        assert await ctx.range(20000).map(lambda x: (x, x)).reduce_by_key(add, 4).count() == 20000
    shuffles = new_shuffles(ctx, first)
    assert len(shuffles) == 30
    await settle(ctx)
    # On main 30 shuffles x 2 maps x 2 files stayed: 120 files.
    assert shuffle_files(ctx, shuffles) == 0
    assert not set(shuffles) & set(ctx._scheduler.state.map_outputs)


async def test_a_kept_rdd_keeps_its_shuffle_and_a_second_action_skips_the_map_stage(ctx):
    await settle(ctx)
    first = ctx._next_shuffle
    kept = ctx.range(1000, num_slices=2).map(lambda x: (x % 7, x)).reduce_by_key(add, 3)
    assert await kept.count() == 7
    (shuffle_id,) = new_shuffles(ctx, first)
    for _ in range(3):  # other jobs' garbage is cleaned meanwhile
        await ctx.range(100).map(lambda x: (x, 1)).group_by_key().count()
    await settle(ctx)
    assert shuffle_files(ctx, [shuffle_id]) == 4  # 2 maps x (data + index)
    events = ctx.progress()
    try:
        assert sorted(await kept.collect()) == sorted(
            (k, sum(range(k, 1000, 7))) for k in range(7))
        started = [e["kind"] for e in events.drain() if e["event"] == "stage_started"]
    finally:
        events.close()
    assert started == ["result"], f"the map stage ran again: {started}"
    del kept
    await settle(ctx)
    assert shuffle_files(ctx, [shuffle_id]) == 0


async def cached_rdd_ids(ctx) -> set[int]:
    return {
        c["rdd_id"] for health in await worker_health(ctx) for c in health["cached"]
        if c.get("app_id", ctx.app_id) == ctx.app_id
    }


async def test_a_collected_cached_rdd_leaves_the_workers(ctx):
    rdd = ctx.parallelize(range(100), 4).map(lambda x: x * 2).cache()
    rdd_id = rdd.id
    assert await rdd.sum() == 9900
    assert rdd_id in await cached_rdd_ids(ctx)
    assert any(key[0] == rdd_id for key in ctx._scheduler.state.cache)
    del rdd
    await settle(ctx)

    async def dropped():
        return rdd_id not in await cached_rdd_ids(ctx)

    await wait_until(dropped, timeout=20, what="the workers to drop the collected RDD's blocks")
    assert not any(key[0] == rdd_id for key in ctx._scheduler.state.cache)


async def broadcasts_held(ctx) -> int:
    return sum(health["broadcasts"]["held"] for health in await worker_health(ctx))


async def lookups(ctx, table) -> list[str]:
    return sorted(await ctx.parallelize(range(4), 4).map(lambda i: table.value[i]).collect())


async def test_a_collected_broadcast_leaves_the_workers_and_the_driver(ctx):
    await settle(ctx)
    before = await broadcasts_held(ctx)
    table = ctx.broadcast({i: str(i) for i in range(1000)})
    bid = table.bid
    assert await lookups(ctx, table) == ["0", "1", "2", "3"]
    assert await broadcasts_held(ctx) > before
    del table
    await settle(ctx)
    assert bid not in ctx._scheduler.shared.blobs

    async def dropped():
        return await broadcasts_held(ctx) == before

    await wait_until(dropped, timeout=20, what="the workers to drop the collected broadcast")


async def test_the_checkpoint_of_a_collected_rdd_is_removed(ctx, tmp_path):
    ctx.set_checkpoint_dir(str(tmp_path / "checkpoints"))
    rdd = ctx.parallelize(range(10), 2).map(lambda x: x + 1)
    rdd.checkpoint()
    assert await rdd.sum() == 55
    directory = tmp_path / "checkpoints" / f"rdd-{rdd.id}"
    assert rdd.is_checkpointed() and sorted(os.listdir(directory)) == [
        "part-00000", "part-00001"]
    del rdd
    await settle(ctx)
    assert not directory.exists()


async def test_cleanup_false_keeps_everything_until_stop():
    async with aiospark.Context(workers=1, cleanup=False) as own:
        for _ in range(3):
            await own.range(100, num_slices=2).map(lambda x: (x, x)).reduce_by_key(add).count()
        await settle(own)
        assert shuffle_files(own, range(1, 4)) == 12
