"""Two applications on one standalone cluster share its cores (issue 14, item 2): no
worker runs more tasks than its cores, and the master gives each driver its share."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

import aiospark
from aiospark.protocol.auth import auth_headers
from tests.cluster.cli_processes import SECRET, roles
from tests.conftest import wait_until

pytestmark = pytest.mark.cluster


def slow_square(x: int) -> int:
    time.sleep(0.5)
    return x * x


async def test_two_applications_never_oversubscribe_the_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("AIOSPARK_SECRET", SECRET)
    async with roles() as cluster, aiohttp.ClientSession(headers=auth_headers(SECRET)) as http:
        url, _ = await cluster.cluster(tmp_path, 2, "--cores", "1")
        master = url.replace("aiospark://", "http://")

        async def get(address: str) -> dict:
            async with http.get(address) as resp:
                assert resp.status == 200, await resp.text()
                return await resp.json()

        async def registered() -> bool:
            return len((await get(f"{master}/v1/status"))["workers"]) == 2

        await wait_until(registered, 20, "both workers registered")
        status = await get(f"{master}/v1/status")
        controls = [w["control_url"] for w in status["workers"]]
        assert len(controls) == 2 and all(controls)
        async with aiospark.Context(url, app_name="one") as one, \
                aiospark.Context(url, app_name="two") as two:
            await wait_until(lambda: len(one._scheduler.links) == len(two._scheduler.links) == 2,
                             20, "both drivers connected to both workers")
            jobs = [asyncio.ensure_future(ctx.parallelize(range(8), 4).map(slow_square).collect())
                    for ctx in (one, two)]
            samples: list[list[int]] = []
            shares: set[tuple] = set()
            deadline = time.monotonic() + 60
            while not all(job.done() for job in jobs):
                assert time.monotonic() < deadline, "the two jobs did not finish in 60 s"
                samples.append([(await get(f"{c}/v1/health"))["running_tasks"]
                                for c in controls])
                apps = (await get(f"{master}/v1/status"))["apps"]
                shares.add(tuple(sorted((a["name"], a["cores"]) for a in apps)))
                await asyncio.wait(jobs, timeout=0.05)  # a sampling period, not a wait for state
            for job in jobs:
                assert await job == [x * x for x in range(8)]
            assert samples and max(max(s) for s in samples) <= 1, samples
            assert max(sum(s) for s in samples) >= 1  # the sampling saw the tasks run
            # While both ran, each had half of the two cores.
            assert (("one", 1), ("two", 1)) in shares, shares
        async def all_gone() -> bool:  # gone: no share
            return all(a["cores"] is None for a in (await get(f"{master}/v1/status"))["apps"])

        await wait_until(all_gone, 10, "the applications' shares given back")
