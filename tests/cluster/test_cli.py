"""A cluster run with the ``aiospark`` command line: workers and shuffle services
joining and leaving while jobs run, draining on SIGTERM, and structured logs.

Tasks that must be running at a given moment wait on a gate file the test opens
(``gated``): each writes ``started-<pid>-<partition>`` first, so the test knows
which worker runs what.
"""

from __future__ import annotations

import asyncio
import json
import operator
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import aiospark
from tests.cluster.cli_processes import SECRET, roles
from tests.conftest import hold_until, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]

DATA = range(400)
BY_KEY = {k: sum(x for x in DATA if x % 7 == k) for k in range(7)}


def gated(folder: str):
    """A ``map_partitions_with_index`` function whose tasks wait for ``folder/open``."""

    def run(index, records):
        Path(folder, f"started-{os.getpid()}-{index}").touch()
        if not hold_until(os.path.join(folder, "open"), 120):
            raise TimeoutError("the test never opened the gate")
        yield from records

    return run


def started(folder: Path, pid: int) -> set[int]:
    """Partitions whose gated task started in process ``pid``."""
    return {int(p.name.rsplit("-", 1)[1]) for p in folder.glob(f"started-{pid}-*")}


def keyed_sums(ctx, gate: Path, partitions: int = 8):
    """A shuffle job over ``DATA`` whose map tasks wait on ``gate``."""
    return (ctx.parallelize(DATA, partitions).map_partitions_with_index(gated(str(gate)))
            .map(lambda x: (x % 7, x)).reduce_by_key(operator.add).collect())


def finished_on(events: list[dict], worker_id: str) -> set[int]:
    return {e["partition"] for e in events
            if e["event"] == "task_finished" and e["worker_id"] == worker_id}


async def test_workers_and_shuffle_services_join_and_leave_while_jobs_run(tmp_path):
    gates = [tmp_path / f"gate{i}" for i in range(3)]
    for gate in gates:
        gate.mkdir()
    # Reducers read through the shuffle service even on this host.
    worker_env = {"AIOSPARK_SHUFFLE_LOCAL_READS": "0"}
    async with roles() as cluster:
        master = await cluster.start("master", "--port", "0", "--worker-timeout", "5")
        shuffle = await cluster.start("shuffle-service", "--port", "0",
                                      "--dir", str(tmp_path / "shuffle"))
        a = await cluster.worker(master.url, shuffle.url, tmp_path, "join-a", env=worker_env)
        async with aiospark.Context(master.url, secret=SECRET) as ctx:
            links = ctx._scheduler.links
            await wait_until(lambda: set(links) == {"join-a"}, 20, "worker a")
            stream = ctx.progress()

            # A worker started while a job runs takes some of its tasks.
            job = asyncio.create_task(keyed_sums(ctx, gates[0]))
            await wait_until(lambda: started(gates[0], a.task_pid), 30, "a to start a task")
            b = await cluster.worker(master.url, shuffle.url, tmp_path, "join-b", env=worker_env)
            await wait_until(lambda: started(gates[0], b.task_pid), 30,
                             "the new worker's first task")
            (gates[0] / "open").touch()
            assert dict(await asyncio.wait_for(job, 60)) == BY_KEY
            assert finished_on(stream.drain(), "join-b")

            # A worker killed while a job runs does not break it.
            job = asyncio.create_task(keyed_sums(ctx, gates[1]))
            await wait_until(
                lambda: started(gates[1], a.task_pid) and started(gates[1], b.task_pid), 30,
                "both workers to start a task")
            b.signal(signal.SIGKILL)
            await wait_until(lambda: "join-b" not in links, 20, "the driver to drop b")
            (gates[1] / "open").touch()
            assert dict(await asyncio.wait_for(job, 60)) == BY_KEY

            # The shuffle service leaves and a new one takes its place (same port and
            # directory): map outputs written before are served again.
            pairs = ctx.parallelize(DATA, 4).map(lambda x: (x % 7, x)).partition_by(3).cache()
            assert await pairs.count() == len(DATA)
            shuffle.signal(signal.SIGTERM)
            assert await shuffle.wait() == 0
            port = shuffle.url.rsplit(":", 1)[1]
            await cluster.start("shuffle-service", "--port", port,
                                "--dir", str(tmp_path / "shuffle"))
            pairs.unpersist()
            assert dict(await pairs.reduce_by_key(operator.add).collect()) == BY_KEY

            # A third worker joins a cluster that lost one and is used at once.
            c = await cluster.worker(master.url, shuffle.url, tmp_path, "join-c", env=worker_env)
            await wait_until(lambda: "join-c" in links, 20, "the driver to connect to c")
            job = asyncio.create_task(keyed_sums(ctx, gates[2], partitions=4))
            await wait_until(
                lambda: started(gates[2], a.task_pid) and started(gates[2], c.task_pid), 30,
                "a and c to start a task")
            (gates[2] / "open").touch()
            assert dict(await asyncio.wait_for(job, 60)) == BY_KEY


async def test_sigterm_drains_a_worker_which_finishes_its_tasks_and_exits_0(tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    async with roles() as cluster:
        master = await cluster.start("master", "--port", "0", "--worker-timeout", "5")
        shuffle = await cluster.start("shuffle-service", "--port", "0",
                                      "--dir", str(tmp_path / "shuffle"))
        a = await cluster.worker(master.url, shuffle.url, tmp_path, "drain-a",
                                 "--drain-timeout", "120")
        b = await cluster.worker(master.url, shuffle.url, tmp_path, "stay-b")
        async with aiospark.Context(master.url, secret=SECRET) as ctx:
            await wait_until(lambda: set(ctx._scheduler.links) == {"drain-a", "stay-b"}, 20,
                             "both workers")
            stream = ctx.progress()
            job = asyncio.create_task(keyed_sums(ctx, gate))
            await wait_until(lambda: started(gate, a.task_pid) and started(gate, b.task_pid), 30,
                             "both workers to start a task")
            running_on_a = started(gate, a.task_pid)

            a.signal(signal.SIGTERM)
            state = ctx._scheduler.state
            await wait_until(lambda: state.workers["drain-a"].draining, 20,
                             "the driver to hear that a drains")
            async with ctx._session.get(f"{a.url}/v1/ready") as resp:
                assert resp.status == 503  # not ready: draining
            assert a.proc.returncode is None  # its task still waits on the gate

            (gate / "open").touch()
            assert dict(await asyncio.wait_for(job, 60)) == BY_KEY
            assert await a.wait() == 0
            events = stream.drain()
            # a finished the task it was running instead of handing it back, and took
            # no other task after SIGTERM (launches on their way were refused).
            assert running_on_a <= finished_on(events, "drain-a")
            assert started(gate, a.task_pid) == running_on_a
            failures = [e for e in events if e["event"] == "task_failed"]
            assert all(e["reason"] == "draining" for e in failures), failures

            async def members() -> set[str]:
                async with ctx._session.get(f"{master.url}/v1/status") as resp:
                    return {w["worker_id"] for w in (await resp.json())["workers"]}

            assert await members() == {"stay-b"}, "\n".join(master.lines)
            assert await ctx.parallelize(DATA, 4).sum() == sum(DATA)
    messages = [e.get("msg", "") for e in a.events()]
    assert any(m.startswith("draining") for m in messages), messages
    assert any("left the cluster" in m for m in messages), messages


async def test_a_drain_past_its_timeout_hands_tasks_back(tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    async with roles() as cluster:
        master = await cluster.start("master", "--port", "0", "--worker-timeout", "5")
        shuffle = await cluster.start("shuffle-service", "--port", "0",
                                      "--dir", str(tmp_path / "shuffle"))
        a = await cluster.worker(master.url, shuffle.url, tmp_path, "slow-a",
                                 "--drain-timeout", "0.5")
        b = await cluster.worker(master.url, shuffle.url, tmp_path, "other-b")
        async with aiospark.Context(master.url, secret=SECRET) as ctx:
            await wait_until(lambda: len(ctx._scheduler.links) == 2, 20, "both workers")
            stream = ctx.progress()
            job = asyncio.create_task(keyed_sums(ctx, gate, partitions=4))
            await wait_until(lambda: started(gate, a.task_pid) and started(gate, b.task_pid), 30,
                             "both workers to start a task")
            handed_back = started(gate, a.task_pid)
            a.signal(signal.SIGTERM)
            assert await a.wait() == 0  # its task never finished: it was handed back
            (gate / "open").touch()
            assert dict(await asyncio.wait_for(job, 60)) == BY_KEY
            assert handed_back <= finished_on(stream.drain(), "other-b")
    assert any(e.get("msg", "").startswith("drain timeout") for e in a.events())


async def test_logs_are_one_structured_line_per_event_with_role_and_ids(tmp_path):
    async with roles() as cluster:
        master = await cluster.start("master", "--port", "0", "--log-level", "debug")
        # No shuffle service: these workers serve their own map outputs.
        plain = await cluster.start("worker", "--master", master.url, "--worker-id", "log-a",
                                    "--work-dir", str(tmp_path / "a"), name="log-a")
        as_json = await cluster.start("worker", "--master", master.url, "--worker-id", "log-b",
                                      "--work-dir", str(tmp_path / "b"), "--log-format", "json",
                                      name="log-b")
        async with aiospark.Context(master.url, secret=SECRET) as ctx:
            await wait_until(lambda: len(ctx._scheduler.links) == 2, 20, "both workers")
            pairs = ctx.parallelize(DATA, 8).map(lambda x: (x % 7, x))
            assert dict(await pairs.reduce_by_key(operator.add).collect()) == BY_KEY
            app_id = ctx.app_id
        for worker in (plain, as_json):
            worker.signal(signal.SIGTERM)
            assert await worker.wait() == 0

    for line in plain.lines:
        assert line.startswith("ts="), line
    events = plain.events() + [json.loads(line) for line in as_json.lines]
    for event in events:
        assert {"ts", "level", "role", "pid", "logger", "msg"} <= set(event), event
        assert event["role"] == "worker" and event["worker_id"] in ("log-a", "log-b"), event
    tasks = [e for e in events if e["msg"] == "task succeeded"]
    assert {e["worker_id"] for e in tasks} == {"log-a", "log-b"}
    assert all(e["app_id"] == app_id for e in tasks)
    assert len({(e["stage_id"], e["partition"]) for e in tasks}) >= 8 + 7  # map + reduce
    assert len({e["task_id"] for e in tasks}) == len(tasks)
    for event in master.events():
        assert event["role"] == "master" and event["level"] in ("debug", "info"), event
    registered = [e for e in master.events() if e["msg"].startswith("worker log-a registered")]
    assert registered and registered[0]["worker_id"] == "log-a"


async def test_listening_beyond_loopback_is_refused_at_start_up_without_a_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOSPARK_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    for role in (["master"], ["shuffle-service"], ["worker", "--master", "aiospark://127.0.0.1"]):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiospark", *role, "--host", "0.0.0.0", "--port", "0",
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 2 and out == b""
        [line] = err.decode().splitlines()
        assert line.startswith(f"aiospark {role[0]}: error: --host: refusing to listen on "
                               "0.0.0.0"), line
        assert "secret" in line
    assert not (tmp_path / "aiospark").exists()  # no local secret made either

    # With a secret (and a file only its owner reads), it serves on every interface.
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o600)
    async with roles() as cluster:
        master = await cluster.start("master", "--host", "0.0.0.0", "--port", "0",
                                     "--secret-file", str(secret_file),
                                     env={"AIOSPARK_SECRET": ""})
        assert not master.url.startswith("http://0.0.0.0")  # it advertises a reachable name
        assert not any("can be read by every user" in line for line in master.lines)
