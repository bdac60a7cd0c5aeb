"""Unit tests for the FAIR/FIFO policy between jobs and pools (``aiospark.scheduler.pools``)."""

from __future__ import annotations

import functools
import itertools

import pytest

from aiospark.scheduler.pools import DEFAULT_POOL, Policy, Pool, fair_key, make_pools


def spark_less_than(s1: tuple, s2: tuple) -> bool:
    """Spark's ``FairSchedulingAlgorithm.comparator``; sides: (name, running, min_share, weight)."""
    name1, running1, min_share1, weight1 = s1
    name2, running2, min_share2, weight2 = s2
    needy1, needy2 = running1 < min_share1, running2 < min_share2
    if needy1 and not needy2:
        return True
    if needy2 and not needy1:
        return False
    if needy1 and needy2:
        a, b = running1 / max(min_share1, 1.0), running2 / max(min_share2, 1.0)
    else:
        a, b = running1 / weight1, running2 / weight2
    if a != b:
        return a < b
    return name1 < name2


def test_fair_key_orders_like_sparks_comparator():
    pools = [
        (f"p{i}", running, min_share, weight)
        for i, (running, min_share, weight) in enumerate(
            itertools.product((0, 1, 2, 3, 5, 8), (0, 1, 3), (1, 2, 4))
        )
    ]
    by_key = sorted(pools, key=lambda p: (*fair_key(p[1], p[2], p[3]), p[0]))
    by_spark = sorted(
        pools,
        key=functools.cmp_to_key(
            lambda a, b: -1 if spark_less_than(a, b) else (1 if spark_less_than(b, a) else 0)
        ),
    )
    assert by_key == by_spark


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"weight": 0}, "weight must be a positive number"),
        ({"weight": -1}, "weight must be a positive number"),
        ({"weight": "2"}, "weight must be a positive number"),
        ({"weight": True}, "weight must be a positive number"),
        ({"min_share": -1}, "min_share must be an int >= 0"),
        ({"min_share": 1.5}, "min_share must be an int >= 0"),
        ({"mode": "FAIR"}, "mode must be 'fair' or 'fifo'"),
        ({"priority": 1}, "unknown setting 'priority'"),
    ],
)
def test_bad_pool_settings_are_refused_naming_the_pool(settings, message):
    with pytest.raises(ValueError, match=message) as info:
        make_pools({"web": settings})
    assert "pool 'web'" in str(info.value)


def test_pool_settings_and_defaults():
    pools = make_pools({"web": {"weight": 4, "min_share": 1}, "etl": {"mode": "fifo"},
                        "ready": Pool("other-name", weight=2)})
    assert pools["web"] == Pool("web", weight=4, min_share=1, mode="fair")
    assert pools["etl"] == Pool("etl", weight=1, min_share=0, mode="fifo")
    assert pools["ready"].name == "ready" and pools["ready"].weight == 2
    policy = Policy("fair", {"web": {"weight": 4}})
    assert policy.pool("unknown") == Pool("unknown")  # not configured: the defaults
    with pytest.raises(ValueError, match="scheduler_mode must be 'fair' or 'fifo'"):
        Policy("round-robin")


def grant(policy: Policy, pool_of: dict, running: dict, waiting: list, slots: int) -> list[int]:
    """The jobs that get ``slots`` free slots one after the other."""
    turn = policy.round(pool_of, running)
    order = []
    for _ in range(slots):
        job_id = turn.next(waiting)
        turn.launched(job_id)
        order.append(job_id)
    return order


def test_fifo_gives_every_slot_to_the_earliest_job():
    policy = Policy("fifo", {"web": {"weight": 100, "min_share": 5}})  # pools do not matter
    assert grant(policy, {1: DEFAULT_POOL, 2: "web"}, {1: 10}, [2, 1], 3) == [1, 1, 1]


def test_fair_gives_the_slot_to_the_job_running_fewest_tasks():
    policy = Policy()
    # Job 1 runs 3 tasks, job 2 one, job 3 none: 3 gets one, then 2 and 3 alternate.
    assert grant(policy, {}, {1: 3, 2: 1}, [1, 2, 3], 4) == [3, 2, 3, 2]
    # Ties go to the earlier job.
    assert grant(policy, {}, {}, [2, 1], 4) == [1, 2, 1, 2]


def test_jobs_with_nothing_waiting_still_count_for_their_pool():
    policy = Policy()
    # Pool "a" runs 5 tasks of job 1 (nothing waiting) and has job 2 waiting; pool "b" runs 1.
    pool_of = {1: "a", 2: "a", 3: "b"}
    assert grant(policy, pool_of, {1: 5, 3: 1}, [2, 3], 4) == [3, 3, 3, 3]


def test_weights_share_slots_in_proportion():
    policy = Policy("fair", {"small": {"weight": 1}, "big": {"weight": 3}})
    order = grant(policy, {1: "small", 2: "big"}, {}, [1, 2], 8)
    assert order.count(2) == 6 and order.count(1) == 2


def test_min_share_comes_before_weight():
    policy = Policy("fair", {"batch": {"weight": 10}, "web": {"weight": 1, "min_share": 2}})
    order = grant(policy, {1: "batch", 2: "web"}, {1: 6}, [1, 2], 3)
    assert order[:2] == [2, 2], "web is below its min_share"
    assert order[2] == 1, "then weights: 6 / 10 < 2 / 1"


def test_pool_mode_orders_its_own_jobs():
    fifo = Policy("fair", {"etl": {"mode": "fifo"}})
    assert grant(fifo, {1: "etl", 2: "etl"}, {1: 4}, [1, 2], 2) == [1, 1]
    fair = Policy("fair", {"etl": {"mode": "fair"}})
    assert grant(fair, {1: "etl", 2: "etl"}, {1: 4}, [1, 2], 2) == [2, 2]
    # Between pools it stays fair, whatever each pool's mode.
    mixed = Policy("fair", {"etl": {"mode": "fifo"}})
    assert grant(mixed, {1: "etl", 2: "etl", 3: "web"}, {1: 2}, [1, 2, 3], 3) == [3, 3, 1]
