"""Getting records out of the cluster: pickle files and a partition-at-a-time local iterator.

Mixed into ``aiospark.RDD``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from typing import Any

from aiospark.lineage import Node
from aiospark.validation import check_path, non_negative_int

#: ``async for`` over an RDD lets the event loop run at least this often (seconds) ...
YIELD_EVERY = 0.005
#: ... checking the clock once per this many records.
_CHECK_EVERY = 64


class ExportOps:
    """Pickle-file output and local iteration."""

    async def save_as_pickle_file(
        self,
        path: str,
        batch_size: int = 10,
        compression: str | None = None,
        overwrite: bool = False,
    ) -> None:
        """Write the records, pickled in batches, as ``path/part-00000``... plus ``_SUCCESS``.

        Each part holds ``batch_size`` records per pickled frame (``0`` picks a
        size, 1024); numpy arrays inside records are stored out of band, as raw
        buffers.  Read the directory back with ``ctx.pickle_file``.  Parts are
        committed atomically as in ``save_as_text_file``; ``compression`` is
        any fsspec codec name (``"gzip"``, ``"bz2"`` ...); an existing
        ``path`` is an error unless ``overwrite`` is true.

        Parameters
        ----------
        path : str
            The output directory, a local path or fsspec URL.
        batch_size : int, default 10
            Records per pickled frame; ``0`` for 1024.
        compression : str or None, optional
            An fsspec compression codec for the part files (default: none).
        overwrite : bool, default False
            Replace an existing ``path`` instead of failing.

        Raises
        ------
        ValueError
            When ``batch_size`` is not an int ``>= 0``, or for an unknown
            ``compression``.
        FileExistsError
            When ``path`` exists and ``overwrite`` is false.

        See Also
        --------
        Context.pickle_file : Reads the records back.
        RDD.save_as_text_file : Text lines instead.

        Examples
        --------
        >>> out = f"{tmp_dir}/doctest-pickle"
        >>> await ctx.parallelize([1, "two", (3, None)], 2).save_as_pickle_file(out)
        >>> sorted(os.listdir(out))
        ['_SUCCESS', 'part-00000', 'part-00001']
        >>> await ctx.pickle_file(out).collect()
        [1, 'two', (3, None)]
        """
        from aiospark.io.formats import AUTO_BATCH, write_pickle_part
        from aiospark.io.output import save_partitions

        path = check_path(path, "save_as_pickle_file")
        non_negative_int(batch_size, "batch_size")
        writer = functools.partial(write_pickle_part, batch_size or AUTO_BATCH)
        await save_partitions(self, path, compression, overwrite, writer)

    def to_local_iterator(self, prefetch_partitions: int | bool = False) -> AsyncIterator[Any]:
        """Stream the records to the driver one partition (one job) at a time.

        Only the partition being consumed, and at most ``prefetch_partitions``
        partitions after it (``True`` means 1), are computed and held in the
        driver, so the driver needs memory for a few partitions, not the
        whole RDD.  With no prefetching, the job for the next partition starts
        when the consumer asks for its first record.  Leaving the loop early
        cancels the jobs still running.

        Parameters
        ----------
        prefetch_partitions : int or bool, default False
            How many partitions after the current one to compute ahead (``False``
            is 0, ``True`` is 1).

        Returns
        -------
        AsyncIterator
            The records, in partition order, for ``async for``.  Each partition is
            computed by a job of its own when the iteration reaches it (or earlier,
            to prefetch).

        Raises
        ------
        ValueError
            When ``prefetch_partitions`` is negative or not an int.

        See Also
        --------
        RDD.collect : All the records at once.

        Examples
        --------
        >>> rdd = ctx.parallelize(range(6), 3)
        >>> [x async for x in rdd.to_local_iterator()]
        [0, 1, 2, 3, 4, 5]
        >>> [x async for x in rdd.to_local_iterator(prefetch_partitions=2)]
        [0, 1, 2, 3, 4, 5]
        """
        if isinstance(prefetch_partitions, bool):
            prefetch_partitions = int(prefetch_partitions)
        if not isinstance(prefetch_partitions, int) or prefetch_partitions < 0:
            raise ValueError(
                f"prefetch_partitions must be a bool or an int >= 0, got {prefetch_partitions!r}"
            )
        return _local_iterator(self, prefetch_partitions)


async def _local_iterator(rdd: Node, ahead: int) -> AsyncIterator[Any]:
    async for records in rdd.ctx.jobs.stream(rdd, ahead):
        async for record in _yielding(records):
            yield record
        del records  # do not hold this partition while the next one is awaited


async def _yielding(records: list[Any]) -> AsyncIterator[Any]:
    """The records, letting the event loop run at least every ``YIELD_EVERY`` seconds.

    A consumer of ``async for`` never waits within a partition it already
    holds, so without this it would keep the loop for the whole partition.

    >>> [x async for x in _yielding([1, 2, 3])]
    [1, 2, 3]
    """
    clock = time.monotonic
    due = clock() + YIELD_EVERY
    for start in range(0, len(records), _CHECK_EVERY):
        for record in records[start : start + _CHECK_EVERY]:
            yield record
        if clock() >= due:
            await asyncio.sleep(0)
            due = clock() + YIELD_EVERY


