"""User errors, unpicklable closures, retries and cancellation on the real cluster."""

from __future__ import annotations

import asyncio
import operator
import os
import threading
import time

import aiohttp
import pytest

import aiospark
from aiospark.errors import RemoteTraceback, SerializationError
from tests.conftest import wait_for_idle, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


class CustomError(Exception):
    """A user exception type that must survive the trip from the worker."""


def explode(x):
    if x == 13:
        raise CustomError(f"unlucky {x}")
    return x


async def test_user_exception_keeps_type_message_and_remote_traceback(ctx):
    with pytest.raises(CustomError, match="unlucky 13") as info:
        await ctx.parallelize(range(20), 4).map(explode).collect()
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "explode" in cause.text and "CustomError" in cause.text
    # The cluster is still usable afterwards.
    assert await ctx.parallelize(range(20), 4).map(lambda x: x + 1).sum() == 210


async def test_builtin_exception_in_shuffle_stage(ctx):
    pairs = ctx.parallelize([("a", 1), ("b", 0)], 2)
    with pytest.raises(ZeroDivisionError):
        await pairs.map_values(lambda v: 1 / v).reduce_by_key(operator.add).collect()


async def test_unpicklable_closure_fails_at_submission_naming_the_variable(ctx):
    lock = threading.Lock()
    rdd = ctx.parallelize([1, 2, 3]).map(lambda x: (x, lock.locked()))
    with pytest.raises(SerializationError, match=r"'lock'.*_thread\.lock"):
        await rdd.collect()


async def test_transient_failure_is_retried(ctx, tmp_path):
    flag = tmp_path / "failed-once"

    def flaky(x):
        if x == 7 and not flag.exists():
            flag.write_text(str(os.getpid()))
            raise OSError("transient")
        return x

    assert await ctx.parallelize(range(10), 5).map(flaky).collect() == list(range(10))
    assert flag.exists()


async def test_deterministic_failure_gives_up_after_max_attempts(ctx, tmp_path):
    attempts = tmp_path / "attempts"
    attempts.mkdir()

    def always(x):
        (attempts / os.urandom(4).hex()).touch()
        raise ValueError("always fails")

    with pytest.raises(ValueError, match="always fails"):
        await ctx.parallelize([1], 1).map(always).collect()
    assert len(list(attempts.iterdir())) == 4


async def test_cancelling_an_action_stops_its_tasks_on_workers(ctx):
    def slow(x):
        time.sleep(0.01)
        return x

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await ctx.parallelize(range(10_000), 2).map(slow).count()
    assert time.monotonic() - started < 5
    await wait_for_idle(ctx)
    assert await ctx.parallelize(range(4), 2).count() == 4


async def test_requests_without_the_secret_are_refused(ctx):
    link = next(iter(ctx._scheduler.links.values()))
    async with aiohttp.ClientSession() as anonymous:
        for url in (f"{ctx._scheduler.master_url}/v1/status", f"{link.info.url}/v1/health",
                    f"{link.info.shuffle_url}/v1/shuffle/app-x/1/0?maps=0"):
            async with anonymous.get(url) as resp:
                assert resp.status == 401, url
        bad = aiohttp.ClientSession(headers={"Authorization": "Bearer wrong"})
        async with bad, bad.get(f"{ctx._scheduler.master_url}/v1/status") as resp:
            assert resp.status == 401


async def test_probes_answer_without_the_secret_and_reveal_nothing(ctx):
    link = next(iter(ctx._scheduler.links.values()))
    async with aiohttp.ClientSession() as anonymous:
        for base in (ctx._scheduler.master_url, link.info.url, link.info.shuffle_url):
            async with anonymous.get(f"{base}/v1/live") as resp:
                assert resp.status == 200 and await resp.json() == {"live": True}, base
            async with anonymous.get(f"{base}/v1/ready") as resp:
                assert resp.status == 200 and await resp.json() == {"ready": True}, base
            async with anonymous.post(f"{base}/v1/live") as resp:  # only GET is public
                assert resp.status == 401, base


async def test_path_traversal_is_refused_everywhere(ctx):
    """Ids in URLs are checked before any path is built from them."""
    link = next(iter(ctx._scheduler.links.values()))
    worker, shuffle = link.info.url, link.info.shuffle_url
    evil_ids = ["..", "..%2F..%2F..%2Fetc", "%2E%2E", "app%2F..%2F..", "a%00b", "." * 70]
    attempts = []
    for bad in evil_ids:
        attempts += [
            f"{shuffle}/v1/shuffle/{bad}/1/0?maps=0",
            f"{worker}/v1/blocks/{bad}/1/0",
            f"{worker}/v1/results/{bad}/1",
            f"{worker}/v1/broadcast/{bad}/1",
        ]
    attempts += [
        f"{shuffle}/v1/shuffle/{ctx.app_id}/..%2F..%2F..%2Fetc/0?maps=0",
        f"{shuffle}/v1/shuffle/{ctx.app_id}/1/0?maps=..%2F..%2Fetc%2Fpasswd",
        f"{shuffle}/v1/shuffle/{ctx.app_id}/-1/0?maps=0",
    ]
    for url in attempts:
        async with ctx._session.get(url) as resp:
            body = await resp.read()
            assert resp.status in (400, 404), (url, resp.status)
            assert b"root:" not in body, url
    for bad in evil_ids:
        async with ctx._session.delete(f"{shuffle}/v1/shuffle/{bad}") as resp:
            assert resp.status in (400, 404, 405), (bad, resp.status)


async def test_oversized_control_requests_get_413(ctx):
    master = ctx._scheduler.master_url
    huge = b'{"worker_id": "' + b"x" * (2 << 20) + b'"}'
    async with ctx._session.post(f"{master}/v1/workers", data=huge) as resp:
        assert resp.status == 413


async def test_malformed_control_messages_get_400_naming_the_field(ctx):
    master = ctx._scheduler.master_url
    async with ctx._session.post(f"{master}/v1/workers", data=b"{not json") as resp:
        assert resp.status == 400
        assert "JSON" in (await resp.json())["error"]
    async with ctx._session.post(f"{master}/v1/workers", json={"worker_id": 3}) as resp:
        assert resp.status == 400
        assert "RegisterWorker.worker_id" in (await resp.json())["error"]
    beat = {"worker_id": "nobody", "running_tasks": "x", "memory_used": 0}
    async with ctx._session.post(f"{master}/v1/workers/nobody/heartbeat", json=beat) as resp:
        assert resp.status == 400
        assert "running_tasks" in (await resp.json())["error"]
    shuffle = next(iter(ctx._scheduler.links.values())).info.shuffle_url
    async with ctx._session.get(f"{shuffle}/v1/shuffle/..%2f..%2fetc/1/0?maps=0") as resp:
        assert resp.status in (400, 404)
    async with ctx._session.get(f"{shuffle}/v1/shuffle/app-x/1/0?maps=0-x") as resp:
        assert resp.status == 400


async def test_context_not_started_is_a_clear_error():
    context = aiospark.Context(workers=1)
    with pytest.raises(RuntimeError, match="not started"):
        await context.parallelize([1]).collect()
    with pytest.raises(ValueError, match="workers"):
        aiospark.Context(workers=0)


async def test_wait_until_helper_is_bounded():
    with pytest.raises(pytest.fail.Exception):
        await wait_until(lambda: False, timeout=0.1, what="never")


async def test_speculation_beats_a_straggler_and_counts_accumulators_once(tmp_path):
    flag = tmp_path / "slow-once"

    async with aiospark.Context(workers=2, speculation=True) as spec_ctx:
        acc = spec_ctx.accumulator(0)

        def work(x):
            acc.add(1)
            if x == 0 and not flag.exists():
                flag.touch()
                time.sleep(30)  # the straggler: its copy finishes long before
            return x

        # Without a speculative copy the job would outlast this bound by the 30 s sleep.
        async with asyncio.timeout(25):
            assert await spec_ctx.parallelize(range(40), 20).map(work).sum() == sum(range(40))
        assert acc.value == 40


async def test_an_accumulator_update_that_cannot_be_pickled_fails_the_job_clearly(ctx):
    class LockParam(aiospark.AccumulatorParam):
        def zero(self, value):
            return []

        def add_in_place(self, value1, value2):
            return value1 + value2

    acc = ctx.accumulator([], LockParam())
    rdd = ctx.parallelize([1, 2], 2)
    with pytest.raises(TypeError, match="accumulator updates cannot be pickled"):
        await asyncio.wait_for(rdd.foreach(lambda x: acc.add([threading.Lock()])), 60)
    assert await rdd.count() == 2
