"""A worker (or a driver) that cannot reach its master, or is refused, says so once."""

from __future__ import annotations

import socket
import time

import pytest

import aiospark
from aiospark.errors import ClusterError
from tests.cluster.cli_processes import roles
from tests.conftest import wait_until

pytestmark = pytest.mark.cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lines_with(role, text: str) -> list[str]:
    return [line for line in role.lines if text in line]


async def test_a_worker_with_no_master_says_so_once_and_gives_up_after_its_timeout(tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with roles() as cluster:
        shuffle = await cluster.start("shuffle-service", "--port", "0",
                                      "--dir", str(tmp_path / "shuffle"))
        worker = await cluster.worker(nowhere, shuffle.url, tmp_path, "w-alone",
                                      "--heartbeat-interval", "0.2", "--connect-timeout", "3")
        started = time.monotonic()
        code = await worker.wait(30)
        assert code == 1
        assert time.monotonic() - started < 20
        said = lines_with(worker, "cannot reach the master")
        assert len(said) == 1 and nowhere in said[0]  # one line, however many retries
        assert lines_with(worker, "gives up") and lines_with(worker, "--connect-timeout")


async def test_a_refused_secret_is_said_once_and_a_returning_master_is_noticed(tmp_path):
    async with roles() as cluster:
        master = await cluster.start("master", "--port", "0", "--worker-timeout", "5")
        shuffle = await cluster.start("shuffle-service", "--port", "0",
                                      "--dir", str(tmp_path / "shuffle"))
        wrong = await cluster.worker(master.url, shuffle.url, tmp_path, "w-wrong",
                                     "--heartbeat-interval", "0.2",
                                     env={"AIOSPARK_SECRET": "not-the-secret"})
        await wait_until(lambda: lines_with(wrong, "refused the cluster secret"), 20,
                         "the refusal logged")
        good = await cluster.worker(master.url, shuffle.url, tmp_path, "w-good",
                                    "--heartbeat-interval", "0.2")
        # The wrong worker keeps retrying (backing off from 0.05 s) while the good one
        # starts and serves: the refusal is still said once.
        await wait_until(lambda: lines_with(good, "serving at"), 20, "the good worker serving")
        assert len(lines_with(wrong, "refused the cluster secret")) == 1

        # The master goes away, then comes back on the same port: one line each way.
        port = master.url.rsplit(":", 1)[1]
        master.signal(9)
        await master.wait(10)
        await wait_until(lambda: lines_with(good, "cannot reach the master"), 20,
                         "the lost master logged")
        await cluster.start("master", "--port", port, "--worker-timeout", "5", name="again")
        await wait_until(lambda: lines_with(good, "reached the master"), 20,
                         "the returning master logged")
        assert len(lines_with(good, "cannot reach the master")) == 1


async def test_a_driver_refused_by_the_master_fails_at_once_naming_the_secret(tmp_path,
                                                                             monkeypatch):
    async with roles() as cluster:
        url, _ = await cluster.cluster(tmp_path, workers=0)
        monkeypatch.setenv("AIOSPARK_SECRET", "not-the-secret")
        started = time.monotonic()
        with pytest.raises(ClusterError, match=r"refused the cluster secret \(401\)"):
            await aiospark.Context(url).start()
        assert time.monotonic() - started < 10  # not 50 retries
