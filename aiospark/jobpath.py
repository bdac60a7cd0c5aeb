"""The one path every job takes: prepare the lineage, submit, await or cancel, checkpoint.

Every action (``collect``, ``count``, ``save_as_text_file``, ``async for`` ...)
runs its jobs through the ``JobPath`` its context holds as ``ctx.jobs``:

1. *prepare*: each plan of the lineage does its driver-side work off the event
   loop (``parallelize`` pickles its slices);
2. *submit* to the scheduler, in the caller's pool (the scheduler publishes
   the job's progress to ``ctx.progress()`` and the progress bar);
3. *await*: cancelling the awaiting task (``asyncio.timeout``, Ctrl-C in the
   REPL, a closed ``async for``) cancels the job's tasks on the workers;
   ``run_within`` awaits until a deadline and returns what finished by then
   (the approximate actions);
4. *checkpoint*: RDDs of the lineage marked with ``checkpoint()`` are written
   once the job has succeeded, and their lineage is cut (not by ``run_within``,
   which must return by its deadline, as Spark's approximate jobs write none).

>>> rdd = ctx.parallelize(range(6), 3)
>>> await ctx.jobs.run(rdd, lambda index, records: (index, sum(records)))
[(0, 1), (1, 5), (2, 9)]
>>> [part async for part in ctx.jobs.stream(rdd, ahead=1)]
[[0, 1], [2, 3], [4, 5]]
>>> await ctx.jobs.run_within(rdd, lambda index, records: sum(records), timeout=30.0)
{0: 1, 1: 5, 2: 9}
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from aiospark.lineage import Node, PartitionFunc
from aiospark.scheduler.dag import all_ancestors

if TYPE_CHECKING:
    from aiospark.scheduler.runner import JobHandle

#: Submits ``func`` on ``partitions`` (all when None) of an RDD: the scheduler's entry point.
Submit = Callable[[Node, PartitionFunc, "list[int] | None"], "JobHandle"]


class JobPath:
    """Runs jobs for one context (see the module doc)."""

    def __init__(self, submit: Submit) -> None:
        self._submit = submit

    async def run(
        self, rdd: Node, func: PartitionFunc, partitions: list[int] | None = None
    ) -> list[Any]:
        """Run ``func(index, records)`` on ``partitions`` of ``rdd`` (all by default).

        Returns the results in partition order; the first failure raises.
        """
        await _prepare(rdd)
        handle = self._submit(rdd, func, partitions)
        await _finish(handle)
        results = [future.result() for future in handle.futures]
        await self._write_checkpoints(rdd)
        return results

    async def run_within(
        self, rdd: Node, func: PartitionFunc, timeout: float, keep_running: bool = False
    ) -> dict[int, Any]:
        """Run ``func(index, records)`` on each partition of ``rdd``, ``timeout`` seconds at most.

        Returns the results of the partitions finished by then, by partition
        index (all of them when the job ended in time); a failure before the
        deadline raises.  At the deadline the job is cancelled, unless
        ``keep_running``: then it runs to its end, and its results are dropped.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        await _prepare(rdd)
        handle = self._submit(rdd, func, None)
        ended = await _finish(handle, deadline)
        finished = {index: future.result()
                    for index, future in enumerate(handle.futures) if future.done()}
        if not ended and not keep_running:
            handle.cancel()
        return finished

    async def stream(self, rdd: Node, ahead: int) -> AsyncIterator[list[Any]]:
        """Each partition's records in order, one job per partition.

        At most ``ahead`` partitions after the one being consumed are computed
        (and held) early.  Leaving early cancels the jobs still running; a
        complete pass writes the lineage's checkpoints, as ``run`` does.
        """
        total = rdd.get_num_partitions()
        pending: collections.deque[JobHandle] = collections.deque()
        submitted = 0
        await _prepare(rdd)
        try:
            for index in range(total):
                while submitted < total and submitted <= index + ahead:
                    pending.append(self._submit(rdd, _collect_partition, [submitted]))
                    submitted += 1
                records = await pending[0].futures[0]
                pending.popleft()
                yield records
                del records  # do not hold this partition while the next one is awaited
        finally:
            for handle in pending:
                if not handle.done.done():
                    handle.cancel()
        await self._write_checkpoints(rdd)

    async def _write_checkpoints(self, rdd: Node) -> None:
        """Write the RDDs of ``rdd``'s lineage marked with ``checkpoint()`` and not written yet."""
        for node in all_ancestors(rdd):
            data = node.checkpoint_data
            if data is None or data.written:
                continue
            await _finish(self._submit(node, data.write_partition, None))
            data.written = True  # from now on the RDD reads it, and its lineage is cut


async def _prepare(rdd: Node) -> None:
    """Before a job on ``rdd``: the work its lineage's plans want done off the loop first."""
    for node in all_ancestors(rdd):
        await node.plan.prepare()


async def _finish(handle: JobHandle, deadline: float | None = None) -> bool:
    """Wait for a job, until the loop's time ``deadline`` at most; True when it ended.

    The job's failure raises; a cancelled waiter cancels the job's tasks.
    """
    try:
        if deadline is None:
            await handle.done
            return True
        timeout = deadline - asyncio.get_running_loop().time()
        await asyncio.wait([handle.done], timeout=timeout)
    except asyncio.CancelledError:
        handle.cancel()
        raise
    if not handle.done.done():
        return False
    handle.done.result()  # the job's failure
    return True


def _collect_partition(_: int, records: Iterator[Any]) -> list[Any]:
    return list(records)


def partition_results(func: Callable[[Iterator[Any]], Any], _: int, records: Iterator[Any]) -> list:
    """``list(func(records))``: a partition's part of ``Context.run_job``'s results (on a worker).

    >>> partition_results(lambda it: (x + 1 for x in it), 0, iter([1, 2]))
    [2, 3]
    """
    return list(func(records))
