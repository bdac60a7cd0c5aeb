"""A cluster started by hand with the CLI, used from a remote-style Context and from the REPL."""

from __future__ import annotations

import asyncio
import contextlib
import operator
import os
import subprocess
import sys

import pytest

import aiospark
from aiospark.errors import ClusterError
from tests.cluster.cli_processes import SECRET, roles
from tests.conftest import pid_alive, wait_until

pytestmark = pytest.mark.cluster

@contextlib.asynccontextmanager
async def standalone_cluster(tmp_path, workers: int = 2):
    """A master, a shuffle service and ``workers`` workers started with the CLI (all
    stopped on the way out); yields the master's URL and the processes."""
    async with roles() as cluster:
        url, _ = await cluster.cluster(tmp_path, workers)
        yield url, [role.proc for role in cluster.started]


async def test_context_connects_to_a_running_master(tmp_path, monkeypatch):
    async with standalone_cluster(tmp_path) as (url, procs):
        monkeypatch.setenv("AIOSPARK_SECRET", SECRET)
        async with aiospark.Context(url) as ctx:
            assert ctx._cluster is None
            await wait_until(lambda: len(ctx._scheduler.links) == 2, 20, "both workers")
            assert ctx.default_parallelism == 2
            pairs = ctx.parallelize([(i % 5, i) for i in range(1000)], 4)
            assert dict(await pairs.reduce_by_key(operator.add).collect()) == {
                k: sum(i for i in range(1000) if i % 5 == k) for k in range(5)
            }
            app_dir = tmp_path / "shuffle" / ctx.app_id
            assert app_dir.exists()
        # Stopping the driver does not stop a standalone cluster, but frees its shuffle files.
        assert all(pid_alive(p.pid) for p in procs)
        assert not app_dir.exists()
        # The same cluster serves the next driver, found through AIOSPARK_MASTER.
        monkeypatch.setenv("AIOSPARK_MASTER", url)
        async with aiospark.Context() as ctx:
            assert await ctx.range(100).sum() == 4950


async def test_wrong_secret_or_no_master_is_a_clear_error(tmp_path, monkeypatch):
    async with standalone_cluster(tmp_path, workers=1) as (url, _):
        monkeypatch.delenv("AIOSPARK_SECRET", raising=False)
        monkeypatch.delenv("AIOSPARK_SECRET_FILE", raising=False)
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no local secret
        with pytest.raises(ClusterError, match=r"needs the cluster secret .*local secret"):
            await aiospark.Context(url).start()
        assert not (tmp_path / "config").exists()  # a driver never makes the local secret
        monkeypatch.setenv("AIOSPARK_SECRET_FILE", str(tmp_path / "missing"))
        with pytest.raises(ClusterError, match=r"^AIOSPARK_SECRET_FILE: cannot read"):
            await aiospark.Context(url).start()
        secret_file = tmp_path / "secret"
        secret_file.write_text(SECRET + "\n")
        monkeypatch.setenv("AIOSPARK_SECRET_FILE", str(secret_file))
        async with aiospark.Context(url) as ctx:
            assert await ctx.parallelize([1, 2], 2).count() == 2


async def test_the_asyncio_repl_can_drive_a_context():
    script = "\n".join([
        "import aiospark",
        "ctx = await aiospark.Context(workers=1).start()",
        "print('total', await ctx.range(1000).sum())",
        "await ctx.stop()",
        "",
    ])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asyncio", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(script.encode()), 60)
    assert "total 499500" in out.decode(), out.decode()


async def test_a_vanished_driver_leaves_nothing_behind_on_the_cluster(tmp_path, monkeypatch):
    async with standalone_cluster(tmp_path) as (url, procs):
        driver = (
            "import asyncio, os, aiospark, operator\n"
            "async def main():\n"
            f"    ctx = await aiospark.Context({url!r}).start()\n"
            "    pairs = ctx.parallelize([(i % 3, i) for i in range(99)], 4)\n"
            "    await pairs.reduce_by_key(operator.add).cache().count()\n"
            "    print(ctx.app_id, flush=True)\n"
            "    await asyncio.sleep(3600)\n"
            "asyncio.run(main())\n"
        )
        env = {**os.environ, "AIOSPARK_SECRET": SECRET}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", driver, env=env, stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        try:
            app_id = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
            assert (tmp_path / "shuffle" / app_id).exists()
        finally:
            proc.kill()
            await proc.wait()
        await wait_until(lambda: not (tmp_path / "shuffle" / app_id).exists(), 15,
                         "the workers to drop the dead driver's shuffle files")
        assert all(pid_alive(p.pid) for p in procs)
