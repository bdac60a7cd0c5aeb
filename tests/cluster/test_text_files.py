"""text_file and save_as_text_file on the real cluster, against plain Python."""

from __future__ import annotations

import gzip
import operator
import os
import random
from collections import Counter

import fsspec
import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


def _lines_of(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


@pytest.fixture
def corpus(tmp_path):
    rng = random.Random(7)
    vocab = ["spark", "asyncio", "ünïcödé", "日本", "🙂", "", "x" * 300, "tab\there"]
    lines = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    text = "\n".join(lines)  # no final newline
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return path, text


async def test_text_file_reads_every_line_once_at_any_split_count(ctx, corpus):
    path, text = corpus
    expected = _lines_of(text)
    for min_partitions in (1, 2, 3, 7, 50, 400):
        rdd = ctx.text_file(str(path), min_partitions)
        assert rdd.get_num_partitions() >= min_partitions
        assert await rdd.collect() == expected, min_partitions


async def test_word_count_matches_counter(ctx, corpus):
    path, text = corpus
    counts = (
        ctx.text_file(str(path), 9)
        .flat_map(str.split)
        .map(lambda w: (w, 1))
        .reduce_by_key(operator.add)
    )
    assert dict(await counts.collect()) == Counter(text.split())


async def test_directories_globs_empty_files_and_crlf(ctx, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"one\r\ntwo\r\n")
    (folder / "b.txt").write_bytes(b"")
    (folder / "c.txt").write_bytes(b"drei\nvier")
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / ".hidden").write_bytes(b"secret\n")
    with gzip.open(folder / "d.txt.gz", "wt") as f:
        f.write("gz1\ngz2\n")
    everything = ["one", "two", "drei", "vier", "gz1", "gz2"]
    assert await ctx.text_file(str(folder)).collect() == everything
    assert await ctx.text_file(str(folder / "*.txt")).collect() == everything[:4]
    both = f"{folder / 'c.txt'},{folder / 'a.txt'}"
    assert sorted(await ctx.text_file(both).collect()) == sorted(everything[:4])
    empty = ctx.text_file(str(folder / "b.txt"))
    assert empty.get_num_partitions() == 1
    assert await empty.count() == 0


async def test_missing_input_is_a_clear_error(ctx, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        ctx.text_file(str(tmp_path / "nope*.txt"))


async def test_save_as_text_file_round_trips(ctx, tmp_path):
    out = tmp_path / "out"
    data = [f"line {i} ✓" for i in range(1000)] + [42, None, ("t", 1)]
    await ctx.parallelize(data, 5).save_as_text_file(str(out))
    names = sorted(os.listdir(out))
    assert names == ["_SUCCESS"] + [f"part-{i:05d}" for i in range(5)]
    assert await ctx.text_file(str(out)).collect() == [str(x) for x in data]
    with pytest.raises(FileExistsError, match="already exists"):
        await ctx.parallelize([1]).save_as_text_file(str(out))
    await ctx.parallelize(["new"], 1).save_as_text_file(str(out), overwrite=True)
    assert await ctx.text_file(str(out)).collect() == ["new"]


async def test_save_compressed_and_failed_job_leaves_no_parts(ctx, tmp_path):
    out = tmp_path / "gz"
    await ctx.parallelize(range(100), 2).save_as_text_file(str(out), compression="gzip")
    assert sorted(os.listdir(out)) == ["_SUCCESS", "part-00000.gz", "part-00001.gz"]
    assert await ctx.text_file(str(out)).map(int).sum() == sum(range(100))

    def fail_late(i, it):
        for x in it:
            if i == 1 and x == 150:
                raise RuntimeError("disk on fire")
            yield x

    broken = tmp_path / "broken"
    with pytest.raises(RuntimeError, match="disk on fire"):
        await ctx.parallelize(range(200), 2).map_partitions_with_index(
            fail_late
        ).save_as_text_file(str(broken))
    assert "_SUCCESS" not in os.listdir(broken)
    assert "part-00001" not in os.listdir(broken)
    assert "_temporary" not in os.listdir(broken)


async def test_every_codec_is_read_whole_on_the_cluster(ctx, tmp_path):
    import bz2
    import lzma

    zstd = pytest.importorskip("zstandard")
    lines = [f"line {i} ✓" for i in range(3000)]
    data = ("\n".join(lines) + "\n").encode()
    compressors = {
        "a.txt.gz": gzip.compress,
        "b.txt.bz2": bz2.compress,
        "c.txt.xz": lzma.compress,
        "d.txt.zst": zstd.ZstdCompressor().compress,
    }
    try:
        import lz4.frame

        compressors["e.txt.lz4"] = lz4.frame.compress
    except ImportError:
        pass  # optional: test_bad_arguments_fail_in_the_driver checks the error then
    for name, compress in compressors.items():
        (tmp_path / name).write_bytes(compress(data))
    rdd = ctx.text_file(str(tmp_path), min_partitions=40)
    assert rdd.get_num_partitions() == len(compressors)  # compressed files are not split
    assert await rdd.collect() == lines * len(compressors)


async def test_memory_urls_are_shipped_to_the_workers(ctx):
    mem = fsspec.filesystem("memory")
    root = f"/cluster-memory-{os.getpid()}-{random.random()}"
    mem.pipe(f"{root}/a.txt", "é\nè\n".encode())
    mem.pipe(f"{root}/b.txt.gz", gzip.compress(b"zipped\n"))
    try:
        rdd = ctx.text_file(f"memory://{root}", 3)
        assert await rdd.collect() == ["é", "è", "zipped"]
        whole = await ctx.whole_text_files(f"memory://{root}/*.txt").collect()
        assert whole == [(f"memory://{root}/a.txt", "é\nè\n")]
        with pytest.raises(ValueError, match="memory://"):
            await ctx.parallelize([1]).save_as_text_file(f"memory://{root}/out")
    finally:
        mem.rm(root, recursive=True)


async def test_bad_arguments_fail_in_the_driver(ctx, tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x\n")
    with pytest.raises(ValueError, match="utf-16"):
        ctx.text_file(str(path), encoding="utf-16")
    with pytest.raises(LookupError, match="no-such-codec"):
        ctx.text_file(str(path), encoding="no-such-codec")
    with pytest.raises(ValueError, match="min_partitions"):
        ctx.text_file(str(path), 0)
    (tmp_path / "b.txt.lz4").write_bytes(b"\x04\x22\x4d\x18")
    if "lz4" not in fsspec.compression.compr:
        with pytest.raises(ValueError, match=r"b\.txt\.lz4.*pip install lz4"):
            ctx.text_file(str(tmp_path / "b.txt.lz4"))
    with pytest.raises(ValueError, match="unknown compression 'snappyish'"):
        await ctx.parallelize([1]).save_as_text_file(str(tmp_path / "o"), compression="snappyish")
    assert not (tmp_path / "o").exists()


async def test_a_file_of_a_few_blocks_is_cut_so_that_no_core_idles_in_a_last_wave(ctx, tmp_path):
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(96 * 2**20)  # sparse: 96 MiB of size, nothing written
    assert ctx.default_parallelism == 2
    # Hadoop's rule (32 MiB splits) gives 3; the default fills both waves of 2 instead.
    assert ctx.text_file(str(big)).get_num_partitions() == 4
    assert ctx.text_file(str(big), 2).get_num_partitions() == 3  # an explicit minimum rules
    small = tmp_path / "small.txt"
    small.write_text("a\nb\nc\n")
    assert ctx.text_file(str(small)).get_num_partitions() == 2  # min(parallelism, 2), as before
