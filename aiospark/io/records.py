"""Fixed-length binary records (``binary_records``): cut files at record boundaries, read a split.

Like Hadoop's ``FixedLengthInputFormat`` under PySpark's ``binaryRecords``: every
file's size must be a multiple of the record length (else an error naming the
file, raised in the driver before any job); files are cut as ``text_file`` cuts
them (``plan_text_splits``' sizes), each cut moved down to a record boundary, so
no record is split.  A compressed file (by extension, as ``text_file`` reads it)
is one split, decompressed; its partial last record is found, and named, as it
is read.

>>> import fsspec
>>> fs = fsspec.filesystem("memory")
>>> fs.pipe("/doctest-records/a.bin", bytes(range(12)))
>>> splits = plan_record_splits(fs, ["/doctest-records/a.bin"], 2, 4)
>>> [(s.start, s.length) for s in splits]  # a 6-byte goal, cut down to whole records
[(0, 4), (4, 4), (8, 4)]
>>> [list(read_records(fs, s, 4)) for s in splits]
[[b'\\x00\\x01\\x02\\x03'], [b'\\x04\\x05\\x06\\x07'], [b'\\x08\\t\\n\\x0b']]
>>> fs.rm("/doctest-records", recursive=True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from aiospark.io.locations import block_locations, hosts_for_range
from aiospark.io.paths import compression_of, open_input
from aiospark.io.text import TextSplit

#: The last split of a file may be up to 10% larger than the others (Hadoop's SPLIT_SLOP).
_SPLIT_SLOP = 1.1
#: Records are read in chunks of about this many bytes.
_CHUNK = 1 << 20


def check_record_length(record_length: Any) -> int:
    """A record length must be a positive int.

    >>> check_record_length(0)
    Traceback (most recent call last):
    ...
    ValueError: record_length must be a positive int, got 0
    """
    if isinstance(record_length, bool) or not isinstance(record_length, int) or record_length < 1:
        raise ValueError(f"record_length must be a positive int, got {record_length!r}")
    return record_length


def plan_record_splits(
    fs: Any, paths: list[str], min_partitions: int, record_length: int,
    block_size: int = 32 * 2**20,
) -> list[TextSplit]:
    """Byte-range splits of whole records; ``ValueError`` names a file of a partial record.

    >>> import fsspec
    >>> fs = fsspec.filesystem("memory")
    >>> fs.pipe("/doctest-partial/odd.bin", b"12345")
    >>> plan_record_splits(fs, ["/doctest-partial/odd.bin"], 1, 2)
    Traceback (most recent call last):
    ...
    ValueError: /doctest-partial/odd.bin: its size, 5 bytes, is not a multiple of record_length 2
    >>> fs.rm("/doctest-partial", recursive=True)
    """
    sizes = [int(fs.size(p)) for p in paths]
    for path, size in zip(paths, sizes, strict=True):
        if size % record_length and compression_of(path) is None:
            raise ValueError(
                f"{path}: its size, {size} bytes, is not a multiple of record_length "
                f"{record_length}"
            )
    goal = sum(sizes) // max(min_partitions, 1)
    split_size = max(1, min(goal, block_size)) // record_length * record_length or record_length
    splits: list[TextSplit] = []
    for path, size in zip(paths, sizes, strict=True):
        blocks = block_locations(fs, path, size)
        compression = compression_of(path)
        if compression is not None:  # read whole, decompressed
            splits.append(TextSplit(path, 0, size, compression,
                                    hosts_for_range(blocks, 0, size)))
            continue
        start = 0
        while (size - start) / split_size > _SPLIT_SLOP:
            splits.append(TextSplit(path, start, split_size,
                                    hosts=hosts_for_range(blocks, start, split_size)))
            start += split_size
        if size - start or not size:
            splits.append(TextSplit(path, start, size - start,
                                    hosts=hosts_for_range(blocks, start, size - start)))
    return splits


def read_records(
    fs: Any, split: TextSplit, record_length: int, check: Callable[[], None] = lambda: None
) -> Iterator[bytes]:
    """The records of ``split`` as ``bytes`` of ``record_length`` each (on a worker).

    >>> import fsspec, gzip
    >>> fs = fsspec.filesystem("memory")
    >>> fs.pipe("/doctest-gz/a.bin.gz", gzip.compress(b"abcde"))
    >>> split = plan_record_splits(fs, ["/doctest-gz/a.bin.gz"], 1, 2)[0]
    >>> list(read_records(fs, split, 2))
    Traceback (most recent call last):
    ...
    ValueError: /doctest-gz/a.bin.gz: ends inside a record: 1 byte left over (record_length 2)
    >>> fs.rm("/doctest-gz", recursive=True)
    """
    per_chunk = max(1, _CHUNK // record_length) * record_length
    compressed = split.compression is not None
    remaining = float("inf") if compressed else split.length
    leftover = b""  # a short read can stop inside a record
    with open_input(fs, split.path, split.compression) as f:
        if not compressed:
            f.seek(split.start)
        while remaining > 0:
            check()
            chunk = f.read(int(min(per_chunk, remaining)))
            if not chunk and compressed:
                break
            if not chunk:
                raise EOFError(f"{split.path} ended early: was it changed while being read?")
            remaining -= len(chunk)
            data = leftover + chunk if leftover else chunk
            whole = len(data) - len(data) % record_length
            view = memoryview(data)
            for offset in range(0, whole, record_length):
                yield bytes(view[offset:offset + record_length])
            leftover = bytes(view[whole:])
    if leftover:
        raise ValueError(
            f"{split.path}: ends inside a record: {len(leftover)} byte"
            f"{'s' if len(leftover) > 1 else ''} left over (record_length {record_length})"
        )
