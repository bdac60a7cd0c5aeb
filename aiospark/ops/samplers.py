"""Per-partition samplers whose random draws are PySpark's, so seeded samples agree.

PySpark seeds one ``random.Random`` per partition with ``seed ^ split_index``,
stirs it with ten ``randint(0, 1)`` calls (nearby seeds give nearby states),
then draws once per record, in record order:

- without replacement, a record is kept when ``random() < fraction``;
- with replacement, it is repeated a Poisson(``fraction``) number of times,
  drawn with Knuth's product-of-uniforms method below a mean of 20 and by
  summing exponential gaps at 20 and above;
- a random split keeps a record in the split whose ``[lower, upper)`` weight
  range holds its ``random()`` draw, so the splits are disjoint and complete.

The functions here take ``(split_index, iterator)`` once their parameters are
bound with ``functools.partial``, ready for ``map_partitions_with_index``.

>>> list(bernoulli(0.5, 7, 0, iter(range(10))))
[0, 1, 2, 4, 9]
>>> list(bernoulli(0.5, 7, 1, iter(range(10))))
[0, 3, 6, 9]
"""

from __future__ import annotations

import itertools
import math
import random
import sys
from collections.abc import Iterator
from typing import Any

#: Stir the generator this many times after seeding, as PySpark does.
_MIX_DRAWS = 10
#: Below this mean, Poisson counts come from a product of uniforms; above, from exponential gaps.
_KNUTH_LIMIT = 20.0


def random_seed() -> int:
    """A fresh seed for a sampler created without one (PySpark's range).

    >>> 0 <= random_seed() <= sys.maxsize
    True
    """
    return random.randint(0, sys.maxsize)


def check_seed(seed: Any, what: str) -> int:
    """``seed`` if it is an int; ``TypeError`` otherwise (the generator mixes it with ``^``).

    >>> check_seed(3, "sample")
    3
    >>> check_seed(1.5, "sample")
    Traceback (most recent call last):
    ...
    TypeError: sample: seed must be an int or None, got 1.5
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{what}: seed must be an int or None, got {seed!r}")
    return seed


def partition_random(seed: int, split: int) -> random.Random:
    """The generator one partition samples with: seeded by ``seed ^ split``, then stirred.

    >>> partition_random(7, 0).random() == partition_random(7, 0).random()
    True
    """
    rng = random.Random(seed ^ split)
    for _ in range(_MIX_DRAWS):
        rng.randint(0, 1)
    return rng


def poisson_draw(rng: random.Random, mean: float) -> int:
    """One Poisson(``mean``) count, consuming ``rng`` exactly as PySpark does.

    >>> rng = partition_random(1, 0)
    >>> [poisson_draw(rng, 1.0) for _ in range(8)]
    [2, 2, 0, 2, 0, 0, 1, 4]
    """
    k = 0
    if mean < _KNUTH_LIMIT:
        floor = math.exp(-mean)
        rand = rng.random
        p = rand()
        while p > floor:
            k += 1
            p *= rand()
        return k
    expo = rng.expovariate
    t = expo(mean)
    while t < 1.0:
        k += 1
        t += expo(mean)
    return k


def bernoulli(fraction: float, seed: int, split: int, records: Iterator[Any]) -> Iterator[Any]:
    """Keep each record with probability ``fraction`` (``random() < fraction``).

    >>> list(bernoulli(1.0, 0, 0, iter("abc"))), list(bernoulli(0.0, 0, 0, iter("abc")))
    (['a', 'b', 'c'], [])
    """
    if fraction <= 0.0:
        return iter(())
    if fraction >= 1.0:  # every draw is below 1: skip drawing
        return records
    rand = partition_random(seed, split).random
    return (x for x in records if rand() < fraction)


def poisson(fraction: float, seed: int, split: int, records: Iterator[Any]) -> Iterator[Any]:
    """Repeat each record a Poisson(``fraction``) number of times.

    >>> list(poisson(1.0, 1, 0, iter("abcd")))
    ['a', 'a', 'b', 'b', 'd', 'd']
    """
    if fraction <= 0.0:
        return iter(())
    return _poisson(fraction, partition_random(seed, split), records)


def _poisson(mean: float, rng: random.Random, records: Iterator[Any]) -> Iterator[Any]:
    repeat = itertools.repeat
    if mean < _KNUTH_LIMIT:
        floor = math.exp(-mean)
        rand = rng.random
        for x in records:
            p = rand()
            if p <= floor:
                continue
            k = 0
            while p > floor:
                k += 1
                p *= rand()
            yield from repeat(x, k)
    else:
        for x in records:
            k = poisson_draw(rng, mean)
            if k:
                yield from repeat(x, k)


def in_range(
    lower: float, upper: float, seed: int, split: int, records: Iterator[Any]
) -> Iterator[Any]:
    """Keep the records whose draw falls in ``[lower, upper)`` (one split of ``random_split``).

    >>> [list(in_range(lo, hi, 5, 0, iter(range(8)))) for lo, hi in ((0, 0.5), (0.5, 2))]
    [[1, 2, 3, 5, 6], [0, 4, 7]]
    """
    rand = partition_random(seed, split).random
    return (x for x in records if lower <= rand() < upper)


def stratified(
    with_replacement: bool,
    fractions: dict,
    seed: int,
    split: int,
    records: Iterator[tuple],
) -> Iterator[tuple]:
    """Sample ``(key, value)`` records with the fraction of their key (``sample_by_key``).

    >>> list(stratified(False, {"a": 1.0, "b": 0.0}, 3, 0, iter([("a", 1), ("b", 2)])))
    [('a', 1)]
    """
    rng = partition_random(seed, split)
    rand = rng.random
    for record in records:
        key = record[0]
        try:
            fraction = fractions[key]
        except KeyError:
            raise ValueError(
                f"sample_by_key: key {key!r} has no fraction in fractions "
                f"(known keys: {_some_keys(fractions)})"
            ) from None
        except TypeError as exc:
            raise TypeError(f"sample_by_key: keys must be hashable: {exc}") from None
        if with_replacement:
            yield from itertools.repeat(record, poisson_draw(rng, fraction))
        elif rand() < fraction:
            yield record


def _some_keys(fractions: dict, limit: int = 10) -> str:
    keys = [repr(k) for k in itertools.islice(fractions, limit)]
    more = ", ..." if len(fractions) > limit else ""
    return ", ".join(keys) + more


def check_fraction(fraction: Any, with_replacement: bool, what: str) -> float:
    """``fraction`` as a float; ``ValueError`` unless it is >= 0 (and <= 1 without replacement).

    >>> check_fraction(2, True, "sample")
    2.0
    >>> check_fraction(1.5, False, "sample")
    Traceback (most recent call last):
    ...
    ValueError: sample: without replacement the fraction must be in [0, 1], got 1.5
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise TypeError(f"{what}: fraction must be a number, got {fraction!r}")
    value = float(fraction)
    if math.isnan(value) or value < 0.0:
        raise ValueError(f"{what}: fraction must be >= 0, got {fraction!r}")
    if not with_replacement and value > 1.0:
        raise ValueError(
            f"{what}: without replacement the fraction must be in [0, 1], got {fraction!r}"
        )
    return value


def fraction_for_sample_size(num: int, total: int, with_replacement: bool) -> float:
    """A sampling fraction that yields at least ``num`` of ``total`` records 99.99% of the time.

    With replacement the sample size is a sum of Poisson counts, so a few
    standard deviations above ``num / total`` suffice; without replacement
    it is binomial, and the margin comes from a Chernoff-style bound with
    failure rate 5e-5 (the same rule as Spark's).

    >>> round(fraction_for_sample_size(5, 100, False), 4)
    0.2894
    >>> round(fraction_for_sample_size(5, 100, True), 4)
    0.2512
    """
    fraction = num / total
    if with_replacement:
        deviations = 9 if num < 12 else 5
        return fraction + deviations * math.sqrt(fraction / total)
    gamma = -math.log(0.00005) / total
    return min(1.0, fraction + gamma + math.sqrt(gamma * gamma + 2 * gamma * fraction))
