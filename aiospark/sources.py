"""Where RDDs come from: a context's data sources (Spark's ``SparkContext`` readers).

``SourceOps`` is the part of ``Context`` that makes RDDs from driver collections,
ranges, text, pickle and binary files, and unions of RDDs.  Like the ``ops/``
mixins of ``RDD``, it only builds plans; ``Context`` supplies the rest
(``default_parallelism``, ``default_min_partitions``, ``_ship`` ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiospark.validation import check_paths, positive_int

if TYPE_CHECKING:
    from aiospark.rdd import RDD

class SourceOps:
    """The data sources of ``Context`` (see the module doc)."""

    def parallelize(self, data: Iterable[Any], num_slices: int | None = None) -> RDD:
        """Distribute a local collection over ``num_slices`` partitions (PySpark's slicing).

        A list or tuple is not copied: it is read (and pickled, off the event
        loop) when the first job on this RDD, or on an RDD made from it, runs;
        change it before then and the RDD sees the change, as with Spark's
        ``parallelize``.  Pass a copy to avoid that.  Other iterables are
        read at once.

        Parameters
        ----------
        data : iterable
            The records.  A ``range`` is sliced arithmetically, without building a
            list.
        num_slices : int or None, optional
            How many partitions (default: ``default_parallelism``).

        Returns
        -------
        RDD
            The records of ``data``, in order, split into ``num_slices``
            partitions.

        Raises
        ------
        ValueError
            When ``num_slices`` is not a positive int.

        See Also
        --------
        Context.range : A range of integers, without a collection.

        Examples
        --------
        >>> await ctx.parallelize([0, 1, 2, 3, 4], 2).glom().collect()
        [[0, 1], [2, 3, 4]]
        >>> await ctx.parallelize(range(0, 10, 3), 2).glom().collect()
        [[0, 3], [6, 9]]
        """
        from aiospark.plans.basic import ParallelCollection
        from aiospark.rdd import RDD
        from aiospark.slices import slice_list

        n = self.default_parallelism if num_slices is None else num_slices
        positive_int(n, "num_slices")
        if isinstance(data, range):
            return RDD(self, ParallelCollection(slice_collection(data, n)))
        items = data if isinstance(data, list | tuple) else list(data)
        return RDD(self, ParallelCollection(slice_list(items, n)))

    def range(
        self, start: int, end: int | None = None, step: int = 1, num_slices: int | None = None
    ) -> RDD:
        """Integers from ``start`` to ``end`` (exclusive), like Python's ``range``.

        Parameters
        ----------
        start : int
            The first integer, or, when ``end`` is not given, the end (the range
            then starts at 0).
        end : int or None, optional
            The end, exclusive.
        step : int, default 1
            The difference between consecutive integers (may be negative).
        num_slices : int or None, optional
            How many partitions (default: ``default_parallelism``).

        Returns
        -------
        RDD
            The integers of ``range(start, end, step)``, in order.

        See Also
        --------
        Context.parallelize : What it calls with a ``range``.

        Examples
        --------
        >>> await ctx.range(5).collect()
        [0, 1, 2, 3, 4]
        >>> await ctx.range(10, 0, -3, num_slices=2).glom().collect()
        [[10, 7], [4, 1]]
        """
        if end is None:
            start, end = 0, start
        return self.parallelize(range(start, end, step), num_slices)

    def text_file(
        self, path: str | list[str], min_partitions: int | None = None, encoding: str = "utf-8"
    ) -> RDD:
        """Lines of text files (a path, a directory, a glob, or a comma-separated list).

        Any fsspec URL works (``s3://bucket/logs/*.gz``, ``file://``, ``memory://``
        ...), opened with the context's ``storage_options``; see
        docs/data-sources.md.  Large files are split into byte ranges of at
        most 32 MiB (at least ``min_partitions`` splits in all; by default, as
        many more as fill the last wave of tasks, see
        ``aiospark.io.text.balanced_min_partitions``); every line is
        read exactly once, without its ``\\n`` or ``\\r\\n``.  Compressed files
        (``.gz``, ``.bz2``, ``.xz``, ``.zst`` with ``zstandard`` installed) are
        decompressed and read whole.  ``encoding`` must keep ``\\n`` a single
        byte (UTF-8, Latin-1 ...).

        Parameters
        ----------
        path : str or list of str
            A file, a directory (its files), a glob, a comma-separated list of
            them, or a list of them; any fsspec URL.
        min_partitions : int or None, optional
            The least number of splits (default: ``default_min_partitions``).
            Compressed files are never split, so they may give fewer.
        encoding : str, default "utf-8"
            The files' text encoding.

        Returns
        -------
        RDD
            One str record per line, the files in path order.

        Raises
        ------
        TypeError
            When ``path`` is not a str, an ``os.PathLike`` or a list of them.
        FileNotFoundError
            When ``path`` matches no file (checked at once, in the driver).
        ValueError
            When ``min_partitions`` is not a positive int or ``encoding`` cannot
            be read line by line (UTF-16, for example).
        LookupError
            For an unknown encoding.

        See Also
        --------
        Context.whole_text_files : One record per file.
        RDD.save_as_text_file : The reverse.

        Examples
        --------
        >>> path = f"{tmp_dir}/doctest-lines.txt"
        >>> _ = open(path, "w").write("one\\ntwo\\nthree\\n")
        >>> await ctx.text_file(path).collect()
        ['one', 'two', 'three']
        >>> ctx.text_file(f"{tmp_dir}/no-such-file.txt")
        Traceback (most recent call last):
        ...
        FileNotFoundError: [Errno 2] Input path does not exist: '.../no-such-file.txt'
        """
        from aiospark.io.text import balanced_min_partitions, check_encoding, plan_text_splits
        from aiospark.plans.basic import TextFile
        from aiospark.rdd import RDD

        check_encoding(encoding)
        fs, paths = self._input_files(path, "text_file", min_partitions)
        if min_partitions is not None:
            splits = plan_text_splits(fs, paths, min_partitions)
        else:  # Hadoop's default; when 32 MiB blocks made it, enough more to fill the waves
            splits = plan_text_splits(fs, paths, self.default_min_partitions)
            if len(splits) > self.default_min_partitions:
                wanted = balanced_min_partitions(len(splits), self.default_parallelism)
                if wanted > len(splits):
                    splits = plan_text_splits(fs, paths, wanted)
        return RDD(self, TextFile(fs, splits, encoding))

    def _input_files(
        self, path: Any, op: str, min_partitions: int | None = None
    ) -> tuple[Any, list[str]]:
        """The filesystem tasks read through and the files ``path`` names (in the driver),
        once ``path`` and ``min_partitions`` are checked for reader ``op``."""
        from aiospark.io.formats import check_min_partitions
        from aiospark.io.paths import expand_paths, for_workers

        path = check_paths(path, op)
        check_min_partitions(min_partitions)
        fs, paths = expand_paths(path, self.storage_options)
        return for_workers(fs, paths), paths

    def _whole_files(self, path: Any, min_partitions: int | None, mode: str, op: str) -> RDD:
        """``whole_text_files`` and ``binary_files``: one record per file, read whole."""
        from aiospark.plans.files import WholeFile
        from aiospark.rdd import RDD

        fs, paths = self._input_files(path, op, min_partitions)
        n = min_partitions or self.default_min_partitions
        return RDD(self, WholeFile(fs, paths, n, mode))

    # -- application ---------------------------------------------------------------------

    def union(self, rdds: Iterable[RDD]) -> RDD:
        """The records of several RDDs, one after the other (duplicates kept).

        The result has the partitions of all of them; RDDs without partitions
        are skipped.  When all have the same partitioner, partition *i* holds
        every RDD's partition *i* and the partitioner is kept.

        Parameters
        ----------
        rdds : iterable of RDD
            The RDDs, in order (a list, not a single RDD).

        Returns
        -------
        RDD
            Every record of every RDD of ``rdds``.

        Raises
        ------
        TypeError
            When ``rdds`` is a single RDD, or holds something else than RDDs.
        ValueError
            When ``rdds`` is empty, or one of them belongs to another context.

        See Also
        --------
        RDD.union : The union of two RDDs.

        Examples
        --------
        >>> parts = [ctx.parallelize([1, 2], 2), ctx.empty_rdd(), ctx.parallelize([3], 1)]
        >>> await ctx.union(parts).glom().collect()
        [[1], [2], [3]]
        """
        from aiospark.plans.sets import union_plan
        from aiospark.rdd import RDD

        if isinstance(rdds, RDD):
            raise TypeError("union() takes a list of RDDs, got a single RDD")
        rdds = list(rdds)
        if not rdds:
            raise ValueError("union() needs at least one RDD")
        for rdd in rdds:
            if not isinstance(rdd, RDD):
                raise TypeError(f"union() takes RDDs, got a {type(rdd).__name__}")
            if rdd.ctx is not self:
                raise ValueError(f"cannot union {rdd!r}: it belongs to another Context")
        return RDD(self, union_plan(rdds))

    def empty_rdd(self) -> RDD:
        """An RDD with no partitions and no records.

        Returns
        -------
        RDD
            An RDD without partitions: every action on it gives an empty or zero
            result (``reduce`` raises, as on any empty RDD).

        Examples
        --------
        >>> empty = ctx.empty_rdd()
        >>> empty.get_num_partitions(), await empty.collect(), await empty.count()
        (0, [], 0)
        """
        from aiospark.plans.sets import Empty
        from aiospark.rdd import RDD

        return RDD(self, Empty())

    def pickle_file(self, path: str | list[str], min_partitions: int | None = None) -> RDD:
        """The records saved by ``RDD.save_as_pickle_file``, one partition per part file.

        ``path`` is a directory (its ``_SUCCESS`` and other hidden files are
        skipped), a glob or a comma-separated list; parts are read in part
        order, so the records come back in the order they were saved.  Part
        files are never split: ``min_partitions`` is accepted for PySpark
        compatibility only.

        Parameters
        ----------
        path : str or list of str
            The directory ``save_as_pickle_file`` wrote, a glob, a comma-separated
            list of them, or a list of them; any fsspec URL.
        min_partitions : int or None, optional
            Ignored (checked only: a positive int or ``None``).

        Returns
        -------
        RDD
            The saved records, one partition per part file.

        Raises
        ------
        TypeError
            When ``path`` is not a str, an ``os.PathLike`` or a list of them.
        FileNotFoundError
            When ``path`` matches no file.
        ValueError
            When ``min_partitions`` is not a positive int or ``None``.

        See Also
        --------
        RDD.save_as_pickle_file : The reverse.

        Examples
        --------
        >>> out = f"{tmp_dir}/doctest-pickle-file"
        >>> await ctx.parallelize([{"a": 1}, None, (2, [3])], 3).save_as_pickle_file(out)
        >>> rdd = ctx.pickle_file(out)
        >>> rdd.get_num_partitions(), await rdd.collect()
        (3, [{'a': 1}, None, (2, [3])])
        """
        from aiospark.plans.files import PickleFile
        from aiospark.rdd import RDD

        fs, paths = self._input_files(path, "pickle_file", min_partitions)
        return RDD(self, PickleFile(fs, paths))

    def whole_text_files(
        self, path: str | list[str], min_partitions: int | None = None, use_unicode: bool = True
    ) -> RDD:
        """One ``(path, content)`` record per text file, each file read whole.

        Files come from a path, directory, glob or comma-separated list, are
        decompressed by extension and decoded as UTF-8 (``use_unicode=False``
        gives both path and content as UTF-8 bytes, as in PySpark).  They are
        grouped, in path order, into about ``min_partitions`` partitions
        (default ``default_min_partitions``) of similar total size.  Local
        paths are plain paths; other filesystems' paths are URLs.

        Parameters
        ----------
        path : str or list of str
            A file, a directory, a glob, a comma-separated list of them, or a list
            of them; any fsspec URL.
        min_partitions : int or None, optional
            About how many partitions (default: ``default_min_partitions``).
        use_unicode : bool, default True
            Decode as UTF-8 (str path and content); ``False`` gives bytes for both.

        Returns
        -------
        RDD
            One ``(path, content)`` pair per file, in path order.

        Raises
        ------
        TypeError
            When ``path`` is not a str, an ``os.PathLike`` or a list of them.
        FileNotFoundError
            When ``path`` matches no file.
        ValueError
            When ``min_partitions`` is not a positive int or ``None``.

        See Also
        --------
        Context.text_file : One record per line.
        Context.binary_files : The files' bytes, not decompressed.

        Examples
        --------
        >>> folder = f"{tmp_dir}/doctest-whole"
        >>> os.makedirs(folder, exist_ok=True)
        >>> for name, text in [("a.txt", "alpha\\n"), ("b.txt", "beta")]:
        ...     _ = open(f"{folder}/{name}", "w").write(text)
        >>> [(os.path.basename(p), t) for p, t in await ctx.whole_text_files(folder).collect()]
        [('a.txt', 'alpha\\n'), ('b.txt', 'beta')]
        """
        mode = "text" if use_unicode else "text-bytes"
        return self._whole_files(path, min_partitions, mode, "whole_text_files")

    def binary_files(self, path: str | list[str], min_partitions: int | None = None) -> RDD:
        """One ``(path, bytes)`` record per file, each file read whole and never decompressed.

        Paths and partitioning as in ``whole_text_files``.

        Parameters
        ----------
        path : str or list of str
            A file, a directory, a glob, a comma-separated list of them, or a list
            of them; any fsspec URL.
        min_partitions : int or None, optional
            About how many partitions (default: ``default_min_partitions``).

        Returns
        -------
        RDD
            One ``(path, bytes)`` pair per file, in path order.

        Raises
        ------
        TypeError
            When ``path`` is not a str, an ``os.PathLike`` or a list of them.
        FileNotFoundError
            When ``path`` matches no file.
        ValueError
            When ``min_partitions`` is not a positive int or ``None``.

        See Also
        --------
        Context.whole_text_files : The files decompressed and decoded.

        Examples
        --------
        >>> path = f"{tmp_dir}/doctest-blob.bin"
        >>> _ = open(path, "wb").write(bytes([0, 255, 7]))
        >>> [(os.path.basename(p), b) for p, b in await ctx.binary_files(path).collect()]
        [('doctest-blob.bin', b'\\x00\\xff\\x07')]
        """
        return self._whole_files(path, min_partitions, "binary", "binary_files")

    def binary_records(self, path: str | list[str], record_length: int) -> RDD:
        """Fixed-length records of binary files: ``bytes`` of ``record_length`` each.

        PySpark's ``binaryRecords``.  Files come from a path, directory, glob or
        comma-separated list (any fsspec URL) and are read in path order; each
        is cut into splits of whole records (about ``default_min_partitions``
        splits in all, as ``text_file`` cuts files).  A compressed file (by its
        extension, ``.gz`` ...) is decompressed, as Hadoop's
        ``FixedLengthInputFormat`` does, in one split.

        Parameters
        ----------
        path : str or list of str
            A file, a directory, a glob, a comma-separated list of them, or a list
            of them; any fsspec URL.
        record_length : int
            The length of every record in bytes, ``>= 1``.

        Returns
        -------
        RDD
            Every file's records, in order, as ``bytes``.

        Raises
        ------
        ValueError
            When a file's size is not a multiple of ``record_length`` (the error
            names it; for a compressed file, raised by the job reading it), or
            ``record_length`` is not a positive int.
        FileNotFoundError
            When ``path`` matches no file.

        See Also
        --------
        Context.binary_files : Whole files.

        Examples
        --------
        >>> path = f"{tmp_dir}/doctest-records.bin"
        >>> _ = open(path, "wb").write(bytes(range(6)))
        >>> await ctx.binary_records(path, 2).collect()
        [b'\\x00\\x01', b'\\x02\\x03', b'\\x04\\x05']
        >>> ctx.binary_records(path, 4)
        Traceback (most recent call last):
        ...
        ValueError: .../doctest-records.bin: its size, 6 bytes, is not a multiple of record_length 4
        """
        from aiospark.io.records import check_record_length, plan_record_splits
        from aiospark.plans.files import BinaryRecords
        from aiospark.rdd import RDD

        check_record_length(record_length)
        fs, paths = self._input_files(path, "binary_records")
        splits = plan_record_splits(fs, paths, self.default_min_partitions, record_length)
        return RDD(self, BinaryRecords(fs, splits, record_length))


def slice_collection(data: Iterable[Any], n: int) -> list[Any]:
    """Cut ``data`` into ``n`` slices exactly as PySpark's ``parallelize`` does.

    A ``range`` is cut arithmetically into ``range`` slices; anything else is
    batched (``len // n`` items, at most 1024, per batch) and the batches are
    spread evenly over the slices.

    >>> slice_collection(list(range(11)), 3)
    [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9, 10]]
    >>> slice_collection(range(5), 2)
    [range(0, 2), range(2, 5)]
    """
    if isinstance(data, range):
        size = len(data)
        if size == 0:
            return [[] for _ in range(n)]

        def start_of(i: int) -> int:
            return data.start + int(i * size / n) * data.step

        return [range(start_of(i), start_of(i + 1), data.step) for i in range(n)]
    from aiospark.slices import slice_bounds

    items = data if isinstance(data, list) else list(data)
    return [items[start:stop] for start, stop in slice_bounds(len(items), n)]
