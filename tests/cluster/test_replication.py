"""Replicated storage levels on real processes: copies on distinct workers, a killed
holder costing no recomputation, unpersist, too few workers, a tight budget, and the
replica push endpoint refusing malformed requests with 4xx."""

from __future__ import annotations

import os
import signal
import struct
import uuid
from collections import Counter

import pytest

import aiospark
from aiospark.lineage import StorageLevel
from aiospark.protocol.frames import encode_frame
from aiospark.protocol.tasks import Unpersist, encode
from aiospark.worker.block_server import level_token
from tests.conftest import wait_until, worker_health

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

SPLITS = 6
PER_SPLIT = 200
EXPECTED = [x * 3 for x in range(SPLITS * PER_SPLIT)]


def marked_rdd(ctx, tmp_path, level: StorageLevel, splits: int = SPLITS, per_split=PER_SPLIT):
    """An RDD that leaves a file per split each time a worker computes one, persisted."""

    def mark(index, records):
        (tmp_path / f"{index}-{uuid.uuid4().hex}").touch()
        return (x * 3 for x in records)

    return (ctx.parallelize(range(splits * per_split), splits)
            .map_partitions_with_index(mark).persist(level))


def computed(tmp_path) -> Counter:
    """How many times each split was computed so far."""
    return Counter(int(name.split("-")[0]) for name in os.listdir(tmp_path))


def holders(ctx, rdd) -> dict[int, set[str]]:
    """split -> the workers the driver believes hold it."""
    return {split: set(held) for (rdd_id, split), held in ctx._scheduler.state.cache.items()
            if rdd_id == rdd.id and held}


async def held_by_workers(ctx, rdd, kind: str = "splits") -> dict[str, int]:
    """worker id -> how many splits of ``rdd`` its block store holds (its own health)."""
    held = {}
    for health in await worker_health(ctx):
        held[health["worker_id"]] = sum(
            c[kind] for c in health["cached"] if c["rdd_id"] == rdd.id)
    return held


async def driver_agrees_with_workers(ctx, rdd) -> bool:
    believed = Counter(w for held in holders(ctx, rdd).values() for w in held)
    actual = await held_by_workers(ctx, rdd)
    return all(actual.get(w, 0) == believed.get(w, 0) for w in set(actual) | set(believed))


async def kill_a_holder(ctx, rdd) -> tuple[str, set[int]]:
    """Kill the executor of a worker holding split 0; wait until the driver saw it go.

    Returns the victim's id and the splits it held.
    """
    victim = sorted(holders(ctx, rdd)[0])[0]
    lost = {split for split, held in holders(ctx, rdd).items() if victim in held}
    os.kill(ctx._scheduler.links[victim].info.pid, signal.SIGKILL)

    def loss_seen() -> bool:  # (a forked executor re-registers at once: watch its blocks)
        return not any(victim in held for held in holders(ctx, rdd).values())

    await wait_until(loss_seen, 30, "the driver to see the holder go")
    return victim, lost


@pytest.mark.parametrize("level", [StorageLevel.MEMORY_ONLY_2, StorageLevel.DISK_ONLY_2,
                                   StorageLevel.MEMORY_AND_DISK_SER_2],
                         ids=["MEMORY_ONLY_2", "DISK_ONLY_2", "MEMORY_AND_DISK_SER_2"])
async def test_a_killed_holder_costs_no_recomputation(tmp_path, level):
    async with aiospark.Context(workers=3) as ctx:
        rdd = marked_rdd(ctx, tmp_path, level)
        assert await rdd.collect() == EXPECTED
        assert computed(tmp_path) == Counter(range(SPLITS))
        # Two distinct workers hold each split, in the driver's view and in their stores.
        assert {split: len(held) for split, held in holders(ctx, rdd).items()} == {
            split: 2 for split in range(SPLITS)}
        await wait_until(lambda: driver_agrees_with_workers(ctx, rdd), 10,
                         "the workers' stores to match the driver's view")
        assert sum((await held_by_workers(ctx, rdd)).values()) == 2 * SPLITS
        if not level.use_memory:
            assert sum((await held_by_workers(ctx, rdd, "memory_bytes")).values()) == 0

        _, lost = await kill_a_holder(ctx, rdd)
        assert lost, "the victim held no split"
        assert {split: len(held) for split, held in holders(ctx, rdd).items()} == {
            split: 1 if split in lost else 2 for split in range(SPLITS)}
        before = computed(tmp_path)
        assert await rdd.collect() == EXPECTED
        assert computed(tmp_path) - before == Counter(), "a lost split was recomputed"


async def test_without_replication_a_killed_holder_costs_a_recomputation(tmp_path):
    """The control case: the count above is one that a lost unreplicated split raises."""
    async with aiospark.Context(workers=3) as ctx:
        rdd = marked_rdd(ctx, tmp_path, StorageLevel.MEMORY_ONLY)
        assert await rdd.collect() == EXPECTED
        assert all(len(held) == 1 for held in holders(ctx, rdd).values())
        _, lost = await kill_a_holder(ctx, rdd)
        before = computed(tmp_path)
        assert await rdd.collect() == EXPECTED
        assert computed(tmp_path) - before == Counter(lost)


async def test_unpersist_drops_every_replica(tmp_path):
    async with aiospark.Context(workers=3) as ctx:
        rdd = marked_rdd(ctx, tmp_path, StorageLevel.MEMORY_AND_DISK_2)
        assert await rdd.count() == len(EXPECTED)
        await wait_until(lambda: driver_agrees_with_workers(ctx, rdd), 10, "replicas to land")
        assert sum((await held_by_workers(ctx, rdd)).values()) == 2 * SPLITS

        async def status_counts_every_copy() -> bool:  # (the master hears it in heartbeats)
            async with ctx._session.get(f"{ctx._scheduler.master_url}/v1/status") as resp:
                cached = (await resp.json())["cached"]
            return [c["splits"] for c in cached if c["rdd_id"] == rdd.id] == [2 * SPLITS]

        await wait_until(status_counts_every_copy, 10, "the master's status to show the copies")
        rdd.unpersist()

        async def emptied() -> bool:
            return not any((await held_by_workers(ctx, rdd)).values())

        await wait_until(emptied, 10, "every worker to drop its copies")
        assert holders(ctx, rdd) == {}
        assert all(h["memory"]["storage"] == 0 for h in await worker_health(ctx))


async def test_fewer_workers_than_copies_keeps_one_per_worker(tmp_path):
    async with aiospark.Context(workers=2) as ctx:
        rdd = marked_rdd(ctx, tmp_path, StorageLevel.DISK_ONLY_3)
        assert await rdd.collect() == EXPECTED
        workers = set(ctx._scheduler.links)
        assert holders(ctx, rdd) == {split: workers for split in range(SPLITS)}
        await wait_until(lambda: driver_agrees_with_workers(ctx, rdd), 10, "replicas to land")
        assert await held_by_workers(ctx, rdd) == {w: SPLITS for w in workers}
        assert await rdd.collect() == EXPECTED
        assert computed(tmp_path) == Counter(range(SPLITS))


async def test_replicas_are_charged_to_the_budget_and_refused_past_it(tmp_path):
    """A peer puts a copy through its block store's budget, as its own blocks: two
    splits of ~640 kB on a 1 MiB budget per worker; each worker can keep one block, so
    a copy (or a split computed where a copy already is) is refused rather than
    over-committed, and the driver knows which copies exist."""

    def record(x):
        return x, f"{x:0150d}"  # ~290 bytes as objects: a 2200-record split takes ~640 kB

    async with aiospark.Context(workers=2, worker_memory="1m") as ctx:
        rdd = ctx.parallelize(range(4400), 2).map(record).persist(StorageLevel.MEMORY_ONLY_2)
        assert await rdd.count() == 4400
        await wait_until(lambda: driver_agrees_with_workers(ctx, rdd), 10,
                         "the workers' stores to match the driver's view")
        health = await worker_health(ctx)
        assert [h["blocks"]["memory"] for h in health] == [1, 1]
        for h in health:
            assert 0 < h["memory"]["storage"] <= h["memory"]["budget"]
        refused = sum(h["block_transfers"]["push_failed"] + h["blocks"]["not_stored"]
                      for h in health)
        assert refused >= 1  # (a copy, or a split whose worker already held a copy)
        assert sorted(await rdd.collect()) == [record(x) for x in range(4400)]


async def test_a_malformed_replica_push_is_refused_with_4xx(ctx):
    link = next(iter(ctx._scheduler.links.values()))
    base = f"{link.info.url}/v1/blocks/{ctx.app_id}"
    good = level_token(StorageLevel.MEMORY_ONLY_2)
    frame = b"".join(bytes(p) for p in encode_frame([1, 2, 3]))
    not_pickle = struct.pack("<QI", 4, 0) + b"abcd"  # a well-formed frame of garbage
    cases = [
        (f"{base}/99999/0", {"level": "1,1"}, frame, 400),         # level malformed
        (f"{base}/99999/0", {"level": "0,0,1,2"}, frame, 400),     # kept nowhere
        (f"{base}/99999/0", {}, frame, 400),                        # no level
        (f"{base}/x/0", {"level": good}, frame, 400),               # rdd id not a number
        (f"{base}/99999/0", {"level": good}, b"\x07" * 40, 400),    # not frames
        (f"{base}/99999/0", {"level": good}, frame[:-3], 400),      # a truncated frame
        (f"{base}/99999/0", {"level": "0,1,0,2"}, not_pickle, 400),  # kept as frames: checked
        (f"{base}/99999/0", {"level": "1,0,0,2"}, frame + not_pickle, 400),
        (f"{link.info.url}/v1/blocks/app-nobody/99999/0", {"level": good}, frame, 404),
    ]
    for url, params, body, status in cases:
        async with ctx._session.put(url, params=params, data=body) as resp:
            assert resp.status == status, (url, params, await resp.text())
    # Nothing was kept, and a well-formed push is taken.
    async with ctx._session.get(f"{base}/99999/0") as resp:
        assert resp.status == 404
    async with ctx._session.put(f"{base}/99999/0", params={"level": good}, data=frame) as resp:
        assert resp.status == 200 and (await resp.json()) == {"stored": True}
    async with ctx._session.get(f"{base}/99999/0") as resp:
        assert resp.status == 200 and await resp.read() == frame
    link.send(encode(Unpersist(99999)))
