"""A hung (stopped, alive) shuffle service or master is killed and restarted: jobs finish."""

from __future__ import annotations

import asyncio
import operator
import os
import signal

import pytest

import aiospark
from tests.conftest import pid_alive, wait_until

pytestmark = pytest.mark.cluster

PAIRS = [(i % 7, i) for i in range(2000)]
EXPECTED = sorted({k: sum(v for kk, v in PAIRS if kk == k) for k in range(7)}.items())


@pytest.mark.parametrize("role", ["shuffle-service", "master"])
async def test_a_stopped_role_is_restarted_and_the_job_finishes(role, monkeypatch):
    monkeypatch.setenv("AIOSPARK_SHUFFLE_LOCAL_READS", "0")  # reads go through the service
    async with aiospark.Context(workers=2) as ctx:
        pairs = ctx.parallelize(PAIRS, 4)
        assert sorted(await pairs.reduce_by_key(operator.add).collect()) == EXPECTED
        hung = ctx._cluster.pids()[role]
        os.kill(hung, signal.SIGSTOP)
        try:
            async with asyncio.timeout(90):
                result = await pairs.map_values(lambda v: v).reduce_by_key(operator.add).collect()
            assert sorted(result) == EXPECTED
            await wait_until(lambda: ctx._cluster.pids()[role] != hung, 60, f"{role} restarted")
        finally:
            if pid_alive(hung):
                os.kill(hung, signal.SIGCONT)
        assert not pid_alive(hung)
        # The restarted role serves the next jobs.
        assert sorted(await pairs.reduce_by_key(operator.add, 3).collect()) == EXPECTED
