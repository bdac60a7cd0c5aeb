"""Async user functions: I/O-bound per-record work run concurrently on each worker.

``map_async(fetch, concurrency=64)`` runs up to 64 calls of an ``async def``
function at once in each task, on an event loop of the task's own thread, and
yields the results in record order.  Nothing like it exists in Spark or Dask,
where such work blocks one core per call.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Self

from aiospark.validation import positive_int

#: Seconds between cancellation checks while waiting on a slow call.
_CHECK_INTERVAL = 0.2


def _check_concurrency(concurrency: int) -> int:
    return positive_int(concurrency, "concurrency")


def _check_async(fn: Callable) -> Callable:
    if not callable(fn):
        raise TypeError(f"expected an async function, got {type(fn).__name__}")
    return fn


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_ordered(
    fn: Callable[[Any], Awaitable[Any]], records: Iterable[Any], concurrency: int
) -> Iterator[Any]:
    """Results of ``fn`` on each record, in order, with at most ``concurrency`` calls running.

    Runs its own event loop on the calling thread (a worker's task thread).

    >>> async def double(x):
    ...     await asyncio.sleep(0.001 * (5 - x))
    ...     return 2 * x
    >>> list(run_ordered(double, range(5), concurrency=3))
    [0, 2, 4, 6, 8]
    """
    from aiospark.taskcontext import current_task_context

    tctx = current_task_context()
    loop = _new_loop()
    window: deque[asyncio.Future] = deque()
    source = iter(records)

    def start(record: Any) -> asyncio.Future:
        awaitable = fn(record)
        if not inspect.isawaitable(awaitable):
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} returned {type(awaitable).__name__}, "
                "not an awaitable: map_async and friends need an async def function"
            )
        return asyncio.ensure_future(awaitable, loop=loop)

    try:
        for record in source:
            window.append(start(record))
            if len(window) >= concurrency:
                break
        while window:
            oldest = window[0]
            while not oldest.done():
                loop.run_until_complete(asyncio.wait([oldest], timeout=_CHECK_INTERVAL))
                if tctx is not None:
                    tctx.check()
            result = window.popleft().result()
            for record in source:
                window.append(start(record))
                break
            yield result
    finally:
        for future in window:
            future.cancel()
        if window:
            loop.run_until_complete(asyncio.gather(*window, return_exceptions=True))
        loop.close()


class AsyncOps:
    """Per-record ``async def`` functions, run concurrently inside each task."""

    def map_async(
        self, fn: Callable[[Any], Awaitable[Any]], concurrency: int = 16
    ) -> Self:
        """Apply an ``async def`` function to every record, ``concurrency`` calls at a time.

        Each task runs up to ``concurrency`` calls at once (for I/O such as
        HTTP requests) and keeps the records' order.

        Parameters
        ----------
        fn : callable
            An ``async def`` function (or any callable returning an awaitable):
            ``await fn(record)`` gives the new record.
        concurrency : int, default 16
            The most calls awaited at once in each task.

        Returns
        -------
        RDD
            One record ``await fn(x)`` for each record ``x``, in order.  A call that
            returns no awaitable fails the task with ``TypeError``.

        Raises
        ------
        TypeError
            When ``fn`` is not callable.
        ValueError
            When ``concurrency`` is not a positive int.

        See Also
        --------
        RDD.map : For plain functions.
        RDD.flat_map_async, RDD.foreach_async

        Examples
        --------
        >>> async def slow_square(x):
        ...     await asyncio.sleep(0.01)
        ...     return x * x
        >>> await ctx.parallelize(range(8), 2).map_async(slow_square, concurrency=4).collect()
        [0, 1, 4, 9, 16, 25, 36, 49]
        """
        _check_async(fn)
        limit = _check_concurrency(concurrency)
        return self.map_partitions(lambda it: run_ordered(fn, it, limit))

    def flat_map_async(
        self, fn: Callable[[Any], Awaitable[Iterable[Any]]], concurrency: int = 16
    ) -> Self:
        """Like ``map_async``, flattening the iterables the function returns.

        Parameters
        ----------
        fn : callable
            An ``async def`` function: ``await fn(record)`` gives an iterable of new
            records.
        concurrency : int, default 16
            The most calls awaited at once in each task.

        Returns
        -------
        RDD
            Every item of every ``await fn(x)``, in order.

        Raises
        ------
        TypeError
            When ``fn`` is not callable.
        ValueError
            When ``concurrency`` is not a positive int.

        Examples
        --------
        >>> async def repeat(x):
        ...     return [x] * x
        >>> await ctx.parallelize([1, 2, 3], 2).flat_map_async(repeat).collect()
        [1, 2, 2, 3, 3, 3]
        """
        _check_async(fn)
        limit = _check_concurrency(concurrency)
        return self.map_partitions(
            lambda it: (x for result in run_ordered(fn, it, limit) for x in result)
        )

    async def foreach_async(
        self, fn: Callable[[Any], Awaitable[Any]], concurrency: int = 16
    ) -> None:
        """Run an ``async def`` function on every record on the workers, ``concurrency`` at a time.

        Parameters
        ----------
        fn : callable
            An ``async def`` function, awaited for its side effects; what it
            returns is ignored.
        concurrency : int, default 16
            The most calls awaited at once in each task.

        Raises
        ------
        TypeError
            When ``fn`` is not callable.
        ValueError
            When ``concurrency`` is not a positive int.

        See Also
        --------
        RDD.foreach : For plain functions.

        Examples
        --------
        >>> async def noop(x):
        ...     await asyncio.sleep(0)
        >>> await ctx.parallelize(range(10), 2).foreach_async(noop, concurrency=5)
        """
        _check_async(fn)
        limit = _check_concurrency(concurrency)

        def drain(_: int, it: Iterator[Any]) -> None:
            for _result in run_ordered(fn, it, limit):
                pass

        await self.ctx.jobs.run(self, drain)
