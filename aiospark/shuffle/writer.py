"""The map side of a shuffle: bucket (and pre-combine) records per reducer, spilling past memory.

A map task's output is one data file holding each reducer's segment in turn,
plus an index (see ``files``).  Records are bucketed (or combined per key) in
memory; when the buffer outgrows the task's memory share it is written to a
spill file laid out the same way, and the final file concatenates, reducer by
reducer, the spills' segments and what is left in memory.  Spilled combiners
need no sorting: the reduce side merges combiners of one key from any number
of segments.
"""

from __future__ import annotations

import functools
import operator
import os
import uuid
from collections import _count_elements  # type: ignore[attr-defined]
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from aiospark.batching import DEFAULT_BATCH, batched, slices
from aiospark.errors import UserCodeError
from aiospark.lineage import HashPartitioner, Partitioner, ShuffleDependency
from aiospark.mapped import ConstantPairs, MappedRecords
from aiospark.memory import UNLIMITED, TaskMemory
from aiospark.pair_errors import raised_here, reraise_for_batch
from aiospark.protocol.frames import encode_frame
from aiospark.shuffle.columns import (
    CUT_RECORDS,
    FRAME_RECORDS,
    Columns,
    columns_of_table,
    split_by_partition,
)
from aiospark.shuffle.layout import encode_index, map_paths
from aiospark.sizeof import SizeTracker
from aiospark.spill import (
    STATS,
    SpillError,
    new_spill_file,
    remove_files,
    write_batches,
)

#: Bytes copied at a time when concatenating spilled segments.
_COPY_CHUNK = 1 << 20


def partition_into(records: Iterable[Any], partitioner: Partitioner, buckets: list[list]) -> None:
    """Append each ``(key, value)`` record to its reducer's bucket."""
    n = len(buckets)
    if n == 1:
        buckets[0].extend(records)
        return
    appenders = [b.append for b in buckets]
    hash_func = getattr(partitioner, "hash_func", None)
    if isinstance(partitioner, HashPartitioner) and hash_func is not None:
        for record in records:  # inlined HashPartitioner.partition: one call less per record
            appenders[hash_func(record[0]) % n](record)
    else:
        part = partitioner.partition
        for record in records:
            appenders[part(record[0])](record)


def buckets_of(records: Iterable[Any], partitioner: Partitioner) -> list[list[Any]]:
    """``(key, value)`` records split into one list per reducer.

    >>> buckets_of([(1, "a"), (2, "b"), (3, "c")], HashPartitioner(2))
    [[(2, 'b')], [(1, 'a'), (3, 'c')]]
    """
    buckets: list[list[Any]] = [[] for _ in range(partitioner.num_partitions)]
    partition_into(records, partitioner, buckets)
    return buckets


def write_bucket(out: Any, bucket: list, path: str, codec: str | None) -> int:
    """Write one reducer's batches (lists of records, ``Columns``) as frames; returns the bytes.

    Consecutive ``Columns`` are joined into frames of up to ``FRAME_RECORDS`` pairs.
    """
    written = 0
    pending: list[Columns] = []
    held = 0

    def flush() -> int:
        nonlocal held
        if not pending:
            return 0
        frame = Columns.concat(pending)
        pending.clear()
        held = 0
        try:
            return sum(out.write(piece) for piece in encode_frame(frame, codec))
        except OSError as exc:
            raise SpillError(exc.errno, f"writing {path} failed: {exc}") from exc

    for batch in bucket:
        if type(batch) is Columns:
            pending.append(batch)
            held += len(batch)
            if held >= FRAME_RECORDS:
                written += flush()
        else:
            written += flush()
            written += write_batches(out, batch, path, codec)
    return written + flush()


class _Spill:
    """One spill file: every reducer's segment, one after another."""

    def __init__(self, buckets: list[list], spill_dir: str, codec: str | None) -> None:
        out, self.path = new_spill_file(spill_dir, "mapout-")
        self.offsets = [0]
        with out:
            for bucket in buckets:
                written = write_bucket(out, bucket, self.path, codec)
                STATS.add(written)
                self.offsets.append(self.offsets[-1] + written)

    def copy_segment(self, reduce_id: int, src: Any, out: Any) -> int:
        start, end = self.offsets[reduce_id], self.offsets[reduce_id + 1]
        src.seek(start)
        left = end - start
        while left:
            chunk = src.read(min(left, _COPY_CHUNK))
            if not chunk:
                raise SpillError(0, f"spill file {self.path} is shorter than its index")
            out.write(chunk)
            left -= len(chunk)
        return end - start


def write_map_output(
    records: Iterator[Any],
    dep: ShuffleDependency,
    directory: str,
    map_id: int,
    memory: TaskMemory = UNLIMITED,
    spill_dir: str | None = None,
) -> list[int]:
    """Write one map task's output; returns the byte size of each reducer's segment.

    Files are written under temporary names and renamed into place, so a
    reducer never sees a partial output and a retried task simply replaces it.
    """
    spills: list[_Spill] = []
    memory = memory.spawn()
    try:
        try:
            buckets = _buffer(records, dep, memory, spill_dir or directory, spills)
        except TypeError as exc:
            if "unhashable" in str(exc) and "must be hashable" not in str(exc):
                raise TypeError(f"shuffle keys must be hashable: {exc}") from exc
            raise
        return _write_final(buckets, spills, directory, map_id, dep.codec)
    finally:
        memory.release()
        remove_files(spill.path for spill in spills)


def _buffer(
    records: Iterator[Any],
    dep: ShuffleDependency,
    memory: TaskMemory,
    spill_dir: str,
    spills: list[_Spill],
) -> list[list]:
    """Bucket (or combine) everything, spilling whenever the buffer outgrows ``memory``.

    Returns, per reducer, a list of batches: ``Columns`` where the records are
    pairs (see ``shuffle.columns``), lists of records otherwise.
    """
    if dep.map_side_combine:
        return _combine(records, dep, memory, spill_dir, spills)  # as it came: see _combine
    partitioner = dep.partitioner
    tracker = SizeTracker()
    n = partitioner.num_partitions
    buckets: list[list] = [[] for _ in range(n)]
    held = 0
    batch: list = []
    try:
        for batch in batched(records, CUT_RECORDS):
            held += _bucket_batch(batch, partitioner, buckets, tracker)
            if not memory.ensure(held):
                spills.append(_Spill(buckets, spill_dir, dep.codec))
                buckets = [[] for _ in range(n)]
                held = 0
                memory.release()
    except (TypeError, ValueError, IndexError) as exc:
        reraise_for_batch(exc, dep.op, batch)
    return buckets


def _combine(
    records: Iterator[Any],
    dep: ShuffleDependency,
    memory: TaskMemory,
    spill_dir: str,
    spills: list[_Spill],
) -> list[list]:
    """``_buffer`` for a map-side combine: a table per key, spilled whole when too big.

    The pairs of ``map(lambda x: (x, 1))`` summed by ``reduce_by_key(add)`` (a
    count by key, as in word count) are counted in C from the records alone;
    the pairs of any other ``map(f)`` are made by calling ``f`` in the loop
    that combines them (``_merge_mapped``).
    """
    aggregator = dep.aggregator
    assert aggregator is not None
    partitioner = dep.partitioner
    tracker = SizeTracker()
    table: dict = {}
    batch: Any = []
    fold: Callable[[Any, dict], Any]
    if type(records) is ConstantPairs and records.counts_ones() and aggregator.sums():
        batches, fold = batched(records.records, CUT_RECORDS), _count_keys
    elif type(records) is MappedRecords and not records.started and aggregator.identity_create:
        batches = slices(records.records, DEFAULT_BATCH)
        fold = functools.partial(_merge_mapped, records.f, aggregator.merge_value, dep.op)
    else:
        batches, fold = batched(records, DEFAULT_BATCH), aggregator.combine_values
    try:
        for batch in batches:
            fold(batch, table)
            if not memory.ensure(tracker.estimate(table, len(table))):
                spills.append(_Spill(_bucket_table(table, partitioner), spill_dir, dep.codec))
                table = {}
                memory.release()
    except (TypeError, ValueError, IndexError) as exc:
        reraise_for_batch(exc, dep.op, batch if type(batch) is list else [])
    return _bucket_table(table, partitioner)


def _count_keys(keys: list, table: dict) -> None:
    """Add one to ``table[key]`` for each key (``Counter.update``'s C loop)."""
    _count_elements(table, keys)


def _merge_mapped(
    f: Callable[[Any], Any], merge: Callable, what: str | None, records: Iterable[Any], table: dict
) -> None:
    """``lineage._merge_into`` of ``f(record)`` for each record: ``map(f)`` and the map side of
    ``reduce_by_key`` in one loop, without a generator and a list of pairs in between."""
    pair = None
    try:
        if merge is operator.add:
            for record in records:
                pair = f(record)
                key, value = pair
                try:
                    old = table[key]
                except KeyError:
                    table[key] = value
                else:
                    table[key] = old + value
        else:
            for record in records:
                pair = f(record)
                key, value = pair
                try:
                    old = table[key]
                except KeyError:
                    table[key] = value
                else:
                    table[key] = merge(old, value)
    except StopIteration as exc:  # out of f: not the end of the records (see mapped.map_records)
        raise UserCodeError.wrapping(exc) from exc
    except (TypeError, ValueError) as exc:
        if raised_here(exc):  # this loop's own unpacking, hashing or adding
            reraise_for_batch(exc, what, [pair])
        raise


def _bucket_table(table: dict, partitioner: Partitioner) -> list[list]:
    """A combined table's pairs, one batch per reducer."""
    return _bucket_columns(columns_of_table(table), partitioner)


def _bucket_columns(cols: Columns, partitioner: Partitioner) -> list[list]:
    """Combined pairs as columns, one batch per reducer (records one by one when the
    partitioner cannot place the keys as a column)."""
    parts = split_by_partition(cols, partitioner) if len(cols) else None
    if parts is None:
        return [[bucket] for bucket in buckets_of(cols, partitioner)]
    return [[part] if len(part) else [] for part in parts]


def _bucket_batch(
    batch: list, partitioner: Partitioner, buckets: list[list], tracker: SizeTracker
) -> int:
    """Add one batch of records to the reducers' buckets; returns the bytes it holds."""
    cols = Columns.of(batch)
    parts = None if cols is None else split_by_partition(cols, partitioner)
    if parts is not None:
        for bucket, part in zip(buckets, parts, strict=True):
            if len(part):
                bucket.append(part)
        return cols.nbytes()
    for bucket, part in zip(buckets, buckets_of(batch, partitioner), strict=True):
        if part:
            bucket.append(part)
    return tracker.estimate(batch, len(batch))


def _write_final(
    buckets: list[list], spills: list[_Spill], directory: str, map_id: int, codec: str | None
) -> list[int]:
    os.makedirs(directory, exist_ok=True)
    data_path, index_path = map_paths(directory, map_id)
    tag = f".tmp-{uuid.uuid4().hex}"
    offsets = [0]
    sizes = []
    sources = [open(spill.path, "rb") for spill in spills]  # noqa: SIM115 (closed below)
    try:
        with open(data_path + tag, "wb") as out:
            for reduce_id, bucket in enumerate(buckets):
                written = sum(
                    spill.copy_segment(reduce_id, src, out)
                    for spill, src in zip(spills, sources, strict=True)
                )
                written += write_bucket(out, bucket, data_path, codec)
                bucket.clear()
                sizes.append(written)
                offsets.append(offsets[-1] + written)
        with open(index_path + tag, "wb") as out:
            out.write(encode_index(offsets))
    except BaseException:
        remove_files([data_path + tag, index_path + tag])
        raise
    finally:
        for src in sources:
            src.close()
    os.replace(data_path + tag, data_path)
    os.replace(index_path + tag, index_path)
    return sizes
