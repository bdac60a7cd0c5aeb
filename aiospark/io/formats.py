"""Reading and writing pickle files and whole files (their plans: ``aiospark.plans.files``).

A pickle file is what ``RDD.save_as_pickle_file`` writes: a directory of
``part-NNNNN`` files (optionally compressed) plus ``_SUCCESS``, each part a
sequence of frames of ``aiospark.protocol.frames``, one pickled batch of
records per frame.  Reading it back gives one split per part file, in part
order.

``whole_text_files`` and ``binary_files`` read every file whole as one
``(path, content)`` record, grouping the files into about ``min_partitions``
splits of similar total size.

>>> import fsspec
>>> fs = fsspec.filesystem("memory")
>>> with fs.open("/doctest-formats/part-00000", "wb") as f:
...     write_frames(f, iter([1, (2, None)]), batch_size=10)
>>> list(read_pickle_records(fs, "/doctest-formats/part-00000"))
[1, (2, None)]
>>> fs.rm("/doctest-formats", recursive=True)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import fsspec

from aiospark.io.output import OutputCommitter, write_part
from aiospark.io.paths import compression_of, open_input
from aiospark.protocol.frames import encode_records, read_file_frames
from aiospark.validation import positive_int

__all__ = [
    "group_files",
    "natural_key",
    "read_pickle_records",
    "read_whole_file",
    "write_frames",
    "write_pickle_part",
]

#: ``batch_size=0`` picks this many records per pickled batch.
AUTO_BATCH = 1024


def check_min_partitions(min_partitions: int | None) -> None:
    """``ValueError`` unless ``min_partitions`` is ``None`` or a positive int.

    >>> check_min_partitions(0)
    Traceback (most recent call last):
    ...
    ValueError: min_partitions must be a positive int, got 0
    """
    if min_partitions is not None:
        positive_int(min_partitions, "min_partitions")


# -- writing ------------------------------------------------------------------------------


def write_frames(out: Any, records: Iterator[Any], batch_size: int) -> None:
    """Write ``records`` to a binary file object, ``batch_size`` records per frame."""
    for pieces in encode_records(records, batch_size):
        out.writelines(pieces)


def write_pickle_part(
    batch_size: int,
    committer: OutputCommitter,
    compression: str | None,
    index: int,
    records: Iterator[Any],
) -> str:
    """Task side: write one partition as framed pickle batches; return the file written.

    >>> committer = OutputCommitter.create(f"{tmp_dir}/doctest-pickle-part")
    >>> written = write_pickle_part(10, committer, None, 0, iter([1, (2, "x")]))
    >>> list(read_pickle_records(committer.fs, written))
    [1, (2, 'x')]
    """
    return write_part(
        committer, compression, index, lambda out: write_frames(out, records, batch_size)
    )


# -- reading ------------------------------------------------------------------------------


def read_pickle_records(
    fs: fsspec.AbstractFileSystem,
    path: str,
    check: Callable[[], None] | None = None,
) -> Iterator[Any]:
    """The records of one part file written by ``save_as_pickle_file``.

    Frames are read and decoded one at a time; a compressed part (by its
    extension) is decompressed on the fly.  ``check`` is called before each
    frame and may raise to stop the reading.
    """
    with open_input(fs, path, compression_of(path)) as f:
        frames = read_file_frames(f, None, path)
        while True:
            if check is not None:
                check()
            try:
                batch = next(frames, None)
            except Exception as exc:
                exc.add_note(f"while reading a pickled batch of {path}")
                raise
            if batch is None:
                return
            yield from batch


def natural_key(path: str) -> list[Any]:
    """Sort key putting ``part-99999`` before ``part-100000``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def group_files(sizes: list[int], num_groups: int) -> list[list[int]]:
    """Cut a list of files (by size) into ``min(num_groups, len(sizes))`` contiguous groups.

    Groups close at the cumulative-size marks ``total * j / num_groups``, and
    every group gets at least one file, so files of similar sizes spread evenly.

    >>> group_files([10, 10, 10, 10, 10], 2)
    [[0, 1, 2], [3, 4]]
    >>> group_files([100, 1, 1, 1], 3)
    [[0], [1], [2, 3]]
    >>> group_files([0, 0, 0], 5)
    [[0], [1], [2]]
    >>> group_files([], 3)
    []
    """
    n = len(sizes)
    k = max(1, min(num_groups, n))
    total = sum(sizes)
    groups: list[list[int]] = []
    current: list[int] = []
    seen = 0
    for i, size in enumerate(sizes):
        current.append(i)
        seen += size
        if len(groups) == k - 1:
            continue  # the last group takes the rest
        files_left, groups_left = n - i - 1, k - len(groups) - 1
        if files_left <= groups_left or seen * k >= total * (len(groups) + 1):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def read_whole_file(
    fs: fsspec.AbstractFileSystem, mode: str, path: str, shown: str
) -> tuple[Any, Any]:
    compression = None if mode == "binary" else compression_of(path)
    with open_input(fs, path, compression) as f:
        data = f.read()
    if mode == "binary":
        return shown, data
    if mode == "text-bytes":
        return shown.encode("utf-8"), data
    try:
        return shown, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        exc.add_note(f"in {path} (byte offset {exc.start})")
        raise
