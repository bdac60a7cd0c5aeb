"""Pickle files, whole text files and binary files on the real cluster, against plain Python."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from aiospark.io.formats import write_frames

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


def _records() -> list:
    return [
        None,
        1,
        "zwei",
        (3, (None, ("deep", [4, 5]))),
        {"key": [1, 2], None: (1,)},
        np.arange(12, dtype=np.float32).reshape(3, 4),
        (np.array([1, 2, 3]), "with an array"),
        b"\x00bytes",
        [],
        2.5,
        None,
    ]


def _same(a: list, b: list) -> bool:
    """Equality that compares numpy arrays by dtype, shape and values."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, np.ndarray):
            if not (isinstance(y, np.ndarray) and x.dtype == y.dtype and np.array_equal(x, y)):
                return False
        elif isinstance(x, tuple) and any(isinstance(v, np.ndarray) for v in x):
            if not (isinstance(y, tuple) and _same(list(x), list(y))):
                return False
        elif x != y:
            return False
    return True


# -- pickle files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slices", "batch_size", "compression"),
    [(1, 10, None), (3, 1, None), (4, 0, "gzip"), (20, 3, "bz2")],
)
async def test_pickle_file_round_trip(ctx, tmp_path, slices, batch_size, compression):
    data = _records() * 7
    out = str(tmp_path / "pickled")
    rdd = ctx.parallelize(data, slices)
    await rdd.save_as_pickle_file(out, batch_size=batch_size, compression=compression)
    names = sorted(os.listdir(out))
    assert names[0] == "_SUCCESS" and len(names) == slices + 1  # empty partitions too
    back = ctx.pickle_file(out)
    assert back.get_num_partitions() == slices
    assert _same(await back.collect(), data)
    assert [len(p) for p in await back.glom().collect()] == [
        len(p) for p in await rdd.glom().collect()
    ]


async def test_pickle_file_of_empty_rdd_and_streaming_reads(ctx, tmp_path):
    out = str(tmp_path / "empty")
    await ctx.parallelize([], 3).save_as_pickle_file(out)
    assert await ctx.pickle_file(out).collect() == []
    assert ctx.pickle_file(out).get_num_partitions() == 3
    # a big partition is read back frame by frame
    big = list(range(50_000))
    out = str(tmp_path / "big")
    await ctx.parallelize(big, 2).save_as_pickle_file(out, batch_size=100)
    assert await ctx.pickle_file(out).collect() == big
    assert await ctx.pickle_file(out).map(lambda x: x * 2).sum() == 2 * sum(big)


async def test_pickle_file_existing_directory_and_overwrite(ctx, tmp_path):
    out = str(tmp_path / "again")
    await ctx.parallelize([1, 2, 3], 3).save_as_pickle_file(out)
    with pytest.raises(FileExistsError, match="again"):
        await ctx.parallelize([4]).save_as_pickle_file(out)
    assert await ctx.pickle_file(out).collect() == [1, 2, 3]  # untouched
    await ctx.parallelize(["x"], 1).save_as_pickle_file(out, overwrite=True)
    assert sorted(os.listdir(out)) == ["_SUCCESS", "part-00000"]
    assert await ctx.pickle_file(out).collect() == ["x"]


async def test_pickle_file_bad_arguments_and_missing_paths(ctx, tmp_path):
    rdd = ctx.parallelize([1])
    for kwargs in ({"batch_size": -1}, {"batch_size": 1.5}, {"compression": "nope"}):
        with pytest.raises(ValueError):
            await rdd.save_as_pickle_file(str(tmp_path / "bad"), **kwargs)
        assert not (tmp_path / "bad").exists()  # rejected before anything is written
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        ctx.pickle_file(str(tmp_path / "no-such-dir"))
    with pytest.raises(ValueError, match="min_partitions"):
        ctx.pickle_file(str(tmp_path), min_partitions=0)


async def test_pickle_file_reads_parts_in_numeric_order_and_globs(ctx, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for index, records in [(99_999, [1, 2]), (100_000, [3]), (7, [0])]:
        with open(folder / f"part-{index:05d}", "wb") as f:
            write_frames(f, iter(records), batch_size=1)
    assert await ctx.pickle_file(str(folder)).collect() == [0, 1, 2, 3]
    assert await ctx.pickle_file(str(folder / "part-1*")).collect() == [3]
    truncated = tmp_path / "truncated" / "part-00000"
    truncated.parent.mkdir()
    with open(truncated, "wb") as f:
        write_frames(f, iter(range(10)), batch_size=5)
    truncated.write_bytes(truncated.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        await ctx.pickle_file(str(truncated.parent)).collect()


# -- whole text files and binary files -------------------------------------------------------


@pytest.fixture
def text_dir(tmp_path):
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    contents = {
        "a.txt": "alpha\nbeta\n",
        "b.txt": "",
        "c.txt": "ünïcödé ☃\r\nno newline",
        "sub/d.txt": "nested\n" * 100,
    }
    for i in range(8):
        contents[f"f{i}.txt"] = f"file {i}\n" * (i + 1)
    for name, text in contents.items():
        (folder / name).write_text(text, encoding="utf-8", newline="")
    with gzip.open(folder / "e.txt.gz", "wt", encoding="utf-8") as f:
        f.write("compressed text\n")
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / ".hidden").write_text("skip me")
    expected = {str(folder / name): text for name, text in contents.items()}
    expected[str(folder / "e.txt.gz")] = "compressed text\n"
    return folder, expected


async def test_whole_text_files_reads_each_file_once(ctx, text_dir):
    folder, expected = text_dir
    for min_partitions in (None, 1, 4, 13, 100):
        rdd = ctx.whole_text_files(str(folder), min_partitions)
        records = await rdd.collect()
        assert [path for path, _ in records] == sorted(expected)  # path order
        assert dict(records) == expected
        wanted = min(min_partitions or ctx.default_min_partitions, len(expected))
        assert rdd.get_num_partitions() == wanted
        parts = await rdd.glom().collect()
        assert all(parts), "every partition holds at least one file"


async def test_whole_text_files_bytes_globs_and_lists(ctx, text_dir):
    folder, expected = text_dir
    raw = await ctx.whole_text_files(str(folder), use_unicode=False).collect()
    assert dict(raw) == {p.encode(): t.encode() for p, t in expected.items()}
    some = await ctx.whole_text_files(str(folder / "f*.txt")).collect()
    assert [os.path.basename(p) for p, _ in some] == [f"f{i}.txt" for i in range(8)]
    both = f"{folder / 'c.txt'},{folder / 'a.txt'}"
    assert [os.path.basename(p) for p, _ in await ctx.whole_text_files(both).collect()] == [
        "a.txt",
        "c.txt",
    ]
    (folder / "bad.txt").write_bytes(b"ok\xff\xfe")
    with pytest.raises(UnicodeDecodeError) as info:
        await ctx.whole_text_files(str(folder / "bad.txt")).collect()
    assert "bad.txt" in "".join(getattr(info.value, "__notes__", [])) + str(info.value)


async def test_whole_text_files_missing_and_empty_inputs(ctx, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        ctx.whole_text_files(str(tmp_path / "nothing-here"))
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        ctx.binary_files(str(tmp_path / "nothing-here" / "*.bin"))
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    rdd = ctx.whole_text_files(str(empty))
    assert rdd.get_num_partitions() == 1 and await rdd.collect() == []
    with pytest.raises(ValueError, match="min_partitions"):
        ctx.binary_files(str(empty), min_partitions=-2)


async def test_binary_files_are_raw_bytes(ctx, tmp_path):
    folder = tmp_path / "blobs"
    folder.mkdir()
    blobs = {f"{i:02d}.bin": os.urandom(i * 1000) for i in range(10)}
    blobs["z.gz"] = gzip.compress(b"stays compressed")
    for name, data in blobs.items():
        (folder / name).write_bytes(data)
    expected = {str(folder / name): data for name, data in blobs.items()}
    for min_partitions in (None, 3, 50):
        rdd = ctx.binary_files(str(folder), min_partitions)
        records = await rdd.collect()
        assert [p for p, _ in records] == sorted(expected)
        assert dict(records) == expected
        assert rdd.get_num_partitions() == min(min_partitions or 2, len(blobs))
    sizes = await ctx.binary_files(str(folder), 3).map(lambda kv: len(kv[1])).glom().collect()
    totals = [sum(s) for s in sizes]
    assert len(totals) == 3 and max(totals) <= 2 * sum(totals) / 3  # grouped by size


async def test_pickle_and_binary_files_from_memory_urls(ctx):
    import fsspec

    mem = fsspec.filesystem("memory")
    root = f"/cluster-formats-memory-{os.getpid()}"
    for index, records in [(0, [1, "two"]), (1, [(3, None)])]:
        with mem.open(f"{root}/pickled/part-{index:05d}", "wb") as f:
            write_frames(f, iter(records), batch_size=1)
    mem.pipe(f"{root}/pickled/_SUCCESS", b"")
    mem.pipe(f"{root}/blob.bin", b"\x00\xff")
    try:
        assert await ctx.pickle_file(f"memory://{root}/pickled").collect() == [1, "two", (3, None)]
        assert await ctx.binary_files(f"memory://{root}/*.bin").collect() == [
            (f"memory://{root}/blob.bin", b"\x00\xff")
        ]
    finally:
        mem.rm(root, recursive=True)
