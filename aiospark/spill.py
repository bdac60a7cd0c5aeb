"""Collections that spill to disk past their task's memory share: a combining map and a sort.

``ExternalMap`` is a ``{key: combiner}`` table.  When its estimated size passes
what the task may hold, it writes its entries to ``FANOUT`` files, the file
chosen by a salted hash of the key, and starts empty again.  Reading it back
merges one file at a time: every key lives in exactly one file, so each file's
table is independent (and is itself an ``ExternalMap`` at the next level, with
another salt, should one file still be too big).  ``sort_external`` sorts runs
that fit, writes them, and merges the runs lazily, a block of each at a time
(``merge_sorted_blocks``).  Pairs of ints (a sort by key; an ``operator.add``
table past its share) are held, summed, sorted and spilled as numpy columns
instead (``spill_columns``); anything else turns them back to records.

Spill files hold the same frames as shuffle files and live in the task's spill
directory; they are removed once read (the worker also removes the whole
directory when the task ends, whatever happened).

>>> import operator
>>> from aiospark.memory import MemoryManager, TaskMemory
>>> memory = TaskMemory(MemoryManager(budget=20_000), "doctest", step=1000)
>>> table = ExternalMap(operator.add, memory, spill_dir=tmp_dir)
>>> for start in range(0, 20_000, 1000):
...     table.merge_values([(i % 3000, 1) for i in range(start, start + 1000)])
>>> merged = sorted(table.items())   # after a spill, items() can be read once
>>> table.spills > 0, merged[:2], len(merged)
(True, [(0, 7), (1, 7)], 3000)
>>> runs = sort_external(iter(range(5000, 0, -1)), None, False, memory, tmp_dir)
>>> list(runs)[:3]
[1, 2, 3]
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import operator
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from aiospark import spill_columns as columns
from aiospark.batching import batched
from aiospark.memory import UNLIMITED, TaskMemory
from aiospark.protocol.frames import DEFAULT_BATCH, encode_frame, read_file_frames
from aiospark.sizeof import SizeTracker
from aiospark.taskcontext import current_task_context

#: Files one spill is spread over (PySpark's ExternalMerger uses 59).
FANOUT = 32
#: Records per frame of a sorted run: the merge takes a frame of each run at a time.
RUN_BATCH = 8 * DEFAULT_BATCH
#: Records per frame of a sorted run of columns (two arrays of 8 bytes a record).
COLUMN_RUN_BATCH = 1 << 16
#: Deepest re-partitioning of one spill file before giving up on splitting it further.
MAX_LEVEL = 4


def task_memory() -> tuple[TaskMemory, str]:
    """The running task's memory reservation and spill directory (no limit outside tasks)."""
    tctx = current_task_context()
    memory = getattr(tctx, "memory", None)
    if memory is None:
        return UNLIMITED, tempfile.gettempdir()
    return memory, tctx.spill_dir


class SpillError(OSError):
    """Writing shuffle or spill data failed (usually: the disk is full)."""


#: Spill files this process created so far: a task that sees it unchanged made no spill
#: directory (and has none to remove).
created = 0


def new_spill_file(spill_dir: str, prefix: str) -> tuple[Any, str]:
    global created
    created += 1
    try:
        os.makedirs(spill_dir, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=prefix, dir=spill_dir)
        return os.fdopen(fd, "wb"), path
    except OSError as exc:
        raise SpillError(exc.errno, f"cannot create a spill file in {spill_dir}: {exc}") from exc


class SpillStats:
    """What this process spilled, for the worker's health report and the status page."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spills = 0
        self.bytes = 0

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.spills += 1
            self.bytes += nbytes

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"spills": self.spills, "bytes": self.bytes}


STATS = SpillStats()
_first = operator.itemgetter(0)


def write_batches(
    out: Any, records: list, path: str, codec: str | None = None, batch: int = DEFAULT_BATCH
) -> int:
    """Write ``records`` as frames of ``batch`` records (compressed with ``codec``); returns the
    bytes written."""
    written = 0
    try:
        for start in range(0, len(records), batch):
            for piece in encode_frame(records[start : start + batch], codec):
                written += out.write(piece)
    except OSError as exc:
        raise SpillError(exc.errno, f"writing {path} failed: {exc}") from exc
    return written


def write_spill(
    out: Any, records: list, path: str, codec: str | None = None, batch: int = DEFAULT_BATCH
) -> int:
    """``write_batches`` to a spill file, counted in ``STATS``."""
    written = write_batches(out, records, path, codec, batch)
    STATS.add(written)
    return written


def write_column_spill(out: Any, keys: np.ndarray, values: np.ndarray, path: str) -> int:
    """Write int pairs held as columns to a spill file, as frames of ``(keys, values)``
    (raw buffers); returns the bytes written, counted in ``STATS``."""
    written = 0
    try:
        for block in columns.chunks(keys, values, COLUMN_RUN_BATCH):
            for piece in encode_frame(block):
                written += out.write(piece)
    except OSError as exc:
        raise SpillError(exc.errno, f"writing {path} failed: {exc}") from exc
    STATS.add(written)
    return written


def _sums(merge: Any, combine: Any) -> bool:
    """Whether folding with ``combine`` (a ``reduce_by_key(operator.add)`` aggregator's, or
    None: merging with ``merge``) adds values to combiners."""
    if merge is not operator.add:
        return False
    if combine is None:
        return True
    owner = getattr(combine, "__self__", None)  # an Aggregator, for a bound method of one
    return (getattr(combine, "__name__", "") in ("combine_values", "combine_combiners")
            and callable(getattr(owner, "sums", None)) and bool(owner.sums()))


def read_spill(path: str) -> Iterator[Any]:
    """The records of a spill file, streamed; the file is removed once read (or abandoned)."""
    return itertools.chain.from_iterable(read_spill_batches(path))


def read_spill_batches(path: str) -> Iterator[list]:
    """The batches (frames) of a spill file, streamed; the file is removed once read (or
    abandoned)."""
    try:
        with open(path, "rb") as f:
            yield from read_file_frames(f, None, path)
    finally:
        remove_files([path])


class ExternalMap:
    """``{key: combiner}`` that spills hash-partitioned files past its memory share.

    ``merge_values(batch, combine)`` folds records in; ``items()`` yields every
    ``(key, combiner)`` once, merged across spills.
    """

    def __init__(
        self,
        merge_combiners: Callable[[Any, Any], Any],
        memory: TaskMemory,
        spill_dir: str,
        level: int = 0,
    ) -> None:
        self.merge = merge_combiners
        self.memory = memory.spawn()
        self.spill_dir = spill_dir
        self.level = level
        self.table: dict = {}
        self.spills = 0
        self._fanout: _FanOut | None = None
        self._tracker = SizeTracker()
        #: Once a table summing int pairs (``operator.add``) outgrows memory: the pairs held
        #: as numpy columns (``spill_columns``) instead of ``table``; None meanwhile.
        self._columns: list[columns.Pair] | None = None
        self._column_bytes = 0
        #: whether summing the held columns halved them last time (else they spill as they are)
        self._compacts = True
        #: whether it may still turn to columns (it only ever added ints, so far)
        self._may_sum = merge_combiners is operator.add

    # -- filling ---------------------------------------------------------------------

    def merge_values(
        self, batch: Iterable[tuple], combine: Callable[[Iterable[tuple], dict], Any] | None = None
    ) -> None:
        """Fold ``(key, value)`` records in with ``combine(batch, table)``; by default
        they are combiners, merged with ``merge_combiners``."""
        summing = self._may_sum and _sums(self.merge, combine)
        if self._columns is not None:
            cols = columns.int_pairs(batch) if summing else None
            if cols is not None:
                self._add_columns(cols)
                return
            self._leave_columns()
        self._may_sum = summing
        if combine is not None:
            combine(batch, self.table)
        else:
            merge_into(self.table, batch, self.merge)
        self.maybe_spill()

    def _add_columns(self, cols: columns.Pair) -> None:
        """Hold int pairs to sum; past the memory share, sum them (numpy) and spill the sums
        unless that halved them (and from then on, spill them unsummed)."""
        assert self._columns is not None
        self._columns.append(cols)
        self._column_bytes += cols[0].nbytes + cols[1].nbytes
        if self.memory.ensure(self._column_bytes):
            return
        if not self._compacts and self.level < MAX_LEVEL:
            self._spill_columns()  # summing did not pay last time: the files' reader sums
            return
        try:
            keys, sums = columns.sum_by_key(*columns.concat(self._columns))
        except OverflowError:
            self._leave_columns()
            self.maybe_spill()
            return
        held, before = keys.nbytes + sums.nbytes, self._column_bytes
        self._columns, self._column_bytes = [(keys, sums)], held
        if held * 2 > before and self.level < MAX_LEVEL:
            self._compacts = False
            self._spill_columns()

    def _spill_columns(self) -> None:
        if self._fanout is None:
            self._fanout = _FanOut(self.spill_dir, f"map{self.level}-", self.level)
        if self._columns:
            self._fanout.write_columns(*columns.concat(self._columns))
            self.spills += 1
        self._columns, self._column_bytes = [], 0
        self.memory.release()

    def _leave_columns(self) -> None:
        """Turn the held columns into ``table`` entries; from now on, a dict of records."""
        held, self._columns = self._columns, None
        self._may_sum = False
        if not held:
            return
        try:
            merged = columns.records_of(*columns.sum_by_key(*columns.concat(held)))
        except OverflowError:  # Python's ints take the sums past 64 bits
            merged = [r for cols in held for r in columns.records_of(*cols)]
        merge_into(self.table, merged, self.merge)
        self._column_bytes = 0

    def maybe_spill(self) -> None:
        """Spill when the table has outgrown what the task may hold (or, if it sums int
        pairs, hold them as columns from now on)."""
        size = self._tracker.estimate(self.table, len(self.table))
        if not self.memory.ensure(size) and not self._to_columns():
            self.spill()

    def _to_columns(self) -> bool:
        """Move ``table`` into columns, if it sums int pairs (else nothing happens)."""
        if not self._may_sum:
            return False
        cols = columns.int_pairs(list(self.table.items())) if self.table else None
        if cols is None and self.table:
            self._may_sum = False
            return False
        self.table, self._columns, self._column_bytes = {}, [], 0
        self.memory.release()
        if cols is not None:
            self._add_columns(cols)
        return True

    @property
    def spilled(self) -> bool:
        return self._fanout is not None

    def spill(self) -> None:
        """Write the table's entries to the fan-out files and empty it."""
        if self._fanout is None:
            self._fanout = _FanOut(self.spill_dir, f"map{self.level}-", self.level)
        self._fanout.write(self.table.items())
        self.table = {}
        self.spills += 1
        self.memory.release()

    # -- reading ---------------------------------------------------------------------

    def items(self) -> Iterator[tuple]:
        """Every ``(key, combiner)``, each key once."""
        if self._fanout is None:
            if self._columns:
                try:
                    keys, sums = columns.sum_by_key(*columns.concat(self._columns))
                except OverflowError:
                    self._leave_columns()
                    return iter(self.table.items())
                blocks = columns.chunks(keys, sums, COLUMN_RUN_BATCH)
                return itertools.chain.from_iterable(columns.record_blocks(blocks))
            return iter(self.table.items())
        return self._merged_items()

    def parts(self) -> Iterator[ExternalMap]:
        """After a spill: one table per fan-out file (each may itself have spilled)."""
        if self.table:
            self.spill()
        if self._columns:
            self._spill_columns()
        assert self._fanout is not None
        paths = self._fanout.close()
        try:
            for index, path in enumerate(paths):
                part = ExternalMap(self.merge, self.memory, self.spill_dir, self.level + 1)
                if path:
                    batches = read_spill_batches(path)
                    paths[index] = None
                    for batch in batches:
                        part._fold(batch)
                yield part
                part.table, part._columns = {}, None
                part.memory.release()
        finally:
            remove_files(paths)

    def _fold(self, batch: Any) -> None:
        """Take in one frame of a spill file: columns, or a list of ``(key, combiner)``."""
        if type(batch) is tuple:
            if self._columns is not None or self._to_columns():
                self._add_columns(batch)
                return
            batch = columns.records_of(*batch)
        if self.level >= MAX_LEVEL:  # one huge key, or hopeless skew: no more spilling
            self._leave_columns()
            merge_into(self.table, batch, self.merge)
        else:
            self.merge_values(batch)

    def _merged_items(self) -> Iterator[tuple]:
        for part in self.parts():
            yield from part.items()

    def partition_like(self, records: Iterable[tuple]) -> list[str | None]:
        """Write ``(key, value)`` records to files split exactly as this map's spills.

        Used by joins: the other side's records for fan-out file *i* only ever
        meet keys of this map's part *i*.  ``None`` stands for an empty file.
        """
        fanout = _FanOut(self.spill_dir, f"side{self.level}-", self.level)
        try:
            for batch in batched(iter(records)):
                fanout.write(batch)
        except BaseException:
            remove_files(fanout.close())
            raise
        return fanout.close()


class _FanOut:
    """``FANOUT`` spill files filled by a salted hash of the key; each made when first needed."""

    def __init__(self, spill_dir: str, prefix: str, salt: int) -> None:
        self.spill_dir = spill_dir
        self.prefix = prefix
        self.salt = salt
        self.files: list[tuple[Any, str] | None] = [None] * FANOUT

    def write(self, items: Iterable[tuple]) -> None:
        """Append ``(key, value)`` records, each to its key's file (in their order)."""
        items = items if type(items) is list else list(items)
        if not items:
            return
        hashes = np.fromiter(map(hash, map(_first, items)), np.int64, len(items))
        order, bounds = columns.split_ids(columns.fanout_ids(hashes, self.salt, len(self.files)),
                                          len(self.files))
        ordered = list(map(items.__getitem__, order.tolist()))
        for index, (start, end) in enumerate(itertools.pairwise(bounds)):
            if end > start:
                entry = self._file(index)
                write_spill(entry[0], ordered[start:end], entry[1])

    def write_columns(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Append int pairs held as columns: to the same files as ``write`` would."""
        ids = columns.fanout_ids(columns.hashes_of(keys), self.salt, len(self.files))
        order, bounds = columns.split_ids(ids, len(self.files))
        keys, values = keys[order], values[order]
        for index, (start, end) in enumerate(itertools.pairwise(bounds)):
            if end > start:
                entry = self._file(index)
                write_column_spill(entry[0], keys[start:end], values[start:end], entry[1])

    def _file(self, index: int) -> tuple[Any, str]:
        entry = self.files[index]
        if entry is None:
            entry = self.files[index] = new_spill_file(self.spill_dir, f"{self.prefix}{index}-")
        return entry

    def close(self) -> list[str | None]:
        """Close the files; their paths (None where nothing was written)."""
        paths: list[str | None] = []
        for entry in self.files:
            if entry is not None:
                entry[0].close()
            paths.append(None if entry is None else entry[1])
        return paths


def merge_into(table: dict, records: Iterable[tuple], merge: Callable[[Any, Any], Any]) -> None:
    """``table[key] = merge(table[key], value)`` for each record (``value`` for a new key).

    >>> table = {"a": 1}
    >>> merge_into(table, [("a", 2), ("b", 5)], operator.add); table
    {'a': 3, 'b': 5}
    """
    for key, value in records:
        table[key] = merge(table[key], value) if key in table else value


def join_external(
    table: ExternalMap,
    stream: Iterable[tuple],
    join: Callable[[dict, Iterator[tuple]], Iterator[Any]],
) -> Iterator[Any]:
    """``join(table_dict, stream)``, part by part when ``table`` has spilled (a grace hash join).

    ``join`` must only pair stream records with table entries of the same key
    (and may emit unmatched table entries at its end): each part is joined
    on its own.
    """
    table._leave_columns()
    if not table.spilled:
        yield from join(table.table, iter(stream))
        return
    side_paths = table.partition_like(stream)
    try:
        for index, part in enumerate(table.parts()):
            path, side_paths[index] = side_paths[index], None
            yield from join_external(part, read_spill(path) if path else iter(()), join)
    finally:
        remove_files(side_paths)


def merge_external(
    tables: list[ExternalMap], merge: Callable[[list[dict]], Iterator[Any]]
) -> Iterator[Any]:
    """``merge([dict, ...])`` over several tables keyed alike, part by part if any spilled."""
    for t in tables:
        t._leave_columns()
    if not any(t.spilled for t in tables):
        yield from merge([t.table for t in tables])
        return
    for t in tables:
        if not t.spilled:
            t.spill()
    for parts in zip(*(t.parts() for t in tables), strict=True):
        yield from merge_external(list(parts), merge)


def sort_external(
    records: Iterator[Any],
    key: Callable[[Any], Any] | None,
    reverse: bool,
    memory: TaskMemory,
    spill_dir: str,
) -> Iterator[Any]:
    """``sorted(records, key=key, reverse=reverse)``, in sorted runs merged from disk if needed.

    Stable, like ``sorted``: runs are cut in arrival order and the merge
    (``merge_sorted_blocks``) puts an earlier run's records first on ties.
    Pairs sorted by their key (``key`` an ``itemgetter(0)``) whose keys are
    ints and values numbers are held, sorted and spilled as numpy columns
    (``spill_columns``), at a sixth of the memory and without a Python step
    per record; the first batch that is not such pairs turns the rest of the
    sort back to lists of records.
    """
    sorter = _RunSorter(key, reverse, memory.spawn(), spill_dir)
    try:
        for batch in _batches_of(records):
            sorter.add(batch)
        return sorter.result()
    except BaseException:
        remove_files(path for path, _ in sorter.runs)
        raise


def _batches_of(records: Iterator[Any]) -> Iterator[Any]:
    """The records in batches: those they arrived in, when ``records`` still has them
    (a shuffle's fetched records: lists, or pairs held as columns), else lists."""
    batches = getattr(records, "batches", None)
    if batches is not None and getattr(records, "started", True) is False:
        return batches
    return batched(records, 4 * DEFAULT_BATCH)


def _sorts_by_first(key: Any) -> bool:
    """Whether ``key`` is ``operator.itemgetter(0)``."""
    return isinstance(key, operator.itemgetter) and key.__reduce__()[1] == (0,)


class _RunSorter:
    """``sort_external``'s state: what is held in memory, and the runs spilled so far."""

    def __init__(self, key: Any, reverse: bool, memory: TaskMemory, spill_dir: str) -> None:
        self.key, self.reverse, self.memory, self.spill_dir = key, reverse, memory, spill_dir
        #: the spilled runs in arrival order: (path, whether it holds columns)
        self.runs: list[tuple[str, bool]] = []
        self.buffer: list = []
        self.tracker = SizeTracker()
        self.columnar = _sorts_by_first(key)
        self.kind: columns.Pair | None = None  # the dtypes of the first columns
        self.held: list[columns.Pair] = []  # columns in arrival order, unsorted
        self.held_bytes = 0

    def add(self, batch: list) -> None:
        if self.columnar:
            cols = columns.pair_columns(batch)
            if cols is not None and columns.same_kind(cols, self.kind or cols):
                self.kind = self.kind or cols
                self.held.append(cols)
                self.held_bytes += cols[0].nbytes + cols[1].nbytes
                if not self.memory.ensure(self.held_bytes):
                    self._spill_columns()
                return
            self.columnar = False  # the rest of the sort takes lists, in arrival order
            self.buffer = list(itertools.chain.from_iterable(
                columns.records_of(*cols) for cols in self.held))
            self.held, self.held_bytes = [], 0
        self.buffer.extend(batch)  # a list, or pairs held as columns (iterating as tuples)
        if not self.memory.ensure(self.tracker.estimate(self.buffer, len(self.buffer))):
            self.buffer.sort(key=self.key, reverse=self.reverse)
            out, path = new_spill_file(self.spill_dir, "run-")
            self.runs.append((path, False))
            with out:
                write_spill(out, self.buffer, path, batch=RUN_BATCH)
            self.buffer = []
            self.memory.release()

    def _sorted_held(self) -> columns.Pair:
        keys, values = columns.concat(self.held)
        self.held, self.held_bytes = [], 0
        return columns.sort_columns(keys, values, self.reverse)

    def _spill_columns(self) -> None:
        keys, values = self._sorted_held()
        out, path = new_spill_file(self.spill_dir, "run-")
        self.runs.append((path, True))
        with out:
            write_column_spill(out, keys, values, path)
        self.memory.release()

    def result(self) -> Iterator[Any]:
        """The sorted records: from memory, or merged from the runs and what is held."""
        if self.columnar:
            last = columns.chunks(*self._sorted_held(), COLUMN_RUN_BATCH) if self.held else iter(())
            if not self.runs:
                return itertools.chain.from_iterable(columns.record_blocks(last))
            return itertools.chain.from_iterable(
                columns.record_blocks(_merge_column_runs([p for p, _ in self.runs], last,
                                                         self.reverse)))
        self.buffer.sort(key=self.key, reverse=self.reverse)
        if not self.runs:
            return iter(self.buffer)
        return itertools.chain.from_iterable(
            _merge_runs(self.runs, self.buffer, self.key, self.reverse))


def _merge_column_runs(
    runs: list[str], last: Iterator[columns.Pair], reverse: bool
) -> Iterator[columns.Pair]:
    try:
        sources = [map(tuple, read_spill_batches(path)) for path in runs]
        yield from columns.merge_columns([*sources, last], reverse)
    finally:
        remove_files(runs)


def _merge_runs(
    runs: list[tuple[str, bool]], last: list, key: Any, reverse: bool
) -> Iterator[list]:
    try:
        sources: list[Iterator[list]] = [
            columns.record_blocks(map(tuple, read_spill_batches(path))) if held_columns
            else read_spill_batches(path)
            for path, held_columns in runs
        ]
        sources.append(iter([last]))
        yield from merge_sorted_blocks(sources, key, reverse)
    finally:
        remove_files(path for path, _ in runs)


def merge_sorted_blocks(
    sources: list[Iterator[list]], key: Callable[[Any], Any] | None, reverse: bool
) -> Iterator[list]:
    """Merge sorted streams of blocks (lists) into sorted blocks; stable across sources.

    Each stream is one sorted sequence cut into blocks.  Every step takes,
    from each stream's current block, the records that must come before
    anything still unread (those up to the smallest of the blocks' last
    keys), and sorts what it took with ``list.sort``: timsort finds the
    sorted pieces and merges them in C, where ``heapq.merge`` would pay a
    Python step per record.  On equal keys an earlier stream's records come
    first, as with ``heapq.merge``.

    >>> blocks = merge_sorted_blocks([iter([[1, 4], [6, 9]]), iter([[2, 3, 7]])], None, False)
    >>> [x for block in blocks for x in block]
    [1, 2, 3, 4, 6, 7, 9]
    >>> pairs = merge_sorted_blocks([iter([[(2, "a")]]), iter([[(2, "b"), (1, "c")]])],
    ...                             operator.itemgetter(0), True)
    >>> [x for block in pairs for x in block]
    [(2, 'a'), (2, 'b'), (1, 'c')]
    """
    key_of = key or _identity
    # One entry per stream still open, in stream order: [block, position, stream].
    heads: list[list] = []
    for stream in sources:
        block = next(stream, None)
        while block is not None and not block:
            block = next(stream, None)
        if block is not None:
            heads.append([block, 0, stream])
    while len(heads) > 1:
        lasts = [key_of(head[0][-1]) for head in heads]
        bound = max(lasts) if reverse else min(lasts)
        first = lasts.index(bound)  # its whole block goes; so do earlier streams' ties
        pieces = []
        for number, head in enumerate(heads):
            block, start = head[0], head[1]
            if number == first:
                cut = len(block)
            else:
                cut = _cut(block, start, bound, key, reverse, inclusive=number < first)
            if cut > start:
                pieces.append(block[start:cut] if start or cut < len(block) else block)
                head[1] = cut
        if len(pieces) == 1:
            yield pieces[0]
        elif pieces:
            chunk = list(itertools.chain.from_iterable(pieces))
            chunk.sort(key=key, reverse=reverse)
            yield chunk
        open_heads = []
        for head in heads:
            while head is not None and head[1] >= len(head[0]):
                block = next(head[2], None)
                head = None if block is None else [block, 0, head[2]]
            if head is not None:
                open_heads.append(head)
        heads = open_heads
    if heads:
        block, start, stream = heads[0]
        yield block[start:] if start else block
        yield from stream


def _identity(x: Any) -> Any:
    return x


def _cut(
    block: list, start: int, bound: Any, key: Callable[[Any], Any] | None, reverse: bool,
    inclusive: bool,
) -> int:
    """The end of ``block[start:]``'s records that sort before ``bound`` (or equal it, when
    ``inclusive``): a binary search of the sorted block (descending when ``reverse``)."""
    if not reverse:
        search = bisect.bisect_right if inclusive else bisect.bisect_left
        return search(block, bound, start, key=key)
    key_of = key or _identity
    lo, hi = start, len(block)
    while lo < hi:  # first index whose key is not (>= when inclusive, > otherwise) bound
        mid = (lo + hi) // 2
        value = key_of(block[mid])
        if value > bound or (inclusive and value == bound):
            lo = mid + 1
        else:
            hi = mid
    return lo


def remove_files(paths: Iterable[str | None]) -> None:
    """Remove the files that exist (None entries are skipped)."""
    for path in paths:
        if path:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
