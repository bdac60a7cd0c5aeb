"""Hadoop-style output: ``part-00000``... files plus ``_SUCCESS``, committed atomically.

Each task writes its part under ``<out>/_temporary/<job>/`` with a unique
name and renames it to ``<out>/part-NNNNN`` only when it has written it all,
so a failed or retried task never leaves a partial part.  The job writes
``_SUCCESS`` and removes ``_temporary`` when every task has committed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import fsspec
from fsspec.compression import compr

_EXTENSIONS = {"gzip": ".gz", "bz2": ".bz2", "lzma": ".xz", "xz": ".xz", "zstd": ".zst"}


@dataclasses.dataclass(frozen=True)
class OutputCommitter:
    """Where one save job writes, and how its tasks commit."""

    fs: Any
    root: str
    job: str

    @classmethod
    def create(
        cls, path: str, storage_options: dict | None = None, overwrite: bool = False
    ) -> OutputCommitter:
        """Prepare ``path`` for a new job; ``FileExistsError`` if it exists and not overwriting."""
        fs, root = fsspec.core.url_to_fs(path, **(storage_options or {}))
        root = root.rstrip("/")
        if fs.exists(root):
            if not overwrite:
                raise FileExistsError(f"output directory {path} already exists")
            fs.rm(root, recursive=True)
        committer = cls(fs, root, uuid.uuid4().hex[:12])
        fs.makedirs(committer.staging, exist_ok=True)
        return committer

    @property
    def staging(self) -> str:
        return f"{self.root}/_temporary/{self.job}"

    def commit_job(self) -> None:
        """Every part is in place: mark success and drop the staging area."""
        self.fs.rm(f"{self.root}/_temporary", recursive=True)
        with self.fs.open(f"{self.root}/_SUCCESS", "wb"):
            pass

    def abort_job(self) -> None:
        """The job failed: remove the staging area (committed parts stay, no _SUCCESS)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(f"{self.root}/_temporary", recursive=True)


def check_compression(compression: str | None) -> None:
    """Refuse an unknown codec before anything is written.

    >>> check_compression("gzip")
    >>> check_compression("nope")
    Traceback (most recent call last):
    ...
    ValueError: unknown compression 'nope'; known: ['bz2', 'gzip', ...]
    """
    if compression is not None and compression not in compr:
        known = sorted(k for k in compr if k)
        raise ValueError(f"unknown compression {compression!r}; known: {known}")


def write_part(
    committer: OutputCommitter,
    compression: str | None,
    index: int,
    write_body: Callable[[Any], None],
) -> None:
    """Task side: write one partition with ``write_body(file)``, then commit it by renaming."""
    check_compression(compression)
    name = f"part-{index:05d}{_EXTENSIONS.get(compression or '', '')}"
    temporary = f"{committer.staging}/{name}.{uuid.uuid4().hex}"
    fs = committer.fs
    with fs.open(temporary, "wb") as raw:
        out = compr[compression](raw, mode="wb") if compression else raw
        try:
            write_body(out)
        finally:
            if out is not raw:
                out.close()
    fs.mv(temporary, f"{committer.root}/{name}")


def write_text_part(
    committer: OutputCommitter, compression: str | None, index: int, records: Iterator[Any]
) -> None:
    """Task side: one partition as ``str(record)`` lines (bytes written as they are)."""

    def body(out: Any) -> None:
        while batch := list(itertools.islice(records, 1024)):
            lines = [x.decode() if isinstance(x, bytes) else str(x) for x in batch]
            out.write(("\n".join(lines) + "\n").encode("utf-8"))

    write_part(committer, compression, index, body)


async def save_partitions(
    rdd: Any,
    path: str,
    compression: str | None,
    overwrite: bool,
    write: Callable[[OutputCommitter, str | None, int, Iterator[Any]], None],
) -> None:
    """Driver side of every ``save_as_*``: prepare, run ``write`` on each partition, commit."""
    check_compression(compression)
    committer = OutputCommitter.create(path, rdd.ctx.storage_options, overwrite)
    try:
        await rdd.ctx._run_job(rdd, functools.partial(write, committer, compression))
    except BaseException:
        committer.abort_job()
        raise
    committer.commit_job()
