"""Shuffles several times larger than the workers' memory budgets spill and still come out exact."""

from __future__ import annotations

import collections
import operator
import random

import pytest
import pytest_asyncio

import aiospark
from tests.conftest import worker_health

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

#: Each worker may hold this much; the data below take several times more in memory.
BUDGET = "4m"
N = 300_000


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def small_ctx():
    async with aiospark.Context(workers=2, worker_memory=BUDGET) as ctx:
        yield ctx


@pytest.fixture(scope="module")
def pairs():
    rng = random.Random(5)
    return [(rng.randrange(N // 4), rng.randrange(10**9)) for _ in range(N)]


async def spilled_bytes(ctx) -> int:
    return sum(h["spilled"]["bytes"] for h in await worker_health(ctx))


async def test_the_data_do_not_fit_in_the_budget(small_ctx, pairs):
    from aiospark.sizeof import records_size

    assert records_size(pairs) > 2 * 2 * aiospark.memory.parse_size(BUDGET)


async def test_group_by_key_spills_and_is_exact(small_ctx, pairs):
    before = await spilled_bytes(small_ctx)
    got = await small_ctx.parallelize(pairs, 4).group_by_key(3).map_values(sorted).collect()
    expected = collections.defaultdict(list)
    for k, v in pairs:
        expected[k].append(v)
    assert dict(got) == {k: sorted(v) for k, v in expected.items()}
    assert len(got) == len(expected)
    assert await spilled_bytes(small_ctx) > before


async def test_sort_by_key_spills_and_is_exact(small_ctx, pairs):
    texts = [(k, str(v)) for k, v in pairs]  # objects: no compact numeric columns
    before = await spilled_bytes(small_ctx)
    got = await small_ctx.parallelize(texts, 4).sort_by_key(num_partitions=3).collect()
    assert got == sorted(texts, key=operator.itemgetter(0))
    assert await spilled_bytes(small_ctx) > before


@pytest.mark.parametrize("ascending", [True, False])
async def test_numeric_sort_past_the_budget_spills_and_is_exact(small_ctx, ascending):
    # 16 bytes a pair as numeric columns: each reducer's ~5 MB is past the 4 MB budget.
    rng = random.Random(9)
    numbers = [(rng.randrange(1000), rng.random()) for _ in range(700_000)]
    before = await spilled_bytes(small_ctx)
    got = await small_ctx.parallelize(numbers, 4).sort_by_key(ascending, 2).collect()
    assert got == sorted(numbers, key=operator.itemgetter(0), reverse=not ascending)
    assert await spilled_bytes(small_ctx) > before


async def test_descending_sort_with_key_function(small_ctx, pairs):
    got = await small_ctx.parallelize(pairs, 4).sort_by_key(
        ascending=False, num_partitions=2, key_func=lambda k: -k
    ).keys().collect()
    assert got == sorted((k for k, _ in pairs), key=lambda k: -k, reverse=True)


async def test_join_spills_and_is_exact(small_ctx, pairs):
    other = [(k, str(k)) for k in range(0, N // 4, 3)]
    before = await spilled_bytes(small_ctx)
    got = await small_ctx.parallelize(pairs, 4).join(small_ctx.parallelize(other, 2), 3).collect()
    names = dict(other)
    expected = [(k, (v, names[k])) for k, v in pairs if k in names]
    assert sorted(got) == sorted(expected)
    assert await spilled_bytes(small_ctx) > before


async def test_left_outer_join_and_cogroup(small_ctx, pairs):
    left = small_ctx.parallelize(pairs, 4)
    right = small_ctx.parallelize([(k, -k) for k in range(0, N // 4, 7)], 2)
    got = await left.left_outer_join(right).collect()
    negs = {k: -k for k in range(0, N // 4, 7)}
    assert sorted(got, key=repr) == sorted(
        ((k, (v, negs.get(k))) for k, v in pairs), key=repr
    )
    grouped = await left.cogroup(right).map_values(
        lambda sides: (len(sides[0]), list(sides[1]))
    ).collect()
    counts = collections.Counter(k for k, _ in pairs)
    assert dict(grouped) == {
        k: (counts.get(k, 0), [negs[k]] if k in negs else [])
        for k in set(counts) | set(negs)
    }


async def test_distinct_and_reduce_by_key_spill_and_are_exact(small_ctx, pairs):
    values = [v % 150_000 for _, v in pairs]
    before = await spilled_bytes(small_ctx)
    assert sorted(await small_ctx.parallelize(values, 4).distinct(3).collect()) == sorted(
        set(values)
    )
    sums = await small_ctx.parallelize(pairs, 4).reduce_by_key(operator.add, 3).collect()
    expected: dict = collections.defaultdict(int)
    for k, v in pairs:
        expected[k] += v
    assert dict(sums) == expected
    assert await spilled_bytes(small_ctx) > before


async def test_subtract_and_intersection(small_ctx, pairs):
    keys = [k for k, _ in pairs]
    left = small_ctx.parallelize(keys, 4)
    right = small_ctx.parallelize(range(0, N // 4, 2), 2)
    assert sorted(await left.subtract(right).collect()) == sorted(k for k in keys if k % 2)
    assert sorted(await left.intersection(right).collect()) == sorted(
        {k for k in keys if k % 2 == 0}
    )
    assert sorted(await small_ctx.parallelize(pairs, 4).subtract_by_key(
        right.map(lambda k: (k, None))
    ).collect()) == sorted(kv for kv in pairs if kv[0] % 2)


async def test_memory_is_given_back_after_the_jobs(small_ctx):
    healths = await worker_health(small_ctx)
    assert len(healths) == 2 and all(h["memory"]["execution"] == 0 for h in healths)


@pytest.mark.parametrize("codec", ["zlib", "lz4"])
async def test_compressed_shuffle_is_exact_and_really_compressed(codec):
    import glob
    import os
    import struct

    words = [f"word{i % 5000}" for i in range(100_000)]
    async with aiospark.Context(workers=2, shuffle_compression=codec) as ctx:
        counts = await ctx.parallelize(words, 4).map(lambda w: (w, 1)).group_by_key(2) \
            .map_values(len).collect()
        assert dict(counts) == collections.Counter(words)
        data_files = glob.glob(os.path.join(ctx._cluster.root, "shuffle", "*", "*", "*.data"))
        assert data_files
        with open(data_files[0], "rb") as f:
            _, count = struct.unpack("<QI", f.read(12))
        assert count >> 28 == aiospark.protocol.frames.CODECS[codec]


async def test_bad_compression_setting_is_refused():
    with pytest.raises(ValueError, match="shuffle_compression must be one of"):
        aiospark.Context(shuffle_compression="snappy")
