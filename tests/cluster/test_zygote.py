"""The zygote: processes forked on request, followed to their exit, and spawning without it.

The first tests drive a zygote serving small test mains (``zygote_mains.py``);
the others the embedded cluster's own.
"""

from __future__ import annotations

import asyncio
import json
import operator
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import aiospark
from aiospark.zygote.client import (
    UNKNOWN_EXIT,
    ForkFailed,
    request_fork,
    request_fork_async,
)
from tests.cluster.zygote_mains import ZYGOTE
from tests.conftest import pid_alive, wait_until

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


@pytest.fixture
def zygote():
    """A zygote serving ``zygote_mains.MAINS``: ``(socket path, its Popen)``."""
    directory = tempfile.mkdtemp(prefix="zygote-test-")
    path = os.path.join(directory, "z.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(16)
    fd = listener.fileno()
    proc = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE, str(fd), str(os.getpid()), " " * 256],
        pass_fds=(fd,), cwd=ROOT, stdin=subprocess.DEVNULL,
    )
    listener.close()
    try:
        yield path, proc
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def test_a_forked_process_reports_its_exit_code(zygote):
    path, _ = zygote
    proc = request_fork(path, ["-m", "exit", "3"], [], None)
    assert proc.wait(timeout=30) == 3
    assert proc.poll() == 3


def test_the_fds_sent_are_at_the_numbers_named(zygote):
    path, _ = zygote
    r, w = os.pipe()
    try:
        proc = request_fork(path, ["-m", "write", str(w), "hello"], [w], {})
        os.close(w)
        assert proc.wait(timeout=30) == 0
        assert os.read(r, 16) == b"hello"
        assert os.read(r, 16) == b"", "the zygote kept no copy of the pipe's end"
    finally:
        os.close(r)


def test_a_request_gives_the_whole_environment_or_keeps_the_zygotes(zygote):
    path, _ = zygote
    for env, expected in (({"ONLY_THIS": "1"}, "ONLY_THIS"), (None, "PATH")):
        r, w = os.pipe()
        try:
            proc = request_fork(path, ["-m", "env", str(w)], [w], env)
            os.close(w)
            assert proc.wait(timeout=30) == 0
            names = os.read(r, 1 << 16).decode().split()
            assert expected in names
            assert (names == ["ONLY_THIS"]) == (env is not None)
        finally:
            os.close(r)


async def test_a_forked_process_is_named_signalled_and_seen_to_die(zygote):
    path, proc_zygote = zygote
    proc = request_fork(path, ["-m", "sleep"], [], {})
    assert _ppid(proc.pid) == proc_zygote.pid
    await wait_until(lambda: _cmdline(proc.pid).startswith(f"{sys.executable} -m sleep "), 10,
                     "its command line")
    assert proc.poll() is None
    proc.kill()
    assert proc.wait(timeout=30) == -signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        proc.kill()


async def test_an_awaited_process_wakes_every_waiter(zygote):
    path, _ = zygote
    proc = await request_fork_async(path, ["-m", "sleep"], [], {})
    waiters = [asyncio.ensure_future(proc.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    proc.terminate()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 30) == [-signal.SIGTERM] * 2


def test_without_its_zygote_a_forked_process_is_still_followed(zygote):
    path, proc_zygote = zygote
    proc = request_fork(path, ["-m", "sleep"], [], {})
    proc_zygote.kill()
    proc_zygote.wait()
    assert proc.poll() is None, "it outlives the zygote"
    proc.kill()
    assert proc.wait(timeout=30) == UNKNOWN_EXIT  # the code went with the zygote
    with pytest.raises(ForkFailed):
        request_fork(path, ["-m", "exit", "0"], [], {})


def test_a_request_the_zygote_cannot_serve_is_refused(zygote):
    path, _ = zygote
    with pytest.raises(ForkFailed, match="refused"):
        request_fork(path, ["-m", "nothing-of-the-kind"], [], {})
    assert request_fork(path, ["-m", "exit", "0"], [], {}).wait(timeout=30) == 0


def _executor_of(supervisor_pid: int) -> int | None:
    """The executor process of the worker whose supervisor is ``supervisor_pid``."""
    worker_id = _cmdline(supervisor_pid).split("--worker-id ")[1].split()[0]
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != supervisor_pid:
            try:
                line = _cmdline(int(entry))
            except OSError:
                continue
            if "-m aiospark.worker " in line and f'"worker_id": "{worker_id}"' in line:
                return int(entry)
    return None


async def test_the_embedded_cluster_forks_every_role_from_its_zygote():
    async with aiospark.Context(workers=2) as ctx:
        cluster = ctx._cluster
        zygote_pid = cluster.zygote.pid
        for name, pid in cluster.pids().items():
            assert _ppid(pid) == zygote_pid, name
            role = name.split("-")[0] if name.startswith("worker") else name
            assert f"-m aiospark {role} " in _cmdline(pid)
        executor = _executor_of(cluster.pids()["worker-0"])
        assert executor is not None and _ppid(executor) == zygote_pid
        # A forked worker killed is seen to die (with its exit code) and forked again.
        victim = cluster.processes["worker-0"]
        os.kill(victim.pid, signal.SIGKILL)
        await wait_until(lambda: cluster.processes["worker-0"].pid != victim.pid
                         and len(ctx._scheduler.links) == 2, 30, "the replacement worker")
        assert victim.returncode == -signal.SIGKILL
        assert _ppid(cluster.processes["worker-0"].pid) == zygote_pid
        assert await ctx.parallelize(range(100), 4).map(lambda x: (x % 3, x)).reduce_by_key(
            operator.add).count() == 3


async def test_roles_and_executors_are_spawned_once_the_zygote_is_gone():
    async with aiospark.Context(workers=2) as ctx:
        cluster = ctx._cluster
        zygote_pid = cluster.zygote.pid
        os.kill(zygote_pid, signal.SIGKILL)
        await wait_until(lambda: not pid_alive(zygote_pid), 10, "the zygote to die")
        # A worker forked before still restarts its executor: spawned now.
        supervisor = cluster.pids()["worker-1"]
        executor = _executor_of(supervisor)
        assert executor is not None
        os.kill(executor, signal.SIGKILL)
        await wait_until(lambda: _executor_of(supervisor) not in (None, executor), 30,
                         "a new executor")
        assert _ppid(_executor_of(supervisor)) == supervisor
        # A forked role killed now is still seen to die, and is spawned again.
        victim = cluster.processes["worker-0"]
        os.kill(victim.pid, signal.SIGKILL)
        await wait_until(lambda: cluster.processes["worker-0"].pid != victim.pid, 30,
                         "the replacement worker")
        assert _ppid(cluster.processes["worker-0"].pid) == os.getpid()
        await wait_until(lambda: len(ctx._scheduler.links) == 2, 30, "both workers")
        assert await ctx.parallelize(range(100), 4).map(lambda x: (x % 3, x)).reduce_by_key(
            operator.add).count() == 3


DRIVER = """
import asyncio, json, os, aiospark

def below(pid):
    kids = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(entry))
            except OSError:
                pass
    found, stack = [], list(kids.get(pid, []))
    while stack:
        found.append(stack.pop())
        stack.extend(kids.get(found[-1], []))
    return found

async def main():
    ctx = await aiospark.Context(workers=2).start()
    assert await ctx.parallelize(range(10), 2).sum() == 45
    print(json.dumps({"zygote": ctx._cluster.zygote.pid, "all": below(os.getpid())}), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_the_zygote_and_everything_it_forked_exit_with_the_driver():
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True)
    info = None
    try:
        line = await asyncio.wait_for(asyncio.to_thread(driver.stdout.readline), 60)
        info = json.loads(line)
    finally:
        driver.kill()
        driver.wait()
    assert info is not None, "the driver did not start its cluster"
    assert info["zygote"] in info["all"] and len(info["all"]) >= 7  # zygote, 4 roles, 2 executors
    await wait_until(lambda: not any(pid_alive(p) for p in info["all"]), 15, "all to exit")


async def test_forking_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("AIOSPARK_FORK", "0")
    async with aiospark.Context(workers=1) as ctx:
        assert ctx._cluster.zygote is None
        for name, pid in ctx._cluster.pids().items():
            assert _ppid(pid) == os.getpid(), name
        assert await ctx.parallelize(range(10), 2).sum() == 45
