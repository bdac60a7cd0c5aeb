"""A worker's memory budget, shared by cached blocks (storage) and task buffers (execution).

This is pure accounting, as in Spark's unified memory manager: nothing here
allocates.  Cached blocks take *storage* memory; a task's shuffle buffers,
aggregation tables and sort runs take *execution* memory.  Storage may use any
memory that is free; execution may take memory back from storage by evicting
cached blocks, but never below ``storage_fraction`` of the budget.  Each task
may hold at most ``budget / cores`` of execution memory; past that (or when
nothing more can be freed) it must spill to disk.

>>> memory = MemoryManager(budget=1000, cores=2)
>>> memory.acquire_storage(300)
True
>>> memory.acquire_execution("t1", 600)   # capped at budget / cores
500
>>> memory.acquire_storage(300)   # only 200 bytes are free
False
>>> memory.release_execution("t1")
>>> memory.snapshot()
{'budget': 1000, 'storage': 300, 'execution': 0, 'tasks': 0}
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Hashable

#: Fraction of the machine's memory the workers on it may use between them by default.
DEFAULT_MACHINE_FRACTION = 0.6
#: Execution may evict cached blocks only while storage holds more than this fraction.
STORAGE_FRACTION = 0.5

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(value: str | int) -> int:
    """Bytes from an int or a size such as ``"512m"``, ``"2 GiB"`` or ``"1.5g"``.

    >>> parse_size("512m"), parse_size("2 GiB"), parse_size(1024), parse_size("100")
    (536870912, 2147483648, 1024, 100)
    >>> parse_size("lots")
    Traceback (most recent call last):
    ...
    ValueError: bad memory size 'lots': use bytes or a number with k, m, g or t (e.g. '512m')
    """
    if isinstance(value, bool):
        raise TypeError(f"memory size must be an int or a string, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"memory size must not be negative, got {value}")
        return value
    if not isinstance(value, str):
        raise TypeError(f"memory size must be an int or a string, got {type(value).__name__}")
    match = _SIZE.match(value)
    if not match:
        raise ValueError(
            f"bad memory size {value!r}: use bytes or a number with k, m, g or t (e.g. '512m')"
        )
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


def machine_memory() -> int:
    """Physical memory of this machine in bytes (0 when the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def default_budget(cores: int, machine_cores: int | None = None, total: int | None = None) -> int:
    """A worker's default budget: its share (by cores) of 60% of the machine's memory.

    >>> default_budget(1, machine_cores=2, total=10 * 2**30) // 2**20
    3072
    """
    total = machine_memory() if total is None else total
    machine_cores = machine_cores or os.cpu_count() or 1
    share = min(1.0, max(1, cores) / machine_cores)
    return int(total * DEFAULT_MACHINE_FRACTION * share)


class MemoryManager:
    """Storage and execution accounting for one worker; thread-safe.

    ``evict(nbytes)`` (set by the block store) frees at least ``nbytes`` of
    storage if it can, by dropping or spilling cached blocks, calls
    ``release_storage`` for what it frees, and returns how much it freed.
    """

    def __init__(
        self,
        budget: int,
        cores: int = 1,
        storage_fraction: float = STORAGE_FRACTION,
        evict: Callable[[int, Hashable | None], int] | None = None,
    ) -> None:
        if budget <= 0:
            raise ValueError(f"memory budget must be positive, got {budget}")
        self.budget = budget
        self.cores = max(1, cores)
        self.storage_floor = int(budget * storage_fraction)
        self.evict = evict
        self.storage_used = 0
        self._execution: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    @property
    def execution_used(self) -> int:
        with self._lock:
            return sum(self._execution.values())

    @property
    def task_cap(self) -> int:
        """The most execution memory one task may hold."""
        return self.budget // self.cores

    def _free(self) -> int:
        return self.budget - self.storage_used - sum(self._execution.values())

    def acquire_execution(self, task: Hashable, nbytes: int) -> int:
        """Grant ``task`` up to ``nbytes`` more; returns how much was granted (maybe 0)."""
        with self._lock:
            held = self._execution.get(task, 0)
            want = max(0, min(nbytes, self.task_cap - held))
            short = want - self._free()
            evictable = self.storage_used - self.storage_floor
        if short > 0 and evictable > 0 and self.evict is not None:
            self.evict(min(short, evictable), None)
        with self._lock:
            granted = max(0, min(want, self._free()))
            if granted:
                self._execution[task] = self._execution.get(task, 0) + granted
            return granted

    def release_execution(self, task: Hashable, nbytes: int | None = None) -> None:
        """Give back ``nbytes`` of ``task``'s execution memory (all of it by default)."""
        with self._lock:
            held = self._execution.pop(task, 0)
            if nbytes is not None and nbytes < held:
                self._execution[task] = held - nbytes

    def execution_held(self, task: Hashable) -> int:
        """How much execution memory ``task`` holds."""
        with self._lock:
            return self._execution.get(task, 0)

    def acquire_storage(self, nbytes: int, protect: Hashable | None = None) -> bool:
        """Reserve room for a block of ``nbytes``, evicting other blocks if needed.

        ``protect`` (passed to ``evict``) names blocks that must not be evicted
        to make room: those of the RDD being cached.
        """
        with self._lock:
            short = nbytes - self._free()
        if short > 0:
            if nbytes > self.budget - self.execution_used or self.evict is None:
                return False
            self.evict(short, protect)
        with self._lock:
            if nbytes > self._free():
                return False
            self.storage_used += nbytes
            return True

    def release_storage(self, nbytes: int) -> None:
        """A block of ``nbytes`` left memory."""
        with self._lock:
            self.storage_used = max(0, self.storage_used - nbytes)

    def snapshot(self) -> dict[str, int]:
        """Current use, for the worker's health and the status page."""
        with self._lock:
            return {
                "budget": self.budget,
                "storage": self.storage_used,
                "execution": sum(self._execution.values()),
                "tasks": len(self._execution),
            }


class TaskMemory:
    """One task's view of the manager: grow a reservation in steps, or learn it must spill.

    >>> task = TaskMemory(MemoryManager(budget=100, cores=1), "t1", step=30)
    >>> task.ensure(50), task.held
    (True, 50)
    >>> task.ensure(150), task.held
    (False, 100)
    >>> task.release(); task.held
    0
    """

    def __init__(self, manager: MemoryManager | None, key: Hashable, step: int = 4 << 20) -> None:
        self.manager = manager
        self.key = key
        self.step = step
        self.held = 0

    def ensure(self, nbytes: int) -> bool:
        """Hold at least ``nbytes`` in total; False when the budget cannot give that much."""
        manager = self.manager
        if manager is None or nbytes <= self.held:
            return True
        want = max(nbytes - self.held, self.step)
        self.held += manager.acquire_execution(self.key, want)
        return self.held >= nbytes

    def release(self) -> None:
        """Give back what this reservation holds (after spilling, or when done)."""
        if self.manager is not None and self.held:
            self.manager.release_execution(self.key, self.held)
        self.held = 0

    def spawn(self) -> TaskMemory:
        """A new, empty reservation of the same task (one per buffer: each spills on its own)."""
        return TaskMemory(self.manager, self.key, self.step)

    def release_task(self) -> None:
        """Give back everything the task holds, through any of its reservations."""
        if self.manager is not None:
            self.manager.release_execution(self.key)
        self.held = 0


#: The memory of a computation with no budget (driver-side local runs): never spills.
UNLIMITED = TaskMemory(None, "unlimited")
