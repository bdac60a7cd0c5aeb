"""Port of PySpark 4.3's ``pyspark/tests/test_worker.py``.

PySpark's Python workers are aiospark's executors: subprocesses of a worker,
reused from task to task.  ``SimpleWorkerTests`` and
``WorkerSegfaultNonDaemonTest`` rerun other classes' tests without PySpark's
fork daemon; aiospark has one way of starting executors, so those reruns are not
counted again.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

import aiospark
from aiospark.errors import AiosparkError, JobCancelled, UserCodeError
from tests.conftest import hold_until, pid_alive, wait_for_idle, wait_until
from tests.pyspark_port.marks import not_applicable

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


# WorkerTests.test_cancel_task -- a gate file instead of a 100 s sleep; the task ignores
# cancellation, so its executor is killed, and its worker (PySpark: the daemon) lives.
async def test_cancel_task(tmp_path):
    path, gate = str(tmp_path / "pids"), str(tmp_path / "open")

    def stuck(x):
        with open(path + ".tmp", "w") as f:
            f.write(f"{os.getppid()} {os.getpid()}")
        os.rename(path + ".tmp", path)
        hold_until(gate, 100)

    async with aiospark.Context(workers=1) as context:
        job = asyncio.create_task(context.parallelize(range(1), 1).foreach(stuck))
        try:
            await wait_until(lambda: os.path.exists(path), 60, "the task to start")
            with open(path) as f:
                daemon_pid, worker_pid = map(int, f.read().split())
            await context.cancel_all_jobs()
            with pytest.raises(JobCancelled):
                await job
            await wait_until(lambda: not pid_alive(worker_pid), 30, "the executor to be killed")
            assert pid_alive(daemon_pid)
        finally:
            open(gate, "w").close()
            await asyncio.gather(job, return_exceptions=True)
        assert await context.parallelize(range(100), 1).map(str).count() == 100


# WorkerTests.test_after_exception
async def test_after_exception(ctx):
    def raise_exception(_):
        raise RuntimeError()

    rdd = ctx.parallelize(range(100), 1)
    with pytest.raises(RuntimeError):
        await rdd.foreach(raise_exception)
    assert await rdd.map(str).count() == 100


# WorkerTests.test_after_non_exception_error
async def test_after_non_exception_error(ctx):
    def raise_system_exit(_):
        raise SystemExit()

    rdd = ctx.parallelize(range(100), 1)
    with pytest.raises(UserCodeError, match="SystemExit"):
        await rdd.foreach(raise_system_exit)
    assert await rdd.map(str).count() == 100


# WorkerTests.test_after_jvm_exception -- the failure is the input file's disappearance
# (an error raised by aiospark's reader, where PySpark's is the JVM's).
async def test_after_jvm_exception(ctx, tmp_path):
    path = tmp_path / "input.txt"
    path.write_bytes(b"Hello World!")
    filtered = ctx.text_file(str(path), 1).filter(lambda x: True)
    assert await filtered.count() == 1
    os.unlink(path)
    with pytest.raises(FileNotFoundError):
        await filtered.count()
    assert await ctx.parallelize(range(100), 1).map(str).count() == 100


# WorkerTests.test_accumulator_when_reuse_worker
async def test_accumulator_when_reuse_worker(ctx):
    acc1 = ctx.accumulator(0)
    await ctx.parallelize(range(100), 20).foreach(lambda x: acc1.add(x))
    assert acc1.value == sum(range(100))
    acc2 = ctx.accumulator(0)
    await ctx.parallelize(range(100), 20).foreach(lambda x: acc2.add(x))
    assert acc2.value == sum(range(100))
    assert acc1.value == sum(range(100))


# WorkerTests.test_reuse_worker_after_take -- an asyncio bound instead of a thread join.
async def test_reuse_worker_after_take(ctx):
    rdd = ctx.parallelize(range(100000), 1)
    assert await rdd.first() == 0
    assert await asyncio.wait_for(rdd.count(), 60) == 100000
    assert await rdd.count() == 100000


# WorkerTests.test_with_different_versions_of_python
@not_applicable(
    "PySpark's driver tells its JVM-launched workers its Python version (sc.pythonVer) and "
    "they refuse another; aiospark's executors are started by its own workers, and tasks "
    "are pickled with cloudpickle, which needs the same Python on both sides"
)
async def test_with_different_versions_of_python():
    pass


# WorkerTests.test_python_exception_non_hanging
async def test_python_exception_non_hanging(ctx):
    def f():
        raise RuntimeError("exception with 中 and \xd6\xd0")

    with pytest.raises(RuntimeError, match="exception with 中"):
        await ctx.parallelize([1]).map(lambda x: f()).count()


# WorkerReuseTest.test_reuse_worker_of_parallelize_range
async def test_reuse_worker_of_parallelize_range(ctx):
    rdd = ctx.parallelize(range(20), 8)
    previous_pids = await rdd.map(lambda x: os.getpid()).collect()
    current_pids = await rdd.map(lambda x: os.getpid()).collect()
    assert set(current_pids) <= set(previous_pids)


# WorkerMemoryTest.test_memory_limit
@not_applicable(
    "spark.executor.pyspark.memory sets RLIMIT_AS on Python workers; aiospark's "
    "worker_memory is a budget its executors spill against, not an address-space limit"
)
async def test_memory_limit():
    pass


# WorkerMemoryFractionalTaskCpusTest.test_memory_limit_split_across_fractional_task_slots
@not_applicable("no RLIMIT_AS (see test_memory_limit) and no fractional spark.task.cpus")
async def test_memory_limit_split_across_fractional_task_slots():
    pass


# WorkerSegfaultTest.test_python_segfault -- differs: PySpark's error says "Segmentation
# fault"; aiospark's job fails as its executor is lost (its worker's log names the exit
# code), and the worker starts a fresh executor for the next job.
async def test_python_segfault():
    def f():
        import ctypes

        ctypes.string_at(0)

    async with aiospark.Context(workers=1, max_task_attempts=1) as context:
        with pytest.raises(AiosparkError, match="lost connection"):
            await context.parallelize([1]).map(lambda x: f()).count()
        assert await asyncio.wait_for(context.parallelize(range(10), 2).count(), 60) == 10


# WorkerPoolCrashTest.test_worker_crash -- SIGTERM to all executors but one while they
# idle; the next job still runs.
async def test_worker_crash():
    async with aiospark.Context(workers=3) as context:
        rdd = context.parallelize(range(20), 4)
        worker_pids1 = set(await rdd.map(lambda x: os.getpid()).collect())
        worker_pids2 = set(await rdd.map(lambda x: os.getpid()).collect())
        assert worker_pids1 == worker_pids2
        await wait_for_idle(context, 30)
        for pid in sorted(worker_pids1)[1:]:
            os.kill(pid, signal.SIGTERM)
        await wait_until(
            lambda: not any(pid_alive(p) for p in sorted(worker_pids1)[1:]), 30, "the kills"
        )
        assert len(await asyncio.wait_for(rdd.map(lambda x: os.getpid()).collect(), 120)) == 20
