"""Driver work that runs off the event loop: one helper thread, and helpers that share the GIL.

The driver lives in the user's event loop (a web service, the asyncio REPL), so
no work proportional to the data may run on that loop: decoding task results,
joining partitions, merging dicts, pickling parallelized data.  Such work runs
on one helper thread (``run``).  A thread alone is not enough: the loop's thread
gets the GIL back only when the helper thread runs Python bytecode (at most
every ``sys.getswitchinterval()``, 5 ms), never in the middle of one long C
call such as ``pickle.loads`` of 100 MB or ``list.extend`` of 10 M items.  So
the helpers here cut their work into bounded C calls with Python in between:
``STEP`` items at a time.

Small work stays on the loop (``run_sized``): a hop to the thread and back costs
about 0.1 ms, more than joining a few thousand items.

>>> await run_sized(3, sum, [1, 2, 3])    # small: called inline
6
>>> (await run(threading.current_thread)).name
'aiospark-driver_0'
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

#: Work on at most this many items runs inline on the loop (well under a millisecond).
INLINE_ITEMS = 50_000
#: Items per C call in the helpers below (about 1 ms of work, far below the 50 ms budget).
STEP = 1 << 16

#: One thread: the work it does holds the GIL anyway, so more threads would not go faster,
#: and the loop's thread competes with one other thread only.  Made on first use in each
#: process (a forked child has no thread behind its parent's executor).
_executor: tuple[int, ThreadPoolExecutor] | None = None
_executor_lock = threading.Lock()


def _helper() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None or _executor[0] != os.getpid():
            _executor = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="aiospark-driver"))
        return _executor[1]


async def run(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on the driver's helper thread; the event loop runs meanwhile.

    ``fn`` should itself give the GIL a chance now and then (see the module's
    docstring).  Cancelling the awaiting task does not stop ``fn``.

    >>> await run(max, 3, 8)
    8
    """
    return await asyncio.get_running_loop().run_in_executor(
        _helper(), functools.partial(fn, *args)
    )


async def run_sized(size: int, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``: inline for at most ``INLINE_ITEMS`` items, else on the helper thread.

    >>> await run_sized(10**6, sorted, [3, 1, 2])    # large: on the helper thread
    [1, 2, 3]
    """
    if size <= INLINE_ITEMS:
        return fn(*args)
    return await run(fn, *args)


def concat(parts: Iterable[list]) -> list:
    """One list of every part's items, copied at most ``STEP`` items per C call.

    >>> concat([[1, 2], [], [3]])
    [1, 2, 3]
    """
    out: list = []
    for part in parts:
        if len(part) <= STEP:
            out += part
            continue
        for start in range(0, len(part), STEP):
            out += part[start : start + STEP]
    return out


async def concat_parts(parts: list[list]) -> list:
    """``concat(parts)``, off the loop when large; a single part is returned as it is.

    The parts are the driver's own (decoded task results), so the one part of a
    one-partition job needs no copy.

    >>> await concat_parts([[1], [2, 3]])
    [1, 2, 3]
    """
    if len(parts) == 1 and type(parts[0]) is list:
        return parts[0]
    return await run_sized(sum(map(len, parts)), concat, parts)


def merge_into(merged: dict, parts: Iterable[dict]) -> dict:
    """Add every part's pairs to ``merged`` (later parts win), ``STEP`` pairs per C call.

    >>> merge_into({1: "a", 2: "b"}, [{1: "c"}, {3: "d"}])
    {1: 'c', 2: 'b', 3: 'd'}
    """
    for part in parts:
        items = iter(part.items())
        for _ in range(0, len(part), STEP):
            merged.update(itertools.islice(items, STEP))
    return merged


async def merge_dict_parts(parts: list[dict]) -> dict:
    """One dict of every part's pairs (later parts win), off the loop when large.

    The parts are the driver's own (decoded task results): the first one is
    extended in place rather than copied.

    >>> await merge_dict_parts([{1: 2, 3: 4}, {3: 5}])
    {1: 2, 3: 5}
    """
    if not parts:
        return {}
    first = parts[0] if type(parts[0]) is dict else dict(parts[0])
    return await run_sized(sum(map(len, parts[1:])), merge_into, first, parts[1:])
