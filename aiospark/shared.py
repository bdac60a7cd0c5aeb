"""Shared variables: broadcast values and accumulators (a task's own state: ``taskcontext``).

A ``Broadcast`` is pickled into tasks as a small reference.  On a worker, the
first task that reads ``.value`` makes that worker fetch the value once (from
the driver if no other worker has it yet, otherwise from a peer that does, so
the driver is not the bottleneck) and keep it for every later task.

An ``Accumulator`` is pickled into tasks as a zeroed copy; each task's updates
are sent back with its result and applied in the driver exactly once per
partition, however many attempts of the task ran.

>>> acc = ctx.accumulator(0)
>>> await ctx.parallelize(range(10), 3).foreach(lambda x: acc.add(x))
>>> acc.value
45
>>> table = ctx.broadcast({"a": 1, "b": 2})
>>> await ctx.parallelize(["a", "b", "a"]).map(lambda k: table.value[k]).collect()
[1, 2, 1]
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

from aiospark.errors import AiosparkError
from aiospark.taskcontext import accumulator_updates, current_task_context


class AccumulatorParam:
    """How to add values of an accumulator: ``zero`` and ``add_in_place``.

    A subclass defines ``zero`` and either ``add_in_place`` or PySpark's
    ``addInPlace`` (each calls the other), so a PySpark ``AccumulatorParam``
    subclass works once it derives from this class.

    >>> class ListParam(AccumulatorParam):
    ...     def zero(self, value): return []
    ...     def add_in_place(self, value1, value2): return value1 + value2
    >>> acc = ctx.accumulator([], ListParam())
    >>> await ctx.parallelize([1, 2], 2).foreach(lambda x: acc.add([x]))
    >>> sorted(acc.value)
    [1, 2]
    """

    def zero(self, value: Any) -> Any:
        """The identity for ``add_in_place``, shaped like ``value``.

        Override it in a subclass.  Each task's copy of an accumulator starts from
        ``zero(value)``, with ``value`` the accumulator's value when the task was
        pickled.

        Parameters
        ----------
        value : object
            A value of the accumulator, to take the shape from (the length of a
            vector, say); it must not be changed.

        Returns
        -------
        object
            A new zero: ``add_in_place(zero(v), x)`` is ``x``.

        Examples
        --------
        >>> class MaxParam(AccumulatorParam):
        ...     def zero(self, value): return float("-inf")
        ...     def add_in_place(self, value1, value2): return max(value1, value2)
        >>> MaxParam().zero(3.5)
        -inf
        """
        raise NotImplementedError

    def add_in_place(self, value1: Any, value2: Any) -> Any:
        """Add ``value2`` to ``value1`` (may mutate ``value1``) and return the sum.

        Override it in a subclass.  Used in tasks, to add to the task's update, and
        in the driver, to merge each task's update into the value.

        Parameters
        ----------
        value1 : object
            The running value (a zero or a partial sum); may be changed and
            returned.
        value2 : object
            The term to add: what a task passed to ``add``, or another task's
            update.

        Returns
        -------
        object
            The sum, which replaces ``value1``.

        Examples
        --------
        >>> class SetParam(AccumulatorParam):
        ...     def zero(self, value): return set()
        ...     def add_in_place(self, value1, value2):
        ...         value1 |= value2
        ...         return value1
        >>> SetParam().add_in_place({1}, {2, 3})
        {1, 2, 3}
        """
        if type(self).addInPlace is not AccumulatorParam.addInPlace:
            return self.addInPlace(value1, value2)
        raise NotImplementedError(
            f"{type(self).__name__} must define add_in_place (or PySpark's addInPlace)"
        )

    def addInPlace(self, value1: Any, value2: Any) -> Any:
        """PySpark's name for ``add_in_place``: define either one in a subclass.

        Parameters
        ----------
        value1, value2 : object
            As in ``add_in_place``.

        Returns
        -------
        object
            The sum, which replaces ``value1``.

        Examples
        --------
        >>> class VectorParam(AccumulatorParam):      # as written for PySpark
        ...     def zero(self, value): return [0.0] * len(value)
        ...     def addInPlace(self, value1, value2):
        ...         for i in range(len(value1)):
        ...             value1[i] += value2[i]
        ...         return value1
        >>> vec = ctx.accumulator([0.0, 0.0], VectorParam())
        >>> await ctx.parallelize([[1.0, 2.0], [3.0, 4.0]], 2).foreach(lambda v: vec.add(v))
        >>> vec.value
        [4.0, 6.0]
        """
        return self.add_in_place(value1, value2)


class AddingParam(AccumulatorParam):
    """Numbers, numpy arrays, and anything else with ``+``: the zero is ``value * 0``."""

    def zero(self, value: Any) -> Any:
        return value * 0

    def add_in_place(self, value1: Any, value2: Any) -> Any:
        value1 += value2
        return value1


class Accumulator:
    """A variable tasks can only add to; the driver reads the total.

    >>> hits = ctx.accumulator(0)
    >>> def check(x):
    ...     global hits
    ...     hits += 1
    ...     return x
    >>> await ctx.parallelize(range(5), 2).map(check).count()
    5
    >>> hits.value
    5
    """

    def __init__(self, aid: int, value: Any, param: AccumulatorParam, on_driver: bool) -> None:
        self.aid = aid
        self.param = param
        self._value = value
        self._on_driver = on_driver
        self._lock = threading.Lock()

    @property
    def value(self) -> Any:
        """The accumulated value (in the driver only).

        >>> total = ctx.accumulator(10)
        >>> await ctx.parallelize([1, 2, 3]).foreach(lambda x: total.add(x))
        >>> total.value
        16
        """
        if not self._on_driver:
            raise AiosparkError("an accumulator's value cannot be read inside a task")
        return self._value

    @value.setter
    def value(self, value: Any) -> None:
        if not self._on_driver:
            raise AiosparkError("an accumulator's value cannot be set inside a task")
        self._value = value

    def add(self, term: Any) -> None:
        """Add ``term`` (in a task: to this task's update, sent back with its result).

        In the driver the term is added to the value at once.  In a task it is added
        to the task's own update, which is merged into the driver's value when the
        task succeeds (once per partition, whatever the attempts); ``acc += term``
        does the same.

        Parameters
        ----------
        term : object
            The value to add, with the accumulator's ``AccumulatorParam``.

        Examples
        --------
        >>> count = ctx.accumulator(0)
        >>> count.add(5)
        >>> await ctx.parallelize(range(4), 2).foreach(lambda x: count.add(1))
        >>> count.value
        9
        """
        updates = accumulator_updates()
        if updates is None or self._on_driver:
            with self._lock:
                self._value = self.param.add_in_place(self._value, term)
            return
        current = updates.get(self.aid)
        if current is None:
            current = self.param.zero(self._value)
        updates[self.aid] = self.param.add_in_place(current, term)

    def __iadd__(self, term: Any) -> Accumulator:
        self.add(term)
        return self

    def _merge(self, update: Any) -> None:
        with self._lock:
            self._value = self.param.add_in_place(self._value, update)

    def __reduce__(self) -> tuple:
        return (_task_accumulator, (self.aid, self.param.zero(self._value), self.param))

    def __repr__(self) -> str:
        shown = repr(self._value) if self._on_driver else "(in a task)"
        return f"Accumulator<id={self.aid}, value={shown}>"


def _task_accumulator(aid: int, zero: Any, param: AccumulatorParam) -> Accumulator:
    return Accumulator(aid, zero, param, on_driver=False)


# -- broadcast ------------------------------------------------------------------------

#: While a stage is being pickled, the ids of the broadcasts it references.
_pickling_broadcasts: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar(
    "aiospark_pickling_broadcasts", default=None
)


def collect_broadcasts() -> tuple[contextvars.Token, set[int]]:
    """Start recording the broadcasts pickled from now on (see ``serialize_stage``)."""
    found: set[int] = set()
    return _pickling_broadcasts.set(found), found


def stop_collecting(token: contextvars.Token) -> None:
    _pickling_broadcasts.reset(token)


class Broadcast:
    """A read-only value shipped to each worker once, however many tasks use it.

    >>> lookup = ctx.broadcast(list(range(100)))
    >>> await ctx.parallelize([1, 50], 2).map(lambda i: lookup.value[i] * 2).collect()
    [2, 100]
    >>> lookup.destroy()
    """

    def __init__(self, bid: int, value: Any = None, blob: bytes | None = None,
                 registry: Any = None) -> None:
        self.bid = bid
        self._value = value
        self._blob = blob
        self._registry = registry
        self._destroyed = False

    @property
    def value(self) -> Any:
        """The value (fetched once per worker when first read in a task).

        >>> factor = ctx.broadcast(3)
        >>> factor.value
        3
        >>> await ctx.parallelize([1, 2]).map(lambda x: x * factor.value).collect()
        [3, 6]
        """
        if self._destroyed:
            raise AiosparkError(f"broadcast {self.bid} was destroyed")
        if self._registry is not None or self._value is not None:  # driver, or fetched
            return self._value
        context = current_task_context()
        if context is None:
            raise AiosparkError(f"broadcast {self.bid} is read outside of a task")
        # Kept on this copy, which lives as long as the worker keeps the stage.
        self._value = context.broadcast_value(self.bid)
        return self._value

    def unpersist(self, blocking: bool = False) -> None:
        """Drop the workers' copies; they fetch it again if a later task reads it.

        The driver keeps the value, so the broadcast stays usable.

        Parameters
        ----------
        blocking : bool, default False
            Accepted for PySpark compatibility; the copies are dropped in the
            background either way.

        See Also
        --------
        Broadcast.destroy : Free the value for good.

        Raises
        ------
        AiosparkError
            When called in a task: "Broadcast can only be unpersisted in driver".

        Examples
        --------
        >>> b = ctx.broadcast(3)
        >>> b.unpersist()
        >>> await ctx.parallelize([1]).map(lambda x: x + b.value).collect()
        [4]
        """
        self._require_driver("unpersisted")
        self._registry.unpersist_broadcast(self.bid)

    def destroy(self, blocking: bool = False) -> None:
        """Free the value everywhere; using it afterwards is an error.

        The driver's value and the workers' copies are dropped.  Afterwards reading
        ``.value``, or using the broadcast in a task, raises ``AiosparkError``.

        Parameters
        ----------
        blocking : bool, default False
            Accepted for PySpark compatibility; the copies are dropped in the
            background either way.

        See Also
        --------
        Broadcast.unpersist : Free the workers' copies only.

        Raises
        ------
        AiosparkError
            When called in a task: "Broadcast can only be destroyed in driver".

        Examples
        --------
        >>> b = ctx.broadcast(1)
        >>> b.destroy()
        >>> b.value
        Traceback (most recent call last):
        ...
        aiospark.errors.AiosparkError: broadcast ... was destroyed
        >>> b2 = ctx.broadcast(2)
        >>> await ctx.parallelize([1]).foreach(lambda _: b2.destroy())
        Traceback (most recent call last):
        ...
        aiospark.errors.AiosparkError: Broadcast can only be destroyed in driver
        """
        self._require_driver("destroyed")
        self.unpersist()
        self._registry.destroy_broadcast(self.bid)
        self._destroyed = True
        self._value = None
        self._blob = None

    def _require_driver(self, done: str) -> None:
        """Only the driver's own copy (its registry's) may be unpersisted or destroyed."""
        if self._registry is None:
            raise AiosparkError(f"Broadcast can only be {done} in driver")

    def __reduce__(self) -> tuple:
        if self._destroyed:
            raise AiosparkError(f"broadcast {self.bid} was destroyed and cannot be used")
        found = _pickling_broadcasts.get()
        if found is not None:
            found.add(self.bid)
        return (_task_broadcast, (self.bid,))

    def __repr__(self) -> str:
        return f"Broadcast<id={self.bid}>"


def _task_broadcast(bid: int) -> Broadcast:
    return Broadcast(bid)
