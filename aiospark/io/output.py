"""Hadoop-style output: ``part-00000``... files plus ``_SUCCESS``, committed atomically.

The protocol (Hadoop's ``FileOutputCommitter`` with the job commit in the driver):

1. The driver checks the output directory (an error if it exists, unless
   overwriting) and picks a job id.
2. Each task attempt writes its partition to a name of its own,
   ``<out>/_temporary/<job>/part-NNNNN.<attempt uuid>``, and returns that name.
   An attempt that fails removes what it wrote.
3. The scheduler accepts one successful attempt per partition (a retried or
   speculative duplicate that finishes second is ignored).  When every
   partition has one, the driver moves exactly those files to
   ``<out>/part-NNNNN``, removes ``_temporary`` (and with it the files of
   failed, slower or abandoned attempts), then writes ``_SUCCESS``.

So no attempt ever writes a final name itself: a part is complete when it
appears, there is one per partition, and a straggler that finishes after the
job cannot replace it (it finds ``_SUCCESS`` and removes its own file).  On
object stores such as S3, where "rename" is copy-then-delete, the copy makes the
final object appear whole.  A job that fails removes ``_temporary`` and leaves
no part and no ``_SUCCESS``.  The output path must be reachable from the driver
and every worker alike (a shared or object-store filesystem, or a local path on
a one-host cluster); ``memory://`` is private to each process and is refused.

>>> import fsspec
>>> committer = OutputCommitter.create("file:///tmp/doctest-output", overwrite=True)
>>> written = write_text_part(committer, None, 0, iter(["a", "b"]))
>>> committer.commit_job([written])
>>> sorted(fsspec.filesystem("file").ls("/tmp/doctest-output", detail=False))
['/tmp/doctest-output/_SUCCESS', '/tmp/doctest-output/part-00000']
>>> fsspec.filesystem("file").rm("/tmp/doctest-output", recursive=True)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import fsspec
from fsspec.compression import compr

from aiospark.batching import batched
from aiospark.io.codecs import codec_name
from aiospark.io.paths import is_process_local

__all__ = ["OutputCommitter", "check_compression", "save_partitions", "write_part"]

_EXTENSIONS = {
    "gzip": ".gz", "bz2": ".bz2", "lzma": ".xz", "xz": ".xz", "zstd": ".zst", "lz4": ".lz4",
    "deflate": ".deflate",
}

#: At most this many parts are moved into place at once (copies, on object stores).
_COMMIT_THREADS = 16


@dataclasses.dataclass(frozen=True)
class OutputCommitter:
    """Where one save job writes, and how its tasks and the job commit.

    >>> committer = OutputCommitter.create("memory:///x")
    Traceback (most recent call last):
    ...
    ValueError: cannot write to memory:///x: memory:// files live in one process, ...
    """

    fs: Any
    root: str
    job: str

    @classmethod
    def create(
        cls, path: str, storage_options: dict | None = None, overwrite: bool = False
    ) -> OutputCommitter:
        """Prepare ``path`` for a new job; ``FileExistsError`` if it exists and not overwriting.

        >>> committer = OutputCommitter.create(f"{tmp_dir}/doctest-create")
        >>> OutputCommitter.create(f"{tmp_dir}/doctest-create")
        Traceback (most recent call last):
        ...
        FileExistsError: output directory .../doctest-create already exists
        >>> OutputCommitter.create(f"{tmp_dir}/doctest-create", overwrite=True).job != committer.job
        True
        """
        fs, root = fsspec.core.url_to_fs(path, **(storage_options or {}))
        if is_process_local(fs):
            raise ValueError(
                f"cannot write to {path}: memory:// files live in one process, and tasks "
                "run in the workers' processes; save to a local directory or shared storage"
            )
        root = root.rstrip("/")
        fs.invalidate_cache()
        if fs.exists(root):
            if not overwrite:
                raise FileExistsError(f"output directory {path} already exists")
            fs.rm(root, recursive=True)
        committer = cls(fs, root, uuid.uuid4().hex[:12])
        fs.makedirs(committer.staging, exist_ok=True)
        return committer

    @property
    def staging(self) -> str:
        """The directory where this job's task attempts write.

        >>> OutputCommitter(None, "s3://bucket/out", "j1").staging
        's3://bucket/out/_temporary/j1'
        """
        return f"{self.root}/_temporary/{self.job}"

    @property
    def success_marker(self) -> str:
        """``_SUCCESS``: written last, when every part is in place.

        >>> OutputCommitter(None, "/out", "j1").success_marker
        '/out/_SUCCESS'
        """
        return f"{self.root}/_SUCCESS"

    def final_name(self, written: str) -> str:
        """The final path of a file a task attempt wrote (its name without the attempt id).

        >>> OutputCommitter(None, "/out", "j1").final_name("/out/_temporary/j1/part-00003.gz.9f8e")
        '/out/part-00003.gz'
        """
        name = written.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        return f"{self.root}/{name}"

    def commit_job(self, written: list[str]) -> None:
        """Driver side: move each accepted attempt's file into place, then mark success.

        If a move fails, the staging area is removed and the error raised: the
        parts already moved stay, without ``_SUCCESS``.

        >>> committer = OutputCommitter.create(f"{tmp_dir}/doctest-commit")
        >>> parts = [write_text_part(committer, None, i, iter([i])) for i in range(2)]
        >>> committer.commit_job(parts)
        >>> sorted(os.listdir(f"{tmp_dir}/doctest-commit"))
        ['_SUCCESS', 'part-00000', 'part-00001']
        """
        fs = self.fs
        moves = [(path, self.final_name(path)) for path in written]
        try:
            if len(moves) > 1 and _is_async(fs):  # object stores: copies, in parallel
                threads = min(len(moves), _COMMIT_THREADS)
                with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                    list(pool.map(lambda move: fs.mv(*move), moves))
            else:
                for source, final in moves:
                    fs.mv(source, final)
        finally:
            self._remove_staging()
        with fs.open(self.success_marker, "wb"):
            pass

    def abort_job(self) -> None:
        """The job failed: remove the staging area (no part was committed, no _SUCCESS).

        >>> committer = OutputCommitter.create(f"{tmp_dir}/doctest-abort")
        >>> _ = write_text_part(committer, None, 0, iter(["never committed"]))
        >>> committer.abort_job()
        >>> os.listdir(f"{tmp_dir}/doctest-abort")
        []
        """
        self._remove_staging()

    def _remove_staging(self) -> None:
        self.fs.invalidate_cache()
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(f"{self.root}/_temporary", recursive=True)


def _is_async(fs: Any) -> bool:
    return bool(getattr(fs, "async_impl", False))


def check_compression(compression: str | None) -> None:
    """Refuse an unknown codec before anything is written.

    >>> check_compression("gzip")
    >>> check_compression("nope")
    Traceback (most recent call last):
    ...
    ValueError: unknown compression 'nope'; known: ['bz2', ...]
    """
    if compression is not None and compression not in compr:
        known = sorted(k for k in compr if k)
        raise ValueError(f"unknown compression {compression!r}; known: {known}")


def write_part(
    committer: OutputCommitter,
    compression: str | None,
    index: int,
    write_body: Callable[[Any], None],
) -> str:
    """Task side: write one partition with ``write_body(file)``; return the file written.

    The file is this attempt's own (``_temporary/<job>/part-NNNNN.<uuid>``); the
    driver moves it into place if the scheduler accepts this attempt.  On failure
    the file is removed and the error raised.

    >>> committer = OutputCommitter.create("file:///tmp/doctest-write-part", overwrite=True)
    >>> path = write_part(committer, "gzip", 7, lambda out: out.write(b"x\\n"))
    >>> path.startswith(committer.staging + "/part-00007.gz.")
    True
    >>> committer.fs.rm(committer.root, recursive=True)
    """
    check_compression(compression)
    name = f"part-{index:05d}{_EXTENSIONS.get(compression or '', '')}"
    written = f"{committer.staging}/{name}.{uuid.uuid4().hex}"
    fs = committer.fs
    try:
        with fs.open(written, "wb") as raw:
            out = compr[compression](raw, mode="wb") if compression else raw
            try:
                write_body(out)
            finally:
                if out is not raw:
                    out.close()
    except BaseException:
        _remove_quietly(fs, written)
        raise
    fs.invalidate_cache(committer.root)  # a cached listing would hide a new _SUCCESS
    if fs.exists(committer.success_marker):
        # A straggler (say, a speculative copy that lost) finishing after the job
        # committed: the driver will not use this file, so do not leave it behind.
        _remove_quietly(fs, written)
    return written


def _remove_quietly(fs: Any, path: str) -> None:
    with contextlib.suppress(Exception):
        fs.rm(path)


def write_text_part(
    committer: OutputCommitter, compression: str | None, index: int, records: Iterator[Any]
) -> str:
    """Task side: one partition as ``str(record)`` lines (bytes written as they are).

    >>> committer = OutputCommitter.create("file:///tmp/doctest-text-part", overwrite=True)
    >>> path = write_text_part(committer, None, 0, iter(["é", 2, b"raw"]))
    >>> committer.fs.cat_file(path)
    b'\\xc3\\xa9\\n2\\nraw\\n'
    >>> committer.fs.rm(committer.root, recursive=True)
    """

    def body(out: Any) -> None:
        for batch in batched(records, 1024):
            lines = [x.decode() if isinstance(x, bytes) else str(x) for x in batch]
            out.write(("\n".join(lines) + "\n").encode("utf-8"))

    return write_part(committer, compression, index, body)


async def save_partitions(
    rdd: Any,
    path: str,
    compression: str | None,
    overwrite: bool,
    write: Callable[[OutputCommitter, str | None, int, Iterator[Any]], str],
) -> None:
    """Driver side of every ``save_as_*``: prepare, run ``write`` on each partition, commit.

    ``write(committer, compression, index, records)`` runs in each task and
    returns the file it wrote (see :func:`write_part`).  Filesystem calls run
    in a thread, so a slow store never blocks the driver's event loop.

    >>> out = f"{tmp_dir}/doctest-save-partitions"
    >>> await save_partitions(ctx.parallelize(["a", "b"], 2), out, None, False, write_text_part)
    >>> sorted(os.listdir(out))
    ['_SUCCESS', 'part-00000', 'part-00001']
    """
    compression = codec_name(compression)
    check_compression(compression)
    committer = await asyncio.to_thread(
        OutputCommitter.create, path, rdd.ctx.storage_options, overwrite
    )
    try:
        written = await rdd.ctx.jobs.run(rdd, functools.partial(write, committer, compression))
    except BaseException:
        await asyncio.shield(asyncio.to_thread(committer.abort_job))
        raise
    # Once started, the commit runs to its end even if the caller is cancelled.
    await asyncio.shield(asyncio.to_thread(committer.commit_job, written))
