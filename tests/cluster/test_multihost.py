"""A standalone cluster spread over network namespaces; one worker's cable is pulled mid-job.

Runs only as root (it builds a lab with ``tests.netns``).  Namespace ``a`` holds the
master, ``b`` and ``c`` each hold one "host": a shuffle service with its own directory
and a worker using it.  The test process is the driver, on the lab's bridge.

While a shuffle job runs, worker c's link goes down for longer than the master's
worker timeout: the master and the driver drop c, c's running map task reruns on b,
and the reducers that read c's map outputs from c's (unreachable) shuffle service get
a fetch failure, so those outputs are recomputed.  Then the link comes back: the job's
result is exact, c (the same process) registers again, and the next job uses both
workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

import aiospark
from tests import netns
from tests.conftest import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(90)]

SECRET = "multihost-test-secret"
WORKER_TIMEOUT = 3.0
MASTER_PORT, WORKER_PORT, SHUFFLE_PORT = 7077, 7078, 7337
REPO_ROOT = Path(__file__).resolve().parents[2]
SERVING = re.compile(r"serving (?:\S+ )?at (http://\S+)")


def parent_of(pid: int) -> int:
    """The parent process id of ``pid`` (a worker's executor's parent is its supervisor)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return int(stat[stat.rfind(b")") + 2 :].split()[1])


@pytest.fixture
def lab():
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    lab = netns.Lab(["a", "b", "c"])
    try:
        try:
            lab.create()
        except netns.LabUnavailable as exc:
            pytest.skip(f"cannot build a network-namespace lab here: {exc}")
        yield lab
    finally:
        lab.close()


class Processes:
    """Cluster roles started inside the lab's namespaces, each logging to its own file."""

    def __init__(self, lab: netns.Lab, root: Path) -> None:
        self.lab = lab
        self.root = root
        self.procs: dict[str, tuple[subprocess.Popen, Path]] = {}

    def start(self, name: str, host: str, role: str, *args: str) -> None:
        log_path = self.root / f"{name}.log"
        env = {
            **os.environ,
            "AIOSPARK_SECRET": SECRET,
            "PYTHONHASHSEED": "0",  # the worker would re-exec itself to set it otherwise
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p
            ),
        }
        argv = [
            sys.executable, "-m", "aiospark", role, "--log-level", "INFO",
            "--host", self.lab.address(host),
            # `ip netns exec` execs in place, so this test process is the role's parent:
            # should the test process die, the roles exit too.
            "--parent-pid", str(os.getpid()),
            *args,
        ]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                self.lab.exec_argv(host, argv), env=env, cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = (proc, log_path)

    async def wait_serving(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for name, (proc, log_path) in self.procs.items():
            while not SERVING.search(log_path.read_text(errors="replace")):
                if proc.poll() is not None:
                    pytest.fail(f"{name} exited with {proc.returncode}\n{self.logs()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{name} did not start serving in {timeout}s\n{self.logs()}")
                await asyncio.sleep(0.05)

    def logs(self) -> str:
        parts = []
        for name, (_, log_path) in self.procs.items():
            with contextlib.suppress(OSError):
                text = log_path.read_text(errors="replace")
                parts.append(f"----- {name} -----\n{text[-4000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for proc, _ in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc, _ in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def processes(lab, tmp_path):
    procs = Processes(lab, tmp_path)
    try:
        yield procs
    finally:
        procs.stop()
        print(procs.logs())  # shown by pytest when the test failed


async def _status(session: aiohttp.ClientSession, master_url: str) -> dict:
    async with session.get(f"{master_url}/v1/status") as resp:
        resp.raise_for_status()
        return await resp.json()


async def _wait_for_members(
    session: aiohttp.ClientSession, master_url: str, wanted: set[str], timeout: float, what: str
) -> dict:
    """Poll the master's status until exactly ``wanted`` workers are listed; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = await _status(session, master_url)
            if {w["worker_id"] for w in status["workers"]} == wanted:
                return status
        except (aiohttp.ClientError, OSError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_worker_cut_off_mid_job_is_recovered_from_and_rejoins(lab, processes, tmp_path):
    tag = lab.tag
    worker_b, worker_c = f"{tag}-wb", f"{tag}-wc"
    master_url = f"http://{lab.address('a')}:{MASTER_PORT}"
    processes.start("master", "a", "master", "--port", str(MASTER_PORT),
                    "--worker-timeout", str(WORKER_TIMEOUT))
    for host, worker_id in (("b", worker_b), ("c", worker_c)):
        shuffle_dir = tmp_path / f"shuffle-{host}"
        processes.start(f"shuffle-{host}", host, "shuffle-service",
                        "--port", str(SHUFFLE_PORT), "--dir", str(shuffle_dir))
        processes.start(
            f"worker-{host}", host, "worker", "--port", str(WORKER_PORT),
            "--master", master_url, "--worker-id", worker_id,
            "--shuffle-url", f"http://{lab.address(host)}:{SHUFFLE_PORT}",
            "--shuffle-dir", str(shuffle_dir), "--work-dir", str(tmp_path / f"work-{host}"),
        )
    await processes.wait_serving()

    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {SECRET}"},
        timeout=aiohttp.ClientTimeout(total=2),
    ) as http:
        status = await _wait_for_members(http, master_url, {worker_b, worker_c}, 20,
                                         "both workers to register")
        pids = {w["worker_id"]: w["pid"] for w in status["workers"]}  # their executors'
        assert parent_of(pids[worker_c]) == processes.procs["worker-c"][0].pid, (
            "`ip netns exec` forked instead of exec'ing: --parent-pid would not hold"
        )

        async with aiospark.Context(f"aiospark://{lab.address('a')}:{MASTER_PORT}",
                                    secret=SECRET) as ctx:
            links = ctx._scheduler.links
            await wait_until(lambda: set(links) == {worker_b, worker_c}, 20,
                             "the driver to connect to both workers")
            stream = ctx.progress()
            events: list[dict] = []

            def seen(event: str, **fields) -> list[dict]:
                events.extend(stream.drain())
                return [e for e in events if e["event"] == event
                        and all(e.get(k) == v for k, v in fields.items())]

            # 40 map tasks of ~0.1 s each, then a shuffle: plenty still to do at the cut.
            def slow_pairs(records):
                for x in records:
                    time.sleep(0.01)
                    yield x % 13, x

            data = range(400)
            expected = {k: sum(x for x in data if x % 13 == k) for k in range(13)}
            job = asyncio.create_task(
                ctx.parallelize(data, 40).map_partitions(slow_pairs)
                .reduce_by_key(operator.add).collect()
            )
            # Cut c once it has finished a map task (so its shuffle service holds an
            # output the reducers need) and while the job is still running.
            await wait_until(lambda: seen("task_finished", worker_id=worker_c) or job.done(),
                             20, "worker c to finish a map task")
            assert not job.done(), f"the job ended before the cut: {job.result()!r}"
            lab.cut("c")
            cut_at = time.monotonic()
            map_stage = seen("task_finished", worker_id=worker_c)[0]["stage_id"]
            on_c = {e["partition"] for e in seen("task_finished", worker_id=worker_c)}

            await _wait_for_members(http, master_url, {worker_b}, WORKER_TIMEOUT + 5,
                                    "the master to drop the cut-off worker")
            lost_after = time.monotonic() - cut_at
            # Not at once: only when its last heartbeat (at most 1 s before the cut) is stale.
            assert lost_after > WORKER_TIMEOUT - 1.5
            await wait_until(lambda: worker_c not in links, 5, "the driver to drop worker c")
            # Keep c away until a reducer failed to fetch c's map output (the connect to
            # c's shuffle service times out), so those outputs must be recomputed.
            await wait_until(lambda: seen("task_failed", reason="fetch_failed") or job.done(),
                             30, "a reducer's fetch failure")
            assert not job.done(), f"the job ended without c's map outputs: {job.result()!r}"
            failed_after = time.monotonic() - cut_at
            assert failed_after > WORKER_TIMEOUT
            lab.restore("c")
            restored_at = time.monotonic()
            first_failure = next(i for i, e in enumerate(events) if e["event"] == "task_failed"
                                 and e.get("reason") == "fetch_failed")

            result = await asyncio.wait_for(job, 40)
            assert len(result) == len(expected)
            assert dict(result) == expected
            # Map outputs c had written were computed again after the fetch failure.
            seen("job_finished")
            recomputed = {e["partition"] for e in events[first_failure:]
                          if e["event"] == "task_finished" and e["stage_id"] == map_stage}
            assert recomputed & on_c, (on_c, recomputed)

            # c comes back on its own: the same process registers again.
            status = await _wait_for_members(http, master_url, {worker_b, worker_c}, 30,
                                             "worker c to register again")
            rejoin = time.monotonic() - restored_at
            assert {w["worker_id"]: w["pid"] for w in status["workers"]} == pids
            await wait_until(lambda: set(links) == {worker_b, worker_c}, 20,
                             "the driver to reconnect to worker c")

            def where(x):
                time.sleep(0.05)
                return os.getpid()

            ran_on = set(await asyncio.wait_for(
                ctx.parallelize(range(40), 40).map(where).collect(), 30
            ))
            assert ran_on == {pids[worker_b], pids[worker_c]}
            stream.close()
        print(f"\nafter the cut: worker lost at {lost_after:.1f}s, fetch failure at "
              f"{failed_after:.1f}s; rejoined {rejoin:.1f}s after the restore")
