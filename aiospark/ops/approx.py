"""Approximate actions: an answer by a deadline, from the partitions finished by then.

``count_approx``, ``sum_approx`` and ``mean_approx`` run their job with a
deadline (``timeout`` in milliseconds, as in PySpark).  Each partition's
result reaches the driver as its task finishes; a job done in time gives the
exact answer, otherwise the partitions finished by the deadline give an
estimate with a confidence interval (``aiospark.partial`` holds the
statistics) and the job's remaining tasks are cancelled on the workers, unless
``keep_running=True``.

>>> rdd = ctx.parallelize(range(100), 4)
>>> await rdd.count_approx(timeout=60_000)
100
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from aiospark.lineage import Node
from aiospark.ops.stats import count_partition, stats_partition
from aiospark.partial import BoundedFloat, count_estimate, mean_estimate, sum_estimate
from aiospark.statcounter import StatCounter


class ApproxOps:
    """Actions answering by a deadline, exactly or with a bounded estimate."""

    async def count_approx(
        self, timeout: float, confidence: float = 0.95, *, keep_running: bool = False
    ) -> int:
        """The number of records, or an estimate of it if the job overruns ``timeout``.

        Parameters
        ----------
        timeout : int or float
            Milliseconds to wait for the job (PySpark's unit), from the call.
        confidence : float, default 0.95
            The confidence of the estimate's interval, in ``[0, 1]`` (the
            returned int does not carry the interval: see ``sum_approx``).
        keep_running : bool, default False
            When the deadline passes, let the job run to its end (say, to fill
            the RDD's cache) instead of cancelling its remaining tasks.

        Returns
        -------
        int
            Awaiting gives the exact count when every partition finished by the
            deadline; otherwise the finished partitions' mean count times the
            number of partitions (0 when none finished).

        Raises
        ------
        TypeError
            When ``timeout`` or ``confidence`` is not a number, or ``keep_running``
            not a bool.
        ValueError
            When ``timeout`` is negative or NaN, or ``confidence`` is outside ``[0, 1]``.

        See Also
        --------
        RDD.count : Waits for the exact count.
        RDD.sum_approx : The estimate with its interval.

        Notes
        -----
        As in Spark, an approximate action writes no checkpoint (that would be a
        second job, after the deadline).

        Examples
        --------
        >>> rdd = ctx.parallelize(range(1000), 10)
        >>> await rdd.count_approx(60_000, confidence=1.0)
        1000
        """
        counts = await _run_within(self, count_partition, timeout, confidence, keep_running)
        return count_estimate(list(counts.values()), self.get_num_partitions(), confidence)

    async def sum_approx(
        self, timeout: float, confidence: float = 0.95, *, keep_running: bool = False
    ) -> BoundedFloat:
        """The sum of the records, or an estimate of it if the job overruns ``timeout``.

        Each partition's records are summed (``float(sum(records))``, as in
        PySpark) on its worker.  When the deadline passes first, the finished
        partitions' sums are a sample: the estimate is their mean times the
        number of partitions, with Spark's interval for it.

        Parameters
        ----------
        timeout : int or float
            Milliseconds to wait for the job (PySpark's unit), from the call.
        confidence : float, default 0.95
            The probability wanted that the true sum lies within the interval,
            in ``[0, 1]``.
        keep_running : bool, default False
            When the deadline passes, let the job run to its end (say, to fill
            the RDD's cache) instead of cancelling its remaining tasks.

        Returns
        -------
        BoundedFloat
            Awaiting gives the sum as a float with ``.confidence``, ``.low`` and
            ``.high``: exact (``low == high``, confidence 1.0) when every partition
            finished in time.  A single finished partition gives infinite bounds;
            none gives 0.0 with confidence 0.

        Raises
        ------
        TypeError
            When ``timeout`` or ``confidence`` is not a number, or ``keep_running``
            not a bool; from the job, when a partition's records do not add up
            to a number (as ``sum`` raises it).
        ValueError
            When ``timeout`` is negative or NaN, or ``confidence`` is outside ``[0, 1]``.

        See Also
        --------
        RDD.sum : Waits for the exact sum.
        RDD.mean_approx

        Notes
        -----
        PySpark's ``sumApprox`` waits for the whole job whatever the timeout
        (it asks Spark for the final value); this returns at the deadline, as
        Spark's Scala API does.  No checkpoint is written.

        Examples
        --------
        >>> rdd = ctx.parallelize(range(1000), 10)
        >>> total = await rdd.sum_approx(60_000)
        >>> total, total.confidence, total.low == total.high == total
        (499500.0, 1.0, True)
        """
        sums = await _run_within(self, _float_sum_partition, timeout, confidence, keep_running)
        values = [sums[index] for index in sorted(sums)]
        return sum_estimate(values, self.get_num_partitions(), confidence)

    async def mean_approx(
        self, timeout: float, confidence: float = 0.95, *, keep_running: bool = False
    ) -> BoundedFloat:
        """The mean of the records, or an estimate of it if the job overruns ``timeout``.

        When the deadline passes first, the records of the finished partitions
        are the sample: the estimate is their mean, with the interval of a
        sample mean (Student's t up to 100 records, normal beyond).

        Parameters
        ----------
        timeout : int or float
            Milliseconds to wait for the job (PySpark's unit), from the call.
        confidence : float, default 0.95
            The probability wanted that the true mean lies within the interval,
            in ``[0, 1]``.
        keep_running : bool, default False
            When the deadline passes, let the job run to its end (say, to fill
            the RDD's cache) instead of cancelling its remaining tasks.

        Returns
        -------
        BoundedFloat
            Awaiting gives the mean as a float with ``.confidence``, ``.low`` and
            ``.high``: exact (``low == high``, confidence 1.0) when every partition
            finished in time, NaN for an empty RDD.

        Raises
        ------
        TypeError
            When ``timeout`` or ``confidence`` is not a number, or ``keep_running``
            not a bool; from the job, when a record is not a number (as ``mean``
            raises it).
        ValueError
            When ``timeout`` is negative or NaN, or ``confidence`` is outside ``[0, 1]``.

        See Also
        --------
        RDD.mean : Waits for the exact mean.
        RDD.sum_approx

        Notes
        -----
        PySpark's ``meanApprox`` waits for the whole job whatever the timeout;
        this returns at the deadline, as Spark's Scala API does.  No checkpoint
        is written.

        Examples
        --------
        >>> mean = await ctx.parallelize(range(1000), 10).mean_approx(60_000)
        >>> mean, mean.low, mean.high
        (499.5, 499.5, 499.5)
        """
        counters = await _run_within(self, stats_partition, timeout, confidence, keep_running)
        records = StatCounter()
        for counter in counters.values():
            records.merge_stats(counter)
        return mean_estimate(records, len(counters), self.get_num_partitions(), confidence)


async def _run_within(
    rdd: Node,
    func: Callable[[int, Iterator[Any]], Any],
    timeout: Any,
    confidence: Any,
    keep_running: Any,
) -> dict[int, Any]:
    """The results of the partitions of ``rdd`` finished ``timeout`` ms from now, by index."""
    seconds = check_timeout(timeout) / 1000.0
    check_confidence(confidence)
    if not isinstance(keep_running, bool):
        raise TypeError(f"keep_running must be a bool, got {keep_running!r}")
    return await rdd.ctx.jobs.run_within(rdd, func, seconds, keep_running)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_timeout(timeout: Any) -> float:
    """``timeout`` (milliseconds) when it is a number >= 0, else the error naming it.

    >>> check_timeout(1500)
    1500.0
    >>> check_timeout(-1)
    Traceback (most recent call last):
    ...
    ValueError: timeout must be >= 0 milliseconds, got -1
    """
    if not _is_number(timeout):
        raise TypeError(f"timeout must be a number of milliseconds, got {timeout!r}")
    if not timeout >= 0:  # NaN too
        raise ValueError(f"timeout must be >= 0 milliseconds, got {timeout!r}")
    return float(timeout)


def check_confidence(confidence: Any) -> float:
    """``confidence`` when it is a number in ``[0, 1]``, else the error naming it.

    >>> check_confidence(1)
    1.0
    >>> check_confidence(1.5)
    Traceback (most recent call last):
    ...
    ValueError: confidence must be within [0, 1], got 1.5
    """
    if not _is_number(confidence):
        raise TypeError(f"confidence must be a number within [0, 1], got {confidence!r}")
    if not 0.0 <= confidence <= 1.0:  # NaN too
        raise ValueError(f"confidence must be within [0, 1], got {confidence!r}")
    return float(confidence)


def _float_sum_partition(_: int, it: Iterator[Any]) -> float:
    """A partition's sum as a float (on a worker): PySpark's ``float(sum(records))``."""
    return float(sum(it, 0))
