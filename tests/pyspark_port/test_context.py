"""Port of PySpark 4.3's ``pyspark/tests/test_context.py``.

Checkpoint and file-shipping tests share one context of this module (shipped
modules stay importable in its workers); the tests about a context's own life
start their own.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import zipfile

import pytest
import pytest_asyncio

import aiospark
from aiospark import files
from aiospark.errors import AiosparkError
from tests.conftest import hold_until, wait_for_idle, wait_until
from tests.pyspark_port.marks import (
    needs_jvm,
    not_applicable,
)

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

USERLIBRARY = 'class UserClass:\n    def hello(self):\n        return "Hello World!"\n'


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own():
    """This module's context: files shipped to its workers stay there."""
    async with aiospark.Context(workers=2) as context:
        yield context


@pytest.fixture
def driver_path():
    """Restore the driver's import path and modules after a test that extends them."""
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        del sys.modules[name]
    importlib.invalidate_caches()


# -- CheckpointTests ------------------------------------------------------------------


# CheckpointTests.test_basic_checkpointing -- differs: get_checkpoint_dir() is the
# directory given (PySpark: a subdirectory per application, with a "file:" prefix).
async def test_basic_checkpointing(own, tmp_path):
    own.set_checkpoint_dir(str(tmp_path / "ckpt"))
    flat_mapped = own.parallelize([1, 2, 3, 4]).flat_map(lambda x: range(1, x + 1))
    assert not flat_mapped.is_checkpointed()
    assert flat_mapped.get_checkpoint_file() is None
    assert own.get_checkpoint_dir() is not None

    flat_mapped.checkpoint()
    result = await flat_mapped.collect()
    assert flat_mapped.is_checkpointed()
    assert await flat_mapped.collect() == result
    assert os.path.dirname(flat_mapped.get_checkpoint_file()) == str(tmp_path / "ckpt")
    assert own.get_checkpoint_dir() == os.path.dirname(flat_mapped.get_checkpoint_file())


# CheckpointTests.test_checkpoint_and_restore -- adapted: PySpark reads the checkpoint
# back with the private sc._checkpointFile; aiospark's checkpoint files are pickle
# files, read back with pickle_file.
async def test_checkpoint_and_restore(own, tmp_path):
    own.set_checkpoint_dir(str(tmp_path / "ckpt"))
    flat_mapped = own.parallelize([1, 2, 3, 4]).flat_map(lambda x: [x])
    assert not flat_mapped.is_checkpointed()
    assert flat_mapped.get_checkpoint_file() is None
    flat_mapped.checkpoint()
    await flat_mapped.count()  # forces a checkpoint to be computed
    assert flat_mapped.get_checkpoint_file() is not None
    recovered = own.pickle_file(flat_mapped.get_checkpoint_file())
    assert await recovered.collect() == [1, 2, 3, 4]


# -- LocalCheckpointTests -------------------------------------------------------------


# LocalCheckpointTests.test_basic_localcheckpointing
async def test_basic_localcheckpointing(own):
    flat_mapped = own.parallelize([1, 2, 3, 4]).flat_map(lambda x: range(1, x + 1))
    assert not flat_mapped.is_checkpointed()
    assert not flat_mapped.is_locally_checkpointed()
    flat_mapped.local_checkpoint()
    result = await flat_mapped.collect()
    assert flat_mapped.is_checkpointed()
    assert flat_mapped.is_locally_checkpointed()
    assert await flat_mapped.collect() == result


# -- AddFileTests ---------------------------------------------------------------------


# AddFileTests.test_add_py_file
async def test_add_py_file(own, tmp_path):
    def func(x):
        from userlibrary import UserClass

        return UserClass().hello()

    with pytest.raises(ModuleNotFoundError):
        await own.parallelize(range(2)).map(func).first()
    (tmp_path / "userlibrary.py").write_text(USERLIBRARY)
    own.add_py_file(str(tmp_path / "userlibrary.py"))
    assert await own.parallelize(range(2)).map(func).first() == "Hello World!"


# AddFileTests.test_add_file_locally -- differs: in the driver, files.get gives the
# path that was added (PySpark: a copy in its SparkFiles directory); tasks get a copy.
async def test_add_file_locally(own, tmp_path):
    path = tmp_path / "hello.txt"
    path.write_text("Hello World!\n")
    own.add_file(str(path))
    with open(files.get("hello.txt")) as test_file:
        assert test_file.readline() == "Hello World!\n"

    def read(_):
        from aiospark import files

        with open(files.get("hello.txt")) as f:
            return files.get("hello.txt"), f.readline()

    [(download_path, line)] = await own.parallelize([0], 1).map(read).collect()
    assert download_path != str(path)
    assert line == "Hello World!\n"


# AddFileTests.test_add_file_recursively_locally -- read in a task (see above).
async def test_add_file_recursively_locally(own, tmp_path):
    (tmp_path / "hello" / "sub_hello").mkdir(parents=True)
    (tmp_path / "hello" / "hello.txt").write_text("Hello World!\n")
    (tmp_path / "hello" / "sub_hello" / "sub_hello.txt").write_text("Sub Hello World!\n")
    own.add_file(str(tmp_path / "hello"), True)

    def read(_):
        from aiospark import files

        root = files.get("hello")
        with open(root + "/hello.txt") as a, open(root + "/sub_hello/sub_hello.txt") as b:
            return root, a.readline(), b.readline()

    [(download_path, first, second)] = await own.parallelize([0], 1).map(read).collect()
    assert download_path != str(tmp_path / "hello")
    assert (first, second) == ("Hello World!\n", "Sub Hello World!\n")


# AddFileTests.test_add_py_file_locally -- differs: add_py_file ships the module to the
# workers only; the driver imports its own copy from its own path, as any module.
async def test_add_py_file_locally(own, tmp_path, driver_path):
    def func():
        from userlibrary_driver import UserClass  # noqa: F401

    with pytest.raises(ImportError):
        func()
    (tmp_path / "userlibrary_driver.py").write_text(USERLIBRARY)
    own.add_py_file(str(tmp_path / "userlibrary_driver.py"))
    with pytest.raises(ImportError):
        func()
    sys.path.insert(0, str(tmp_path))
    from userlibrary_driver import UserClass

    assert UserClass().hello() == "Hello World!"


# AddFileTests.test_add_egg_file_locally -- in a task (see test_add_py_file_locally).
async def test_add_egg_file_locally(own, tmp_path):
    def func(_):
        from userlib import UserClass

        return UserClass().hello()

    with pytest.raises(ModuleNotFoundError):
        await own.parallelize([0], 1).map(func).collect()
    archive = tmp_path / "userlib-0.1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(
            "userlib/__init__.py",
            "class UserClass:\n    def hello(self):\n"
            '        return "Hello World from inside a package!"\n',
        )
    own.add_py_file(str(archive))
    assert await own.parallelize([0], 1).map(func).collect() == [
        "Hello World from inside a package!"
    ]


# AddFileTests.test_overwrite_system_module -- a module named like a standard one
# (SimpleHTTPServer was Python 2's) is imported from the shipped file.
async def test_overwrite_system_module(own, tmp_path):
    (tmp_path / "SimpleHTTPServer.py").write_text('__name__ = "My Server"\n')
    own.add_py_file(str(tmp_path / "SimpleHTTPServer.py"))

    def func(x):
        import SimpleHTTPServer

        return SimpleHTTPServer.__name__

    assert await own.parallelize(range(1)).map(func).collect() == ["My Server"]


# -- ContextTests ---------------------------------------------------------------------


# ContextTests.test_failed_sparkcontext_creation
async def test_failed_sparkcontext_creation():
    with pytest.raises(ValueError, match="master URL"):
        async with aiospark.Context("an-invalid-master-name"):
            pass


# ContextTests.test_get_or_create
@not_applicable(
    "aiospark keeps no process-wide active context (SparkContext.getOrCreate); contexts are "
    "ordinary objects, several may run in one process"
)
async def test_get_or_create():
    pass


# ContextTests.test_parallelize_eager_cleanup
@needs_jvm("PySpark writes parallelized data to a temporary file for the JVM to read")
async def test_parallelize_eager_cleanup():
    pass


# ContextTests.test_set_conf
@needs_jvm("sets a configuration through SparkContext._jsc, the JVM SparkContext")
async def test_set_conf():
    pass


# ContextTests.test_stop -- adapted: aiospark has no SparkContext._active_spark_context;
# a stopped context refuses jobs.
async def test_stop():
    context = aiospark.Context(workers=1)
    await context.start()
    assert await context.parallelize([1, 2]).count() == 2
    await context.stop()
    with pytest.raises(RuntimeError):
        await context.parallelize([1, 2]).count()


# ContextTests.test_with -- ``async with`` (as test_stop).
async def test_with():
    async with aiospark.Context(workers=1) as context:
        assert context.master is None  # an embedded cluster (docs/migration.md, `master`)
        assert await context.parallelize([1]).count() == 1
    with pytest.raises(RuntimeError):
        await context.parallelize([1]).count()


# ContextTests.test_with_exception
async def test_with_exception():
    context = aiospark.Context(workers=1)
    with pytest.raises(ZeroDivisionError):
        async with context:
            assert await context.parallelize([1]).count() == 1
            raise ZeroDivisionError
    with pytest.raises(RuntimeError):
        await context.parallelize([1]).count()


# ContextTests.test_with_stop
async def test_with_stop():
    async with aiospark.Context(workers=1) as context:
        assert await context.parallelize([1]).count() == 1
        await context.stop()
    with pytest.raises(RuntimeError):
        await context.parallelize([1]).count()


# ContextTests.test_progress_api -- a gate file instead of a 100 s sleep.
async def test_progress_api(tmp_path):
    gate = str(tmp_path / "open")
    async with aiospark.Context(workers=2) as context:
        rdd = context.parallelize(range(10)).map(lambda x: hold_until(gate))
        context.set_job_group("test_progress_api", "", True)
        job = asyncio.create_task(rdd.count())
        try:
            tracker = context.status_tracker()
            await wait_until(
                lambda: tracker.get_job_ids_for_group("test_progress_api"), 30, "the job"
            )
            job_ids = tracker.get_job_ids_for_group("test_progress_api")
            assert len(job_ids) == 1
            info = tracker.get_job_info(job_ids[0])
            assert len(info.stage_ids) == 1
            stage = tracker.get_stage_info(info.stage_ids[0])
            assert stage.num_tasks == rdd.get_num_partitions()

            await context.cancel_all_jobs()
            open(gate, "w").close()  # the cancelled tasks may end by themselves
            with pytest.raises(AiosparkError):
                await job
            await wait_until(
                lambda: tracker.get_job_info(job_ids[0]).status == "FAILED", 30, "FAILED"
            )
            assert tracker.get_active_job_ids() == []
            assert tracker.get_active_stage_ids() == []
        finally:
            open(gate, "w").close()
            await asyncio.gather(job, return_exceptions=True)
            await wait_for_idle(context, 30)


# ContextTests.test_executor_infos
@not_applicable(
    "the status tracker has no executor infos (StatusTracker.getExecutorInfos: JVM heap "
    "and off-heap storage figures); workers report theirs on the status page"
)
async def test_executor_infos():
    pass


# ContextTests.test_startTime
async def test_start_time(ctx):
    assert ctx.start_time > 0


# ContextTests.test_forbid_insecure_gateway
@needs_jvm("about the py4j gateway to the JVM")
async def test_forbid_insecure_gateway():
    pass


# ContextTests.test_resources
@not_applicable("aiospark has no resource discovery (SparkContext.resources: GPUs, FPGAs)")
async def test_resources():
    pass


# ContextTests.test_disallow_to_create_spark_context_in_executors
@not_applicable(
    "a Context made in a task is an independent driver of its own; aiospark does not forbid "
    "it (PySpark with spark.executor.allowSparkContext=true, see the next test)"
)
async def test_disallow_to_create_spark_context_in_executors():
    pass


# ContextTests.test_allow_to_create_spark_context_in_executors -- aiospark always allows
# it; the Context is only made, not started.
async def test_allow_to_create_spark_context_in_executors(ctx):
    def create_context(_):
        return type(aiospark.Context(workers=1)).__name__

    assert await ctx.range(2).map(create_context).collect() == ["Context", "Context"]


# -- ContextTestsWithResources --------------------------------------------------------


# ContextTestsWithResources.test_resources
@not_applicable("aiospark has no resource discovery (spark.driver.resource.gpu.*)")
async def test_resources_with_resources():
    pass
