"""Tests for aiospark.io.text: path expansion, split planning and line reading."""

from __future__ import annotations

import bz2
import gzip
import itertools
import uuid

import fsspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiospark.io import text as text_module
from aiospark.io.text import TextSplit, expand_paths, plan_text_splits, read_text_lines


def truth(content: str) -> list[str]:
    """The lines of ``content`` the plain-Python way."""
    lines = content.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_all(fs, splits, **kwargs) -> list[str]:
    return [line for s in splits for line in read_text_lines(fs, s, **kwargs)]


def splits_from_cuts(path: str, size: int, cuts) -> list[TextSplit]:
    bounds = [0, *cuts, size]
    return [TextSplit(path, a, b - a) for a, b in itertools.pairwise(bounds)]


SMALL_FILES = {
    "empty": "",
    "one_newline": "\n",
    "only_newlines": "\n\n\n\n",
    "no_final_newline": "ab\ncd\ne",
    "final_newline": "ab\ncd\ne\n",
    "single_line": "hello",
    "crlf": "ab\r\ncd\r\n\r\nef\r\n",
    "crlf_no_final": "ab\r\n\r\ncd\r",
    "cr_cr_end": "ab\r\r",
    "cr_crlf": "a\r\r\nb\r\r\n\r",
    "lone_cr": "a\rb\nc\r\rd\n",
    "long_lines": "x" * 23 + "\n" + "y" * 17 + "\n\nz" * 2,
    "utf8": "héllo wörld ☃ 𝄞\n𝄞\n\n☃☃\nwörld",
    "utf8_crlf": "é\r\n𝄞☃\r\n",
    "blank_edges": "\nab\n\n",
}


@pytest.fixture
def memfs():
    fs = fsspec.filesystem("memory")
    root = f"/test-text-io-{uuid.uuid4().hex}"
    fs.mkdir(root)
    yield fs, root
    fs.rm(root, recursive=True)


@pytest.mark.parametrize("window", [1, 4, text_module._WINDOW])
@pytest.mark.parametrize("name", sorted(SMALL_FILES))
def test_every_pair_of_cuts(tmp_path, monkeypatch, name, window):
    # chunks are decoded in windows: also try windows shorter than the lines
    monkeypatch.setattr(text_module, "_WINDOW", window)
    content = SMALL_FILES[name]
    data = content.encode("utf-8")
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    fs, paths = expand_paths(str(path))
    (p,) = paths
    expected = truth(content)
    n = len(data)
    for chunk_size in (1, 3, 7, 1 << 20):
        for a in range(n + 1):
            for b in range(a, n + 1):
                splits = splits_from_cuts(p, n, [a, b])
                got = read_all(fs, splits, chunk_size=chunk_size)
                assert got == expected, (name, a, b, chunk_size)


@pytest.mark.parametrize("name", sorted(SMALL_FILES))
def test_each_split_owns_lines_starting_in_it(memfs, name):
    fs, root = memfs
    data = SMALL_FILES[name].encode("utf-8")
    path = f"{root}/f.txt"
    fs.pipe(path, data)
    # byte offsets where lines start, and the line (as bytes) starting there
    starts = [0] + [i + 1 for i, c in enumerate(data) if c == 0x0A and i + 1 < len(data)]
    if not data:
        starts = []
    for start in range(len(data) + 1):
        for length in range(len(data) + 2 - start):
            owned = [s for s in starts if start <= s < start + length]
            got = list(read_text_lines(fs, TextSplit(path, start, length), chunk_size=2))
            assert len(got) == len(owned), (name, start, length)


def test_split_past_end_of_file(memfs):
    fs, root = memfs
    fs.pipe(f"{root}/a", b"one\ntwo")
    assert list(read_text_lines(fs, TextSplit(f"{root}/a", 0, 1000))) == ["one", "two"]
    assert list(read_text_lines(fs, TextSplit(f"{root}/a", 2, 1000))) == ["two"]
    assert list(read_text_lines(fs, TextSplit(f"{root}/a", 7, 1000))) == []
    assert list(read_text_lines(fs, TextSplit(f"{root}/a", 50, 10))) == []


def test_utf8_at_every_boundary(tmp_path):
    content = "héllo wörld ☃ 𝄞\n" * 3 + "𝄞é☃"
    data = content.encode()
    path = tmp_path / "u.txt"
    path.write_bytes(data)
    fs, (p,) = expand_paths(str(path))
    for chunk_size in (1, 2, 3, 4, 5, 64):
        for cut in range(len(data) + 1):
            got = read_all(fs, splits_from_cuts(p, len(data), [cut]), chunk_size=chunk_size)
            assert got == truth(content), (cut, chunk_size)


def test_bad_utf8_names_file(memfs):
    fs, root = memfs
    path = f"{root}/bad.txt"
    fs.pipe(path, b"fine\nbad \xff here\n")
    with pytest.raises(UnicodeDecodeError) as info:
        list(read_text_lines(fs, TextSplit(path, 0, 17)))
    assert any(path in note for note in info.value.__notes__)
    assert any("offset 9" in note for note in info.value.__notes__)
    got = list(read_text_lines(fs, TextSplit(path, 0, 17), errors="replace"))
    assert got == ["fine", "bad \ufffd here"]


@pytest.mark.parametrize(
    "data",
    [b"\xffab\n", b"ok\nxxxxxxxxxx\xffyy\nz\n", b"ok\nlast line \xff", b"a\nbbbbbbbbbbbb\n\xff\n"],
)
def test_bad_utf8_offset(memfs, data):
    fs, root = memfs
    path = f"{root}/bad.txt"
    fs.pipe(path, data)
    for chunk_size in (1, 2, 3, 5, 8, 1 << 20):
        for window in (1, 3, 1 << 16):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(text_module, "_WINDOW", window)
                with pytest.raises(UnicodeDecodeError) as info:
                    list(read_text_lines(fs, TextSplit(path, 0, len(data)), chunk_size=chunk_size))
            assert f"in {path} (byte offset {data.index(0xFF)})" in info.value.__notes__


def test_other_encodings(memfs):
    fs, root = memfs
    path = f"{root}/latin.txt"
    fs.pipe(path, "café\nnaïve\n".encode("latin-1"))
    assert list(read_text_lines(fs, TextSplit(path, 0, 11), encoding="latin-1")) == [
        "café",
        "naïve",
    ]
    path = f"{root}/bom.txt"
    fs.pipe(path, "\ufeffa\nb\n".encode())
    assert list(read_text_lines(fs, TextSplit(path, 0, 7), encoding="utf-8-sig")) == ["a", "b"]
    assert list(read_text_lines(fs, TextSplit(path, 5, 2), encoding="utf-8-sig")) == ["b"]
    with pytest.raises(ValueError, match="utf-16"):
        list(read_text_lines(fs, TextSplit(path, 0, 7), encoding="utf-16"))


def test_missing_file_names_path(tmp_path, memfs):
    fs, root = memfs
    missing = f"{root}/missing.txt"
    with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
        list(read_text_lines(fs, TextSplit(missing, 0, 10)))
    local = fsspec.filesystem("file")
    with pytest.raises(FileNotFoundError, match=r"nothere\.txt"):
        list(read_text_lines(local, TextSplit(str(tmp_path / "nothere.txt"), 0, 0)))


def test_check_called_per_chunk_and_may_raise(memfs):
    fs, root = memfs
    path = f"{root}/a.txt"
    fs.pipe(path, b"abcdefghij\n" * 10)  # 110 bytes
    calls = []
    lines = list(
        read_text_lines(fs, TextSplit(path, 0, 110), check=lambda: calls.append(1), chunk_size=11)
    )
    assert len(lines) == 10
    assert 10 <= len(calls) <= 11  # one per read, the last read seeing EOF

    class Cancelled(Exception):
        pass

    def cancel():
        if len(calls) >= 3:
            raise Cancelled
        calls.append(1)

    calls.clear()
    it = read_text_lines(fs, TextSplit(path, 0, 110), check=cancel, chunk_size=11)
    with pytest.raises(Cancelled):
        for _ in it:
            pass


def test_plan_arithmetic(memfs):
    fs, root = memfs
    # 3 files: 5000, 1000, 0 bytes; total 6000
    sizes = {"a": 5000, "b": 1000, "c": 0}
    paths = []
    for name, size in sizes.items():
        fs.pipe(f"{root}/{name}", b"x" * size)
        paths.append(f"{root}/{name}")

    # goal 3000 > block 1024: split size 1024; 5000 = 4*1024 + 904; 1000 -> one split
    splits = plan_text_splits(fs, paths, min_partitions=2, block_size=1024)
    assert [(s.path[-1], s.start, s.length) for s in splits] == [
        ("a", 0, 1024),
        ("a", 1024, 1024),
        ("a", 2048, 1024),
        ("a", 3072, 1024),
        ("a", 4096, 904),
        ("b", 0, 1000),
        ("c", 0, 0),
    ]
    # goal 6000 // 4 = 1500 < block: 5000 = 1500 * 2 + 2000 -> 2000/1500 > 1.1 -> 3 + 500
    splits = plan_text_splits(fs, paths, min_partitions=4, block_size=1 << 20)
    assert [(s.path[-1], s.start, s.length) for s in splits] == [
        ("a", 0, 1500),
        ("a", 1500, 1500),
        ("a", 3000, 1500),
        ("a", 4500, 500),
        ("b", 0, 1000),
        ("c", 0, 0),
    ]
    # slop: 1.1 * split size stays one split; a bit more is cut
    fs.pipe(f"{root}/d", b"x" * 1100)
    fs.pipe(f"{root}/e", b"x" * 1101)
    splits = plan_text_splits(fs, [f"{root}/d", f"{root}/e"], 1, block_size=1000)
    assert [(s.path[-1], s.start, s.length) for s in splits] == [
        ("d", 0, 1100),
        ("e", 0, 1000),
        ("e", 1000, 101),
    ]
    # min_partitions 0 behaves like 1; more partitions than bytes -> split size 1
    splits = plan_text_splits(fs, [f"{root}/b"], 0, block_size=1 << 20)
    assert [(s.start, s.length) for s in splits] == [(0, 1000)]
    splits = plan_text_splits(fs, [f"{root}/b"], 5000, block_size=1 << 20)
    assert len(splits) == 1000 and all(s.length == 1 for s in splits)
    # only empty files: one empty split each
    assert plan_text_splits(fs, [f"{root}/c"], 8) == [TextSplit(f"{root}/c", 0, 0)]


def test_plan_like_100mb(monkeypatch, memfs):
    """The arithmetic on big sizes, with fs.size faked."""
    fs, _ = memfs
    sizes = {"big": 100 * 2**20 + 12345, "small": 3 * 2**20}
    monkeypatch.setattr(fs, "size", lambda p: sizes[p])
    splits = plan_text_splits(fs, ["big", "small"], min_partitions=2)
    # goal ~51.5 MiB > 32 MiB block: split size 32 MiB; big = 3 * 32 MiB + 4 MiB + 12345
    mib32 = 32 * 2**20
    assert [(s.path, s.start, s.length) for s in splits] == [
        ("big", 0, mib32),
        ("big", mib32, mib32),
        ("big", 2 * mib32, mib32),
        ("big", 3 * mib32, 4 * 2**20 + 12345),
        ("small", 0, 3 * 2**20),
    ]
    # 65 MiB: after two 32 MiB splits 33 MiB would remain, within the 10% slop
    sizes["big"] = 65 * 2**20
    splits = plan_text_splits(fs, ["big"], min_partitions=1)
    assert [(s.start, s.length) for s in splits] == [(0, mib32), (mib32, 33 * 2**20)]
    sizes["big"] = 100 * 2**20 + 12345
    splits = plan_text_splits(fs, ["big", "small"], min_partitions=8)
    total = sizes["big"] + sizes["small"]
    big = [s for s in splits if s.path == "big"]
    assert all(s.length == total // 8 for s in big[:-1])
    assert len(big) == 8 and 0 < big[-1].length <= 1.1 * (total // 8)
    assert sum(s.length for s in splits) == total


def test_planned_splits_read_every_line_once(tmp_path):
    words = ["alpha", "béta", "γάμμα", "", "𝄞 clef", "x" * 50]
    content = "\n".join(words[i % len(words)] + f" {i}" for i in range(3000))
    (tmp_path / "t.txt").write_text(content, encoding="utf-8")
    fs, paths = expand_paths(str(tmp_path))
    for min_partitions in (1, 2, 3, 7, 64, 1000):
        splits = plan_text_splits(fs, paths, min_partitions, block_size=10_000)
        assert len(splits) >= min(min_partitions, 10)
        assert read_all(fs, splits, chunk_size=333) == truth(content)


def test_gzip_and_bz2_one_split(tmp_path):
    content = "héllo\nwörld\r\n" * 1000 + "last"
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(content.encode()))
    (tmp_path / "b.txt.bz2").write_bytes(bz2.compress(content.encode()))
    (tmp_path / "c.txt").write_text(content, encoding="utf-8")
    (tmp_path / "empty.gz").write_bytes(b"")
    fs, paths = expand_paths(str(tmp_path))
    splits = plan_text_splits(fs, paths, min_partitions=50, block_size=1000)
    by_file: dict[str, list[TextSplit]] = {}
    for s in splits:
        by_file.setdefault(s.path.rsplit("/", 1)[-1], []).append(s)
    assert [(s.start, s.compression) for s in by_file["a.txt.gz"]] == [(0, "gzip")]
    assert [(s.start, s.compression) for s in by_file["b.txt.bz2"]] == [(0, "bz2")]
    assert by_file["a.txt.gz"][0].length == (tmp_path / "a.txt.gz").stat().st_size
    assert [(s.start, s.length, s.compression) for s in by_file["empty.gz"]] == [(0, 0, "gzip")]
    assert len(by_file["c.txt"]) > 1
    expected = truth(content)
    for name in ("a.txt.gz", "b.txt.bz2", "c.txt"):
        assert read_all(fs, by_file[name], chunk_size=100) == expected, name
    assert read_all(fs, by_file["empty.gz"]) == []


def make_tree(fs, root):
    for name in [
        "part-00000",
        "part-00001",
        "_SUCCESS",
        ".part-00000.crc",
        "sub/part-00002",
        "sub/_temporary/part-x",
        ".hidden/part-y",
        "other.txt",
    ]:
        fs.pipe(f"{root}/data/{name}", b"line\n")


def test_expand_directory_skips_hidden(memfs):
    fs, root = memfs
    make_tree(fs, root)
    got_fs, paths = expand_paths(f"memory://{root}/data")
    assert got_fs is fs
    assert paths == [
        f"{root}/data/other.txt",
        f"{root}/data/part-00000",
        f"{root}/data/part-00001",
        f"{root}/data/sub/part-00002",
    ]
    for p in paths:
        with got_fs.open(p, "rb") as f:
            assert f.read() == b"line\n"


def test_expand_local_directory(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ["a", "_SUCCESS", ".x.crc", "sub/b", "sub/.c"]:
        (tmp_path / "d" / name).write_text("z\n")
    fs, paths = expand_paths(str(tmp_path / "d"))
    assert [p.removeprefix(fs._strip_protocol(str(tmp_path))) for p in paths] == [
        "/d/a",
        "/d/sub/b",
    ]
    _, paths2 = expand_paths(f"file://{tmp_path}/d/")
    assert paths2 == paths


def test_expand_glob_comma_and_list(memfs):
    fs, root = memfs
    make_tree(fs, root)
    base = f"memory://{root}/data"
    _, paths = expand_paths(f"{base}/part-*")
    assert paths == [f"{root}/data/part-00000", f"{root}/data/part-00001"]
    _, paths = expand_paths(f"{base}/*")  # matched directories expand, hidden skipped
    assert paths == [
        f"{root}/data/other.txt",
        f"{root}/data/part-00000",
        f"{root}/data/part-00001",
        f"{root}/data/sub/part-00002",
    ]
    _, paths = expand_paths(f"{base}/sub/part-00002, {base}/part-0000[1]")
    assert paths == [f"{root}/data/part-00001", f"{root}/data/sub/part-00002"]
    _, paths = expand_paths([f"{base}/other.txt", f"{base}/part-00000", f"{base}/other.txt"])
    assert paths == [f"{root}/data/other.txt", f"{root}/data/part-00000"]
    _, paths = expand_paths(f"{base}/_SUCCESS")  # named explicitly: taken
    assert paths == [f"{root}/data/_SUCCESS"]


def test_expand_missing(memfs):
    fs, root = memfs
    make_tree(fs, root)
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        expand_paths(f"memory://{root}/nothing-here")
    with pytest.raises(FileNotFoundError, match="no-match-"):
        expand_paths(f"memory://{root}/data/no-match-*")
    with pytest.raises(FileNotFoundError, match="missing-two"):
        expand_paths(f"memory://{root}/data/part-00000,memory://{root}/missing-two")
    with pytest.raises(ValueError):
        expand_paths(" , ")


def test_expand_mixed_filesystems(tmp_path, memfs):
    fs, root = memfs
    make_tree(fs, root)
    (tmp_path / "a").write_text("x\n")
    with pytest.raises(ValueError) as info:
        expand_paths([str(tmp_path / "a"), f"memory://{root}/data"])
    assert str(tmp_path / "a") in str(info.value)
    assert f"memory://{root}/data" in str(info.value)


ALPHABET = st.sampled_from(["a", "b", " ", "\n", "\n", "\r", "é", "☃", "𝄞", "\r\n"])


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(ALPHABET, max_size=60),
    cut_fracs=st.lists(st.floats(0, 1), max_size=5),
    chunk_size=st.integers(1, 16),
    window=st.sampled_from([1, 2, 5, 1 << 16]),
)
def test_random_text_random_splits(pieces, cut_fracs, chunk_size, window):
    content = "".join(pieces)
    data = content.encode()
    fs = fsspec.filesystem("memory")
    path = f"/test-text-io-prop-{uuid.uuid4().hex}.txt"
    fs.pipe(path, data)
    try:
        cuts = sorted(int(f * len(data)) for f in cut_fracs)
        splits = splits_from_cuts(path, len(data), cuts)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(text_module, "_WINDOW", window)
            assert read_all(fs, splits, chunk_size=chunk_size) == truth(content)
    finally:
        fs.rm(path)


def test_xz_and_zstd_read_whole(tmp_path):
    import lzma

    zstd = pytest.importorskip("zstandard")
    content = "ünï\r\ncödé\n" * 500 + "tail"
    (tmp_path / "a.txt.xz").write_bytes(lzma.compress(content.encode()))
    (tmp_path / "b.txt.zst").write_bytes(zstd.ZstdCompressor().compress(content.encode()))
    fs, paths = expand_paths(str(tmp_path))
    splits = plan_text_splits(fs, paths, min_partitions=40, block_size=100)
    assert [(s.path.rsplit("/", 1)[-1], s.start, s.compression) for s in splits] == [
        ("a.txt.xz", 0, "xz"),
        ("b.txt.zst", 0, "zstd"),
    ]
    for split in splits:
        assert list(read_text_lines(fs, split, chunk_size=7)) == truth(content), split.path


def test_missing_codec_is_named(tmp_path, monkeypatch):
    # as if zstandard were not installed: fsspec then does not know the extension
    monkeypatch.delitem(fsspec.utils.compressions, "zst", raising=False)
    (tmp_path / "logs.txt.zst").write_bytes(b"\x28\xb5\x2f\xfd garbage")
    fs, paths = expand_paths(str(tmp_path))
    with pytest.raises(ValueError, match=r"logs\.txt\.zst.*zstandard"):
        plan_text_splits(fs, paths, 2)


class LocatedMemoryFS(fsspec.implementations.memory.MemoryFileSystem):
    """Reports blocks of ``BLOCK`` bytes, block i on hosts ``h<i>`` and ``h<i+1>``."""

    BLOCK = 100
    style = "tuple"

    def get_file_block_locations(self, path, start, length):
        assert (start, length) == (0, self.size(path))
        blocks = []
        for i, offset in enumerate(range(0, length, self.BLOCK)):
            size = min(self.BLOCK, length - offset)
            hosts = [f"h{i}", f"h{i + 1}"]
            if self.style == "tuple":
                blocks.append((offset, size, hosts))
            elif self.style == "object":
                attributes = {"offset": offset, "length": size, "hosts": hosts}
                blocks.append(type("BlockLocation", (), attributes))
            else:
                raise NotImplementedError
        return blocks


@pytest.mark.parametrize("style", ["tuple", "object"])
def test_splits_get_the_hosts_of_their_blocks(memfs, style, monkeypatch):
    _, root = memfs
    located = LocatedMemoryFS()
    monkeypatch.setattr(located, "style", style)
    located.pipe(f"{root}/a.txt", b"x" * 450)
    located.pipe(f"{root}/b.txt", b"")
    located.pipe(f"{root}/c.txt.gz", gzip.compress(b"y" * 1000))
    paths = [f"{root}/a.txt", f"{root}/b.txt", f"{root}/c.txt.gz"]
    splits = plan_text_splits(located, paths, 1, block_size=150)
    # a.txt's blocks: [0,100) on h0 h1, [100,200) on h1 h2, ... [400,450) on h4 h5.
    # Each split keeps two hosts (the replication), those holding most of its bytes.
    assert [(s.path.rsplit("/")[-1], s.start, s.length, s.hosts) for s in splits] == [
        ("a.txt", 0, 150, ("h1", "h0")),  # h1 holds 150 bytes of it, h0 100, h2 50
        ("a.txt", 150, 150, ("h2", "h3")),  # h2 150, h3 100, h1 50
        ("a.txt", 300, 150, ("h4", "h3")),  # h4 150, h3 100, h5 50
        ("b.txt", 0, 0, ()),  # an empty file has no block
        ("c.txt.gz", 0, located.size(paths[2]), ("h0", "h1")),  # one block, a tie
    ]


def test_no_locations_when_not_reported(memfs, monkeypatch):
    fs, root = memfs
    located = LocatedMemoryFS()
    monkeypatch.setattr(located, "style", "unsupported")  # raises NotImplementedError
    located.pipe(f"{root}/a.txt", b"x" * 450)
    assert {s.hosts for s in plan_text_splits(located, [f"{root}/a.txt"], 3)} == {()}
    fs.pipe(f"{root}/b.txt", b"x" * 450)  # the plain memory filesystem has no such method
    assert {s.hosts for s in plan_text_splits(fs, [f"{root}/b.txt"], 3)} == {()}


@settings(max_examples=100, deadline=None)
@given(
    files=st.lists(st.lists(ALPHABET, max_size=40), min_size=1, max_size=4),
    min_partitions=st.integers(1, 30),
    block_size=st.integers(1, 64),
    chunk_size=st.integers(1, 9),
)
def test_planned_splits_tile_files_and_read_each_line_once(
    files, min_partitions, block_size, chunk_size
):
    fs = fsspec.filesystem("memory")
    root = f"/test-text-io-plan-{uuid.uuid4().hex}"
    contents = ["".join(pieces) for pieces in files]
    paths = [f"{root}/f{i}.txt" for i in range(len(contents))]
    for path, content in zip(paths, contents, strict=True):
        fs.pipe(path, content.encode())
    try:
        splits = plan_text_splits(fs, paths, min_partitions, block_size=block_size)
        for path, content in zip(paths, contents, strict=True):
            mine = [s for s in splits if s.path == path]
            size = len(content.encode())
            # contiguous byte ranges covering the file exactly once, in order
            assert [s.start for s in mine] == [0] + [s.start + s.length for s in mine[:-1]]
            assert sum(s.length for s in mine) == size
            assert read_all(fs, mine, chunk_size=chunk_size) == truth(content)
    finally:
        fs.rm(root, recursive=True)
