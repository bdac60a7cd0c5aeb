"""RDD transformations and actions on the real embedded cluster, checked against plain Python."""

from __future__ import annotations

import asyncio
import operator
import os
import random
from collections import Counter, defaultdict

import pytest

from aiospark import portable_hash

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

RNG = random.Random(1234)
WORDS = ["alpha", "béta", "γάμμα", "δ", "", "naïve", "日本語", "emoji🙂", "a b"] + [
    f"w{i}" for i in range(200)
]
PAIRS = [(RNG.choice(WORDS), RNG.randint(-5, 50)) for _ in range(5000)]


async def test_parallelize_slices_like_pyspark(ctx):
    # Examples from PySpark's own documentation.
    assert await ctx.parallelize([0, 2, 3, 4, 6], 5).glom().collect() == [[0], [2], [3], [4], [6]]
    assert await ctx.parallelize(range(0, 6, 2), 5).glom().collect() == [[], [0], [], [2], [4]]
    assert await ctx.parallelize(range(5), 2).glom().collect() == [[0, 1], [2, 3, 4]]
    assert await ctx.parallelize([], 3).glom().collect() == [[], [], []]
    assert ctx.parallelize(range(100)).get_num_partitions() == ctx.default_parallelism


async def test_narrow_transformations_match_python(ctx):
    data = list(range(-50, 950))
    rdd = ctx.parallelize(data, 7)
    assert await rdd.map(lambda x: x * 3).collect() == [x * 3 for x in data]
    assert await rdd.filter(lambda x: x % 7 == 0).collect() == [x for x in data if x % 7 == 0]
    assert await rdd.flat_map(lambda x: [x] * (x % 3)).collect() == [
        y for x in data for y in [x] * (x % 3)
    ]
    sums = await rdd.map_partitions(lambda it: [sum(it)]).collect()
    assert sum(sums) == sum(data) and len(sums) == 7
    indexed = await rdd.map_partitions_with_index(lambda i, it: [(i, len(list(it)))]).collect()
    assert [i for i, _ in indexed] == list(range(7))
    assert sum(n for _, n in indexed) == len(data)
    assert await rdd.key_by(lambda x: x % 5).collect() == [(x % 5, x) for x in data]
    pairs = ctx.parallelize(PAIRS, 5)
    assert await pairs.keys().collect() == [k for k, _ in PAIRS]
    assert await pairs.values().collect() == [v for _, v in PAIRS]
    assert await pairs.map_values(lambda v: v * 2).collect() == [(k, v * 2) for k, v in PAIRS]
    assert await pairs.flat_map_values(lambda v: range(v % 3)).collect() == [
        (k, x) for k, v in PAIRS for x in range(v % 3)
    ]


async def test_actions_match_python(ctx):
    data = [RNG.randint(-1000, 1000) for _ in range(3001)]
    rdd = ctx.parallelize(data, 6)
    assert await rdd.count() == len(data)
    assert await rdd.sum() == sum(data)
    assert await rdd.reduce(operator.add) == sum(data)
    assert await rdd.reduce(max) == max(data)
    assert await rdd.fold(0, operator.add) == sum(data)
    assert await rdd.take(10) == data[:10]
    assert await rdd.take(2000) == data[:2000]
    assert await rdd.take(10**6) == data
    assert await rdd.first() == data[0]
    assert [x async for x in rdd] == data


async def test_empty_rdds_and_partitions(ctx):
    empty = ctx.parallelize([], 4)
    assert await empty.collect() == []
    assert await empty.count() == 0
    assert await empty.sum() == 0
    assert await empty.take(5) == []
    assert await empty.fold(0, operator.add) == 0
    with pytest.raises(ValueError, match="empty"):
        await empty.reduce(operator.add)
    with pytest.raises(ValueError, match="empty"):
        await empty.first()
    # More partitions than records: most are empty.
    sparse = ctx.parallelize([("k", 1), ("j", 2)], 9)
    assert sorted(await sparse.reduce_by_key(operator.add).collect()) == [("j", 2), ("k", 1)]
    assert await sparse.filter(lambda kv: kv[1] > 1).take(3) == [("j", 2)]


async def test_reduce_by_key_matches_counter(ctx):
    expected: Counter = Counter()
    for k, v in PAIRS:
        expected[k] += v
    for partitions in (1, 3, 8):
        result = await ctx.parallelize(PAIRS, 5).reduce_by_key(operator.add, partitions).collect()
        keys = [k for k, _ in result]
        assert len(keys) == len(set(keys)), "a key reached two reducers"
        assert dict(result) == dict(expected)


async def test_group_by_key_and_none_keys(ctx):
    pairs = [*PAIRS, (None, 1), (None, 2), ((1, "t"), 3)]
    expected = defaultdict(list)
    for k, v in pairs:
        expected[k].append(v)
    grouped = await ctx.parallelize(pairs, 4).group_by_key(3).collect()
    assert {k: sorted(v) for k, v in grouped} == {k: sorted(v) for k, v in expected.items()}


async def test_reduce_by_key_output_is_partitioned_by_portable_hash(ctx):
    n = 4
    rdd = ctx.parallelize(PAIRS, 6).reduce_by_key(operator.add, n)
    for index, part in enumerate(await rdd.glom().collect()):
        assert all(portable_hash(k) % n == index for k, _ in part)
    # map_values keeps the partitioner, so a second reduce does not shuffle again.
    again = rdd.map_values(lambda v: v + 1).reduce_by_key(operator.add, n)
    assert again.deps[0].rdd.partitioner == rdd.partitioner
    assert again.plan.kind == "MapPartitionsRDD"
    assert sorted(await again.collect()) == sorted((k, v + 1) for k, v in await rdd.collect())


async def test_partition_by(ctx):
    pairs = [(i, str(i)) for i in range(100)]
    rdd = ctx.parallelize(pairs, 3).partition_by(4)
    parts = await rdd.glom().collect()
    assert len(parts) == 4
    for index, part in enumerate(parts):
        assert all(k % 4 == index for k, _ in part)
    assert sorted(x for p in parts for x in p) == pairs
    assert rdd.partition_by(4) is rdd


async def test_unhashable_keys_fail_clearly(ctx):
    with pytest.raises(TypeError, match="hashable"):
        await ctx.parallelize([([1], 1), ([2], 2)], 2).reduce_by_key(operator.add).collect()


async def test_chained_shuffles_and_second_action_reuses_map_output(ctx):
    words = [RNG.choice(WORDS) for _ in range(4000)]
    counts = ctx.parallelize(words, 4).map(lambda w: (w, 1)).reduce_by_key(operator.add)
    by_count = counts.map(lambda kv: (kv[1], kv[0])).group_by_key(2)
    expected = defaultdict(list)
    for w, c in Counter(words).items():
        expected[c].append(w)
    got = {c: sorted(ws) for c, ws in await by_count.collect()}
    assert got == {c: sorted(ws) for c, ws in expected.items()}
    assert await counts.count() == len(set(words))


async def test_concurrent_jobs(ctx):
    results = await asyncio.gather(
        ctx.range(10**5).sum(),
        ctx.parallelize([1, 2, 3], 2).count(),
        ctx.parallelize(PAIRS, 4).reduce_by_key(operator.add).count(),
        *[ctx.parallelize(range(i), 2).collect() for i in range(10)],
    )
    assert results[0] == sum(range(10**5))
    assert results[1] == 3
    assert results[2] == len({k for k, _ in PAIRS})
    assert results[3:] == [list(range(i)) for i in range(10)]


async def test_range(ctx):
    assert await ctx.range(10**6).sum() == sum(range(10**6))
    assert await ctx.range(5, 50, 7, num_slices=3).collect() == list(range(5, 50, 7))
    assert await ctx.range(0).count() == 0


async def test_cache_computes_each_split_once(ctx, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()

    def tag(x):
        (marks / f"{x}-{os.getpid()}-{os.urandom(4).hex()}").touch()
        return x * 2

    rdd = ctx.parallelize(range(40), 4).map(tag).cache()
    assert await rdd.sum() == sum(x * 2 for x in range(40))
    assert await rdd.count() == 40
    assert sorted(await rdd.collect()) == [x * 2 for x in range(40)]
    assert len(list(marks.iterdir())) == 40, "cached splits were recomputed"
    rdd.unpersist()
    assert await rdd.count() == 40
    assert len(list(marks.iterdir())) == 80


async def test_foreach_and_foreach_partition_run_on_workers(ctx, tmp_path):
    def touch(x):
        (tmp_path / f"r{x}").write_text(str(os.getpid()))

    await ctx.parallelize(range(30), 3).foreach(touch)
    assert sorted(int(p.name[1:]) for p in tmp_path.iterdir()) == list(range(30))
    assert {int(p.read_text()) for p in tmp_path.iterdir()}.isdisjoint({os.getpid()})

    def write_partition(it):
        items = list(it)
        (tmp_path / f"part-{items[0] if items else 'none'}").write_text(str(len(items)))

    await ctx.parallelize(range(30), 3).foreach_partition(write_partition)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("part-")) == [
        "part-0", "part-10", "part-20"
    ]


async def test_async_for_is_lazy_and_ordered(ctx):
    def boom(i, it):
        if i >= 20:
            raise RuntimeError("this partition must never be computed")
        return it

    rdd = ctx.parallelize(range(1000), 100).map_partitions_with_index(boom)
    seen = []
    async for x in rdd:
        seen.append(x)
        if len(seen) == 25:
            break
    assert seen == list(range(25))
    # The stream is in order over every partition.
    assert [x async for x in ctx.parallelize(range(500), 13)] == list(range(500))


async def test_glom_and_get_num_partitions(ctx):
    rdd = ctx.parallelize(range(10), 4)
    assert rdd.get_num_partitions() == 4
    assert await rdd.glom().collect() == [[0, 1], [2, 3, 4], [5, 6], [7, 8, 9]]
    assert ctx.parallelize(PAIRS, 3).reduce_by_key(operator.add, 5).get_num_partitions() == 5


async def test_large_results_travel_over_http_and_numpy_arrays_stay_arrays(ctx):
    import numpy as np

    from aiospark.worker.executor_server import INLINE_RESULT_LIMIT

    per_partition = 80_000
    assert per_partition * 122 > INLINE_RESULT_LIMIT, "the test must exceed the inline limit"
    fetched = []
    original = ctx._scheduler._fetch_result

    async def counting_fetch(url):
        fetched.append(url)
        return await original(url)

    ctx._scheduler._fetch_result = counting_fetch
    try:
        big = ctx.parallelize(range(2), 2).flat_map(
            lambda i: (f"{i}-{j:0120d}" for j in range(per_partition))
        )
        rows = await big.collect()
    finally:
        del ctx._scheduler._fetch_result
    assert len(rows) == 2 * per_partition
    assert rows[0] == "0-" + "0" * 120 and rows[-1] == f"1-{per_partition - 1:0120d}"
    assert len(fetched) == 2 and all("/v1/results/" in url for url in fetched)
    arrays = await ctx.parallelize(range(4), 2).map(lambda i: np.full((1000, 10), i)).collect()
    assert [a.shape for a in arrays] == [(1000, 10)] * 4
    assert [int(a[0, 0]) for a in arrays] == [0, 1, 2, 3]
    arrays[0][0, 0] = 99  # arrays arrive writable
    total = await ctx.parallelize(range(4), 2).map(lambda i: np.arange(10**5) * i).map(
        lambda a: float(a.sum())
    ).sum()
    assert total == float(sum(np.arange(10**5).sum() * i for i in range(4)))


async def test_checkpoint_cuts_lineage_and_reads_back(ctx, tmp_path):
    ctx.set_checkpoint_dir(str(tmp_path / "ckpt"))
    base = ctx.parallelize([("a", 1), ("b", 2), ("a", 3)] * 50, 3)
    summed = base.reduce_by_key(operator.add).map_values(lambda v: v * 10)
    summed.checkpoint()
    assert not summed.is_checkpointed()
    first = sorted(await summed.collect())
    assert first == [("a", 2000), ("b", 1000)]
    assert summed.is_checkpointed() and summed.deps == []
    assert "ShuffledRDD" not in summed.to_debug_string()
    parts = sorted(os.listdir(summed.get_checkpoint_file()))
    assert parts == [f"part-{i:05d}" for i in range(3)]
    # Later jobs read the checkpoint, and can build on it.
    assert sorted(await summed.collect()) == first
    assert await summed.map(lambda kv: kv[1]).sum() == 3000
    fresh = type(ctx)(workers=1).parallelize([1], 1)  # a context with no checkpoint dir
    with pytest.raises(RuntimeError, match="checkpoint directory"):
        fresh.checkpoint()


async def test_every_action_checkpoints_async_for_and_save_included(ctx, tmp_path):
    """One job path: streaming and output actions write checkpoints as collect does."""
    ctx.set_checkpoint_dir(str(tmp_path / "ckpt"))
    streamed = ctx.parallelize(range(6), 3).map(lambda x: x * 2)
    streamed.checkpoint()
    assert [x async for x in streamed] == [0, 2, 4, 6, 8, 10]
    assert streamed.is_checkpointed() and streamed.deps == []
    assert sorted(os.listdir(streamed.get_checkpoint_file())) == [
        f"part-{i:05d}" for i in range(3)
    ]
    assert [x async for x in streamed.map(lambda x: x + 1)] == [1, 3, 5, 7, 9, 11]

    # Leaving the loop early computed only part of the RDD: nothing is written.
    partial = ctx.parallelize(range(6), 3)
    partial.checkpoint()
    async for _ in partial:
        break
    assert not partial.is_checkpointed()

    saved = ctx.parallelize(["x", "y"], 2).map(str.upper)
    saved.checkpoint()
    await saved.save_as_text_file(str(tmp_path / "out"))
    assert saved.is_checkpointed()
    assert await saved.collect() == ["X", "Y"]


async def test_names_storage_levels_and_debug_string(ctx):
    from aiospark import StorageLevel

    rdd = ctx.parallelize(range(10), 2).set_name("numbers").map(lambda x: (x % 2, x))
    reduced = rdd.reduce_by_key(operator.add, 3).persist(StorageLevel.MEMORY_AND_DISK)
    text = reduced.to_debug_string()
    lines = text.splitlines()
    assert lines[0].startswith("(3) ShuffledRDD[") and "use_disk=True" in lines[0]
    assert lines[1].startswith(" +-(2) MapPartitionsRDD[")
    assert lines[2].startswith("    |  ParallelCollectionRDD[") and "'numbers'" in lines[2]
    assert reduced.get_storage_level() == StorageLevel.MEMORY_AND_DISK
    assert reduced.name() is None
    assert sorted(await reduced.collect()) == [(0, 20), (1, 25)]


async def test_unhashable_keys_fail_clearly_with_one_reducer(ctx):
    with pytest.raises(TypeError, match=r"keys must be hashable: got a list \(\[1\]\)"):
        await ctx.parallelize([([1], 1)], 1).group_by_key(1).collect()
    with pytest.raises(ValueError, match="num_partitions"):
        ctx.parallelize([(1, 1)]).reduce_by_key(operator.add, True)


async def test_an_abandoned_stream_does_not_stall_later_jobs(ctx):
    stream = ctx.parallelize(range(1000), 100).map(lambda x: x)
    async for x in stream:
        if x == 25:
            break  # the stream's prefetched jobs are cancelled when it is finalized
    async with asyncio.timeout(20):
        for n in (13, 7):
            assert [x async for x in ctx.parallelize(range(500), n)] == list(range(500))
