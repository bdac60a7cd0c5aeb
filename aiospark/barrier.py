"""Barrier execution (PySpark's ``RDD.barrier()``): a stage whose tasks run together.

``rdd.barrier()`` returns an ``RDDBarrier``; its ``map_partitions`` makes an RDD
whose stage is a *barrier stage*: all its tasks start at once, each on a core
of its own (or none starts), and if one fails every other is stopped and the
whole stage runs again.  Inside such a task, ``BarrierTaskContext.get()`` gives
``barrier()`` (wait until every task of the stage got there) and
``all_gather(message)`` (every task's message, in partition order): what
distributed training needs to set up its workers (docs/scheduling.md,
"Barrier execution", has the rules).

>>> def ranks(it):
...     tc = BarrierTaskContext.get()
...     tc.barrier()
...     yield tc.all_gather(str(tc.partition_id()))
>>> await ctx.parallelize(range(4), 2).barrier().map_partitions(ranks).collect()
[['0', '1'], ['0', '1']]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from aiospark.taskcontext import TaskContext, current_task_context


@dataclasses.dataclass(frozen=True)
class BarrierTaskInfo:
    """A task of a barrier stage, as ``BarrierTaskContext.get_task_infos()`` lists it.

    Parameters
    ----------
    address : str
        ``host:port`` of the worker running the task (its ``address`` attribute).

    Examples
    --------
    >>> BarrierTaskInfo("127.0.0.1:7078").address
    '127.0.0.1:7078'
    """

    address: str


class BarrierTaskContext(TaskContext):
    """The context of a task of a barrier stage: PySpark's ``BarrierTaskContext``.

    Everything a ``TaskContext`` tells, and the calls that synchronise the
    tasks of the stage.  Every task must make the same calls in the same
    order: a task calling ``all_gather()`` while another calls ``barrier()``,
    or ending while others wait in a call it never makes, makes the waiting
    calls raise ``aiospark.errors.BarrierError`` (and the stage is retried).

    In such a task ``TaskContext.get()`` gives one too, as in PySpark.

    Examples
    --------
    >>> def where(it):
    ...     tc = BarrierTaskContext.get()
    ...     yield (tc.partition_id(), len(tc.get_task_infos()))
    >>> await ctx.parallelize([1, 2], 2).barrier().map_partitions(where).collect()
    [(0, 2), (1, 2)]
    >>> from aiospark import TaskContext
    >>> await ctx.parallelize([1], 1).barrier().map_partitions(
    ...     lambda it: [type(TaskContext.get()).__name__]).collect()
    ['BarrierTaskContext']
    """

    @classmethod
    def get(cls) -> BarrierTaskContext:
        """The context of the barrier task running the calling code.

        Returns
        -------
        BarrierTaskContext
            A view of the running task.

        Raises
        ------
        RuntimeError
            Outside a barrier stage's task (in the driver, or in an ordinary
            task), as PySpark's ``NOT_IN_BARRIER_STAGE``.

        Examples
        --------
        >>> BarrierTaskContext.get()
        Traceback (most recent call last):
        ...
        RuntimeError: BarrierTaskContext.get() is only available in a task of a barrier \
stage (rdd.barrier().map_partitions(...))
        >>> await ctx.parallelize([1], 1).barrier().map_partitions(
        ...     lambda it: [type(BarrierTaskContext.get()).__name__]).collect()
        ['BarrierTaskContext']
        """
        task = current_task_context()
        if task is None or getattr(task, "barrier", None) is None:
            raise RuntimeError("BarrierTaskContext.get() is only available in a task of a "
                               "barrier stage (rdd.barrier().map_partitions(...))")
        return cls(task)

    def barrier(self) -> None:
        """Wait until every task of the stage called ``barrier()`` (PySpark's ``barrier``).

        Each call is one step: the n-th call of every task returns together.

        Raises
        ------
        aiospark.errors.BarrierError
            When the other tasks do not come within the context's
            ``barrier_timeout``, or their calls do not match this one.

        Examples
        --------
        >>> def step(it):
        ...     BarrierTaskContext.get().barrier()
        ...     return [sum(it)]
        >>> await ctx.parallelize(range(4), 2).barrier().map_partitions(step).collect()
        [1, 5]
        """
        self._task.barrier.sync("barrier", "")

    def all_gather(self, message: str = "") -> list[str]:
        """Wait for every task of the stage, and return each task's ``message``
        (PySpark's ``allGather``).

        Parameters
        ----------
        message : str, default ""
            What this task contributes.

        Returns
        -------
        list of str
            Every task's message, in partition order (the same list in every task).

        Raises
        ------
        TypeError
            If ``message`` is not a str.
        aiospark.errors.BarrierError
            As ``barrier()``.

        Examples
        --------
        >>> def gather(it):
        ...     return [BarrierTaskContext.get().all_gather(str(sum(it)))]
        >>> await ctx.parallelize(range(4), 2).barrier().map_partitions(gather).collect()
        [['1', '5'], ['1', '5']]
        """
        if not isinstance(message, str):
            raise TypeError(f"all_gather() takes a str message, got {type(message).__name__}")
        return self._task.barrier.sync("all_gather", message)

    def get_task_infos(self) -> list[BarrierTaskInfo]:
        """Every task of the stage, in partition order (PySpark's ``getTaskInfos``).

        Returns
        -------
        list of BarrierTaskInfo
            One per task, with the ``host:port`` address of the worker running it.

        Examples
        --------
        >>> infos = await ctx.parallelize([1, 2], 2).barrier().map_partitions(
        ...     lambda it: [len(BarrierTaskContext.get().get_task_infos())]).collect()
        >>> infos
        [2, 2]
        """
        return [BarrierTaskInfo(address) for address in self._task.barrier.peers]

    def __repr__(self) -> str:
        return (f"BarrierTaskContext(stage={self.stage_id()}, partition={self.partition_id()}, "
                f"attempt={self.attempt_number()})")


class RDDBarrier:
    """An RDD about to get a barrier stage: PySpark's ``RDDBarrier``, from ``rdd.barrier()``.

    Parameters
    ----------
    rdd : RDD
        The RDD whose partitions the barrier stage's tasks compute.

    Examples
    --------
    >>> ctx.parallelize(range(4), 2).barrier()
    <RDDBarrier of <ParallelCollectionRDD id=...>>
    """

    def __init__(self, rdd: Any) -> None:
        self.rdd = rdd

    def map_partitions(self, f: Callable[[Iterator[Any]], Iterable[Any]],
                       preserves_partitioning: bool = False) -> Any:
        """Apply ``f(iterator)`` to each partition, all tasks running together.

        Parameters
        ----------
        f : callable
            ``f(iterator)`` returns an iterable of the partition's new records;
            it may call ``BarrierTaskContext.get()``.
        preserves_partitioning : bool, default False
            Keep the RDD's partitioner (``f`` keeps every key).

        Returns
        -------
        RDD
            The records ``f`` yields; its stage is a barrier stage.

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 3, 4], 2).barrier().map_partitions(
        ...     lambda it: [sum(it)]).collect()
        [3, 7]
        """
        return self.map_partitions_with_index(lambda _, it: f(it), preserves_partitioning)

    def map_partitions_with_index(self, f: Callable[[int, Iterator[Any]], Iterable[Any]],
                                  preserves_partitioning: bool = False) -> Any:
        """Apply ``f(split_index, iterator)`` to each partition, all tasks running together.

        Parameters
        ----------
        f : callable
            ``f(split_index, iterator)`` returns an iterable of the partition's
            new records; it may call ``BarrierTaskContext.get()``.
        preserves_partitioning : bool, default False
            Keep the RDD's partitioner (``f`` keeps every key).

        Returns
        -------
        RDD
            The records ``f`` yields; its stage is a barrier stage.

        Examples
        --------
        >>> await ctx.parallelize([1, 2, 3, 4], 2).barrier().map_partitions_with_index(
        ...     lambda i, it: [(i, sum(it))]).collect()
        [(0, 3), (1, 7)]
        """
        made = self.rdd.map_partitions_with_index(f, preserves_partitioning)
        made.barrier_mode = True
        return made

    def __repr__(self) -> str:
        return f"<RDDBarrier of {self.rdd!r}>"
