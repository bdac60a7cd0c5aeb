"""Plans reading files whole: pickle files (one split per part) and ``whole_text_files``."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from aiospark.io.formats import group_files, natural_key, read_pickle_records, read_whole_file
from aiospark.io.locations import hosts_for_files, reports_locations
from aiospark.io.paths import protocols
from aiospark.lineage import DataSplit, Plan, Split, TaskContext


class PickleFile(Plan):
    """The records of part files written by ``save_as_pickle_file``, one split per file."""

    def __init__(self, fs: Any, paths: list[str]) -> None:
        super().__init__()
        self.fs = fs
        self._paths = sorted(paths, key=natural_key)
        self._hosts: list[tuple[str, ...]] = [
            hosts_for_files(fs, [(p, int(fs.size(p)))]) if reports_locations(fs) else ()
            for p in self._paths
        ]

    def compute_splits(self) -> list[Split]:
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


class WholeFile(Plan):
    """One ``(path, content)`` record per file; each split reads a group of files.

    ``mode`` is ``"text"`` (decompressed, decoded as UTF-8), ``"text-bytes"``
    (decompressed, path and content as UTF-8 bytes, PySpark's
    ``use_unicode=False``) or ``"binary"`` (the raw bytes, never decompressed).
    """

    MODES = ("text", "text-bytes", "binary")

    def __init__(
        self, fs: Any, paths: list[str], min_partitions: int, mode: str
    ) -> None:
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        super().__init__()
        self.fs = fs
        self.mode = mode
        sizes = [int(fs.size(p)) for p in paths]
        groups = group_files(sizes, min_partitions) or [[]]  # no files: one empty split
        self._groups = [tuple(paths[i] for i in g) for g in groups]
        self._hosts = [hosts_for_files(fs, [(paths[i], sizes[i]) for i in g]) for g in groups]
        local = "file" in protocols(fs)
        self._shown = {p: (p if local else fs.unstrip_protocol(p)) for p in paths}

    def compute_splits(self) -> list[Split]:
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
        read = functools.partial(read_whole_file, self.fs, self.mode)
        for path, shown in split.data:  # type: ignore[attr-defined]
            tctx.check()
            yield read(path, shown)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_groups"] = None
        state["_shown"] = None
        state["_hosts"] = None
        return state


class BinaryRecords(Plan):
    """Fixed-length records of files (``binary_records``), one split per byte range."""

    def __init__(self, fs: Any, record_splits: list[Any], record_length: int) -> None:
        super().__init__()
        self.fs = fs
        self.record_length = record_length
        self._record_splits = record_splits

    def compute_splits(self) -> list[Split]:
        return [DataSplit(i, s) for i, s in enumerate(self._record_splits)]

    def preferred_locations(self, split: Split) -> list[str]:
        """The hosts the filesystem reports for the split's bytes (``aiospark.io.locations``).

        >>> path = f"{tmp_dir}/doctest-records-hosts.bin"
        >>> _ = open(path, "wb").write(b"abcd")
        >>> rdd = ctx.binary_records(path, 2)
        >>> rdd.preferred_locations(rdd.splits()[0])  # the local filesystem reports none
        []
        """
        return list(split.data.hosts)  # type: ignore[attr-defined]

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        from aiospark.io.records import read_records

        return read_records(self.fs, split.data, self.record_length, tctx.check)  # type: ignore[attr-defined]

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_record_splits"] = None  # each task carries its own range in its split
        return state
