"""Sampling with seeds that reproduce PySpark's choices.

Mixed into ``aiospark.RDD``.  Each partition draws from its own generator,
seeded from the seed and the partition's index exactly as PySpark seeds it
(see ``aiospark.ops.samplers``), so a seeded sample picks the same records as
PySpark's on the same partitioning, whichever workers run it.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import sys
from collections.abc import Sequence
from typing import Any, Self

from aiospark import offload
from aiospark.ops import samplers
from aiospark.validation import check_count

#: take_sample's upper limit on the sample size keeps this many deviations of headroom.
_TAKE_SAMPLE_DEVIATIONS = 10.0


class SampleOps:
    """Sampling with seeds that reproduce PySpark's choices."""

    def sample(
        self, with_replacement: bool, fraction: float, seed: int | None = None
    ) -> Self:
        """A random sample: each record kept with probability ``fraction``, or repeated.

        Without replacement ``fraction`` is each record's chance of being kept
        (in ``[0, 1]``); with replacement it is the expected number of copies
        of each record (``>= 0``).  The sample's size is not exactly
        ``fraction`` of the count.  ``seed=None`` picks a random seed now, so
        every action on the returned RDD sees the same sample.

        Parameters
        ----------
        with_replacement : bool
            Whether a record may be picked more than once.
        fraction : float
            Without replacement, the probability of keeping each record, in
            ``[0, 1]``; with replacement, the expected number of copies of each
            record, ``>= 0``.
        seed : int or None, optional
            The random seed (default: a random one, drawn now).

        Returns
        -------
        RDD
            The sampled records, in their original order and partitions.

        Raises
        ------
        TypeError
            When ``fraction`` is not a number or ``seed`` not an int.
        ValueError
            When ``fraction`` is out of range.

        See Also
        --------
        RDD.take_sample : A sample of an exact size, in the driver.

        Examples
        --------
        >>> rdd = ctx.parallelize(range(20), 2)
        >>> await rdd.sample(False, 0.3, seed=42).collect()
        [0, 1, 3, 4, 7, 16, 17, 18, 19]
        >>> await rdd.sample(True, 0.5, seed=42).collect()
        [5, 8, 9, 11, 12, 12, 18]
        """
        fraction = samplers.check_fraction(fraction, with_replacement, "sample")
        seed = samplers.random_seed() if seed is None else samplers.check_seed(seed, "sample")
        draw = samplers.poisson if with_replacement else samplers.bernoulli
        return self.map_partitions_with_index(functools.partial(draw, fraction, seed), True)

    def random_split(
        self, weights: Sequence[float], seed: int | None = None
    ) -> list[Self]:
        """Split the records at random into RDDs sized in proportion to ``weights``.

        Every record lands in exactly one split (weights need not sum to 1).

        Parameters
        ----------
        weights : sequence of float
            One non-negative weight per split; their sum must be positive.
        seed : int or None, optional
            The random seed (default: a random one, drawn now).

        Returns
        -------
        list of RDD
            One RDD per weight, in order; together they hold every record once.
            Each is computed from this RDD (cache it when that is costly).

        Raises
        ------
        TypeError
            When a weight is not a number or ``seed`` not an int.
        ValueError
            When ``weights`` is empty, has a negative or NaN weight, or does not
            sum to a positive finite number.

        Examples
        --------
        >>> a, b = ctx.parallelize(range(10), 2).random_split([0.6, 0.4], seed=17)
        >>> await a.collect(), await b.collect()
        ([1, 5, 6, 7], [0, 2, 3, 4, 8, 9])
        """
        weights = list(weights)
        if not weights:
            raise ValueError("random_split: weights must not be empty")
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, int | float):
                raise TypeError(f"random_split: weights must be numbers, got {w!r}")
            if math.isnan(w) or w < 0:
                raise ValueError(f"random_split: weights must be >= 0, got {weights!r}")
        total = float(sum(weights))
        if not total > 0 or math.isinf(total):
            raise ValueError(f"random_split: weights must have a positive sum, got {weights!r}")
        if seed is None:
            seed = random.randint(0, 2**32 - 1)
        seed = samplers.check_seed(seed, "random_split")
        bounds = [0.0]
        for w in weights:
            bounds.append(bounds[-1] + w / total)
        # Rounding may leave the last bound a hair below 1: the last split takes the rest.
        bounds[-1] = math.inf
        return [
            self.map_partitions_with_index(
                functools.partial(samplers.in_range, lower, upper, seed), True
            )
            for lower, upper in itertools.pairwise(bounds)
        ]

    def sample_by_key(
        self, with_replacement: bool, fractions: dict, seed: int | None = None
    ) -> Self:
        """A sample of a pair RDD with a different fraction per key (stratified sampling).

        ``fractions`` maps every key to its fraction (as in ``sample``); a key
        missing from it fails the job with a ``ValueError``.

        Parameters
        ----------
        with_replacement : bool
            Whether a pair may be picked more than once.
        fractions : dict
            ``{key: fraction}`` for every key of the RDD, each fraction as in
            ``sample``.
        seed : int or None, optional
            The random seed (default: a random one, drawn now).

        Returns
        -------
        RDD
            The sampled pairs, in their original order and partitions.

        Raises
        ------
        TypeError
            When ``fractions`` is not a dict, a fraction not a number, or ``seed``
            not an int.
        ValueError
            When a fraction is out of range.

        Examples
        --------
        >>> pairs = ctx.parallelize([("a", i) for i in range(6)] + [("b", i) for i in range(6)], 2)
        >>> await pairs.sample_by_key(False, {"a": 0.5, "b": 0.0}, seed=7).collect()
        [('a', 0), ('a', 1), ('a', 2), ('a', 4)]
        """
        if not isinstance(fractions, dict):
            raise TypeError(f"sample_by_key: fractions must be a dict, got {fractions!r}")
        checked = {
            key: samplers.check_fraction(f, with_replacement, "sample_by_key")
            for key, f in fractions.items()
        }
        seed = (
            samplers.random_seed() if seed is None else samplers.check_seed(seed, "sample_by_key")
        )
        sampler = functools.partial(samplers.stratified, bool(with_replacement), checked, seed)
        return self.map_partitions_with_index(sampler, True)

    async def take_sample(
        self, with_replacement: bool, num: int, seed: int | None = None
    ) -> list[Any]:
        """``num`` records picked at random, in random order (an action).

        Without replacement an RDD of fewer than ``num`` records gives all of
        them, shuffled; with replacement the result always has ``num``
        records.  It counts the RDD, samples a fraction large enough to give ``num``
        records almost always (sampling again in the rare other case), and
        shuffles the sample.  The result is kept in the driver.

        Parameters
        ----------
        with_replacement : bool
            Whether a record may be picked more than once.
        num : int
            The sample's size, ``>= 0``.
        seed : int or None, optional
            The random seed (default: random, so each call differs).

        Returns
        -------
        list
            Awaiting gives ``num`` records (fewer when the RDD has fewer and
            ``with_replacement`` is false), in random order.

        Raises
        ------
        TypeError
            When ``num`` or ``seed`` is not an int.
        ValueError
            When ``num`` is negative or too large.

        See Also
        --------
        RDD.sample : A lazy sample of a fraction of the records.

        Examples
        --------
        >>> rdd = ctx.parallelize(range(10), 2)
        >>> await rdd.take_sample(False, 4, seed=3)
        [1, 5, 6, 0]
        >>> len(await rdd.take_sample(True, 20, seed=1)), sorted(await rdd.take_sample(False, 15))
        (20, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        """
        check_count(num, "take_sample")
        if seed is not None:
            samplers.check_seed(seed, "take_sample")
        if num == 0:
            return []
        total = await self.count()
        if total == 0:
            return []
        rng = random.Random(seed)
        if not with_replacement and num >= total:
            everything = await self.collect()
            await offload.run_sized(len(everything), rng.shuffle, everything)
            return everything
        limit = sys.maxsize - int(_TAKE_SAMPLE_DEVIATIONS * math.sqrt(sys.maxsize))
        if num > limit:
            raise ValueError(f"take_sample: the sample size must be at most {limit}, got {num}")
        fraction = samplers.fraction_for_sample_size(num, total, with_replacement)
        picked = await self.sample(with_replacement, fraction, seed).collect()
        while len(picked) < num:  # rare: the fraction leaves a 1e-4 chance of falling short
            seed = rng.randint(0, sys.maxsize)
            picked = await self.sample(with_replacement, fraction, seed).collect()
        await offload.run_sized(len(picked), rng.shuffle, picked)
        return picked[:num]
