"""Numeric and aggregate actions on the real cluster, against plain Python."""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import os
import pickle
import random
import statistics
from fractions import Fraction

import pytest

from aiospark.hyperloglog import HyperLogLog
from aiospark.ops.stats import _tree_levels
from aiospark.statcounter import StatCounter
from tests.conftest import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _datasets() -> dict[str, list]:
    rng = random.Random(11)
    return {
        "floats": [rng.gauss(100.0, 15.0) for _ in range(20_000)],
        "ints": [rng.randint(-1000, 1000) for _ in range(9_000)],  # many duplicates
        "one": [42],
        "tiny": [3.5, -1.25],
        # chunks mixing exact Python numbers with plain ones take the Python path
        "mixed": [2**70, Fraction(1, 3), True, *range(5000), 0.5],
    }


# -- stats, mean, variance ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(_datasets()))
@pytest.mark.parametrize("num_slices", [1, 3, 64])
async def test_stats_match_statistics_module(ctx, name, num_slices):
    data = _datasets()[name]
    rdd = ctx.parallelize(data, num_slices)
    s = await rdd.stats()
    floats = [float(x) for x in data]
    assert s.count() == len(data)
    assert _close(s.mean(), statistics.fmean(floats))
    assert _close(s.sum(), math.fsum(floats))
    assert s.max() == max(floats) and s.min() == min(floats)
    assert _close(s.variance(), statistics.pvariance(floats))
    assert _close(s.stdev(), statistics.pstdev(floats))
    if len(data) > 1:
        assert _close(s.sample_variance(), statistics.variance(floats))
        assert _close(s.sample_stdev(), statistics.stdev(floats))
    else:
        assert math.isnan(s.sample_variance()) and math.isnan(s.sample_stdev())
    # the single-number actions agree with stats()
    assert _close(await rdd.mean(), s.mean())
    assert _close(await rdd.variance(), s.variance())
    assert _close(await rdd.stdev(), s.stdev())
    assert _close(await rdd.sample_variance(), s.sample_variance()) or len(data) == 1
    assert _close(await rdd.sample_stdev(), s.sample_stdev()) or len(data) == 1


async def test_stats_with_empty_partitions_and_empty_rdds(ctx):
    rdd = ctx.parallelize([4.0, 8.0, 15.0], 10)  # 7 empty partitions
    s = await rdd.stats()
    assert (s.count(), s.mean(), s.max(), s.min()) == (3, 9.0, 15.0, 4.0)
    assert _close(s.variance(), statistics.pvariance([4.0, 8.0, 15.0]))

    for empty in (ctx.parallelize([], 4), ctx.parallelize([1, 2], 3).filter(lambda x: x > 5)):
        s = await empty.stats()
        assert s.count() == 0 and s.sum() == 0.0
        assert (s.max(), s.min()) == (-math.inf, math.inf)
        for value in (
            await empty.mean(),
            await empty.variance(),
            await empty.stdev(),
            await empty.sample_variance(),
            await empty.sample_stdev(),
        ):
            assert math.isnan(value)
        with pytest.raises(ValueError, match="empty"):
            await empty.max()
        with pytest.raises(ValueError, match="empty"):
            await empty.min()


async def test_stats_nan_and_infinities_propagate(ctx):
    s = await ctx.parallelize([1.0, float("nan"), 3.0], 2).stats()
    assert s.count() == 3
    assert math.isnan(s.mean()) and math.isnan(s.max()) and math.isnan(s.min())
    s = await ctx.parallelize([1.0, math.inf], 2).stats()
    assert s.max() == math.inf and s.mean() == math.inf


async def test_stats_of_non_numbers_is_a_type_error(ctx):
    with pytest.raises(TypeError):
        await ctx.parallelize(["a", "b"]).stats()
    with pytest.raises(TypeError):
        await ctx.parallelize([1.0, None, 2.0]).mean()


async def test_stat_counter_merging_copy_and_pickling():
    data = [random.Random(3).uniform(-5, 5) for _ in range(10_001)]
    whole = StatCounter(data)
    parts = StatCounter()
    for i in range(0, len(data), 777):
        parts.merge_stats(StatCounter(data[i : i + 777]))
    one_by_one = StatCounter()
    for x in data:
        one_by_one.merge(x)
    for s in (parts, one_by_one):
        assert s.count() == whole.count()
        assert _close(s.mean(), whole.mean()) and _close(s.variance(), whole.variance())
        assert (s.min(), s.max()) == (whole.min(), whole.max())
    doubled = StatCounter([1.0, 2.0, 3.0, 4.0])
    doubled.merge_stats(doubled)
    assert (doubled.count(), doubled.mean(), doubled.variance()) == (8, 2.5, 1.25)
    copy = whole.copy().merge(1e9)
    assert copy.count() == whole.count() + 1 and whole.max() < 1e9
    restored = pickle.loads(pickle.dumps(whole))
    assert restored.as_dict() == whole.as_dict()
    assert repr(StatCounter([1, 2, 3])) == (
        "(count: 3, mean: 2.0, stdev: 0.816496580927726, max: 3.0, min: 1.0)"
    )
    assert StatCounter([1, 3]).as_dict(sample=True)["variance"] == 2.0
    with pytest.raises(TypeError, match="StatCounter"):
        StatCounter().merge_stats([1, 2])


# -- max / min -------------------------------------------------------------------------------


async def test_max_min_like_builtins(ctx):
    rng = random.Random(5)
    ints = [rng.randint(-50, 50) for _ in range(3000)]
    rdd = ctx.parallelize(ints, 7)
    assert await rdd.max() == max(ints) and await rdd.min() == min(ints)
    words = ["pear", "apple", "fig", "grape", "kiwi", "plum", "melon"]
    rdd = ctx.parallelize(words, 12)  # empty partitions
    # the first of equal extremes wins, as with max()/min() and PySpark's reduce
    assert await rdd.max(key=len) == max(words, key=len) == "apple"
    assert await rdd.min(key=len) == min(words, key=len) == "fig"
    assert await rdd.max() == "plum"
    # unhashable records are fine
    lists = [[3, 1], [2], [3, 0], []]
    assert await ctx.parallelize(lists, 3).max() == [3, 1]
    assert await ctx.parallelize(lists, 3).min(key=sum) == []
    with pytest.raises(TypeError):
        await ctx.parallelize([1, "a"], 1).max()


# -- aggregate, tree_aggregate, tree_reduce -----------------------------------------------------


def _seq(acc: list, x: int) -> list:
    acc.append(x)  # mutates the zero value's copy in place
    return acc


def _comb(a: list, b: list) -> list:
    a.extend(b)
    return a


async def test_aggregate_with_a_mutable_zero_value(ctx):
    data = [random.Random(9).randint(0, 9) for _ in range(500)]
    zero: list = []
    for slices in (1, 5, 120):
        rdd = ctx.parallelize(data, slices)
        assert sorted(await rdd.aggregate(zero, _seq, _comb)) == sorted(data)
        assert sorted(await rdd.tree_aggregate(zero, _seq, _comb, depth=2)) == sorted(data)
        assert sorted(await rdd.tree_aggregate(zero, _seq, _comb, depth=3)) == sorted(data)
    assert zero == []
    assert await ctx.parallelize([], 3).aggregate([], _seq, _comb) == []
    assert await ctx.parallelize([], 3).tree_aggregate(0, operator.add, operator.add) == 0
    assert await ctx.empty_rdd().tree_aggregate(5, operator.add, operator.add) == 5


async def test_tree_levels_follow_spark():
    # Spark's rule: levels of about n ** (1/depth) fewer partitions, while worthwhile.
    class Fake:
        def __init__(self, n):
            self.n = n

        def get_num_partitions(self):
            return self.n

    assert isinstance(_tree_levels(Fake(4), operator.add, 2), Fake)  # too few: no level
    assert isinstance(_tree_levels(Fake(100), operator.add, 1), Fake)  # depth 1: none


async def test_tree_aggregate_combines_on_the_workers(ctx):
    driver = os.getpid()

    def seq(acc, x):
        return (acc[0] + x, acc[1])

    def comb(a, b):
        return (a[0] + b[0], a[1] | b[1] | {os.getpid()})

    zero = (0, frozenset())
    rdd = ctx.parallelize(range(1000), 16)
    total, pids = await rdd.tree_aggregate(zero, seq, comb, depth=2)
    assert total == sum(range(1000))
    assert pids - {driver}, "no intermediate level ran on a worker"
    total, pids = await ctx.parallelize(range(1000), 4).tree_aggregate(zero, seq, comb)
    assert (total, pids) == (sum(range(1000)), {driver})  # 4 partitions: no tree

    levels = _tree_levels(ctx.parallelize(range(100), 100), operator.add, 2)
    assert levels.get_num_partitions() == 10
    levels = _tree_levels(ctx.parallelize(range(64), 64), operator.add, 3)
    assert levels.get_num_partitions() == 4
    assert await levels.sum() == sum(range(64))


async def test_tree_reduce_matches_reduce(ctx):
    data = [random.Random(2).randint(1, 10**6) for _ in range(2000)]
    for slices, depth in [(1, 2), (9, 2), (50, 2), (64, 3), (300, 4)]:
        rdd = ctx.parallelize(data, slices)
        assert await rdd.tree_reduce(operator.add, depth) == sum(data)
        assert await rdd.tree_reduce(max, depth) == max(data)
    with pytest.raises(ValueError, match="empty"):
        await ctx.parallelize([], 20).tree_reduce(operator.add)
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="depth"):
            await ctx.parallelize([1]).tree_reduce(operator.add, bad)
        with pytest.raises(ValueError, match="depth"):
            await ctx.parallelize([1]).tree_aggregate(0, operator.add, operator.add, bad)


# -- histogram ---------------------------------------------------------------------------------


def _reference_counts(data: list, edges: list) -> list[int]:
    counts = [0] * (len(edges) - 1)
    for x in data:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            continue
        if edges[0] <= x < edges[-1]:
            counts[bisect.bisect_right(edges, x) - 1] += 1
        elif x == edges[-1]:
            counts[-1] += 1
    return counts


async def test_histogram_with_bucket_counts(ctx):
    rng = random.Random(4)
    floats = [rng.uniform(-3, 7) for _ in range(10_000)]
    for slices in (1, 6, 40):
        edges, counts = await ctx.parallelize(floats, slices).histogram(7)
        lo, hi = min(floats), max(floats)
        assert edges[0] == lo and edges[-1] == hi and len(edges) == 8
        assert all(_close(b - a, (hi - lo) / 7) for a, b in itertools.pairwise(edges))
        assert counts == _reference_counts(floats, edges)
        assert sum(counts) == len(floats)
    few = floats[:10]
    edges, counts = await ctx.parallelize(few, 25).histogram(3)  # empty partitions
    assert (edges[0], edges[-1], counts) == (min(few), max(few), _reference_counts(few, edges))

    ints = [rng.randint(0, 100) for _ in range(5000)] + [0, 100]
    edges, counts = await ctx.parallelize(ints, 4).histogram(4)
    assert edges == [0, 25, 50, 75, 100] and all(type(e) is int for e in edges)
    assert counts == _reference_counts(ints, edges)
    edges, counts = await ctx.parallelize(ints, 4).histogram(3)
    assert edges == [0, 100 / 3, 200 / 3, 100]
    assert counts == _reference_counts(ints, edges)


async def test_histogram_edge_cases_like_pyspark(ctx):
    nan = float("nan")
    # all values equal, or one bucket: one bucket [min, max]
    assert await ctx.parallelize([2.5, 2.5, None, nan], 3).histogram(5) == ([2.5, 2.5], [2])
    assert await ctx.parallelize([1, 9, 4], 2).histogram(1) == ([1, 9], [3])
    # None and NaN are ignored, with int and with list buckets
    data = [None, nan, 1.0, 2.0, 3.0, 4.0, nan, None]
    assert await ctx.parallelize(data, 3).histogram(3) == ([1.0, 2.0, 3.0, 4.0], [1, 1, 2])
    assert await ctx.parallelize(data, 3).histogram([0, 2, 5]) == ([0, 2, 5], [1, 3])
    # nothing to make edges from
    for empty in (ctx.parallelize([], 2), ctx.parallelize([None, nan], 2)):
        with pytest.raises(ValueError, match="empty"):
            await empty.histogram(3)
        assert await empty.histogram([0, 1]) == ([0, 1], [0])
    with pytest.raises(ValueError, match="infinite"):
        await ctx.parallelize([0.0, math.inf]).histogram(2)
    with pytest.raises(TypeError, match="non-numbers"):
        await ctx.parallelize(["a", "b"]).histogram(2)


async def test_histogram_with_edges(ctx):
    rng = random.Random(8)
    data = [rng.randint(-20, 120) for _ in range(6000)]
    for edges in ([0, 10, 20, 30], [0, 1, 50, 99, 100], [0.5, 2.5, 4.5], (-100, 0, 100)):
        edges_out, counts = await ctx.parallelize(data, 5).histogram(edges)
        assert edges_out is edges  # as given, a tuple as a tuple (PySpark)
        assert counts == _reference_counts(data, list(edges))
    # the same counts through the exact Python path (Fractions, a None in every batch)
    slow = [Fraction(x) for x in data] + [None]
    assert (await ctx.parallelize(slow, 5).histogram([0, 1, 50, 99, 100]))[1] == (
        _reference_counts(data, [0, 1, 50, 99, 100])
    )
    # the last bucket is closed; values outside are dropped
    assert await ctx.parallelize([0, 5, 10, 11, -1]).histogram([0, 5, 10]) == (
        [0, 5, 10], [1, 2]
    )
    words = ["apple", "b", "banana", "c", "cherry", "zebra", "a"]
    assert (await ctx.parallelize(words, 3).histogram(["a", "b", "c"]))[1] == [2, 3]


async def test_histogram_rejects_bad_buckets(ctx):
    rdd = ctx.parallelize([1, 2, 3])
    for bad, error in [
        (0, ValueError),
        ([1], ValueError),
        ([3, 1, 2], ValueError),
        ([1, 1, 2], ValueError),
        ([0, None, 2], ValueError),
        ([0, float("nan")], ValueError),
        ("10", TypeError),
        (True, TypeError),
        (2.5, TypeError),
    ]:
        with pytest.raises(error):
            await rdd.histogram(bad)


# -- count_approx_distinct ---------------------------------------------------------------------


@pytest.mark.parametrize("distinct", [10_000, 100_000])
async def test_count_approx_distinct_is_within_a_few_relative_sd(ctx, distinct):
    rng = random.Random(distinct)
    ints = list(range(distinct)) * 2
    rng.shuffle(ints)
    for rdd, rsd in [
        (ctx.parallelize(ints, 8), 0.05),
        (ctx.parallelize(ints, 8).map(lambda x: f"user-{x}"), 0.05),
        (ctx.parallelize(ints, 8).map(lambda x: (x % 7, str(x))), 0.01),
        (ctx.parallelize(ints, 8), 0.002),  # a sparse sketch
    ]:
        estimate = await rdd.count_approx_distinct(rsd)
        assert abs(estimate - distinct) <= 3 * rsd * distinct, (rsd, estimate)


async def test_count_approx_distinct_small_and_stable(ctx):
    data = [None, "a", "a", 1, 1, (1, 2), (1, 2), 2.5, b"x", None]
    assert await ctx.parallelize(data, 20).count_approx_distinct() == 6
    assert await ctx.parallelize([], 3).count_approx_distinct() == 0
    # merging sketches is an exact union: the partitioning does not change the estimate
    words = [f"w{i % 3000}" for i in range(9000)]
    estimates = {await ctx.parallelize(words, n).count_approx_distinct() for n in (1, 4, 33)}
    assert len(estimates) == 1
    local = HyperLogLog(HyperLogLog.precision_for(0.05))
    local.add(words)
    assert estimates == {round(local.estimate())}


async def test_count_approx_distinct_bad_arguments(ctx):
    rdd = ctx.parallelize([1, 2])
    with pytest.raises(ValueError, match=r"0\.000017"):
        await rdd.count_approx_distinct(0.000016)
    with pytest.raises(ValueError):
        await rdd.count_approx_distinct(0.5)
    with pytest.raises(TypeError):
        await rdd.count_approx_distinct("0.05")
    with pytest.raises(TypeError, match="hashable"):
        await ctx.parallelize([[1], [2]]).count_approx_distinct()


# -- to_local_iterator -------------------------------------------------------------------------


async def test_to_local_iterator_yields_every_record_in_order(ctx):
    data = [None, [1], "x", (2, None), 3.5, {"k": 1}, 7]
    for slices in (1, 3, 12):
        rdd = ctx.parallelize(data, slices)
        for prefetch in (False, True, 0, 2, 100):
            assert [x async for x in rdd.to_local_iterator(prefetch)] == data
    assert [x async for x in ctx.empty_rdd().to_local_iterator()] == []
    # partitions of a shuffle: every job reuses the same map stage
    counts = ctx.parallelize([(w % 9, 1) for w in range(900)], 5).reduce_by_key(operator.add, 4)
    for prefetch in (0, 3):
        assert [x async for x in counts.to_local_iterator(prefetch)] == await counts.collect()
    for bad in (-1, 1.5, "2"):
        with pytest.raises(ValueError, match="prefetch_partitions"):
            ctx.parallelize([1]).to_local_iterator(bad)


async def test_to_local_iterator_computes_partitions_on_demand(ctx, tmp_path):
    def mark(index, it):
        (tmp_path / str(index)).touch()
        return it

    def marked() -> set[str]:
        return set(os.listdir(tmp_path))

    rdd = ctx.parallelize(range(12), 6).map_partitions_with_index(mark)
    it = rdd.to_local_iterator()
    assert await anext(it) == 0
    assert marked() == {"0"}  # nothing computed ahead
    assert await anext(it) == 1
    assert marked() == {"0"}
    assert await anext(it) == 2
    assert marked() == {"0", "1"}
    await it.aclose()

    for name in marked():
        os.remove(tmp_path / name)
    it = rdd.to_local_iterator(prefetch_partitions=2)
    assert await anext(it) == 0
    await wait_until(lambda: marked() == {"0", "1", "2"}, what="two partitions prefetched")
    assert await anext(it) == 1
    assert marked() == {"0", "1", "2"}  # partition 3 waits until partition 1 is reached
    assert await anext(it) == 2
    await wait_until(lambda: "3" in marked(), what="partition 3 prefetched")
    await it.aclose()
    assert await rdd.count() == 12  # the cluster is still usable


async def test_to_local_iterator_raises_task_errors(ctx):
    def boom(x):
        if x == 5:
            raise KeyError("five")
        return x

    seen = []
    with pytest.raises(KeyError, match="five"):
        async for x in ctx.parallelize(range(8), 4).map(boom).to_local_iterator(True):
            seen.append(x)
    assert seen == [0, 1, 2, 3]
