"""Persisted RDDs on workers whose memory budget is too small for them.

Each test starts its own two-worker cluster with a budget of about a megabyte
per worker, so an RDD of a few megabytes cannot be held in memory whole.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter

import pytest

import aiospark
from aiospark.lineage import StorageLevel
from aiospark.memory import parse_size
from tests.conftest import hold_until, wait_until, worker_health

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

BUDGET = "1m"
SPLITS = 16
PER_SPLIT = 1000
N = SPLITS * PER_SPLIT


def record(x: int) -> tuple[int, str]:
    """~290 bytes as objects, ~160 pickled: a split takes ~290 kB or ~160 kB of a 1 MB budget."""
    return x, f"{x:0150d}"


EXPECTED = [record(x) for x in range(N)]


def marked_rdd(ctx, tmp_path, level: StorageLevel, splits: int = SPLITS, per_split=PER_SPLIT):
    """An RDD that leaves a file per split each time it computes one, persisted at ``level``."""

    def mark(index, records):
        (tmp_path / f"{index}-{uuid.uuid4().hex}").touch()
        return records

    return (
        ctx.parallelize(range(splits * per_split), splits)
        .map_partitions_with_index(mark)
        .map(record)
        .persist(level)
    )


def computed(tmp_path) -> Counter:
    """How many times each split was computed so far."""
    return Counter(int(name.split("-")[0]) for name in os.listdir(tmp_path))


def cached_splits(ctx, rdd) -> set[int]:
    """The splits of ``rdd`` the driver believes some worker holds."""
    cache = ctx._scheduler.state.cache
    return {split for (rdd_id, split), holders in cache.items() if rdd_id == rdd.id and holders}


async def status(ctx) -> dict:
    async with ctx._session.get(f"{ctx._scheduler.master_url}/v1/status") as resp:
        assert resp.status == 200
        return await resp.json()


async def blocks_total(ctx, key: str) -> int:
    return sum(h["blocks"][key] for h in await worker_health(ctx))


async def driver_agrees_with_workers(ctx, rdd) -> bool:
    """Every worker holds exactly as many splits of ``rdd`` as the driver believes it does."""
    for link in ctx._scheduler.links.values():
        async with ctx._session.get(f"{link.info.url}/v1/health") as resp:
            health = await resp.json()
        held = sum(c["splits"] for c in health["cached"] if c["rdd_id"] == rdd.id)
        believed = sum(
            1 for (rdd_id, _), holders in ctx._scheduler.state.cache.items()
            if rdd_id == rdd.id and link.info.worker_id in holders
        )
        if held != believed:
            return False
    return True


@pytest.mark.parametrize("level", [StorageLevel.MEMORY_ONLY, StorageLevel.MEMORY_ONLY_SER],
                         ids=["MEMORY_ONLY", "MEMORY_ONLY_SER"])
async def test_memory_only_beyond_the_budget_recomputes_exactly_the_splits_not_kept(
    tmp_path, level
):
    async with aiospark.Context(workers=2, worker_memory=BUDGET) as ctx:
        rdd = marked_rdd(ctx, tmp_path, level)
        assert await rdd.collect() == EXPECTED
        assert computed(tmp_path) == Counter(range(SPLITS))
        kept = cached_splits(ctx, rdd)
        assert 0 < len(kept) < SPLITS, f"expected some splits not to fit, kept {sorted(kept)}"
        assert await blocks_total(ctx, "not_stored") > 0
        assert await blocks_total(ctx, "evicted") == 0, "evicted blocks of the RDD being cached"
        for health in await worker_health(ctx):
            assert 0 < health["memory"]["storage"] <= health["memory"]["budget"]
        assert await driver_agrees_with_workers(ctx, rdd)
        for _ in range(2):  # each later action recomputes only the splits not kept
            before, kept = computed(tmp_path), cached_splits(ctx, rdd)
            assert await rdd.count() == N
            assert computed(tmp_path) - before == Counter(set(range(SPLITS)) - kept)
        assert sorted(await rdd.map(lambda kv: kv[0]).collect()) == list(range(N))


async def test_a_second_cached_rdd_evicts_the_first_and_the_driver_hears_of_it(tmp_path):
    async with aiospark.Context(workers=2, worker_memory=BUDGET) as ctx:
        marks = tmp_path / "first"
        marks.mkdir()
        first = marked_rdd(ctx, marks, StorageLevel.MEMORY_ONLY, splits=4, per_split=1000)
        expected = [record(x) for x in range(4000)]
        assert await first.collect() == expected
        assert cached_splits(ctx, first) == {0, 1, 2, 3}, "the first RDD should fit"
        second = ctx.parallelize(range(N), SPLITS).map(lambda x: record(-x)).cache()
        assert await second.count() == N
        assert await blocks_total(ctx, "evicted") > 0, "caching the second RDD evicted nothing"
        await wait_until(lambda: driver_agrees_with_workers(ctx, first), 10,
                         "the driver to learn which blocks were evicted")
        still = cached_splits(ctx, first)
        assert len(still) < 4
        before = computed(marks)
        assert await first.collect() == expected
        assert computed(marks) - before == Counter({0, 1, 2, 3} - still)


@pytest.mark.parametrize(
    "level", [StorageLevel.MEMORY_AND_DISK, StorageLevel.MEMORY_AND_DISK_SER],
    ids=["MEMORY_AND_DISK", "MEMORY_AND_DISK_SER"],
)
async def test_memory_and_disk_keeps_every_split_some_on_disk(tmp_path, level):
    async with aiospark.Context(workers=2, worker_memory=BUDGET) as ctx:
        rdd = marked_rdd(ctx, tmp_path, level)
        assert await rdd.collect() == EXPECTED
        assert cached_splits(ctx, rdd) == set(range(SPLITS))
        assert await blocks_total(ctx, "disk") > 0
        assert await blocks_total(ctx, "memory") > 0
        assert await rdd.count() == N
        assert await rdd.map(lambda kv: kv[0]).sum() == sum(range(N))
        assert computed(tmp_path) == Counter(range(SPLITS)), "a persisted split was recomputed"
        for health in await worker_health(ctx):
            assert health["memory"]["storage"] <= health["memory"]["budget"]


async def test_disk_only_keeps_nothing_in_memory(tmp_path):
    async with aiospark.Context(workers=2, worker_memory=BUDGET) as ctx:
        rdd = marked_rdd(ctx, tmp_path, StorageLevel.DISK_ONLY)
        assert await rdd.collect() == EXPECTED
        assert await rdd.count() == N
        assert computed(tmp_path) == Counter(range(SPLITS)), "a persisted split was recomputed"
        assert await blocks_total(ctx, "disk") == SPLITS
        assert await blocks_total(ctx, "memory") == 0
        for health in await worker_health(ctx):
            assert health["memory"]["storage"] == 0


async def test_unpersist_empties_every_worker_and_the_status_shows_it(tmp_path):
    async with aiospark.Context(workers=2, worker_memory=BUDGET) as ctx:
        rdd = marked_rdd(ctx, tmp_path, StorageLevel.MEMORY_AND_DISK)
        assert await rdd.count() == N

        async def cached_everywhere() -> bool:
            workers = (await status(ctx))["workers"]
            return len(workers) == 2 and all(
                any(c["rdd_id"] == rdd.id and c["app_id"] == ctx.app_id for c in w["cached"])
                for w in workers
            )

        await wait_until(cached_everywhere, 10, "both workers to report the cached RDD")
        snapshot = await status(ctx)
        [total] = [c for c in snapshot["cached"] if c["rdd_id"] == rdd.id]
        assert total["splits"] == SPLITS and total["workers"] == 2
        assert total["memory_bytes"] > 0 and total["disk_bytes"] > 0
        for worker in snapshot["workers"]:
            assert worker["memory_bytes"] == parse_size(BUDGET)
            assert 0 < worker["storage_used"] <= worker["memory_bytes"]
            assert worker["execution_used"] == 0

        rdd.unpersist()

        async def emptied() -> bool:
            workers = (await status(ctx))["workers"]
            return all(not w["cached"] and w["storage_used"] == 0 for w in workers)

        await wait_until(emptied, 10, "the workers to drop the unpersisted RDD")
        assert (await status(ctx))["cached"] == []
        assert await blocks_total(ctx, "memory") == 0
        assert await blocks_total(ctx, "disk") == 0
        assert ctx._scheduler.state.cache == {}
        # Not persisted any more: computed again, and not kept.
        before = computed(tmp_path)
        assert await rdd.count() == N
        assert computed(tmp_path) - before == Counter(range(SPLITS))
        assert await blocks_total(ctx, "disk") == 0


@pytest.mark.parametrize("level", [StorageLevel.MEMORY_ONLY, StorageLevel.MEMORY_ONLY_2],
                         ids=["MEMORY_ONLY", "MEMORY_ONLY_2"])
async def test_a_block_cached_by_a_task_that_outlived_unpersist_is_dropped_again(
    tmp_path, level
):
    """(With MEMORY_ONLY_2 the copies pushed to the other worker are dropped again too.)"""
    opened = tmp_path / "open"

    def wait_for_gate(index, records):
        if not hold_until(opened):  # the test opens it once unpersist was sent
            raise TimeoutError("the test never opened the gate")
        return records

    async with aiospark.Context(workers=2) as ctx:
        rdd = ctx.parallelize(range(100), 2).map_partitions_with_index(wait_for_gate)
        rdd.persist(level)
        job = asyncio.ensure_future(rdd.count())

        async def both_running() -> bool:
            return sum(h["running_tasks"] for h in await worker_health(ctx)) == 2

        await wait_until(both_running, 10, "both tasks to start")
        rdd.unpersist()  # reaches the workers before the tasks cache anything
        opened.touch()
        assert await job == 100
        assert ctx._scheduler.state.cache == {}, "the driver recorded blocks of an unpersisted RDD"

        async def nothing_cached() -> bool:
            return all(not h["cached"] for h in await worker_health(ctx))

        await wait_until(nothing_cached, 10, "the workers to drop the late blocks")
        received = sum(h["block_transfers"]["received"] for h in await worker_health(ctx))
        assert received == 2 * (level.replication - 1)  # the late copies were pushed, then dropped
        # Persisted again, it is cached and recorded again.
        rdd.persist(level)
        assert await rdd.count() == 100
        assert {split for (rdd_id, split) in ctx._scheduler.state.cache if rdd_id == rdd.id} == {
            0, 1,
        }
        copies = sum(len(held) for (rdd_id, _), held in ctx._scheduler.state.cache.items()
                     if rdd_id == rdd.id)
        assert copies == 2 * level.replication
