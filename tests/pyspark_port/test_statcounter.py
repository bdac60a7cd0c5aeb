"""Port of PySpark 4.3's ``pyspark/tests/test_statcounter.py`` (class ``StatCounterTests``)."""

from __future__ import annotations

import math

import pytest

from aiospark.statcounter import StatCounter

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


def assert_figures(stats, count, max_, mean, min_, stdev, sample_stdev, sum_, var, sample_var):
    assert stats.count() == count
    assert stats.max() == max_
    assert stats.mean() == pytest.approx(mean)
    assert stats.min() == min_
    assert stats.stdev() == pytest.approx(stdev)
    assert stats.sample_stdev() == pytest.approx(sample_stdev)
    assert stats.sum() == sum_
    assert stats.variance() == pytest.approx(var)
    assert stats.sample_variance() == pytest.approx(sample_var)


# StatCounterTests.test_base
async def test_base(ctx):
    stats = await ctx.parallelize([1.0, 2.0, 3.0, 4.0]).stats()
    assert_figures(
        stats, 4, 4.0, 2.5, 1.0, 1.118033988749895, 1.2909944487358056, 10.0, 1.25,
        1.6666666666666667,
    )  # fmt: skip


# StatCounterTests.test_as_dict -- differs: as_dict() gives the population stdev and
# variance and as_dict(sample=True) the sample ones; PySpark's asDict() has them the
# other way round (docs/migration.md), so the two halves swap their expected figures.
async def test_as_dict(ctx):
    stats = (await ctx.parallelize([1.0, 2.0, 3.0, 4.0]).stats()).as_dict(sample=True)
    assert (stats["count"], stats["max"], stats["mean"], stats["min"]) == (4, 4.0, 2.5, 1.0)
    assert stats["stdev"] == pytest.approx(1.2909944487358056)
    assert stats["sum"] == 10.0
    assert stats["variance"] == pytest.approx(1.6666666666666667)

    stats = (await ctx.parallelize([1.0, 2.0, 3.0, 4.0]).stats()).as_dict()
    assert (stats["count"], stats["max"], stats["mean"], stats["min"]) == (4, 4.0, 2.5, 1.0)
    assert stats["stdev"] == pytest.approx(1.118033988749895)
    assert stats["sum"] == 10.0
    assert stats["variance"] == pytest.approx(1.25)


# StatCounterTests.test_merge
async def test_merge():
    stats = StatCounter([1.0, 2.0, 3.0, 4.0])
    stats.merge(5.0)
    assert_figures(stats, 5, 5.0, 3.0, 1.0, 1.414213562373095, 1.5811388300841898, 15.0, 2.0, 2.5)


# StatCounterTests.test_merge_stats
async def test_merge_stats():
    stats = StatCounter([1.0, 2.0, 3.0, 4.0]).merge_stats(StatCounter([1.0, 2.0, 3.0, 4.0]))
    assert_figures(
        stats, 8, 4.0, 2.5, 1.0, 1.118033988749895, 1.1952286093343936, 20.0, 1.25,
        1.4285714285714286,
    )  # fmt: skip
    for stats in (
        StatCounter([1.0, 2.0]).merge_stats(StatCounter(range(1, 301))),
        StatCounter(range(1, 301)).merge_stats(StatCounter([1.0, 2.0])),
    ):
        assert stats.count() == 302
        assert stats.max() == 300.0
        assert stats.min() == 1.0
        assert stats.mean() == pytest.approx(149.51324503311)
        assert stats.variance() == pytest.approx(7596.302804701549)
        assert stats.sample_variance() == pytest.approx(7621.539691095905)


# StatCounterTests.test_variance_when_size_zero -- differs: the mean of nothing is NaN
# (PySpark: 0.0), as docs/migration.md says.
async def test_variance_when_size_zero():
    for arg in ([], None):
        stats = StatCounter(arg)
        assert math.isnan(stats.variance())
        assert math.isnan(stats.sample_variance())
        assert stats.count() == 0
        assert math.isinf(stats.max())
        assert math.isinf(stats.min())
        assert math.isnan(stats.mean())


# StatCounterTests.test_merge_stats_with_self
async def test_merge_stats_with_self():
    stats = StatCounter([1.0, 2.0, 3.0, 4.0])
    stats.merge_stats(stats)
    assert_figures(
        stats, 8, 4.0, 2.5, 1.0, 1.118033988749895, 1.1952286093343936, 20.0, 1.25,
        1.4285714285714286,
    )  # fmt: skip
