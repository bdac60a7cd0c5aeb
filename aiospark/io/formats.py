"""Whole-file inputs and pickle files: ``pickle_file``, ``whole_text_files``, ``binary_files``.

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

import functools
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import fsspec

from aiospark.io.locations import hosts_for_files, reports_locations
from aiospark.io.output import OutputCommitter, write_part
from aiospark.io.paths import compression_of, open_input, protocols
from aiospark.lineage import DataSplit, Split, TaskContext
from aiospark.protocol.frames import encode_records, read_file_frames
from aiospark.rdd import RDD

if TYPE_CHECKING:
    from aiospark.context import Context

__all__ = [
    "PickleFileRDD",
    "WholeFileRDD",
    "group_files",
    "read_pickle_records",
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
    if min_partitions is None:
        return
    if isinstance(min_partitions, bool) or not isinstance(min_partitions, int):
        raise ValueError(f"min_partitions must be a positive int, got {min_partitions!r}")
    if min_partitions < 1:
        raise ValueError(f"min_partitions must be a positive int, got {min_partitions!r}")


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


def _natural_key(path: str) -> list[Any]:
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


# -- RDDs ---------------------------------------------------------------------------------


class PickleFileRDD(RDD):
    """The records of part files written by ``save_as_pickle_file``, one split per file."""

    def __init__(self, ctx: Context, fs: Any, paths: list[str]) -> None:
        super().__init__(ctx, [])
        self.fs = fs
        self._paths = sorted(paths, key=_natural_key)
        self._hosts: list[tuple[str, ...]] = [
            hosts_for_files(fs, [(p, int(fs.size(p)))]) if reports_locations(fs) else ()
            for p in self._paths
        ]

    def _compute_splits(self) -> list[Split]:
        return [DataSplit(i, p) for i, p in enumerate(self._paths)]

    def preferred_locations(self, split: Split) -> list[str]:
        """The hosts the filesystem reports for the split's file (see ``aiospark.io.locations``).

        >>> out = f"{tmp_dir}/doctest-pickle-hosts"
        >>> await ctx.parallelize([1, 2], 2).save_as_pickle_file(out)
        >>> rdd = ctx.pickle_file(out)
        >>> rdd.preferred_locations(rdd.splits()[0])  # the local filesystem reports none
        []
        """
        return list(self._hosts[split.index])

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        return read_pickle_records(self.fs, split.data, tctx.check)  # type: ignore[attr-defined]

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_paths"] = None  # each task carries its own path in its split
        state["_hosts"] = None
        return state


class WholeFileRDD(RDD):
    """One ``(path, content)`` record per file; each split reads a group of files.

    ``mode`` is ``"text"`` (decompressed, decoded as UTF-8), ``"text-bytes"``
    (decompressed, path and content as UTF-8 bytes, PySpark's
    ``use_unicode=False``) or ``"binary"`` (the raw bytes, never decompressed).
    """

    MODES = ("text", "text-bytes", "binary")

    def __init__(
        self, ctx: Context, fs: Any, paths: list[str], min_partitions: int, mode: str
    ) -> None:
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        super().__init__(ctx, [])
        self.fs = fs
        self.mode = mode
        sizes = [int(fs.size(p)) for p in paths]
        groups = group_files(sizes, min_partitions) or [[]]  # no files: one empty split
        self._groups = [tuple(paths[i] for i in g) for g in groups]
        self._hosts = [hosts_for_files(fs, [(paths[i], sizes[i]) for i in g]) for g in groups]
        local = "file" in protocols(fs)
        self._shown = {p: (p if local else fs.unstrip_protocol(p)) for p in paths}

    def _compute_splits(self) -> list[Split]:
        return [
            DataSplit(i, tuple((p, self._shown[p]) for p in group))
            for i, group in enumerate(self._groups)
        ]

    def preferred_locations(self, split: Split) -> list[str]:
        """The hosts the filesystem reports for most of the group's bytes.

        >>> rdd = ctx.binary_files(__file__)
        >>> rdd.preferred_locations(rdd.splits()[0])  # the local filesystem reports none
        []
        """
        return list(self._hosts[split.index])

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        read = functools.partial(_read_whole_file, self.fs, self.mode)
        for path, shown in split.data:  # type: ignore[attr-defined]
            tctx.check()
            yield read(path, shown)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_groups"] = None
        state["_shown"] = None
        state["_hosts"] = None
        return state


def _read_whole_file(
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
