"""The task running on this thread: its context and its accumulator updates.

``TaskContext.get()`` is the public view of it (PySpark's ``TaskContext``).
A worker calls ``begin_task`` before running a task on one of its threads and
``end_task`` after it; in between, code of the task (shared variables, spilling,
shipped files, async functions) finds the task through ``current_task_context``.

>>> begin_task("ctx")
>>> current_task_context(), accumulator_updates()
('ctx', {})
>>> end_task(), current_task_context(), accumulator_updates()
({}, None, None)
"""

from __future__ import annotations

import threading
from typing import Any


class _TaskState(threading.local):
    """What the task running on this thread collects: accumulator updates, broadcast access."""

    updates: dict[int, Any] | None = None
    context: Any = None


_task = _TaskState()
_NO_PROPERTIES: dict[str, str] = {}


def begin_task(context: Any) -> None:
    """Called by the worker before running a task on this thread."""
    _task.updates = {}
    _task.context = context


def current_task_context() -> Any:
    """The ``TaskContext`` of the task running on this thread, or None outside tasks."""
    return _task.context


def accumulator_updates() -> dict[int, Any] | None:
    """The running task's accumulator updates (aid -> value), or None outside tasks."""
    return _task.updates


def end_task() -> dict[int, Any]:
    """Called by the worker after the task: returns (and forgets) its accumulator updates."""
    updates = _task.updates or {}
    _task.updates = None
    _task.context = None
    return updates


class TaskContext:
    """What a running task knows about itself: PySpark's ``TaskContext``.

    ``TaskContext.get()`` returns the context of the task running the calling
    code (in a function passed to ``map``, ``map_partitions`` ...), and None in
    the driver.

    Examples
    --------
    >>> from aiospark import TaskContext
    >>> print(TaskContext.get())
    None
    >>> def where(records):
    ...     tc = TaskContext.get()
    ...     return [(tc.partition_id(), tc.attempt_number(), sum(records))]
    >>> await ctx.parallelize(range(6), 3).map_partitions(where).collect()
    [(0, 0, 1), (1, 0, 5), (2, 0, 9)]
    """

    def __init__(self, task: Any) -> None:
        self._task = task

    @classmethod
    def get(cls) -> TaskContext | None:
        """The running task's context, or None outside a task (in the driver).

        Returns
        -------
        TaskContext or None
            A view of the task running on this thread: in a barrier stage's
            task, a ``BarrierTaskContext`` (as in PySpark).

        Examples
        --------
        >>> await ctx.parallelize([1]).map(lambda _: TaskContext.get() is not None).collect()
        [True]
        """
        task = current_task_context()
        if task is None:
            return None
        kind = getattr(task, "context_class", None)  # a barrier task's BarrierTaskContext
        return kind(task) if kind is not None and issubclass(kind, cls) else cls(task)

    def partition_id(self) -> int:
        """The index of the partition this task computes.

        Returns
        -------
        int
            The partition's index, from 0.

        Examples
        --------
        >>> await ctx.parallelize(range(4), 2).map(
        ...     lambda _: TaskContext.get().partition_id()).collect()
        [0, 0, 1, 1]
        """
        return int(self._task.partition)

    def stage_id(self) -> int:
        """The id of the stage this task belongs to.

        Returns
        -------
        int
            The stage's id, shared by the tasks of the stage.

        Examples
        --------
        >>> rdd = ctx.parallelize([1, 2], 2)
        >>> ids = await rdd.map(lambda _: TaskContext.get().stage_id()).collect()
        >>> ids[0] == ids[1] >= 0
        True
        """
        return int(self._task.stage_id)

    def attempt_number(self) -> int:
        """How many times this partition was attempted before: 0 for a first attempt.

        Returns
        -------
        int
            The attempt's number, from 0 (a retry or a speculative copy counts up).

        Examples
        --------
        >>> await ctx.parallelize([1]).map(lambda _: TaskContext.get().attempt_number()).collect()
        [0]
        """
        return int(self._task.attempt)

    def task_attempt_id(self) -> int:
        """The id of this task attempt, unique among the attempts of the driver's jobs.

        Returns
        -------
        int
            The attempt's id (another attempt of the same partition has another).

        Examples
        --------
        >>> ids = await ctx.parallelize(range(3), 3).map(
        ...     lambda _: TaskContext.get().task_attempt_id()).collect()
        >>> len(set(ids))
        3
        """
        return int(getattr(self._task, "task_id", 0))

    def get_local_property(self, key: str) -> str | None:
        """A local property of the job this task runs for, or None.

        The job carries the properties in effect where it was submitted
        (``Context.set_local_property``, ``set_job_group``,
        ``set_job_description``; PySpark's ``sc.setLocalProperty``).

        Parameters
        ----------
        key : str
            The property's name.

        Returns
        -------
        str or None
            Its value, or None when the job does not carry it.

        Examples
        --------
        >>> await ctx.parallelize([1]).map(
        ...     lambda _: TaskContext.get().get_local_property("spark.job.description")).collect()
        [None]
        >>> with ctx.job_group("etl", "load the logs"):
        ...     await ctx.parallelize([1]).map(lambda _: TaskContext.get().get_local_property(
        ...         "spark.job.description")).collect()
        ['load the logs']
        """
        return getattr(self._task, "local_properties", _NO_PROPERTIES).get(key)

    def __repr__(self) -> str:
        return (f"TaskContext(stage={self.stage_id()}, partition={self.partition_id()}, "
                f"attempt={self.attempt_number()})")
