"""Sorting, top-k and sampling on the real cluster, against plain Python and PySpark.

The ``PYSPARK_*`` values below were computed once with PySpark 3.5 (``local[2]``)
on the same inputs and partitioning; seeded samples and sort partition sizes
must agree with them exactly.
"""

from __future__ import annotations

import heapq
import itertools
import operator
import random
from collections import Counter

import pytest

import aiospark
from aiospark.hashing import portable_hash
from aiospark.lineage import RangePartitioner
from aiospark.plans.sort import choose_bounds, sample_cap

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

first = operator.itemgetter(0)


def _pairs(rng: random.Random, n: int, make_key) -> list[tuple]:
    return [(make_key(rng), i) for i in range(n)]


def _int_key(rng):
    return rng.randint(-50, 50)


def _str_key(rng):
    return "".join(rng.choice("abcXYZ") for _ in range(rng.randint(0, 3)))


def _tuple_key(rng):
    return (rng.randint(0, 4), rng.choice("xyz"))


async def _check_sorted(rdd, data, *, ascending=True, key_func=None, partitions=None):
    key = (lambda kv: kv[0]) if key_func is None else (lambda kv: key_func(kv[0]))
    parts = await rdd.glom().collect()
    if partitions is not None:
        assert len(parts) == partitions
    flat = [r for p in parts for r in p]
    # Same records; keys in exactly the order sorted() gives.
    assert Counter(flat) == Counter(data)
    expected = sorted(data, key=key, reverse=not ascending)
    assert [key(r) for r in flat] == [key(r) for r in expected]
    # Every partition is sorted, and partitions do not overlap.
    nonempty = [[key(r) for r in p] for p in parts if p]
    for keys in nonempty:
        assert keys == sorted(keys, reverse=not ascending)
    for before, after in itertools.pairwise(nonempty):
        if ascending:
            assert before[-1] <= after[0]
        else:
            assert before[-1] >= after[0]
    return parts


# -- sort_by_key / sort_by ----------------------------------------------------------------


@pytest.mark.parametrize("make_key", [_int_key, _str_key, _tuple_key])
async def test_sort_by_key_matches_sorted(ctx, make_key):
    data = _pairs(random.Random(11), 2000, make_key)
    rdd = ctx.parallelize(data, 5)
    for ascending in (True, False):
        for num_partitions in (None, 1, 3, 8):
            out = rdd.sort_by_key(ascending, num_partitions)
            expected_n = 5 if num_partitions is None else num_partitions
            assert out.get_num_partitions() == expected_n
            assert isinstance(out.partitioner, RangePartitioner)
            assert out.partitioner.num_partitions == expected_n
            assert out.partitioner.ascending is ascending
            await _check_sorted(out, data, ascending=ascending, partitions=expected_n)


async def test_sort_by_key_with_key_func_and_unhashable_values(ctx):
    rng = random.Random(5)
    letters = ["b", "B", "a", "A", "c", "C"]
    data = [(rng.choice(letters) * rng.randint(1, 2), [i]) for i in range(300)]
    rdd = ctx.parallelize(data, 4)
    for ascending in (True, False):
        out = rdd.sort_by_key(ascending, 3, key_func=str.lower)
        parts = await out.glom().collect()
        flat = [r for p in parts for r in p]
        assert sorted(map(repr, flat)) == sorted(map(repr, data))
        keys = [k.lower() for k, _ in flat]
        assert keys == sorted(keys, reverse=not ascending)
        assert out.partitioner.key_func is str.lower


async def test_sort_partition_sizes_match_pyspark(ctx):
    data = [((i * 37) % 101, i) for i in range(300)]
    parts = await _check_sorted(ctx.parallelize(data, 3).sort_by_key(), data)
    assert [len(p) for p in parts] == [86, 102, 112]
    parts = await _check_sorted(
        ctx.parallelize(data, 3).sort_by_key(False, 4), data, ascending=False
    )
    assert [len(p) for p in parts] == [74, 95, 68, 63]
    big = [((i * 7919) % 10007, i) for i in range(5000)]
    parts = await ctx.parallelize(big, 4).sort_by_key(True, 8).glom().collect()
    assert [len(p) for p in parts] == [629, 494, 591, 643, 672, 601, 685, 685]
    words = [(f"w{(i * 131) % 257}", i) for i in range(2000)]
    parts = await _check_sorted(ctx.parallelize(words, 5).sort_by_key(), words)
    assert [len(p) for p in parts] == [410, 358, 437, 382, 413]
    by = ctx.parallelize(list(range(500)), 3).sort_by(lambda x: x % 50, False)
    parts = await by.glom().collect()
    assert [len(p) for p in parts] == [120, 230, 150]


async def test_sort_more_partitions_than_records_and_empty_inputs(ctx):
    data = [(3, "c"), (1, "a"), (2, "b"), (1, "z")]
    rdd = ctx.parallelize(data, 9)  # most input partitions are empty
    parts = await _check_sorted(rdd.sort_by_key(num_partitions=12), data, partitions=12)
    assert sum(1 for p in parts if p) <= 4
    await _check_sorted(rdd.sort_by_key(False), data, ascending=False, partitions=9)
    empty = ctx.parallelize([], 3)
    assert await empty.sort_by_key().collect() == []
    assert await empty.sort_by_key(num_partitions=4).glom().collect() == [[], [], [], []]
    assert await empty.sort_by(lambda x: x).collect() == []
    one = ctx.parallelize([(2, 0), (1, 0)], 1).sort_by_key()
    assert await one.collect() == [(1, 0), (2, 0)]
    assert one.partitioner == RangePartitioner(1, [])


async def test_sort_of_skewed_partitions_stays_sorted(ctx):
    # One input partition of 64 holds nearly everything: it reports a capped
    # sample, so the bounds are weighted quantiles rather than PySpark's.
    def make(i):
        return [(j % 997, j) for j in range(30000)] if i == 0 else [(5, -i)]

    skewed = ctx.parallelize(range(64), 64).flat_map(make)
    data = [r for i in range(64) for r in make(i)]
    parts = await _check_sorted(skewed.sort_by_key(num_partitions=8), data, partitions=8)
    sizes = [len(p) for p in parts]
    assert max(sizes) < 2 * len(data) / 8, sizes  # the bounds still spread the records
    assert sample_cap(8, 64) < 20 * 8  # the cap did bind


async def test_weighted_bounds_from_capped_samples():
    # Partition 0 reported 2 of its 1000 keys (capped), partition 1 all of its 2.
    summaries = [(0, 1000, [(0.001, 50), (0.002, 10)], 0.002), (1, 2, [(0.5, 1), (0.7, 2)], 0.7)]
    assert choose_bounds(summaries, 2) == [10]
    assert choose_bounds([(0, 0, [], 0.0)], 3) == []


async def test_sort_by_matches_sorted_with_duplicates(ctx):
    rng = random.Random(3)
    values = [rng.randint(0, 30) for _ in range(1000)]
    rdd = ctx.parallelize(values, 4)
    assert await rdd.sort_by(lambda x: x).collect() == sorted(values)
    descending = sorted(values, reverse=True)
    assert await rdd.sort_by(lambda x: x, ascending=False).collect() == descending
    assert await rdd.sort_by(lambda x: -x, num_partitions=2).collect() == descending
    lists = [[v, i] for i, v in enumerate(values[:200])]  # unhashable records sort fine
    out = await ctx.parallelize(lists, 3).sort_by(lambda r: r[0]).collect()
    assert [r[0] for r in out] == sorted(r[0] for r in lists)


async def test_sort_errors_are_clear(ctx):
    mixed = ctx.parallelize([(1, "a"), ("x", "b"), (2, "c"), ("y", "d")], 2)
    with pytest.raises(TypeError, match="comparable"):
        await mixed.sort_by_key().collect()
    with pytest.raises(TypeError, match="comparable"):
        await mixed.sort_by_key(num_partitions=1).collect()
    with pytest.raises(ValueError, match="num_partitions"):
        mixed.sort_by_key(num_partitions=0)
    with pytest.raises(TypeError, match="key_func"):
        mixed.sort_by_key(key_func="nope")
    with pytest.raises(TypeError, match="keyfunc"):
        mixed.sort_by(None)


# -- repartition_and_sort_within_partitions ----------------------------------------------------


async def test_repartition_and_sort_within_partitions(ctx):
    rng = random.Random(9)
    data = [(rng.choice([None, 1, 2, 3, 4, 5, 6]), rng.randint(0, 9)) for _ in range(500)]
    rdd = ctx.parallelize(data, 4)
    # None keys cannot be compared with ints: a key_func makes them sortable.
    def key_func(k):
        return (k is not None, k or 0)

    for ascending in (True, False):
        out = rdd.repartition_and_sort_within_partitions(3, ascending=ascending, key_func=key_func)
        parts = await out.glom().collect()
        assert len(parts) == 3
        for p, part in enumerate(parts):
            mine = [r for r in data if portable_hash(r[0]) % 3 == p]
            assert Counter(part) == Counter(mine)
            assert [key_func(k) for k, _ in part] == sorted(
                (key_func(k) for k, _ in mine), reverse=not ascending
            )
    custom = rdd.filter(lambda kv: kv[0] is not None).repartition_and_sort_within_partitions(
        2, lambda k: k % 2
    )
    for p, part in enumerate(await custom.glom().collect()):
        assert all(k % 2 == p for k, _ in part)
        assert [k for k, _ in part] == sorted(k for k, _ in part)
    assert rdd.repartition_and_sort_within_partitions().get_num_partitions() == 4
    with pytest.raises(TypeError, match="hashable"):
        await ctx.parallelize([([1], 2)]).repartition_and_sort_within_partitions(2).collect()


# -- top / take_ordered ------------------------------------------------------------------------


async def test_top_and_take_ordered_match_heapq(ctx):
    rng = random.Random(21)
    values = [rng.randint(-100, 100) for _ in range(3000)]
    rdd = ctx.parallelize(values, 7)
    for num in (1, 5, 50, 3000, 5000):
        assert await rdd.top(num) == heapq.nlargest(num, values)
        assert await rdd.take_ordered(num) == heapq.nsmallest(num, values)
        assert await rdd.top(num, key=abs) == heapq.nlargest(num, values, key=abs)
        assert await rdd.take_ordered(num, key=lambda x: -x) == heapq.nsmallest(
            num, values, key=lambda x: -x
        )
    assert await rdd.top(0) == [] and await rdd.take_ordered(0) == []
    assert await ctx.parallelize([], 3).top(3) == []
    assert await ctx.parallelize([1, 2], 8).take_ordered(5) == [1, 2]
    rows = [[v, str(v)] for v in values[:100]]  # unhashable records are fine
    assert await ctx.parallelize(rows, 3).top(4) == heapq.nlargest(4, rows)


async def test_top_errors_are_clear(ctx):
    with pytest.raises(TypeError, match="comparable"):
        await ctx.parallelize([1, "a", 2, "b"], 1).top(2)
    with pytest.raises(TypeError, match="num must be an int"):
        await ctx.parallelize([1]).take_ordered(1.5)


# -- sample ------------------------------------------------------------------------------------

PYSPARK_SAMPLE_01_123 = [
    5, 7, 9, 13, 16, 39, 48, 53, 55, 71, 80, 82, 84, 86, 103, 105, 119, 129, 145, 152, 178,
    190, 203, 220, 224, 241, 249, 258, 268, 274, 275, 277, 283, 298, 329, 331, 339, 342, 347,
    350, 361, 368, 393, 401, 411, 413, 421, 433, 437, 443, 444, 445, 448, 459, 499, 505, 525,
    528, 535, 561, 569, 571, 584, 591, 596, 597, 607, 613, 620, 636, 638, 641, 643, 653, 663,
    677, 693, 697, 701, 713, 719, 725, 726, 735, 737, 746, 763, 774, 775, 802, 805, 835, 841,
    852, 863, 888, 896, 897, 909, 912, 915, 920, 922, 928, 939, 958, 961, 962, 981, 984, 988,
]  # fmt: skip


async def test_seeded_samples_match_pyspark(ctx):
    r1000 = ctx.parallelize(range(1000), 4)
    assert await r1000.sample(False, 0.1, 123).collect() == PYSPARK_SAMPLE_01_123
    with_rep = await r1000.sample(True, 1.5, 9).collect()
    assert (len(with_rep), sum(with_rep), sum(x * x for x in with_rep)) == (
        1440, 731506, 496483916,
    )
    big_mean = Counter(await ctx.parallelize(range(12), 3).sample(True, 25.0, 5).collect())
    assert [big_mean[i] for i in range(12)] == [25, 27, 27, 22, 20, 23, 27, 24, 34, 30, 26, 24]
    r20 = ctx.parallelize(range(20), 2)
    assert await r20.sample(False, 0.3, 42).collect() == [0, 1, 3, 4, 7, 16, 17, 18, 19]
    assert await r20.sample(True, 0.5, 42).collect() == [5, 8, 9, 11, 12, 12, 18]


async def test_sample_edge_fractions_and_replacement_counts(ctx):
    data = list(range(5000)) * 2  # duplicates
    rdd = ctx.parallelize(data, 6)
    assert await rdd.sample(False, 0.0, 1).collect() == []
    assert await rdd.sample(True, 0.0, 1).collect() == []
    assert await rdd.sample(False, 1.0, 1).collect() == data
    assert await rdd.sample(False, 1).collect() == data
    half = await rdd.sample(False, 0.5, 3).collect()
    assert 4500 < len(half) < 5500 and not Counter(half) - Counter(data)
    doubled = await rdd.sample(True, 2.0, 3).collect()
    assert 19000 < len(doubled) < 21000
    counts = Counter(doubled)
    assert max(counts.values()) > 2 * 2  # some records repeat beyond their two copies
    assert set(counts) <= set(data)
    with pytest.raises(ValueError, match=">= 0"):
        rdd.sample(True, -0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rdd.sample(False, 1.5)
    with pytest.raises(TypeError, match="seed"):
        rdd.sample(False, 0.5, seed=1.5)


async def test_sampling_is_deterministic_and_independent_of_workers(ctx):
    rdd = ctx.parallelize(range(3000), 5)
    expect = await rdd.sample(False, 0.2, 77).collect()
    assert await rdd.sample(False, 0.2, 77).collect() == expect
    assert await rdd.sample(False, 0.2, 78).collect() != expect
    unseeded = rdd.sample(True, 0.3)
    assert await unseeded.collect() == await unseeded.collect()  # seed picked once
    splits = [await s.collect() for s in rdd.random_split([1, 2], 5)]
    taken = await rdd.take_sample(False, 50, 5)
    sorted_keys = await rdd.map(lambda x: (x % 97, x)).sort_by_key().glom().collect()
    async with aiospark.Context(workers=1) as other:
        again = other.parallelize(range(3000), 5)
        assert await again.sample(False, 0.2, 77).collect() == expect
        assert [await s.collect() for s in again.random_split([1, 2], 5)] == splits
        assert await again.take_sample(False, 50, 5) == taken
        resorted = await again.map(lambda x: (x % 97, x)).sort_by_key().glom().collect()
        assert [len(p) for p in resorted] == [len(p) for p in sorted_keys]


# -- random_split ------------------------------------------------------------------------------


async def test_random_split_is_disjoint_complete_and_matches_pyspark(ctx):
    a, b = ctx.parallelize(range(10), 2).random_split([0.6, 0.4], 17)
    assert (await a.collect(), await b.collect()) == ([1, 5, 6, 7], [0, 2, 3, 4, 8, 9])
    parts = ctx.parallelize(range(300), 3).random_split([1, 2, 3], 11)
    got = [await p.collect() for p in parts]
    assert [(len(x), sum(x)) for x in got] == [(70, 10428), (97, 14935), (133, 19487)]
    data = list(range(4000))
    rdd = ctx.parallelize(data, 7)
    for weights in ([0.1] * 10, [2, 3, 5], [1], [0, 1, 0]):
        splits = [await s.collect() for s in rdd.random_split(weights, seed=8)]
        assert sorted(x for s in splits for x in s) == data  # complete and disjoint
        assert len(splits) == len(weights)
        for w, s in zip(weights, splits, strict=True):
            share = w / sum(weights)
            assert abs(len(s) - share * len(data)) < 0.05 * len(data) + 1
    unseeded = rdd.random_split([1, 1])
    assert sorted(await unseeded[0].collect() + await unseeded[1].collect()) == data
    for bad in ([], [1, -1], [0, 0]):
        with pytest.raises(ValueError, match="weights"):
            rdd.random_split(bad)


# -- sample_by_key -----------------------------------------------------------------------------


async def test_sample_by_key(ctx):
    pairs = ctx.parallelize([("a", i) for i in range(6)] + [("b", i) for i in range(6)], 2)
    assert await pairs.sample_by_key(False, {"a": 0.5, "b": 0.0}, 7).collect() == [
        ("a", 0), ("a", 1), ("a", 2), ("a", 4),
    ]
    kv = ctx.parallelize([(i % 3, i) for i in range(60)], 3)
    got = await kv.sample_by_key(False, {0: 0.5, 1: 1.0, 2: 0.25}, 4).collect()
    assert got == [
        (1, 1), (0, 3), (1, 4), (1, 7), (1, 10), (0, 12), (1, 13), (2, 14), (0, 15), (1, 16),
        (1, 19), (0, 21), (1, 22), (2, 23), (1, 25), (2, 26), (1, 28), (0, 30), (1, 31), (0, 33),
        (1, 34), (2, 35), (1, 37), (2, 38), (0, 39), (1, 40), (1, 43), (1, 46), (1, 49), (1, 52),
        (0, 54), (1, 55), (0, 57), (1, 58), (2, 59),
    ]  # fmt: skip
    with_rep = await kv.sample_by_key(True, {0: 0.5, 1: 2.0, 2: 0.0}, 4).collect()
    assert len(with_rep) == 55 and {k for k, _ in with_rep} <= {0, 1}
    assert Counter(with_rep)[(1, 55)] == 7
    # Only keys with a positive fraction come back; None keys work like any other.
    data = [(k, i) for i, k in enumerate([None, "x", "y"] * 200)]
    out = await ctx.parallelize(data, 4).sample_by_key(False, {None: 0.5, "x": 1.0, "y": 0}, 2)\
        .collect()
    assert {k for k, _ in out} == {None, "x"}
    assert sorted(r for r in out if r[0] == "x") == [r for r in data if r[0] == "x"]
    missing = ctx.parallelize([("a", 1), ("zzz", 2)], 1).sample_by_key(False, {"a": 0.5}, 1)
    with pytest.raises(ValueError, match="zzz"):
        await missing.collect()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pairs.sample_by_key(False, {"a": 2.0})
    with pytest.raises(TypeError, match="dict"):
        pairs.sample_by_key(False, [("a", 0.5)])


# -- take_sample -------------------------------------------------------------------------------


async def test_take_sample(ctx):
    r10 = ctx.parallelize(range(10), 2)
    assert await r10.take_sample(False, 4, 3) == [1, 5, 6, 0]
    assert await r10.take_sample(True, 20, 1) == [
        0, 6, 3, 4, 3, 1, 3, 7, 3, 5, 3, 0, 0, 9, 6, 5, 7, 9, 4, 7,
    ]  # fmt: skip
    r100 = ctx.parallelize(range(100), 4)
    assert await r100.take_sample(False, 10, 0) == [86, 89, 47, 66, 38, 1, 31, 71, 21, 9]
    assert await r100.take_sample(True, 30, 123) == [
        66, 91, 50, 91, 31, 41, 29, 33, 54, 21, 75, 16, 18, 85, 27, 34, 87, 13, 50, 7,
        70, 23, 54, 51, 45, 22, 30, 84, 84, 22,
    ]  # fmt: skip
    # Without replacement: distinct records (by index), exactly num, or all of them.
    records = [(i % 7, i) for i in range(1000)]  # duplicate keys, unique indices
    rdd = ctx.parallelize(records, 5)
    for num in (1, 17, 999, 1000):
        got = await rdd.take_sample(False, num)
        assert len(got) == num and len({i for _, i in got}) == num
        assert set(got) <= set(records)
    everything = await rdd.take_sample(False, 5000, 2)
    assert sorted(everything, key=operator.itemgetter(1)) == records  # all of them...
    assert everything != records  # ...shuffled
    with_rep = await rdd.take_sample(True, 3000, 2)
    assert len(with_rep) == 3000 and set(with_rep) <= set(records)
    assert await rdd.take_sample(False, 0) == []
    assert await ctx.parallelize([], 2).take_sample(True, 5) == []
    with pytest.raises(ValueError, match=">= 0"):
        await rdd.take_sample(False, -1)
    with pytest.raises(TypeError, match="int"):
        await rdd.take_sample(False, 2.5)


async def test_the_sample_of_a_map_calls_its_function_on_the_kept_records_only(ctx):
    # sort_by_key samples its input before the shuffle; for map(f)'s records the draws
    # go to f's input, and f runs on the kept ones only (plans.sort.sample_keys).
    calls = ctx.accumulator(0)

    def keyed(x: int) -> tuple[int, int]:
        calls.add(1)
        return ((x * 7919) % 1000, x)

    n, parts = 20_000, 4
    got = await ctx.parallelize(range(n), parts).map(keyed).sort_by_key(num_partitions=3).collect()
    expected = sorted(map(lambda x: ((x * 7919) % 1000, x), range(n)), key=operator.itemgetter(0))
    assert got == expected
    cap = sample_cap(3, parts)
    assert n <= calls.value <= n + cap * parts  # not 2 n: once for the shuffle, plus the sample
