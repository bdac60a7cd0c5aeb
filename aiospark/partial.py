"""Estimates from the partitions a job finished so far: the approximate actions' statistics.

``RDD.count_approx``, ``sum_approx`` and ``mean_approx`` give a job a deadline;
the partitions finished by then are all these functions see.  They follow
PySpark, which runs Spark's evaluators (``org.apache.spark.partial``) on:

- *sum* and *count*: one number per partition (its sum, its count), the
  finished partitions being a sample of the ``total``.  The estimate is their
  mean times ``total``; its interval is Spark's ``SumEvaluator``'s, which
  treats the number of partitions as uncertain too (so it is wide, erring on
  the safe side);
- *mean*: every record of the finished partitions (Spark's ``MeanEvaluator``):
  their mean, with the usual interval of a sample mean.

The interval's half-width is a quantile of Student's t with ``n - 1`` degrees of
freedom for ``n`` samples, of the normal distribution past 100 samples.  With
every partition finished the result is exact: ``low == high == value`` and
``confidence == 1.0``; with none, it is ``0.0`` with confidence 0 and infinite
bounds (as in Spark).

>>> estimate = sum_estimate([10.0, 12.0, 11.0, 9.0], total=8, confidence=0.95)
>>> estimate, estimate.low < 84 < estimate.high
(84.0, True)
>>> sum_estimate([10.0, 12.0], total=2, confidence=0.95).high
22.0
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from aiospark.statcounter import StatCounter

__all__ = ["BoundedFloat", "count_estimate", "mean_estimate", "sum_estimate"]

#: Past this many samples the normal distribution stands in for Student's t (as in Spark).
_NORMAL_ABOVE = 100


class BoundedFloat(float):
    """A float estimate with its confidence and bounds: PySpark's ``BoundedFloat``.

    What ``RDD.sum_approx`` and ``RDD.mean_approx`` return.  It is the estimate
    itself (a ``float``: it compares, prints and computes as its value, and
    arithmetic on it gives plain floats), with the interval as attributes.

    Parameters
    ----------
    mean : float
        The estimate.
    confidence : float
        The probability that the true value lies within ``[low, high]``: 1.0
        for an exact result.
    low, high : float
        The bounds of the interval (equal to ``mean`` for an exact result).

    Attributes
    ----------
    confidence : float
    low : float
    high : float

    Examples
    --------
    >>> b = BoundedFloat(10.0, 0.95, 8.5, 11.5)
    >>> b, b.confidence, b.low, b.high
    (10.0, 0.95, 8.5, 11.5)
    >>> b + 1, isinstance(b, float)
    (11.0, True)
    """

    confidence: float
    low: float
    high: float

    def __new__(cls, mean: float, *_: float) -> BoundedFloat:
        return super().__new__(cls, mean)

    def __init__(self, mean: float, confidence: float, low: float, high: float) -> None:
        self.confidence = float(confidence)
        self.low = float(low)
        self.high = float(high)

    def __reduce__(self) -> tuple[Any, ...]:
        return BoundedFloat, (float(self), self.confidence, self.low, self.high)


def exact(value: float) -> BoundedFloat:
    """A result known exactly: confidence 1, both bounds the value itself.

    >>> b = exact(3.5)
    >>> b, b.confidence, b.low, b.high
    (3.5, 1.0, 3.5, 3.5)
    """
    return BoundedFloat(value, 1.0, value, value)


def _unknown(value: float, confidence: float = 0.0) -> BoundedFloat:
    return BoundedFloat(value, confidence, -math.inf, math.inf)


def sum_estimate(values: Sequence[float], total: int, confidence: float) -> BoundedFloat:
    """The total over ``total`` partitions, from the ``values`` of the finished ones.

    Spark's ``SumEvaluator`` with each finished partition's value as one sample
    (PySpark's ``sumApprox`` feeds it one sum per partition).

    Parameters
    ----------
    values : sequence of float
        One number per finished partition (its sum, or its count).
    total : int
        How many partitions the job has.
    confidence : float
        The confidence wanted for the interval, in ``[0, 1]``.

    Returns
    -------
    BoundedFloat
        The exact sum (``math.fsum``) when every partition finished; else the
        mean of ``values`` times ``total``, with its interval (infinite for a
        single sample).

    Examples
    --------
    >>> sum_estimate([5.0, 7.0, 6.0], total=3, confidence=0.9).low
    18.0
    >>> half = sum_estimate([5.0, 7.0, 6.0], total=6, confidence=0.9)
    >>> half, half.confidence, half.low < 36 < half.high
    (36.0, 0.9, True)
    """
    k = len(values)
    if k == total:
        return exact(math.fsum(values))
    if k == 0:
        return _unknown(0.0)
    sample = StatCounter(values)
    p = k / total
    mean = sample.mean()
    count = k / p  # Spark: k seen, plus the Poisson mean k(1 - p)/p of those not seen yet
    value = mean * count
    if k == 1:
        return _unknown(value, confidence)
    mean_var = sample.sample_variance() / k
    count_var = k * (1 - p) / (p * p)
    # Var(X·Y) of independent estimates of the mean X and the count Y.
    sum_var = mean * mean * count_var + count * count * mean_var + mean_var * count_var
    return _interval(value, math.sqrt(sum_var), confidence, k)


def count_estimate(counts: Sequence[int], total: int, confidence: float) -> int:
    """The number of records over ``total`` partitions, from the finished partitions' ``counts``.

    PySpark's ``countApprox``: the integer part of ``sum_estimate`` of the
    counts; exact (and exactly an int) when every partition finished.

    Parameters
    ----------
    counts : sequence of int
        The record count of each finished partition.
    total : int
        How many partitions the job has.
    confidence : float
        The confidence of the interval (which an int cannot carry), in ``[0, 1]``.

    Returns
    -------
    int
        The count, or its estimate (0 when no partition finished).

    Examples
    --------
    >>> count_estimate([100, 100], total=2, confidence=0.95)
    200
    >>> count_estimate([100, 98], total=4, confidence=0.95)
    396
    """
    if len(counts) == total:
        return sum(counts)
    return int(sum_estimate([float(n) for n in counts], total, confidence))


def mean_estimate(
    records: StatCounter, finished: int, total: int, confidence: float
) -> BoundedFloat:
    """The mean of all records, from the ``records`` of ``finished`` of ``total`` partitions.

    Spark's ``MeanEvaluator``: the finished partitions' records are the sample.

    Parameters
    ----------
    records : StatCounter
        The statistics of the records of the finished partitions.
    finished : int
        How many partitions finished.
    total : int
        How many partitions the job has.
    confidence : float
        The confidence wanted for the interval, in ``[0, 1]``.

    Returns
    -------
    BoundedFloat
        The exact mean (NaN for no records) when every partition finished;
        else the sample mean with its interval (infinite for a single record).

    Examples
    --------
    >>> b = mean_estimate(StatCounter([1, 2, 3, 4]), finished=2, total=4, confidence=0.95)
    >>> b, round(b.low, 3), round(b.high, 3)
    (2.5, 0.446, 4.554)
    """
    if finished == total:
        return exact(records.mean())
    n = records.count()
    if finished == 0 or n == 0:
        return _unknown(0.0)
    mean = records.mean()
    if n == 1:
        return _unknown(mean, confidence)
    return _interval(mean, math.sqrt(records.sample_variance() / n), confidence, n)


def _interval(value: float, stdev: float, confidence: float, samples: int) -> BoundedFloat:
    """``value ± factor · stdev``, the factor for ``confidence`` and ``samples`` samples."""
    half = 0.0 if stdev == 0 else confidence_factor(confidence, samples) * stdev
    return BoundedFloat(value, confidence, value - half, value + half)


def confidence_factor(confidence: float, samples: int) -> float:
    """How many standard errors either side of an estimate hold ``confidence`` of the probability.

    Student's t with ``samples - 1`` degrees of freedom up to 100 samples,
    the normal distribution above; infinite for a confidence of 1.

    Parameters
    ----------
    confidence : float
        In ``[0, 1]``.
    samples : int
        The sample size (at least 2).

    Returns
    -------
    float
        The two-sided quantile: ``P(|T| < factor) == confidence``.

    Examples
    --------
    >>> round(confidence_factor(0.95, 101), 4), round(confidence_factor(0.95, 5), 4)
    (1.96, 2.7764)
    """
    if confidence >= 1.0:
        return math.inf
    if samples > _NORMAL_ABOVE:
        return statistics.NormalDist().inv_cdf((1.0 + confidence) / 2.0)
    return student_t_factor(confidence, samples - 1)


def student_t_factor(confidence: float, dof: int) -> float:
    """The ``t`` with ``P(|T| < t) == confidence`` for Student's t with ``dof`` degrees of freedom.

    Found by bisection on the angle ``theta = atan(t / sqrt(dof))``, in which
    the central probability has a closed form for integer ``dof``
    (Abramowitz and Stegun 26.7.3 and 26.7.4) and is increasing on
    ``[0, pi/2)``.

    Parameters
    ----------
    confidence : float
        In ``[0, 1)``.
    dof : int
        Degrees of freedom, at least 1.

    Returns
    -------
    float
        The two-sided quantile (``t`` at ``(1 + confidence) / 2``).

    Examples
    --------
    >>> round(student_t_factor(0.95, 1), 3), round(student_t_factor(0.99, 10), 4)
    (12.706, 3.1693)
    """
    lo, hi = 0.0, math.pi / 2
    for _ in range(64):  # far below a float's resolution of the angle
        mid = (lo + hi) / 2
        if _t_central(mid, dof) < confidence:
            lo = mid
        else:
            hi = mid
    return math.sqrt(dof) * math.tan((lo + hi) / 2)


def _t_central(theta: float, dof: int) -> float:
    """``P(|T| < sqrt(dof) * tan(theta))`` for Student's t with integer ``dof`` (A&S 26.7.3-4).

    >>> round(_t_central(math.atan(3.182446 / math.sqrt(3)), 3), 5)
    0.95
    """
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    if dof % 2 == 0:  # sin(θ) · (1 + 1/2 cos²θ + 1·3/(2·4) cos⁴θ + ...), dof/2 terms
        term = series = 1.0
        for j in range(1, dof // 2):
            term *= cos2 * (2 * j - 1) / (2 * j)
            series += term
        return sin * series
    # 2/π · (θ + sin θ · (cos θ + 2/3 cos³θ + 2·4/(3·5) cos⁵θ + ...)), (dof - 1)/2 terms
    term = math.cos(theta)
    series = 0.0
    for j in range(1, (dof - 1) // 2 + 1):
        series += term
        term *= cos2 * (2 * j) / (2 * j + 1)
    return 2.0 / math.pi * (theta + sin * series)
