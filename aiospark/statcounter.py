"""``StatCounter``: count, mean, variance, min and max of numbers, in one pass.

Values are folded in with Welford's update (one at a time) or in numpy chunks,
and counters built on different partitions are combined with Chan's parallel
formula, so an RDD's statistics take a single pass over each partition and a
cheap merge in the driver.

>>> s = StatCounter([1, 2, 3, 4])
>>> s
(count: 4, mean: 2.5, stdev: 1.118033988749895, max: 4.0, min: 1.0)
>>> s.merge_stats(StatCounter([10])).count(), s.max()
(5, 10.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from aiospark.batching import batched

__all__ = ["StatCounter"]

#: Values converted to numpy at a time by ``merge_values``.
_CHUNK = 4096


def _nan_max(a: float, b: float) -> float:
    """The larger of two floats; NaN when either is NaN (like ``numpy.maximum``)."""
    return b if b > a or b != b else a


def _nan_min(a: float, b: float) -> float:
    """The smaller of two floats; NaN when either is NaN (like ``numpy.minimum``)."""
    return b if b < a or b != b else a


def real_array(batch: list[Any]) -> Any:
    """``batch`` as a 1-D float64 numpy array when it holds only real numbers, else ``None``.

    Booleans, ints and floats (Python's or numpy's) qualify; ints too large for
    int64, ``None``, strings, ``Decimal`` and anything else make the caller
    fall back to plain Python, which keeps Python's own semantics for them.

    >>> real_array([1, 2.5, True]).tolist()
    [1.0, 2.5, 1.0]
    >>> real_array([1, None]) is None, real_array(["1.5"]) is None
    (True, True)
    """
    import numpy as np

    try:
        arr = np.array(batch)
    except (ValueError, TypeError, OverflowError):
        return None
    if arr.ndim != 1 or arr.dtype.kind not in "biuf":
        return None
    return arr.astype(np.float64, copy=False)


class StatCounter:
    """Running count, mean, variance, min and max of a stream of numbers.

    PySpark's ``StatCounter`` with snake_case names.  ``min()``/``max()`` of
    an empty counter are ``inf``/``-inf``, its ``mean()``, ``variance()`` and
    ``stdev()`` are NaN, and ``sample_variance()`` needs at least two values.
    A NaN value makes the mean, variance, min and max NaN.

    Parameters
    ----------
    values : iterable of numbers, optional
        Values to add at once (with ``merge_values``); default none.

    See Also
    --------
    RDD.stats : A ``StatCounter`` of an RDD's numbers.

    Examples
    --------
    >>> s = StatCounter([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    >>> s.count(), s.mean(), s.sum(), s.stdev(), s.variance()
    (8, 5.0, 40.0, 2.0, 4.0)
    >>> round(s.sample_variance(), 6), round(s.sample_stdev(), 6)
    (4.571429, 2.13809)
    >>> StatCounter().mean()
    nan
    """

    __slots__ = ("m2", "max_value", "min_value", "mu", "n")

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        self.n = 0
        self.mu = 0.0  # running mean (0.0 while empty, so that sum() is 0.0)
        self.m2 = 0.0  # sum of squared deviations from the mean
        self.max_value = -math.inf
        self.min_value = math.inf
        if values is not None:
            self.merge_values(values)

    # -- adding values ------------------------------------------------------------

    def merge(self, value: Any) -> StatCounter:
        """Add one value (Welford's update); returns ``self``.

        Parameters
        ----------
        value : number
            The value: an int, a float, a bool or a numpy number.

        Returns
        -------
        StatCounter
            ``self``, updated, so that calls chain.

        Examples
        --------
        >>> StatCounter().merge(1).merge(3).mean()
        2.0
        """
        delta = value - self.mu
        self.n += 1
        self.mu += delta / self.n
        self.m2 += delta * (value - self.mu)
        self.max_value = _nan_max(self.max_value, float(value))
        self.min_value = _nan_min(self.min_value, float(value))
        return self

    def merge_values(self, values: Iterable[Any]) -> StatCounter:
        """Add every value of an iterable, a numpy chunk at a time; returns ``self``.

        Chunks of plain real numbers are summarised with numpy and merged with
        Chan's formula; other chunks go through ``merge`` value by value.

        Parameters
        ----------
        values : iterable of numbers
            The values, read once.

        Returns
        -------
        StatCounter
            ``self``, updated.

        Examples
        --------
        >>> StatCounter().merge_values(range(1, 101)).mean()
        50.5
        """
        it = iter(values)
        for batch in batched(it, _CHUNK):
            arr = real_array(batch)
            if arr is None:
                for value in batch:
                    self.merge(value)
                continue
            mean = float(arr.mean())
            deviations = arr - mean
            self._merge_summary(
                len(arr),
                mean,
                float(deviations @ deviations),
                float(arr.min()),
                float(arr.max()),
            )
        return self

    def merge_stats(self, other: StatCounter) -> StatCounter:
        """Fold another counter into this one (Chan's parallel formula); returns ``self``.

        Parameters
        ----------
        other : StatCounter
            The counter to fold in; it is left unchanged (and may be ``self``).

        Returns
        -------
        StatCounter
            ``self``, now describing the values of both.

        Raises
        ------
        TypeError
            When ``other`` is not a ``StatCounter``.

        Examples
        --------
        >>> a = StatCounter([1.0, 2.0])
        >>> a.merge_stats(StatCounter([3.0, 4.0])).mean(), a.variance()
        (2.5, 1.25)
        >>> a.merge_stats(a).count()
        8
        """
        if not isinstance(other, StatCounter):
            raise TypeError(f"can only merge a StatCounter, not {type(other).__name__}")
        other = other.copy()  # safe when other is self
        self._merge_summary(other.n, other.mu, other.m2, other.min_value, other.max_value)
        return self

    def _merge_summary(self, n: int, mu: float, m2: float, lo: float, hi: float) -> None:
        if n == 0:
            return
        if self.n == 0:
            self.n, self.mu, self.m2 = n, mu, m2
            self.min_value, self.max_value = lo, hi
            return
        total = self.n + n
        delta = mu - self.mu
        # Move the mean from the side holding most of the weight: keeps precision
        # when one side is far smaller than the other.
        if n * 10 < self.n:
            self.mu = self.mu + delta * n / total
        elif self.n * 10 < n:
            self.mu = mu - delta * self.n / total
        else:
            self.mu = (self.mu * self.n + mu * n) / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total
        self.max_value = _nan_max(self.max_value, hi)
        self.min_value = _nan_min(self.min_value, lo)

    def copy(self) -> StatCounter:
        """An independent copy.

        Returns
        -------
        StatCounter
            A new counter with the same statistics, changed independently.

        Examples
        --------
        >>> a = StatCounter([1.0])
        >>> b = a.copy().merge(3.0)
        >>> a.count(), b.count()
        (1, 2)
        """
        other = StatCounter()
        other.n, other.mu, other.m2 = self.n, self.mu, self.m2
        other.min_value, other.max_value = self.min_value, self.max_value
        return other

    # -- results ------------------------------------------------------------------

    def count(self) -> int:
        """How many values were added.

        Returns
        -------
        int
            The number of values.

        Examples
        --------
        >>> StatCounter([5, 5]).count()
        2
        """
        return self.n

    def mean(self) -> float:
        """The mean (NaN when empty).

        Returns
        -------
        float
            The arithmetic mean of the values.

        Examples
        --------
        >>> StatCounter([1, 2]).mean()
        1.5
        """
        return float(self.mu) if self.n else math.nan

    def sum(self) -> float:
        """The sum, as ``count * mean`` (0.0 when empty).

        Returns
        -------
        float
            The sum of the values (with the rounding of ``count * mean``).

        Examples
        --------
        >>> StatCounter([1, 2, 3]).sum()
        6.0
        """
        return float(self.n * self.mu)

    def min(self) -> float:
        """The smallest value (``inf`` when empty).

        Returns
        -------
        float
            The minimum, as a float (NaN if a value was NaN).

        Examples
        --------
        >>> StatCounter([3, 1, 2]).min()
        1.0
        """
        return self.min_value

    def max(self) -> float:
        """The largest value (``-inf`` when empty).

        Returns
        -------
        float
            The maximum, as a float (NaN if a value was NaN).

        Examples
        --------
        >>> StatCounter([3, 1, 2]).max()
        3.0
        """
        return self.max_value

    def variance(self) -> float:
        """The population variance (divides by ``count``; NaN when empty).

        Returns
        -------
        float
            The mean of the squared deviations from the mean.

        See Also
        --------
        StatCounter.sample_variance : Divides by ``count - 1``.

        Examples
        --------
        >>> StatCounter([1, 3]).variance()
        1.0
        """
        return float(self.m2 / self.n) if self.n else math.nan

    def sample_variance(self) -> float:
        """The sample variance (divides by ``count - 1``; NaN below two values).

        Returns
        -------
        float
            The unbiased estimate of the variance of the population the values were
            drawn from.

        See Also
        --------
        StatCounter.variance : Divides by ``count``.

        Examples
        --------
        >>> StatCounter([1, 3]).sample_variance()
        2.0
        """
        return float(self.m2 / (self.n - 1)) if self.n > 1 else math.nan

    def stdev(self) -> float:
        """The population standard deviation.

        Returns
        -------
        float
            The square root of ``variance()`` (NaN when empty).

        Examples
        --------
        >>> StatCounter([1, 3]).stdev()
        1.0
        """
        return math.sqrt(self.variance())

    def sample_stdev(self) -> float:
        """The sample standard deviation.

        Returns
        -------
        float
            The square root of ``sample_variance()`` (NaN below two values).

        Examples
        --------
        >>> StatCounter([1, 3, 5]).sample_stdev()
        2.0
        """
        return math.sqrt(self.sample_variance())

    def as_dict(self, sample: bool = False) -> dict[str, float]:
        """The statistics as a dict; ``sample=True`` for the sample variance and stdev.

        ``sample=False`` (the default) gives the population ``stdev`` and
        ``variance`` (divisor ``count``); ``sample=True`` the sample ones (divisor
        ``count - 1``), as the name says.  PySpark's ``asDict`` has them the
        other way round (its default gives the sample figures), so a port that
        relied on PySpark's default passes ``sample=True``.

        Parameters
        ----------
        sample : bool, default False
            Give the sample variance and stdev (``count - 1`` divisor) instead of
            the population ones.

        Returns
        -------
        dict of str to float
            ``count``, ``mean``, ``sum``, ``min``, ``max``, ``stdev`` and
            ``variance``, in that order (``count`` an int).

        Examples
        --------
        >>> StatCounter([1, 3]).as_dict()
        {'count': 2, 'mean': 2.0, 'sum': 4.0, 'min': 1.0, 'max': 3.0, 'stdev': 1.0, 'variance': 1.0}
        >>> StatCounter([1, 3]).as_dict(sample=True)["variance"]  # PySpark's as_dict() default
        2.0
        """
        return {
            "count": self.count(),
            "mean": self.mean(),
            "sum": self.sum(),
            "min": self.min(),
            "max": self.max(),
            "stdev": self.sample_stdev() if sample else self.stdev(),
            "variance": self.sample_variance() if sample else self.variance(),
        }

    def __getstate__(self) -> tuple:
        return (self.n, self.mu, self.m2, self.min_value, self.max_value)

    def __setstate__(self, state: tuple) -> None:
        self.n, self.mu, self.m2, self.min_value, self.max_value = state

    def __repr__(self) -> str:
        return (
            f"(count: {self.count()}, mean: {self.mean()}, stdev: {self.stdev()}, "
            f"max: {self.max()}, min: {self.min()})"
        )
