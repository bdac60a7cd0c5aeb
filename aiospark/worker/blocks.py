"""A worker's block store: the cached splits of persisted RDDs, within a memory budget.

A block is one split of one persisted RDD, keyed by ``(app_id, rdd_id, split)``.
Deserialized levels keep the record list itself, serialized levels keep framed
bytes (one frame per batch of records), disk levels write the frames to a file
in the worker's directory.  Blocks in memory are charged to the worker's
``MemoryManager``: deserialized ones by their sampled size estimate, serialized
ones by their byte length.

Putting a block *unrolls* the split's iterator while reserving memory as it
grows.  When the budget runs out (after evicting least-recently-used blocks of
other RDDs, never those of the RDD being cached) a memory-only block is simply
not kept, and the records stream on to the task; a level with ``use_disk``
writes it to disk instead.  Evicting a block of a disk level moves it to disk;
evicting a memory-only block drops it, and the driver hears of it
(``report``/``take_evicted``) so it stops expecting the block here.

It is used from task threads, hence the lock.

>>> import tempfile
>>> from aiospark.lineage import StorageLevel
>>> from aiospark.memory import MemoryManager
>>> memory = MemoryManager(budget=100_000)
>>> store = BlockStore(tempfile.mkdtemp(), memory)
>>> [store.put("app", rdd, 0, list(range(1000)), StorageLevel.MEMORY_ONLY) for rdd in (1, 2)]
[True, True]
>>> list(store.get("app", 1, 0))[:3]   # reading rdd 1 makes rdd 2 the least recently used
[0, 1, 2]
>>> store.put("app", 3, 0, list(range(1000)), StorageLevel.MEMORY_ONLY)  # evicts rdd 2
True
>>> [store.where("app", rdd, 0) for rdd in (1, 2, 3)], store.take_evicted("app")
(['memory', None, 'memory'], [(2, 0)])
>>> store.put("app", 4, 0, list(range(50_000)), StorageLevel.MEMORY_AND_DISK)  # kept on disk
True
>>> store.where("app", 4, 0), sum(store.get("app", 4, 0)) == sum(range(50_000))
('disk', True)
>>> store.put("app", 5, 0, list(range(50_000)), StorageLevel.MEMORY_ONLY)  # too big: not kept
False
>>> store.where("app", 1, 0)   # (room made while unrolling it, in vain: sizes show late)
>>> [store.drop_rdd("app", rdd) for rdd in (1, 3, 4)], memory.storage_used
([0, 0, 1], 0)
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

from aiospark.lineage import StorageLevel
from aiospark.memory import MemoryManager
from aiospark.protocol.frames import DEFAULT_BATCH, decode_frame, encode_frame, frame_bytes
from aiospark.sizeof import SizeTracker, records_size

Key = tuple[str, int, int]

#: Records read before the first size check while unrolling (records may be big).
FIRST_CHECK = 16
#: The most records read between two size checks (and per frame of a serialized block).
MAX_CHECK = DEFAULT_BATCH
#: Aim to grow a block by about this much between two size checks (capped at budget / 32).
UNROLL_STEP = 1 << 20
#: A budget nobody reaches: a store without a memory manager never evicts.
_UNBOUNDED = 1 << 62


# -- pure policy ------------------------------------------------------------------------


def choose_victims(
    candidates: Iterable[tuple[Key, int]], nbytes: int, protect: Hashable | None = None
) -> list[Key]:
    """Blocks to evict to free ``nbytes``: least recently used first, never those of ``protect``.

    ``candidates`` are ``(key, bytes in memory)`` pairs, least recently used
    first; ``protect`` is an ``(app_id, rdd_id)`` pair.  Returns fewer than
    needed when that is all there is.

    >>> lru = [(("a", 1, 0), 10), (("a", 2, 0), 10), (("a", 1, 1), 10), (("a", 3, 0), 10)]
    >>> choose_victims(lru, 15, protect=("a", 2))
    [('a', 1, 0), ('a', 1, 1)]
    >>> choose_victims(lru, 100, protect=("a", 1))
    [('a', 2, 0), ('a', 3, 0)]
    """
    chosen: list[Key] = []
    freed = 0
    for key, size in candidates:
        if freed >= nbytes:
            break
        if protect is not None and key[:2] == protect:
            continue
        chosen.append(key)
        freed += size
    return chosen


def check_period(step: int, count: int, size: int) -> int:
    """Records to read before the next size check, so a block grows by about ``step`` bytes.

    >>> check_period(1 << 20, 1000, 36_000)     # small records: the most per check
    1024
    >>> check_period(1 << 20, 16, 16 * 400_000)  # 400 kB records: a few at a time
    2
    """
    if size <= 0:
        return MAX_CHECK
    return max(1, min(MAX_CHECK, step * count // size))


# -- the store --------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class Block:
    """Where one block is, and what it costs."""

    level: StorageLevel
    #: in memory: the records (deserialized levels) or their frames (serialized levels)
    value: list | None = None
    #: charged to the memory manager while ``value`` is set
    memory_bytes: int = 0
    path: str | None = None
    #: byte length of each frame in the file
    frame_lengths: list[int] = dataclasses.field(default_factory=list)
    disk_bytes: int = 0
    #: an eviction is writing it to disk (it stays readable from memory meanwhile)
    spilling: bool = False


class BlockStore:
    """Cached splits keyed by ``(app_id, rdd_id, split)``, charged to a ``MemoryManager``.

    ``on_evict(app_id)``, if given, is called (from whichever thread evicted)
    when blocks of that application left this worker, so the worker can tell
    its driver; ``take_evicted`` then returns them.
    """

    def __init__(
        self,
        directory: str,
        memory: MemoryManager | None = None,
        on_evict: Callable[[str], None] | None = None,
    ) -> None:
        self.directory = directory
        self.memory = memory if memory is not None else MemoryManager(_UNBOUNDED)
        self.memory.evict = self.evict
        self.on_evict = on_evict
        self._lock = threading.Lock()
        self._blocks: dict[Key, Block] = {}
        #: keys of the blocks held in memory, least recently used first
        self._lru: OrderedDict[Key, None] = OrderedDict()
        #: app -> (rdd, split) of blocks evicted from this worker, not yet reported
        self._evicted: dict[str, set[tuple[int, int]]] = {}
        #: counts since start: blocks dropped by eviction, moved to disk, too big to keep
        self.stats = {"evicted": 0, "spilled": 0, "not_stored": 0}
        self._tmp_counter = itertools.count()

    # -- reading -------------------------------------------------------------------------

    def get(self, app_id: str, rdd_id: int, split: int) -> Iterator[Any] | None:
        """An iterator over the cached records, or None when this worker does not hold them.

        Serialized and disk blocks are decoded one frame (batch) at a time.
        """
        key = (app_id, rdd_id, split)
        with self._lock:
            block = self._blocks.get(key)
            if block is None:
                return None
            value, path, lengths = block.value, block.path, block.frame_lengths
            if value is not None:
                self._lru.move_to_end(key)
        if value is not None:
            if block.level.deserialized:
                return iter(value)
            return _decode_frames(value)
        assert path is not None
        try:
            return itertools.chain.from_iterable(_FileBatches(path, list(lengths)))
        except FileNotFoundError:  # removed behind our back: treat as evicted
            self._lost(key, block)
            return None

    def frames(self, app_id: str, rdd_id: int, split: int) -> Iterator[list] | None:
        """The block as frame pieces (for serving it to another worker), or None.

        Serialized and disk blocks are served as stored, without re-encoding.
        """
        key = (app_id, rdd_id, split)
        with self._lock:
            block = self._blocks.get(key)
            if block is None:
                return None
            value, path, lengths = block.value, block.path, list(block.frame_lengths)
            if value is not None:
                self._lru.move_to_end(key)
        if value is not None:
            if block.level.deserialized:
                return _encode(value)
            return ([frame] for frame in value)
        assert path is not None
        try:
            return ([batch] for batch in _FileBatches(path, lengths, raw=True))
        except FileNotFoundError:
            self._lost(key, block)
            return None

    def where(self, app_id: str, rdd_id: int, split: int) -> str | None:
        """``"memory"``, ``"disk"`` or None: where this worker keeps a block."""
        with self._lock:
            block = self._blocks.get((app_id, rdd_id, split))
        if block is None:
            return None
        return "memory" if block.value is not None else "disk"

    # -- writing -------------------------------------------------------------------------

    def put(
        self, app_id: str, rdd_id: int, split: int, records: Iterable[Any], level: StorageLevel
    ) -> bool:
        """Keep ``records`` at ``level`` if the budget (or the disk) allows; True if kept."""
        _, stored = self.put_iterator(app_id, rdd_id, split, records, level)
        return stored

    def put_iterator(
        self, app_id: str, rdd_id: int, split: int, records: Iterable[Any], level: StorageLevel
    ) -> tuple[Iterator[Any], bool]:
        """Try to keep a split as it is computed; returns ``(the records, kept)``.

        The records come back as an iterator whatever happens: from memory, from
        disk, or (a memory-only block that did not fit) streamed on from
        ``records`` after the part already unrolled.

        >>> from aiospark.memory import MemoryManager
        >>> store = BlockStore("/nonexistent", MemoryManager(budget=10_000))
        >>> it, kept = store.put_iterator("app", 7, 0, iter(range(5000)), StorageLevel.MEMORY_ONLY)
        >>> kept, sum(it) == sum(range(5000)), store.memory.storage_used
        (False, True, 0)
        """
        key = (app_id, rdd_id, split)
        existing = self.get(app_id, rdd_id, split)
        if existing is not None:  # another task cached it meanwhile
            return existing, True
        it = iter(records)
        if level.use_memory:
            values, charged, rest = self._unroll(it, level, (app_id, rdd_id))
            if rest is None:
                return self._commit_memory(key, level, values, charged), True
            if level.use_disk:  # what was unrolled, then the rest, to disk
                head = _encode(values) if level.deserialized else ([f] for f in values)
                return self._put_file(key, level, itertools.chain(head, _encode(rest))), True
            with self._lock:
                self.stats["not_stored"] += 1
            return _stream_partial(values, level, rest), False
        return self._put_file(key, level, _encode(it)), True

    def put_frames(
        self, app_id: str, rdd_id: int, split: int, frames: Iterable[Any], level: StorageLevel
    ) -> bool:
        """Keep a block that arrives as frames (a copy from a peer); True if kept.

        The same rules as ``put``: a deserialized level decodes the frames into
        records and unrolls them; a serialized or disk level keeps the frames as
        they came (charged by their length), without decoding them.

        >>> from aiospark.memory import MemoryManager
        >>> from aiospark.protocol.frames import frame_bytes
        >>> store = BlockStore("/nonexistent", MemoryManager(budget=10_000))
        >>> store.put_frames("app", 3, 0, [frame_bytes([1, 2]), frame_bytes([3])],
        ...                  StorageLevel.MEMORY_ONLY_SER_2)
        True
        >>> list(store.get("app", 3, 0)), store.put_frames(
        ...     "app", 4, 0, [frame_bytes(list(range(5000)))], StorageLevel.MEMORY_ONLY_SER)
        ([1, 2, 3], False)
        """
        if level.deserialized and level.use_memory:
            records = itertools.chain.from_iterable(map(decode_frame, frames))
            return self.put(app_id, rdd_id, split, records, level)
        key = (app_id, rdd_id, split)
        if self.where(app_id, rdd_id, split) is not None:
            return True
        it = iter(frames)
        if level.use_memory:
            values, charged, rest = self._unroll(it, level, (app_id, rdd_id), framed=True)
            if rest is None:
                self._commit_memory(key, level, values, charged)
                return True
            if not level.use_disk:
                with self._lock:
                    self.stats["not_stored"] += 1
                return False
            it = itertools.chain(values, rest)
        self._put_file(key, level, ([frame] for frame in it))
        return True

    def _unroll(
        self, it: Iterator[Any], level: StorageLevel, protect: tuple[str, int],
        framed: bool = False,
    ) -> tuple[list, int, Iterator[Any] | None]:
        """Read ``it`` into memory while the budget allows.

        Returns ``(values, charged, rest)``: when everything fit, ``rest`` is
        None and ``charged`` bytes are reserved for ``values`` (records, or
        frames of a serialized level); otherwise nothing stays reserved and
        ``rest`` is what is left of ``it``.  ``framed``: ``it`` yields the
        frames of a serialized level, ready to keep.
        """
        memory = self.memory
        serialized = not level.deserialized
        step = max(1, min(UNROLL_STEP, memory.budget // 32))
        tracker = SizeTracker()
        values: list = []
        reserved = size = count = 0
        period = FIRST_CHECK
        try:
            while batch := list(itertools.islice(it, period)):
                count += len(batch)
                if framed:
                    values.extend(batch)
                    size += sum(map(len, batch))
                elif serialized:
                    frame = frame_bytes(batch)
                    values.append(frame)
                    size += len(frame)
                else:
                    values.extend(batch)
                    size = tracker.estimate(values, count)
                if size > reserved:
                    short = size - reserved - (memory.budget - memory.storage_used)
                    if short + memory.execution_used > 0 and size > (
                        memory.budget - memory.execution_used - self._held_by(protect)
                    ):  # it cannot fit even if every other block went: evict nothing for it
                        memory.release_storage(reserved)
                        return values, 0, it
                    # Reserve a little ahead, so the next checks need not ask again.
                    ahead = size + min(size // 4, step) - reserved
                    if memory.acquire_storage(ahead, protect):
                        reserved += ahead
                    elif memory.acquire_storage(size - reserved, protect):
                        reserved = size
                    else:
                        memory.release_storage(reserved)
                        return values, 0, it
                period = check_period(step, count, size)
            if not serialized and count:
                size = records_size(values)  # a fresh estimate of the whole
                if size > reserved and not memory.acquire_storage(size - reserved, protect):
                    memory.release_storage(reserved)
                    return values, 0, iter(())
                reserved = max(reserved, size)
        except BaseException:
            memory.release_storage(reserved)
            raise
        memory.release_storage(reserved - size)
        return values, size, None

    def _held_by(self, protect: tuple[str, int]) -> int:
        """Memory held by the blocks of one RDD (which its own puts may not evict)."""
        with self._lock:
            return sum(
                self._blocks[key].memory_bytes for key in self._lru if key[:2] == protect
            )

    def _commit_memory(self, key: Key, level: StorageLevel, values: list, charged: int):
        with self._lock:
            if key in self._blocks:  # another task stored it first
                self.memory.release_storage(charged)
            else:
                self._blocks[key] = Block(level, value=values, memory_bytes=charged)
                self._lru[key] = None
        return iter(values) if level.deserialized else _decode_frames(values)

    def _put_file(self, key: Key, level: StorageLevel, frames: Iterable[list]) -> Iterator[Any]:
        path, lengths = self._write_file(key, frames)
        batches = _FileBatches(path, lengths)  # open before anyone may remove it
        with self._lock:
            if key in self._blocks:  # another task stored it first: ours goes
                _remove(path)
            else:
                block = Block(level, path=path, frame_lengths=lengths, disk_bytes=sum(lengths))
                self._blocks[key] = block
        return itertools.chain.from_iterable(batches)

    def _write_file(self, key: Key, frames: Iterable[list]) -> tuple[str, list[int]]:
        """Write frames to a new file; returns its path and the frames' lengths."""
        app_id, rdd_id, split = key
        folder = os.path.join(self.directory, "blocks", app_id)
        os.makedirs(folder, exist_ok=True)
        # One file per write: two tasks caching the same split (or a drop and a
        # new put) never replace a file another thread is reading.  The block
        # is only registered once its file is complete.
        path = os.path.join(folder, f"rdd_{rdd_id}_{split}.{next(self._tmp_counter)}")
        lengths: list[int] = []
        try:
            with open(path, "wb") as f:
                for pieces in frames:
                    n = 0
                    for piece in pieces:
                        n += f.write(piece)
                    lengths.append(n)
        except BaseException:
            _remove(path)
            raise
        return path, lengths

    # -- eviction -----------------------------------------------------------------------

    def evict(self, nbytes: int, protect: Hashable | None = None) -> int:
        """Free at least ``nbytes`` of memory if possible; returns how much was freed.

        The ``MemoryManager`` calls this.  Least recently used blocks go first,
        never those of ``protect`` (an ``(app_id, rdd_id)``); blocks of levels
        with ``use_disk`` move to disk, the others are dropped.
        """
        dropped: list[Key] = []
        spills: list[tuple[Key, Block]] = []
        freed = 0
        with self._lock:
            candidates = (
                (key, self._blocks[key].memory_bytes)
                for key in self._lru
                if not self._blocks[key].spilling
            )
            for key in choose_victims(candidates, nbytes, protect):
                block = self._blocks[key]
                freed += block.memory_bytes
                if block.level.use_disk:
                    block.spilling = True
                    spills.append((key, block))
                    continue
                del self._blocks[key]
                del self._lru[key]
                self.memory.release_storage(block.memory_bytes)
                self._evicted.setdefault(key[0], set()).add(key[1:])
                self.stats["evicted"] += 1
                dropped.append(key)
        for key, block in spills:
            self._spill(key, block)
        self._notify({key[0] for key in dropped})
        return freed

    def _spill(self, key: Key, block: Block) -> None:
        """Move an evicted block of a disk level from memory to disk."""
        value = block.value
        assert value is not None
        frames = _encode(value) if block.level.deserialized else ([f] for f in value)
        try:
            path, lengths = self._write_file(key, frames)
        except OSError:  # no room on disk either: drop it
            path, lengths = None, []
        lost = False
        with self._lock:
            current = self._blocks.get(key) is block
            if current and path is not None:
                block.value, block.path, block.frame_lengths = None, path, lengths
                block.disk_bytes = sum(lengths)
                block.spilling = False
                self._lru.pop(key, None)
                self.stats["spilled"] += 1
            elif current:
                del self._blocks[key]
                self._lru.pop(key, None)
                self._evicted.setdefault(key[0], set()).add(key[1:])
                self.stats["evicted"] += 1
                lost = True
            self.memory.release_storage(block.memory_bytes)
        if not current and path is not None:  # unpersisted while we wrote it
            _remove(path)
        if lost:
            self._notify({key[0]})

    def _lost(self, key: Key, block: Block) -> None:
        with self._lock:
            if self._blocks.get(key) is not block:
                return
            del self._blocks[key]
            self._lru.pop(key, None)
            self._evicted.setdefault(key[0], set()).add(key[1:])
        self._notify({key[0]})

    def _notify(self, apps: set[str]) -> None:
        if self.on_evict is not None:
            for app_id in apps:
                self.on_evict(app_id)

    # -- reporting ---------------------------------------------------------------------

    def report(
        self, app_id: str, cached: Iterable[tuple[int, int]]
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """For a task outcome: which of ``cached`` are still held, and what was evicted.

        Both are read at the same instant, so they never contradict each other.

        >>> store = BlockStore("/nonexistent")
        >>> store.report("app", [(1, 0)])
        ([], [])
        """
        with self._lock:
            held = [tuple(k) for k in cached if (app_id, *k) in self._blocks]
            evicted = self._evicted.pop(app_id, set())
            gone = sorted(k for k in evicted if (app_id, *k) not in self._blocks)
        return held, gone  # type: ignore[return-value]

    def take_evicted(self, app_id: str) -> list[tuple[int, int]]:
        """``(rdd_id, split)`` of the app's blocks evicted since last asked (and not back)."""
        return self.report(app_id, ())[1]

    # -- dropping ----------------------------------------------------------------------

    def drop_rdd(self, app_id: str, rdd_id: int) -> int:
        """Forget every split of one RDD (memory, disk, budget); returns how many were dropped."""
        return self._drop(lambda key: key[0] == app_id and key[1] == rdd_id)

    def drop_app(self, app_id: str) -> int:
        """Forget everything a driver cached; returns how many blocks were dropped."""
        count = self._drop(lambda key: key[0] == app_id)
        with self._lock:
            self._evicted.pop(app_id, None)
        shutil.rmtree(os.path.join(self.directory, "blocks", app_id), ignore_errors=True)
        return count

    def _drop(self, match: Callable[[Key], bool]) -> int:
        paths = []
        with self._lock:
            keys = [key for key in self._blocks if match(key)]
            for key in keys:
                block = self._blocks.pop(key)
                self._lru.pop(key, None)
                if block.path is not None:
                    paths.append(block.path)
                if block.value is not None and not block.spilling:
                    # (a block being spilled is released by the spill, which sees it gone)
                    self.memory.release_storage(block.memory_bytes)
        for path in paths:
            _remove(path)
        return len(keys)

    # -- status ---------------------------------------------------------------------------

    def summary(self) -> dict[str, int]:
        """Blocks held by kind, their bytes, and eviction counts since start.

        >>> BlockStore("/nonexistent").summary()["memory_bytes"]
        0
        """
        with self._lock:
            in_memory = [b for b in self._blocks.values() if b.value is not None]
            on_disk = [b for b in self._blocks.values() if b.value is None]
            return {
                "memory": len(in_memory),
                "disk": len(on_disk),
                "memory_bytes": sum(b.memory_bytes for b in in_memory),
                "disk_bytes": sum(b.disk_bytes for b in on_disk),
                **self.stats,
            }

    def rdds(self) -> list[dict[str, Any]]:
        """Per cached RDD: app, rdd id, splits held, bytes in memory and on disk.

        >>> import tempfile
        >>> store = BlockStore(tempfile.mkdtemp())
        >>> store.put("app", 4, 0, [1, 2], StorageLevel.DISK_ONLY)
        True
        >>> [(r["rdd_id"], r["splits"], r["memory_bytes"]) for r in store.rdds()]
        [(4, 1, 0)]
        """
        totals: dict[tuple[str, int], dict[str, Any]] = {}
        with self._lock:
            for (app_id, rdd_id, _), block in self._blocks.items():
                entry = totals.setdefault(
                    (app_id, rdd_id),
                    {"app_id": app_id, "rdd_id": rdd_id, "splits": 0,
                     "memory_bytes": 0, "disk_bytes": 0},
                )
                entry["splits"] += 1
                if block.value is not None:
                    entry["memory_bytes"] += block.memory_bytes
                else:
                    entry["disk_bytes"] += block.disk_bytes
        return [totals[k] for k in sorted(totals)]


# -- helpers ---------------------------------------------------------------------------------


class _FileBatches:
    """The batches of a block file, read (and decoded) one frame at a time.

    The file is opened at once, so a missing file raises ``FileNotFoundError``
    to the caller, and closed when the last frame is read or the reader dies.
    """

    def __init__(self, path: str, lengths: list[int], raw: bool = False) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()/__del__
        self._lengths = iter(lengths)
        self._raw = raw

    def __iter__(self) -> _FileBatches:
        return self

    def __next__(self) -> Any:
        n = next(self._lengths, None)
        if n is None or self._file.closed:
            self.close()
            raise StopIteration
        buf = bytearray(n)  # writable, so numpy arrays decoded from it are writable
        if self._file.readinto(buf) != n:
            self.close()
            raise OSError(f"block file {self._file.name} is truncated")
        return buf if self._raw else decode_frame(buf)

    def close(self) -> None:
        self._file.close()

    def __del__(self) -> None:
        with contextlib.suppress(AttributeError):
            self._file.close()


def _decode_frames(frames: list[bytes]) -> Iterator[Any]:
    """The records of a serialized block, decoded one frame at a time (into fresh objects)."""
    return itertools.chain.from_iterable(decode_frame(bytearray(f)) for f in frames)


def _encode(records: Iterable[Any]) -> Iterator[list]:
    """Frame pieces for ``records``, batching them so each frame stays modest in size."""
    it = iter(records)
    period = FIRST_CHECK
    count = size = 0
    while batch := list(itertools.islice(it, period)):
        pieces = encode_frame(batch)
        count += len(batch)
        size += sum(memoryview(p).nbytes for p in pieces)
        period = check_period(UNROLL_STEP, count, size)
        yield pieces


def _stream_partial(head: list, level: StorageLevel, rest: Iterator[Any]) -> Iterator[Any]:
    """The records of a block that did not fit: the part unrolled, then the rest."""
    if level.deserialized:
        yield from head
    else:
        yield from _decode_frames(head)
    head.clear()  # let the unrolled part go before the rest streams
    yield from rest


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
