"""The driver's event loop is never blocked by work proportional to the data.

Nothing here times anything: each test checks *where* the work runs (which
thread) and that the loop makes progress *while* it runs, by making the work
wait until the loop has run a callback (a wait that could only end by a
timeout, and so fail, if the work held the loop).  How long the loop is
blocked is measured by ``benchmarks/bench_loop_lag.py``.
"""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

import aiospark
from aiospark import context as context_module
from aiospark import offload, slices
from aiospark.errors import SerializationError
from aiospark.ops import export
from aiospark.scheduler import results

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

#: Bound of every wait below: reached only when the loop is blocked (the test then fails).
BOUND = 30.0


class LoopProbe:
    """Called from the helper thread: did the loop run a callback while we waited for it?"""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.current_thread()
        self.threads: list[threading.Thread] = []
        self.loop_ran: list[bool] = []

    def check(self) -> None:
        """Record the calling thread, and whether the loop ran a callback meanwhile."""
        self.threads.append(threading.current_thread())
        ran = threading.Event()
        self.loop.call_soon_threadsafe(ran.set)
        self.loop_ran.append(ran.wait(BOUND))

    def off_loop(self) -> bool:
        return bool(self.threads) and self.loop_thread not in self.threads and all(self.loop_ran)


async def test_a_large_result_is_decoded_off_the_loop_frame_by_frame(ctx, monkeypatch):
    probe = LoopProbe()
    reads: list[bool] = []  # automatic garbage collection enabled, at each read

    class SpyReader(results.ChunkReader):
        def read(self, size: int | None = -1) -> bytes:
            if len(reads) == 2:  # in the middle of the pickle: the loop must still run
                probe.check()
            reads.append(gc.isenabled())
            return super().read(size)

    monkeypatch.setattr(results, "ChunkReader", SpyReader)
    rdd = ctx.range(20_000, num_slices=1).map(lambda i: (i, [i + j / 16 for j in range(4)]))
    got = await rdd.collect()  # one result of about 1 MB
    assert got == [(i, [i + j / 16 for j in range(4)]) for i in range(20_000)]
    assert probe.off_loop(), "the result was decoded on the loop's thread, or the loop was held"
    # A 1 MB pickle is read as 64 KiB frames, each through Python code: the loop's
    # thread can take the GIL between two of them.
    assert len(reads) > 10
    assert not any(reads), "automatic collections ran during the decode"
    assert gc.isenabled() and gc.get_freeze_count() == 0


async def test_a_small_result_is_decoded_inline(ctx, monkeypatch):
    """Tiny jobs keep their fast path: no hop to the helper thread."""
    hops: list[object] = []
    monkeypatch.setattr(results, "load_chunks", lambda chunks: hops.append(chunks))
    assert await ctx.parallelize(range(8), 2).map(lambda x: x + 1).collect() == list(range(1, 9))
    assert hops == []


async def test_a_fetched_result_is_decoded_off_the_loop(ctx, monkeypatch):
    """Results over 8 MiB come by URL, as chunks, and are never joined on the loop."""
    probe = LoopProbe()
    decode = results.load_chunks

    def spy(chunks: list) -> object:
        probe.check()
        return decode(chunks)

    monkeypatch.setattr(results, "load_chunks", spy)
    rdd = ctx.range(1, num_slices=1).map(lambda _: [bytes([i % 256]) * 1024 for i in range(10_000)])
    [blocks] = await rdd.collect()
    assert len(blocks) == 10_000 and blocks[257] == b"\x01" * 1024
    assert probe.off_loop()


async def test_joining_and_merging_partitions_run_off_the_loop(ctx, monkeypatch):
    probe = LoopProbe()
    for name in ("concat", "merge_into"):
        work = getattr(offload, name)

        def spy(*args: object, _work=work) -> object:
            probe.check()
            return _work(*args)

        monkeypatch.setattr(offload, name, spy)
    n = 2 * offload.INLINE_ITEMS  # in 3 partitions: the 2 merged into the first are large too
    assert await ctx.range(n, num_slices=3).collect() == list(range(n))
    pairs = await ctx.range(n, num_slices=3).map(lambda i: (i % (n - 10), i)).collect_as_map()
    assert len(pairs) == n - 10 and pairs[0] == n - 10
    assert len(probe.threads) == 2 and probe.off_loop()


async def test_parallelize_pickles_a_large_list_off_the_loop(ctx, monkeypatch):
    probe = LoopProbe()
    pickle_split = slices.pickle_split

    def spy(split: slices.DataSplit) -> slices.PickledSplit:
        probe.check()
        return pickle_split(split)

    monkeypatch.setattr(slices, "pickle_split", spy)
    data = list(range(3 * offload.INLINE_ITEMS))
    rdd = ctx.parallelize(data, 3)
    data[0] = -1  # read when the first job runs, as Spark's parallelize
    assert await rdd.sum() == sum(data)
    assert probe.off_loop() and len(probe.threads) == 3
    assert all(type(s) is slices.PickledSplit for s in rdd.splits())
    data[1] = -1  # pickled once: later jobs do not read the list again
    sizes = [stop - start for start, stop in slices.slice_bounds(len(data), 3)]
    assert await rdd.map(lambda x: x).glom().map(len).collect() == sizes
    assert await rdd.take(2) == [-1, 1]
    assert len(probe.threads) == 3


async def test_async_for_lets_the_loop_run_within_a_partition(ctx, monkeypatch):
    monkeypatch.setattr(export, "YIELD_EVERY", 0.0)  # let it run at every chance
    other = asyncio.Event()
    seen_at = None
    count = 0
    async for _ in ctx.range(10_000, num_slices=1):  # one partition, in hand from record 0
        if count == 0:
            asyncio.get_running_loop().call_soon(other.set)  # runs once the loop is free
        elif seen_at is None and other.is_set():
            seen_at = count
        count += 1
    assert count == 10_000
    assert seen_at is not None and seen_at < 1000


async def test_start_imports_the_driver_modules_off_the_loop(monkeypatch):
    probe = LoopProbe()
    imports = context_module.import_driver_modules

    def spy() -> None:
        probe.check()
        imports()

    monkeypatch.setattr(context_module, "import_driver_modules", spy)
    async with aiospark.Context(workers=1) as small:
        assert await small.parallelize([1, 2, 3]).sum() == 6
    assert probe.off_loop()


async def test_a_parallelized_list_is_read_once_by_every_rdd_made_from_it(ctx):
    data = list(range(10))
    both = ctx.parallelize(data, 2).union(ctx.parallelize([100], 1))
    assert both.get_num_partitions() == 3  # the union's splits exist before any job
    data[0] = -5  # before the first job: seen
    assert await both.collect() == [-5, *range(1, 10), 100]
    data[1] = -6  # after it: not seen, by any job or any RDD made from the list
    assert await both.collect() == [-5, *range(1, 10), 100]
    assert await both.map(lambda x: x).sum() == sum(range(1, 10)) - 5 + 100


async def test_a_parallelized_list_that_changed_length_before_its_first_job_is_refused(ctx):
    data = list(range(10))
    rdd = ctx.parallelize(data, 2)
    data.append(10)
    with pytest.raises(SerializationError, match="had 10 items and has 11 now"):
        await rdd.collect()
    assert await ctx.parallelize(data, 2).count() == 11
