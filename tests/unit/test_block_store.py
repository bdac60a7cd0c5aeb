"""The block store's policy against a small MemoryManager: LRU, protection, levels, accounting."""

from __future__ import annotations

import os
import random
import threading
import tracemalloc

import pytest

from aiospark.lineage import StorageLevel
from aiospark.memory import MemoryManager
from aiospark.scheduler.dag import preferred_locations
from aiospark.scheduler.events import BlocksCached, BlocksEvicted
from aiospark.scheduler.state import SchedulerState
from aiospark.sizeof import records_size
from aiospark.worker.blocks import BlockStore, choose_victims

MEMORY_ONLY = StorageLevel.MEMORY_ONLY
MEMORY_AND_DISK = StorageLevel.MEMORY_AND_DISK
DISK_ONLY = StorageLevel.DISK_ONLY
MEMORY_ONLY_SER = StorageLevel.MEMORY_ONLY_SER
MEMORY_AND_DISK_SER = StorageLevel.MEMORY_AND_DISK_SER
ALL_LEVELS = [MEMORY_ONLY, MEMORY_AND_DISK, DISK_ONLY, MEMORY_ONLY_SER, MEMORY_AND_DISK_SER]


def block(tag: int, items: int = 10, item_bytes: int = 10_000) -> list[bytes]:
    """About ``items * item_bytes`` bytes, however it is measured (objects or frames)."""
    return [bytes([tag % 256, i % 256]) * (item_bytes // 2) for i in range(items)]


BLOCK = records_size(block(0))  # ~100 kB


def make_store(tmp_path, blocks_fitting: float) -> tuple[BlockStore, MemoryManager]:
    memory = MemoryManager(budget=int(BLOCK * blocks_fitting), cores=1)
    return BlockStore(str(tmp_path), memory), memory


def stored_files(tmp_path) -> list[str]:
    found = []
    for root, _dirs, files in os.walk(tmp_path):
        found.extend(os.path.join(root, f) for f in files)
    return found


def check_accounting(store: BlockStore, memory: MemoryManager) -> None:
    """What the manager charges is exactly what the blocks in memory hold."""
    assert memory.storage_used == store.summary()["memory_bytes"]
    assert memory.storage_used <= memory.budget


# -- policy -----------------------------------------------------------------------------------


def test_choose_victims_is_lru_and_skips_the_protected_rdd():
    lru = [(("a", 1, 0), 5), (("a", 2, 0), 5), (("b", 2, 0), 5), (("a", 2, 1), 5)]
    assert choose_victims(lru, 8) == [("a", 1, 0), ("a", 2, 0)]
    assert choose_victims(lru, 8, protect=("a", 2)) == [("a", 1, 0), ("b", 2, 0)]
    assert choose_victims(lru, 100, protect=("a", 2)) == [("a", 1, 0), ("b", 2, 0)]
    assert choose_victims(lru, 0) == []


def test_least_recently_used_block_goes_first(tmp_path):
    store, memory = make_store(tmp_path, 3.5)
    for rdd in (1, 2, 3):
        assert store.put("app", rdd, 0, block(rdd), MEMORY_ONLY)
    assert list(store.get("app", 1, 0)) == block(1)  # 2 is now the least recently used
    assert store.put("app", 4, 0, block(4), MEMORY_ONLY)
    assert [store.where("app", r, 0) for r in (1, 2, 3, 4)] == ["memory", None, "memory", "memory"]
    assert store.take_evicted("app") == [(2, 0)]
    assert store.take_evicted("app") == [], "reported once"
    assert store.summary()["evicted"] == 1
    check_accounting(store, memory)


def test_blocks_of_the_rdd_being_cached_are_never_evicted_for_it(tmp_path):
    store, memory = make_store(tmp_path, 3.5)
    assert [store.put("app", 1, s, block(s), MEMORY_ONLY) for s in range(4)] == [
        True, True, True, False,
    ]
    assert [store.where("app", 1, s) for s in range(4)] == ["memory"] * 3 + [None]
    assert store.summary()["not_stored"] == 1 and store.summary()["evicted"] == 0
    # Another RDD may evict them (least recently used first).
    assert store.put("app", 2, 0, block(9), MEMORY_ONLY)
    assert store.where("app", 1, 0) is None and store.where("app", 2, 0) == "memory"
    check_accounting(store, memory)


def test_a_split_that_does_not_fit_streams_on_without_being_kept(tmp_path):
    store, memory = make_store(tmp_path, 3.5)
    assert store.put("app", 1, 0, block(1), MEMORY_ONLY)
    consumed = 0
    big = block(2, items=60)  # ~6 blocks: cannot fit

    def source():
        nonlocal consumed
        for record in big:
            consumed += 1
            yield record

    records, kept = store.put_iterator("app", 2, 0, source(), MEMORY_ONLY)
    assert not kept
    assert consumed < len(big), "the whole split was materialised before giving up"
    assert list(records) == big
    # Room made for it while it grew (its size shows late) is reported, and nothing leaks.
    assert store.where("app", 1, 0) is None and store.take_evicted("app") == [(1, 0)]
    assert memory.storage_used == 0 and store.summary()["not_stored"] == 1


def test_a_split_bigger_than_the_budget_evicts_nothing_once_measured(tmp_path):
    store, memory = make_store(tmp_path, 3.5)
    assert store.put("app", 1, 0, block(1), MEMORY_ONLY)
    huge = block(2, items=16, item_bytes=400_000)  # the first size check sees it cannot fit
    records, kept = store.put_iterator("app", 2, 0, iter(huge), MEMORY_ONLY)
    assert not kept and list(records) == huge
    assert store.where("app", 1, 0) == "memory"
    check_accounting(store, memory)


@pytest.mark.parametrize("level", [MEMORY_AND_DISK, MEMORY_AND_DISK_SER])
def test_a_split_too_big_for_memory_goes_to_disk_with_a_disk_level(tmp_path, level):
    store, memory = make_store(tmp_path, 3.5)
    big = block(2, items=60)
    records, kept = store.put_iterator("app", 2, 0, iter(big), level)
    assert kept and list(records) == big
    assert store.where("app", 2, 0) == "disk"
    assert list(store.get("app", 2, 0)) == big
    assert memory.storage_used == 0


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_every_level_round_trips(tmp_path, level):
    store, memory = make_store(tmp_path, 40)
    records = [(i, str(i), [i] * 3) for i in range(5000)]
    it, kept = store.put_iterator("app", 1, 0, iter(records), level)
    assert kept and list(it) == records
    assert list(store.get("app", 1, 0)) == records
    assert store.where("app", 1, 0) == ("memory" if level.use_memory else "disk")
    served = [r for pieces in store.frames("app", 1, 0) for r in _decode(pieces)]
    assert served == records
    if not level.use_memory:
        assert memory.storage_used == 0
    check_accounting(store, memory)


def test_serialized_blocks_are_charged_their_byte_length(tmp_path):
    store, memory = make_store(tmp_path, 10)
    assert store.put("app", 1, 0, block(1), MEMORY_ONLY_SER)
    frames = list(store.frames("app", 1, 0))
    assert memory.storage_used == sum(len(p) for pieces in frames for p in pieces)


@pytest.mark.parametrize(
    "level, after", [(MEMORY_ONLY, None), (MEMORY_ONLY_SER, None),
                     (MEMORY_AND_DISK, "disk"), (MEMORY_AND_DISK_SER, "disk")]
)
def test_eviction_drops_or_spills_by_level(tmp_path, level, after):
    store, memory = make_store(tmp_path, 2.5)
    assert store.put("app", 1, 0, block(1), level)
    assert store.put("app", 2, 0, block(2), MEMORY_ONLY)
    assert store.put("app", 3, 0, block(3), MEMORY_ONLY)  # needs rdd 1's room
    assert store.where("app", 1, 0) == after
    if after == "disk":
        assert list(store.get("app", 1, 0)) == block(1)
        assert store.summary()["spilled"] == 1 and store.take_evicted("app") == []
    else:
        assert store.take_evicted("app") == [(1, 0)]
    check_accounting(store, memory)


def test_execution_memory_evicts_cached_blocks_down_to_the_storage_floor(tmp_path):
    store, memory = make_store(tmp_path, 4.5)
    for rdd in range(4):
        assert store.put("app", rdd, 0, block(rdd), MEMORY_AND_DISK)
    granted = memory.acquire_execution("task", memory.budget)
    assert granted > BLOCK, "execution got nothing back from storage"
    assert memory.storage_used >= memory.storage_floor - BLOCK
    on_disk = [r for r in range(4) if store.where("app", r, 0) == "disk"]
    assert on_disk and on_disk == list(range(len(on_disk))), "not least recently used first"
    assert all(list(store.get("app", r, 0)) == block(r) for r in range(4))
    memory.release_execution("task")
    check_accounting(store, memory)


def test_accounting_returns_to_zero_after_unpersist_and_driver_exit(tmp_path):
    store, memory = make_store(tmp_path, 10)
    for s, level in enumerate(ALL_LEVELS):
        assert store.put("app", 1, s, block(s, items=5), level)
        assert store.put("other", 1, s, block(s, items=5), level)
    assert memory.storage_used > 0 and stored_files(tmp_path)
    assert store.drop_rdd("app", 1) == len(ALL_LEVELS)
    assert memory.storage_used == store.summary()["memory_bytes"] > 0  # the other app's
    assert all(store.get("app", 1, s) is None for s in range(len(ALL_LEVELS)))
    assert store.drop_app("other") == len(ALL_LEVELS)
    assert memory.storage_used == 0
    assert stored_files(tmp_path) == []
    assert store.summary()["memory"] == store.summary()["disk"] == 0
    assert store.rdds() == []


def test_a_failing_computation_releases_its_reservation(tmp_path):
    store, memory = make_store(tmp_path, 10)

    def failing():
        yield from block(1, items=40)
        raise ValueError("user code failed")

    for level in ALL_LEVELS:
        with pytest.raises(ValueError, match="user code failed"):
            store.put_iterator("app", 1, 0, failing(), level)
        assert memory.storage_used == 0 and store.where("app", 1, 0) is None
    assert stored_files(tmp_path) == [], "a partial block file was left behind"


def test_reading_a_disk_block_holds_one_frame_not_the_block(tmp_path):
    store, _ = make_store(tmp_path, 1)
    records = [os.urandom(1000) for _ in range(20_000)]  # 20 MB
    assert store.put("app", 1, 0, records, DISK_ONLY)
    del records
    tracemalloc.start()
    try:
        it = store.get("app", 1, 0)
        first = next(it)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(first) == 1000
    assert peak < 4_000_000, f"reading one record of a disk block took {peak} bytes"
    assert sum(1 for _ in it) == 19_999


def test_report_never_says_both_cached_and_evicted(tmp_path):
    store, _ = make_store(tmp_path, 1.5)
    assert store.put("app", 1, 0, block(1), MEMORY_ONLY)
    assert store.put("app", 2, 0, block(2), MEMORY_ONLY)  # evicts rdd 1
    assert store.put("app", 1, 0, block(1), MEMORY_ONLY)  # back again, evicting rdd 2
    held, evicted = store.report("app", [(1, 0)])
    assert held == [(1, 0)] and evicted == [(2, 0)]


def test_eviction_notifies_the_application(tmp_path):
    apps = []
    memory = MemoryManager(budget=int(BLOCK * 1.5))
    store = BlockStore(str(tmp_path), memory, on_evict=apps.append)
    assert store.put("app-a", 1, 0, block(1), MEMORY_ONLY)
    assert store.put("app-b", 1, 0, block(2), MEMORY_ONLY)
    assert apps == ["app-a"]
    assert store.rdds() == [{"app_id": "app-b", "rdd_id": 1, "splits": 1,
                             "memory_bytes": memory.storage_used, "disk_bytes": 0}]


def test_threads_putting_reading_and_dropping_keep_the_books_straight(tmp_path):
    store, memory = make_store(tmp_path, 4.5)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(60):
                rdd, split = rng.randrange(6), rng.randrange(3)
                expected = block(rdd * 10 + split, items=rng.choice([2, 5]))
                op = rng.random()
                if op < 0.55:
                    level = rng.choice(ALL_LEVELS)
                    it, _ = store.put_iterator("app", rdd, split, iter(expected), level)
                    got = list(it)
                    # (another thread may have put the same split, of another size)
                    assert got == expected or got[:1] == expected[:1]
                elif op < 0.9:
                    it = store.get("app", rdd, split)
                    if it is not None:
                        got = list(it)
                        assert got[:1] == expected[:1]
                else:
                    store.drop_rdd("app", rdd)
                assert memory.storage_used <= memory.budget
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    check_accounting(store, memory)
    store.drop_app("app")
    assert memory.storage_used == 0 and stored_files(tmp_path) == []


# -- the driver's record of where blocks live -------------------------------------------------


class _FakeRDD:
    def __init__(self, rdd_id: int) -> None:
        self.id = rdd_id
        self.storage_level = MEMORY_ONLY
        self.deps: list = []

    def splits(self):
        return [None, None]

    def preferred_locations(self, split):
        return []


def test_driver_stops_preferring_a_worker_that_evicted_the_block():
    state = SchedulerState()
    rdd = _FakeRDD(5)
    assert state.handle(BlocksCached("w1", ((5, 0), (5, 1)))) == []
    state.handle(BlocksCached("w2", ((5, 0),)))
    assert preferred_locations(rdd, 0, state.cached_on) == ["w1", "w2"]
    state.handle(BlocksEvicted("w1", ((5, 0), (7, 3))))  # (7, 3) was never known: ignored
    assert preferred_locations(rdd, 0, state.cached_on) == ["w2"]
    state.handle(BlocksEvicted("w2", ((5, 0),)))
    assert preferred_locations(rdd, 0, state.cached_on) == []
    assert (5, 0) not in state.cache and state.cached_on(5, 1) == {"w1"}


def _decode(pieces: list) -> list:
    from aiospark.protocol.frames import decode_frame

    return decode_frame(b"".join(bytes(p) for p in pieces))
