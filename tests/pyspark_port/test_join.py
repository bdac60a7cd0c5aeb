"""Port of PySpark 4.3's ``pyspark/tests/test_join.py`` (class ``JoinTests``)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


# JoinTests.test_narrow_dependency_in_join -- the job groups are set and cleared around
# each job, as ``with ctx.job_group(...)`` (PySpark's stay set on the thread).
async def test_narrow_dependency_in_join(ctx):
    rdd = ctx.parallelize(range(10)).map(lambda x: (x, x))
    parted = rdd.partition_by(2)
    assert parted.union(parted).get_num_partitions() == 2
    assert parted.union(rdd).get_num_partitions() == rdd.get_num_partitions() + 2
    assert rdd.union(parted).get_num_partitions() == rdd.get_num_partitions() + 2

    tracker = ctx.status_tracker()
    cases = [
        ("test1", parted.join(parted), (0, (0, 0)), 2),
        ("test2", parted.join(rdd), (0, (0, 0)), 3),
        ("test3", parted.cogroup(parted), None, 2),
        ("test4", parted.cogroup(rdd), None, 3),
    ]
    for group, joined, first, stages in cases:
        with ctx.job_group(group, "test"):
            d = sorted(await joined.collect())
        assert len(d) == 10
        if first is not None:
            assert d[0] == first
        else:
            assert [list(x) for x in d[0][1]] == [[0], [0]]
        job_id = tracker.get_job_ids_for_group(group)[0]
        assert len(tracker.get_job_info(job_id).stage_ids) == stages
