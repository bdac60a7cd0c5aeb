"""``Context.pool``: which scheduling pool a job goes to, per asyncio task (no cluster needed)."""

from __future__ import annotations

import asyncio

import pytest

import aiospark


class RecordingScheduler:
    """Stands in for the started scheduler: records the pool and local properties of each
    submitted job."""

    def __init__(self) -> None:
        self.pools: list[str] = []
        self.properties: list[dict[str, str]] = []

    def submit(self, rdd, func, partitions=None, pool="default", properties=None):
        self.pools.append(pool)
        self.properties.append(dict(properties or {}))


def started(ctx: aiospark.Context) -> RecordingScheduler:
    scheduler = RecordingScheduler()
    ctx._scheduler, ctx._started = scheduler, True
    return scheduler


def test_pool_blocks_nest_and_restore():
    ctx = aiospark.Context(workers=1)
    assert ctx.current_pool == "default"
    with ctx.pool("batch") as name:
        assert name == "batch" and ctx.current_pool == "batch"
        with ctx.pool("interactive"):
            assert ctx.current_pool == "interactive"
        with ctx.pool(None):
            assert ctx.current_pool == "default"
        assert ctx.current_pool == "batch"
    assert ctx.current_pool == "default"


def test_pool_is_restored_when_the_block_raises():
    ctx = aiospark.Context(workers=1)
    with pytest.raises(KeyError), ctx.pool("batch"):
        raise KeyError("x")
    assert ctx.current_pool == "default"


@pytest.mark.parametrize("name", ["", 3, b"web"])
def test_bad_pool_names_are_refused(name):
    with pytest.raises(ValueError, match="pool name"):
        aiospark.Context(workers=1).pool(name).__enter__()


def test_bad_scheduler_settings_are_refused_at_construction():
    with pytest.raises(ValueError, match="scheduler_mode"):
        aiospark.Context(scheduler_mode="FAIR")
    with pytest.raises(ValueError, match="pool 'web': weight"):
        aiospark.Context(pools={"web": {"weight": 0}})


def test_each_context_has_its_own_pool_setting():
    first, second = aiospark.Context(workers=1), aiospark.Context(workers=1)
    with first.pool("batch"):
        assert second.current_pool == "default"


async def test_concurrent_tasks_submit_to_their_own_pools():
    ctx = aiospark.Context(workers=1)
    scheduler = started(ctx)
    both_inside = asyncio.Barrier(2)

    async def request(pool: str | None) -> str:
        with ctx.pool(pool):
            await both_inside.wait()  # both blocks are open at once
            ctx._submit_job(None, None)
            return ctx.current_pool

    assert await asyncio.gather(request("batch"), request(None)) == ["batch", "default"]
    assert sorted(scheduler.pools) == ["batch", "default"]


async def test_a_task_started_inside_the_block_keeps_the_pool():
    ctx = aiospark.Context(workers=1)
    scheduler = started(ctx)
    go = asyncio.Event()

    async def later() -> None:
        await go.wait()
        ctx._submit_job(None, None)

    with ctx.pool("interactive"):
        task = asyncio.create_task(later())
    ctx._submit_job(None, None)  # outside the block: the default pool
    go.set()
    await task
    assert scheduler.pools == ["default", "interactive"]


async def test_jobs_carry_the_local_properties_of_the_task_submitting_them():
    ctx = aiospark.Context(workers=1)
    scheduler = started(ctx)
    both_set = asyncio.Barrier(2)

    async def request(group: str) -> None:
        ctx.set_job_group(group, f"for {group}")
        await both_set.wait()  # both groups are set at once
        ctx._submit_job(None, None)

    await asyncio.gather(request("a"), request("b"))
    ctx.set_local_property("team", "search")
    with ctx.pool("batch"):
        ctx._submit_job(None, None)
    ctx.set_local_property("team", None)
    ctx._submit_job(None, None)
    groups = [(p.get("spark.jobGroup.id"), p.get("spark.job.description"))
              for p in scheduler.properties[:2]]
    assert sorted(groups) == [("a", "for a"), ("b", "for b")]
    assert scheduler.properties[2:] == [{"team": "search", "spark.scheduler.pool": "batch"}, {}]


def test_local_properties_are_strings_and_the_pool_is_one():
    ctx = aiospark.Context(workers=1)
    with pytest.raises(TypeError, match="must be a str or None, got int"):
        ctx.set_local_property("n", 3)
    with pytest.raises(TypeError, match="group_id must be a str, got NoneType"):
        ctx.set_job_group(None, "x")
    ctx.set_local_property("spark.scheduler.pool", "batch")
    assert ctx.current_pool == "batch" == ctx.get_local_property("spark.scheduler.pool")
    ctx.set_local_property("spark.scheduler.pool", None)
    assert ctx.current_pool == "default" and ctx.get_local_property("spark.scheduler.pool") is None
    with ctx.job_group("g", "d"):
        ctx.set_local_property("inside", "1")
        assert ctx.get_local_property("spark.job.interruptOnCancel") == "false"
    assert ctx.get_local_property("inside") is None, "leaving the block restores them all"
    ctx.set_job_group("g", None, interrupt_on_cancel=True)
    assert (ctx.get_local_property("spark.job.interruptOnCancel"),
            ctx.get_local_property("spark.job.description")) == ("true", None)
    ctx.clear_job_group()
    assert ctx._local.current() == {}
