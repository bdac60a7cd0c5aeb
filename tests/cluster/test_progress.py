"""Progress events and the console progress bar."""

from __future__ import annotations

import asyncio
import io
import operator
import sys
import time

import pytest

import aiospark
from aiospark.progress import ProgressBar

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


async def test_progress_stream_reports_stages_tasks_and_jobs(ctx):
    async with ctx.progress() as events:
        pairs = ctx.parallelize([(i % 3, i) for i in range(30)], 5)
        assert len(await pairs.reduce_by_key(operator.add, 2).collect()) == 3
        seen = events.drain()
    kinds = [e["event"] for e in seen]
    assert kinds[0] == "job_started" and kinds[-1] == "job_finished"
    stages = [e for e in seen if e["event"] == "stage_started"]
    assert [(s["kind"], s["tasks"]) for s in stages] == [("shuffle_map", 5), ("result", 2)]
    finished = [e for e in seen if e["event"] == "task_finished"]
    assert len(finished) == 7
    per_stage = {s["stage_id"]: [e["finished"] for e in finished if e["stage_id"] == s["stage_id"]]
                 for s in stages}
    assert sorted(map(len, per_stage.values())) == [2, 5]
    assert all(counts == list(range(1, len(counts) + 1)) for counts in per_stage.values())


async def test_failed_and_cancelled_jobs_are_reported(ctx):
    events = ctx.progress()
    with pytest.raises(ZeroDivisionError):
        await ctx.parallelize([0], 1).map(lambda x: 1 / x).collect()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await ctx.parallelize(range(100), 2).map(lambda x: time.sleep(0.05)).count()
    kinds = [e["event"] for e in events.drain()]
    assert "job_failed" in kinds and "job_cancelled" in kinds
    assert kinds.count("task_failed") >= 4  # the failing task's attempts
    events.close()
    assert [e async for e in events] == []


async def test_progress_bar_draws_for_long_jobs_and_clears(ctx):
    out = io.StringIO()
    bar = ProgressBar(ctx.progress(), out=out, delay=0.0)
    drawing = asyncio.create_task(bar.run())
    await ctx.parallelize(range(20), 10).map(lambda x: time.sleep(0.02) or x).count()
    bar._stream.close()
    await asyncio.wait_for(drawing, 5)
    text = out.getvalue()
    assert "[aiospark] stage" in text
    assert text.endswith("\r"), "the line is cleared when the job ends"


async def test_the_progress_bar_draws_before_the_first_task_of_a_slow_job_ends(monkeypatch):
    # Records of seconds each: the line must not wait for a task to finish.
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    async with aiospark.Context(workers=2, progress_bar=True) as own:
        events = own.progress()
        job = asyncio.create_task(
            own.parallelize(range(2), 2).map(lambda x: time.sleep(1.5) or x).count())
        async for event in events:
            if event["event"] == "task_finished":
                break
        drawn = err.getvalue()
        assert await job == 2
    assert "[aiospark] stage" in drawn and "0/2 (2 running)" in drawn, repr(drawn)
    assert err.getvalue().endswith("\r"), "the line is cleared when the job ends"
