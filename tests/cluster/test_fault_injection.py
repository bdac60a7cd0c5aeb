"""Jobs return exact results while a fraction of requests, shuffle reads and tasks fail or hang."""

from __future__ import annotations

import operator
import random
from collections import Counter

import pytest

import aiospark
from tests.conftest import wait_until, worker_health

pytestmark = pytest.mark.cluster

FAULTS = "fail=0.08,hang=0.03,hang_seconds=0.3,task_fail=0.1,seed=11"


async def _health(ctx, url: str) -> dict:
    async with ctx._session.get(f"{url}/v1/health") as resp:
        return await resp.json()


async def test_unreliable_cluster_still_returns_exact_results(monkeypatch, tmp_path):
    monkeypatch.setenv("AIOSPARK_FAULTS", FAULTS)
    rng = random.Random(5)
    words = [f"w{rng.randint(0, 300)}" for _ in range(20_000)]
    async with aiospark.Context(workers=2, max_task_attempts=8) as ctx:
        events = ctx.progress()
        acc = ctx.accumulator(0)

        def count(w):
            acc.add(1)
            return (w, 1)

        counts = ctx.parallelize(words, 40).map(count).reduce_by_key(operator.add, 16)
        assert dict(await counts.collect()) == Counter(words)
        assert acc.value == len(words), "accumulator updates counted once per partition"
        by_count = counts.map(lambda kv: (kv[1] % 7, 1)).reduce_by_key(operator.add, 4)
        assert dict(await by_count.collect()) == dict(
            Counter(c % 7 for c in Counter(words).values())
        )
        table = ctx.broadcast({w: len(w) for w in set(words)})
        lengths = await ctx.parallelize(words, 20).map(lambda w: table.value[w]).sum()
        assert lengths == sum(len(w) for w in words)
        failed = [e for e in events.drain() if e["event"] == "task_failed"]
        events.close()
        injected = Counter()
        for health in await worker_health(ctx):
            injected.update(health["faults"])
        print(f"\ninjected faults on workers: {dict(injected)}; tasks retried: {len(failed)}")
        assert injected["task_fail"] > 0, "the fault injection did not happen"
        assert len(failed) >= injected["task_fail"] // 2


async def test_remote_shuffle_reads_survive_faults_and_a_killed_shuffle_service(monkeypatch):
    import asyncio
    import os
    import signal
    import time

    monkeypatch.setenv("AIOSPARK_FAULTS", "fail=0.05,hang=0.02,hang_seconds=0.2,seed=3")
    monkeypatch.setenv("AIOSPARK_SHUFFLE_LOCAL_READS", "0")
    pairs = [(i % 97, i) for i in range(30_000)]
    expected: dict[int, int] = {}
    for k, v in pairs:
        expected[k] = expected.get(k, 0) + v
    async with aiospark.Context(workers=2, max_task_attempts=8) as ctx:
        summed = ctx.parallelize(pairs, 12).reduce_by_key(operator.add, 12)
        assert dict(await summed.collect()) == expected

        def slow_values(kv):
            time.sleep(0.02)
            return kv

        # Kill the shuffle service while the reducers of a second shuffle fetch from it.
        regrouped = summed.map(slow_values).map(lambda kv: (kv[0] % 5, kv[1]))
        job = asyncio.ensure_future(regrouped.reduce_by_key(operator.add, 6).collect())
        service = ctx._cluster.processes["shuffle-service"]
        async def serving_or_done() -> bool:
            return job.done() or bool((await _health(ctx, ctx._cluster.shuffle_url))["faults"])

        await wait_until(serving_or_done, 30, "the shuffle service to serve requests")
        os.kill(service.pid, signal.SIGKILL)
        result = await asyncio.wait_for(job, 120)
        want: dict[int, int] = {}
        for k, v in expected.items():
            want[k % 5] = want.get(k % 5, 0) + v
        assert dict(result) == want
        assert ctx._cluster.processes["shuffle-service"].pid != service.pid, "restarted"
