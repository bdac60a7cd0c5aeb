"""PySpark names and behaviours (issue 15's smaller items), against real worker processes."""

from __future__ import annotations

import gzip
import operator
import os
import signal
import uuid
import zlib
from collections import Counter

import pytest

import aiospark
from aiospark import AccumulatorParam, TaskContext
from aiospark.errors import AiosparkError
from aiospark.lineage import StorageLevel
from tests.conftest import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

# Jobs meant to fail run on the shared ``ctx`` with one failing partition: the
# scheduler forgives the workers a task that failed everywhere, so no worker is left
# excluded for the tests after these.  A task that fails and then succeeds runs on a
# context of its own.


def marking(tmp_path):
    """A map_partitions_with_index function leaving a file each time it computes a split."""

    def mark(index, records):
        (tmp_path / f"{index}-{uuid.uuid4().hex}").touch()
        return records

    return mark


def computed(tmp_path) -> Counter:
    return Counter(int(name.split("-")[0]) for name in os.listdir(tmp_path))


# -- rdd + rdd ----------------------------------------------------------------------------


async def test_adding_rdds_is_union_and_adding_anything_else_names_its_type(ctx):
    a, b = ctx.parallelize([1, 2], 2), ctx.parallelize([3], 1)
    both = a + b
    assert both.get_num_partitions() == 3
    assert await both.collect() == [1, 2, 3]
    assert await (a + b + a).count() == 5
    for other in ([3], 3, None):
        with pytest.raises(TypeError, match=f"'RDD' and '{type(other).__name__}'"):
            a + other


# -- is_cached, local checkpoints ---------------------------------------------------------


async def test_is_cached_follows_persist_and_unpersist(ctx):
    rdd = ctx.parallelize(range(4), 2)
    assert rdd.is_cached is False
    assert rdd.persist(StorageLevel.DISK_ONLY).is_cached is True
    assert await rdd.sum() == 6
    assert rdd.unpersist().is_cached is False


async def test_local_checkpoint_cuts_the_lineage_after_the_first_action(ctx, tmp_path):
    base = ctx.parallelize(range(40), 4).map_partitions_with_index(marking(tmp_path))
    summed = base.map(lambda x: (x % 3, x)).reduce_by_key(operator.add, 4)
    summed.local_checkpoint()
    assert summed.is_locally_checkpointed() and not summed.is_checkpointed()
    assert summed.get_storage_level() == StorageLevel.MEMORY_AND_DISK
    assert summed.get_checkpoint_file() is None
    first = await summed.take(1)  # computes one split; the checkpoint computes the rest
    assert summed.is_checkpointed() and summed.deps == []
    assert "\n" not in summed.to_debug_string()  # no parents left
    assert computed(tmp_path) == Counter({0: 1, 1: 1, 2: 1, 3: 1})
    expected = {k: sum(x for x in range(40) if x % 3 == k) for k in range(3)}
    assert dict(await summed.collect()) == expected
    assert first[0] in expected.items()
    assert await summed.map(lambda kv: kv[1]).sum() == sum(range(40))
    # Read from the block stores: the parents never ran again.
    assert computed(tmp_path) == Counter({0: 1, 1: 1, 2: 1, 3: 1})
    # checkpoint() after local_checkpoint() keeps the local one (as in Spark).
    ctx.set_checkpoint_dir(str(tmp_path / "ckpt"))
    summed.checkpoint()
    assert summed.is_locally_checkpointed() and summed.get_checkpoint_file() is None


async def test_a_locally_checkpointed_rdd_keeps_its_level_with_disk_added(ctx):
    rdd = ctx.parallelize(range(6), 2).persist(StorageLevel.MEMORY_ONLY_SER)
    rdd.local_checkpoint()
    assert rdd.get_storage_level() == StorageLevel.MEMORY_AND_DISK_SER
    assert await rdd.sum() == 15 and rdd.is_checkpointed()


async def test_an_unpersisted_local_checkpoint_is_an_error_not_a_recomputation(ctx, tmp_path):
    rdd = ctx.parallelize(range(10), 1).map_partitions_with_index(marking(tmp_path))
    rdd.local_checkpoint()
    assert await rdd.count() == 10
    rdd.unpersist()
    await wait_until(lambda: not any(
        key[0] == rdd.id for key, holders in ctx._scheduler.state.cache.items() if holders
    ), 10, "the blocks to be dropped")
    with pytest.raises(AiosparkError, match=rf"Checkpoint block rdd_{rdd.id}_0 not found"):
        await rdd.collect()
    assert sum(computed(tmp_path).values()) == 1  # never recomputed from the lineage


async def test_losing_the_worker_that_kept_a_local_checkpoint_is_an_error():
    async with aiospark.Context(workers=2, max_task_attempts=2) as ctx:
        rdd = ctx.parallelize(range(100), 8).map(lambda x: x * 2)
        rdd.local_checkpoint()
        assert await rdd.sum() == 9900
        holders = ctx._scheduler.state.cache
        pids = {link.info.worker_id: link.info.pid for link in ctx._scheduler.links.values()}
        victim = next(iter(holders[(rdd.id, 0)]))
        lost = {split for (rid, split), held in holders.items() if rid == rdd.id and victim in held}
        os.kill(pids[victim], signal.SIGKILL)

        def loss_seen() -> bool:  # (a forked executor re-registers at once: watch its blocks)
            held = ctx._scheduler.state.cache
            return not any(victim in held.get((rdd.id, split), ()) for split in lost)

        await wait_until(loss_seen, 30, "the loss to be seen")
        with pytest.raises(AiosparkError, match=r"Checkpoint block rdd_\d+_\d+ not found"):
            await rdd.sum()
        # The splits the other worker keeps are still read from its store.
        kept = [i for i in range(8) if i not in lost]
        assert kept, "both workers should hold splits"
        fresh = ctx.parallelize(range(100), 8).map(lambda x: x * 2)
        expected = await ctx.run_job(fresh, lambda it: [sum(it)], kept)
        assert await ctx.run_job(rdd, lambda it: [sum(it)], kept) == expected


# -- Context: binary_records, run_job, start_time, add_file(recursive=True) ----------------


async def test_binary_records_reads_fixed_length_records_of_every_file(ctx, tmp_path):
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "a.bin").write_bytes(bytes(range(30)))
    (folder / "b.bin").write_bytes(b"xyz" * 1000)
    (folder / "_SUCCESS").write_bytes(b"")  # hidden: not an input
    rdd = ctx.binary_records(str(folder), 3)
    assert rdd.get_num_partitions() > 2
    records = await rdd.collect()
    assert records == [bytes(range(i, i + 3)) for i in range(0, 30, 3)] + [b"xyz"] * 1000
    assert await ctx.binary_records(str(folder / "a.bin"), 30).collect() == [bytes(range(30))]
    (tmp_path / "packed.bin.gz").write_bytes(gzip.compress(b"ab" * 5000))
    assert await ctx.binary_records(str(tmp_path / "packed.bin.gz"), 2).count() == 5000
    (tmp_path / "odd.bin.gz").write_bytes(gzip.compress(b"abc"))
    with pytest.raises(ValueError, match=r"odd\.bin\.gz: ends inside a record"):
        await ctx.binary_records(str(tmp_path / "odd.bin.gz"), 2).collect()
    (folder / "odd.bin").write_bytes(b"12345")
    with pytest.raises(ValueError, match=r"odd\.bin: its size, 5 bytes, is not a multiple"):
        ctx.binary_records(str(folder), 3)
    with pytest.raises(ValueError, match="record_length"):
        ctx.binary_records(str(folder / "a.bin"), 0)
    with pytest.raises(FileNotFoundError):
        ctx.binary_records(str(tmp_path / "missing"), 3)


async def test_run_job_runs_on_the_partitions_given_in_their_order(ctx, tmp_path):
    rdd = ctx.parallelize(range(9), 3).map_partitions_with_index(marking(tmp_path))
    assert await ctx.run_job(rdd, lambda it: [sum(it)]) == [3, 12, 21]
    assert await ctx.run_job(rdd, lambda it: (x * 10 for x in it), [2, 0], True) == [
        60, 70, 80, 0, 10, 20
    ]
    assert computed(tmp_path) == Counter({0: 2, 1: 1, 2: 2})
    assert await ctx.run_job(rdd, lambda it: [1], []) == []
    with pytest.raises(ValueError, match="partition 3 is out of range"):
        await ctx.run_job(rdd, lambda it: [], [3])
    other = aiospark.Context(workers=1)
    with pytest.raises(ValueError, match="another Context"):
        await other.run_job(rdd, lambda it: [])


async def test_start_time_is_when_the_context_started():
    import time

    context = aiospark.Context(workers=1)
    with pytest.raises(RuntimeError):
        _ = context.start_time
    before = time.time() * 1000
    async with context:
        assert before - 1 <= context.start_time <= time.time() * 1000
        assert isinstance(context.start_time, int)


async def test_add_file_ships_a_directory_with_recursive(ctx, tmp_path):
    tree = tmp_path / "model"
    (tree / "layers").mkdir(parents=True)
    (tree / "weights.txt").write_text("w")
    (tree / "layers" / "one.txt").write_text("1")
    with pytest.raises(ValueError, match="recursive=True"):
        ctx.add_file(str(tree))
    ctx.add_file(str(tree), recursive=True)

    def read_tree(_):
        from aiospark import files

        root = files.get("model")
        found = []
        for folder, _dirs, names in os.walk(root):
            for name in names:
                with open(os.path.join(folder, name)) as f:
                    found.append((os.path.relpath(os.path.join(folder, name), root), f.read()))
        return sorted(found), root != str(tree)

    results = await ctx.parallelize(range(4), 4).map(read_tree).collect()
    assert results == [([("layers/one.txt", "1"), ("weights.txt", "w")], True)] * 4


# -- TaskContext ---------------------------------------------------------------------------


async def test_task_context_in_tasks_and_none_in_the_driver(ctx, tmp_path):
    assert TaskContext.get() is None

    def describe(records):
        tc = TaskContext.get()
        return [(tc.partition_id(), tc.stage_id(), tc.attempt_number(), tc.task_attempt_id(),
                 tc.get_local_property("anything"), len(list(records)))]

    rdd = ctx.parallelize(range(6), 3).map(lambda x: (x % 2, x)).reduce_by_key(operator.add, 2)
    shuffled = await rdd.map_partitions(describe).collect()
    narrow = await ctx.parallelize(range(6), 3).map_partitions(describe).collect()
    assert [d[0] for d in narrow] == [0, 1, 2] and [d[0] for d in shuffled] == [0, 1]
    assert len({d[1] for d in narrow}) == 1 and len({d[1] for d in shuffled}) == 1
    assert {d[2] for d in narrow + shuffled} == {0}
    attempt_ids = [d[3] for d in narrow + shuffled]
    assert len(set(attempt_ids)) == len(attempt_ids)
    assert {d[4] for d in narrow + shuffled} == {None}


async def test_a_retried_task_sees_its_attempt_number(tmp_path):
    flag = tmp_path / "failed-once"

    def fail_first_attempt(records):
        tc = TaskContext.get()
        if not flag.exists():
            flag.touch()
            raise RuntimeError("first attempt fails")
        return [tc.attempt_number()]

    async with aiospark.Context(workers=1) as own:
        assert await own.parallelize([1], 1).map_partitions(fail_first_attempt).collect() == [1]


# -- PySpark's keyword names ---------------------------------------------------------------


async def test_sort_by_key_takes_keyfunc_and_still_key_func(ctx):
    pairs = ctx.parallelize([("b", 1), ("A", 2), ("a", 3), ("C", 4)], 2)
    expected = ["A", "a", "b", "C"]
    assert await pairs.sort_by_key(keyfunc=str.lower).keys().collect() == expected
    assert await pairs.sort_by_key(True, 2, str.lower).keys().collect() == expected
    assert await pairs.sort_by_key(key_func=str.lower).keys().collect() == expected
    with pytest.raises(TypeError, match="not both"):
        pairs.sort_by_key(keyfunc=str.lower, key_func=str.upper)
    with pytest.raises(TypeError, match="keyfunc must be callable"):
        pairs.sort_by_key(keyfunc="nope")
    within = pairs.repartition_and_sort_within_partitions(1, keyfunc=str.lower)
    assert await within.keys().collect() == expected


@pytest.mark.parametrize(("codec", "suffix", "decompress"), [
    ("GzipCodec", ".gz", gzip.decompress),
    ("BZip2Codec", ".bz2", None),
    ("DefaultCodec", ".deflate", zlib.decompress),
    ("DeflateCodec", ".deflate", zlib.decompress),
    ("Lz4Codec", ".lz4", None),
    ("ZStandardCodec", ".zst", None),
])
async def test_hadoop_codec_class_names_write_files_text_file_reads_back(
    ctx, tmp_path, codec, suffix, decompress
):
    out = str(tmp_path / "out")
    lines = [f"line {i}" for i in range(100)]
    name = f"org.apache.hadoop.io.compress.{codec}"
    await ctx.parallelize(lines, 2).save_as_text_file(out, compression_codec_class=name)
    assert sorted(os.listdir(out)) == ["_SUCCESS", f"part-00000{suffix}", f"part-00001{suffix}"]
    assert await ctx.text_file(out).collect() == lines
    if decompress is not None:  # the format other tools (Hadoop's codec) read
        with open(os.path.join(out, f"part-00000{suffix}"), "rb") as f:
            assert decompress(f.read()).decode().splitlines() == lines[:50]


async def test_unsupported_hadoop_codecs_are_refused_before_writing(ctx, tmp_path):
    rdd = ctx.parallelize(["x"])
    snappy = "org.apache.hadoop.io.compress.SnappyCodec"
    with pytest.raises(ValueError, match=r"SnappyCodec needs .*snappy"):
        await rdd.save_as_text_file(str(tmp_path / "a"), snappy)
    with pytest.raises(ValueError, match="unknown Hadoop codec"):
        await rdd.save_as_text_file(str(tmp_path / "b"), "org.apache.hadoop.io.compress.Nope")
    with pytest.raises(ValueError, match="not both"):
        await rdd.save_as_text_file(str(tmp_path / "c"), "gzip", compression_codec_class="gzip")
    assert not os.listdir(tmp_path)


async def test_accumulator_params_written_for_pyspark_add_in_place(ctx):
    class ListParam(AccumulatorParam):
        def zero(self, value):
            return []

        def addInPlace(self, value1, value2):
            value1.extend(value2)
            return value1

    seen = ctx.accumulator([], ListParam())
    await ctx.parallelize(range(6), 3).foreach(lambda x: seen.add([x]))
    assert sorted(seen.value) == list(range(6))

    class Incomplete(AccumulatorParam):
        def zero(self, value):
            return 0

    broken = ctx.accumulator(0, Incomplete())
    with pytest.raises(NotImplementedError, match="add_in_place"):
        await ctx.parallelize([1], 1).foreach(lambda x: broken.add(x))


# -- wrong before --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["destroy", "unpersist"])
async def test_a_broadcast_is_destroyed_or_unpersisted_only_in_the_driver(ctx, method):
    table = ctx.broadcast({"a": 1})
    done = {"destroy": "destroyed", "unpersist": "unpersisted"}[method]
    with pytest.raises(AiosparkError, match=f"Broadcast can only be {done} in driver"):
        await ctx.parallelize([1], 1).foreach(lambda _: getattr(table, method)())
    # Nothing happened to it: tasks still read it.
    assert await ctx.parallelize(["a"]).map(lambda k: table.value[k]).collect() == [1]


async def test_histogram_returns_the_buckets_as_given(ctx):
    rdd = ctx.parallelize(range(51), 3)
    buckets = (0, 25, 50)
    edges, counts = await rdd.histogram(buckets)
    assert edges is buckets and counts == [25, 26]
    listed = [0, 5, 25, 50]
    edges, counts = await rdd.histogram(listed)
    assert edges is listed and counts == [5, 20, 26]
    assert await rdd.histogram(2) == ([0, 25, 50], [25, 26])
