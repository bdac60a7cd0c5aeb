"""Port of PySpark 4.3's ``pyspark/tests/test_broadcast.py``.

PySpark starts a ``local-cluster[2,1,1024]`` per test; here the tests that
need no cluster of their own share the session's (two workers, one slot each).
"""

from __future__ import annotations

import gc

import pytest

import aiospark
from aiospark.errors import AiosparkError, SerializationError
from tests.pyspark_port.marks import needs_jvm, not_applicable

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

NO_DISK_ENCRYPTION = (
    "aiospark does not encrypt the blocks it keeps on local disk (spark.io.encryption); "
    "between processes it encrypts with TLS"
)


async def check_broadcasts_and_no_task_failures(context, vs):
    """BroadcastTest._test_encryption_helper: each value reads back in the tasks."""
    bs = [context.broadcast(v) for v in vs]
    exec_values = await context.parallelize(range(2)).map(lambda x: [b.value for b in bs]).collect()
    assert exec_values == [vs, vs]
    status = context.status_tracker()
    for jid in status.get_job_ids_for_group():
        for sid in status.get_job_info(jid).stage_ids:
            assert status.get_stage_info(sid).num_failed_tasks == 0


# BroadcastTest.test_broadcast_with_encryption
@not_applicable(NO_DISK_ENCRYPTION)
async def test_broadcast_with_encryption():
    pass


# BroadcastTest.test_broadcast_no_encryption
async def test_broadcast_no_encryption():
    async with aiospark.Context(workers=2) as context:
        await check_broadcasts_and_no_task_failures(context, [5])
        await check_broadcasts_and_no_task_failures(context, [5, 10, 20])


# BroadcastTest.test_broadcast_value_driver_no_encryption
async def test_broadcast_value_driver_no_encryption(ctx):
    assert ctx.broadcast(5).value == 5


# BroadcastTest.test_broadcast_value_driver_encryption
@not_applicable(NO_DISK_ENCRYPTION)
async def test_broadcast_value_driver_encryption():
    pass


# BroadcastTest.test_broadcast_value_against_gc -- Python's collector in the driver
# instead of the JVM's.
async def test_broadcast_value_against_gc(ctx):
    b = ctx.broadcast([100])
    try:
        pick = lambda x: 0 if x == 0 else b.value[0]
        assert await ctx.parallelize([0], 1).map(pick).collect() == [0]
        gc.collect()
        assert await ctx.parallelize([1], 1).map(pick).collect() == [100]
    finally:
        b.destroy()


# BroadcastTest.test_broadcast_when_sc_none
@not_applicable(
    "about PySpark's Broadcast(sc=None, path=...) constructor, with which executors read a "
    "broadcast file; aiospark's Broadcast is only made by ctx.broadcast"
)
async def test_broadcast_when_sc_none():
    pass


# BroadcastTest.test_broadcast_for_error_condition -- aiospark's errors are a
# SerializationError (a TypeError; PySpark: pickle.PickleError) and AiosparkError
# (PySpark: a RuntimeError wrapped in Py4JJavaError).
async def test_broadcast_for_error_condition(ctx):
    bs = ctx.broadcast([1])
    with pytest.raises(SerializationError, match=r"serialize.*broadcast"):
        ctx.broadcast(ctx)
    with pytest.raises(AiosparkError, match=r"Broadcast.*destroyed.*driver"):
        await ctx.parallelize([1]).map(lambda x: bs.destroy()).collect()
    with pytest.raises(AiosparkError, match=r"Broadcast.*unpersisted.*driver"):
        await ctx.parallelize([1]).map(lambda x: bs.unpersist()).collect()
    assert await ctx.parallelize([1]).map(lambda x: bs.value).collect() == [[1]]


# BroadcastTest.test_broadcast_in_udfs_with_encryption
@needs_jvm("a broadcast read in a Spark SQL UDF")
async def test_broadcast_in_udfs_with_encryption():
    pass


# BroadcastFrameProtocolTest.test_chunked_stream
@needs_jvm("PySpark's chunked stream, decoded by the JVM (DechunkedInputStream)")
async def test_chunked_stream():
    pass
