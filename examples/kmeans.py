"""k-means on an embedded aiospark cluster: numpy vectors cached on the workers, centres broadcast.

    python examples/kmeans.py                 # 200,000 points x 32 dims, k = 8, 5 iterations
    python examples/kmeans.py --quick         # 5,000 points x 8 dims, k = 4
    python examples/kmeans.py --per-record    # one distance computation per point and centre

The points are generated on the workers in blocks (a numpy array each, a few
per partition) and cached there, so only the first iteration generates them.
Each iteration broadcasts the current centres; every partition assigns its
points to their nearest centre with vectorised numpy code and sends back one
``(sum of points, count)`` per cluster, which the driver merges
(``reduce_by_key_locally``: no shuffle) into the new centres.  With
``--per-record`` the points are cached one numpy row per record and each is
assigned by a Python loop over the centres, like Spark's classic example.

When matplotlib is importable, the clusters (first two dimensions of a sample
of the points) are plotted to ``--plot`` (default ``kmeans.png``); without it
the plot is skipped.  It prints the time of each iteration, then the centres:

    iteration 1: 0.034 s (generates and caches the points)
    iteration 2: 0.004 s
    ...
    plot written to kmeans.png
    centres (first 4 of 8 dimensions):
      0: [ 4.902 -1.516  1.588  4.572]
    ...
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

import aiospark

#: Points generated per block (the cached unit of the vectorised variant).
BLOCK_ROWS = 10_000
#: How far apart the true centres are, against the points' unit spread.
SPREAD = 4.0

Stats = tuple[np.ndarray, int]  # (sum of a cluster's points, how many)


# -- the data ------------------------------------------------------------------------------------


def true_centres(seed: int, dim: int, k: int) -> np.ndarray:
    """The centres the points are drawn around."""
    return SPREAD * np.random.default_rng([seed, 2**31]).standard_normal((k, dim))


def point_block(seed: int, points: int, dim: int, k: int, block: int) -> np.ndarray:
    """Block ``block`` of the generated points (``BLOCK_ROWS`` rows, fewer in the last one).

    Deterministic: the same arguments give the same array in any process.

    >>> point_block(1, 25_000, 4, 3, 2).shape
    (5000, 4)
    """
    rows = min(BLOCK_ROWS, points - block * BLOCK_ROWS)
    rng = np.random.default_rng([seed, block])
    labels = rng.integers(0, k, rows)
    return true_centres(seed, dim, k)[labels] + rng.standard_normal((rows, dim))


def point_blocks(points: int) -> int:
    """How many blocks ``points`` points make."""
    return -(-points // BLOCK_ROWS)


def initial_centres(seed: int, points: int, dim: int, k: int) -> np.ndarray:
    """``k`` distinct points of the first block, chosen with the seed."""
    first = point_block(seed, points, dim, k, 0)
    rng = np.random.default_rng([seed, 2**32])
    return first[rng.choice(len(first), size=k, replace=False)].copy()


# -- one iteration's work ------------------------------------------------------------------------


def nearest(batch: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of every row of ``batch`` (vectorised)."""
    distances = (
        np.einsum("ij,ij->i", batch, batch)[:, None]
        - 2.0 * batch @ centres.T
        + np.einsum("ij,ij->i", centres, centres)[None, :]
    )
    return distances.argmin(axis=1)


def batch_stats(batches: Iterable[np.ndarray], centres: np.ndarray) -> Iterator[tuple[int, Stats]]:
    """``(cluster, (sum of its points, count))`` for every cluster, over ``batches``."""
    k, dim = centres.shape
    sums = np.zeros((k, dim))
    counts = np.zeros(k, dtype=np.int64)
    one_hot = np.eye(k)
    for batch in batches:
        labels = nearest(batch, centres)
        sums += one_hot[labels].T @ batch
        counts += np.bincount(labels, minlength=k)
    return ((j, (sums[j], int(counts[j]))) for j in range(k))


def closest(point: np.ndarray, centres: list[np.ndarray]) -> int:
    """Index of the centre nearest ``point``, one centre at a time (per-record code)."""
    best, best_distance = 0, float("inf")
    for j, centre in enumerate(centres):
        distance = np.sum((point - centre) ** 2)
        if distance < best_distance:
            best, best_distance = j, distance
    return best


def add_stats(a: Stats, b: Stats) -> Stats:
    """Merge two ``(sum, count)`` pairs of one cluster."""
    return a[0] + b[0], a[1] + b[1]


def new_centres(stats: dict[int, Stats], old: np.ndarray) -> np.ndarray:
    """The means of the clusters; a cluster that lost all its points keeps its centre."""
    centres = old.copy()
    for j, (total, count) in stats.items():
        if count:
            centres[j] = total / count
    return centres


# -- on the cluster ----------------------------------------------------------------------------


def cached_points(
    ctx: aiospark.Context,
    seed: int,
    points: int,
    dim: int,
    k: int,
    partitions: int,
    per_record: bool = False,
) -> aiospark.RDD:
    """The points, generated on the workers and cached: numpy blocks, or one row per record."""
    blocks = point_blocks(points)
    rdd = ctx.parallelize(range(blocks), min(partitions, blocks)).map(
        lambda block: point_block(seed, points, dim, k, block)
    )
    if per_record:
        rdd = rdd.flat_map(list)  # rows: views into their block
    return rdd.cache()


async def iterate(
    ctx: aiospark.Context, points: aiospark.RDD, centres: np.ndarray, per_record: bool = False
) -> np.ndarray:
    """One k-means iteration on the cluster: the new centres."""
    if per_record:
        shared = ctx.broadcast(list(centres))
        pairs = points.map(lambda p: (closest(p, shared.value), (p, 1)))
    else:
        shared = ctx.broadcast(centres)
        pairs = points.map_partitions(lambda batches: batch_stats(batches, shared.value))
    try:
        stats = await pairs.reduce_by_key_locally(add_stats)
    finally:
        shared.destroy()
    return new_centres(stats, centres)


async def kmeans(
    ctx: aiospark.Context,
    *,
    seed: int,
    points: int,
    dim: int,
    k: int,
    iterations: int,
    partitions: int | None = None,
    per_record: bool = False,
    on_iteration: Callable[[int, float], Any] | None = None,
) -> tuple[np.ndarray, aiospark.RDD]:
    """Run k-means on ``ctx``; returns the final centres and the cached points.

    ``on_iteration(i, seconds)`` is called after each iteration (the first one
    includes generating and caching the points).
    """
    rdd = cached_points(
        ctx, seed, points, dim, k, partitions or 2 * ctx.default_parallelism, per_record
    )
    centres = initial_centres(seed, points, dim, k)
    for i in range(iterations):
        start = time.perf_counter()
        centres = await iterate(ctx, rdd, centres, per_record)
        if on_iteration is not None:
            on_iteration(i, time.perf_counter() - start)
    return centres, rdd


# -- the same in plain Python (the reference of the tests and the benchmark) --------------------


def serial_blocks(seed: int, points: int, dim: int, k: int) -> list[np.ndarray]:
    """All the blocks, in one process."""
    return [point_block(seed, points, dim, k, b) for b in range(point_blocks(points))]


def serial_iteration(data: list[np.ndarray], centres: np.ndarray, per_record: bool) -> np.ndarray:
    """One iteration in one process: ``data`` is the blocks, or the rows with ``per_record``."""
    stats: dict[int, Stats] = {}
    if per_record:
        shared = list(centres)
        records: Iterable[tuple[int, Stats]] = ((closest(p, shared), (p, 1)) for p in data)
    else:
        records = batch_stats(data, centres)
    for j, value in records:
        stats[j] = add_stats(stats[j], value) if j in stats else value
    return new_centres(stats, centres)


def kmeans_serial(
    seed: int, points: int, dim: int, k: int, iterations: int, per_record: bool = False
) -> np.ndarray:
    """k-means in one process, from the same points and initial centres."""
    data = serial_blocks(seed, points, dim, k)
    if per_record:
        data = [row for block in data for row in block]
    centres = initial_centres(seed, points, dim, k)
    for _ in range(iterations):
        centres = serial_iteration(data, centres, per_record)
    return centres


# -- the plot ------------------------------------------------------------------------------------


def plot(path: str, sample: np.ndarray, centres: np.ndarray) -> bool:
    """Scatter ``sample``'s first two dimensions by cluster; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = nearest(sample, centres)
    figure, axes = plt.subplots(figsize=(7, 6))
    axes.scatter(sample[:, 0], sample[:, 1], c=labels, s=2, cmap="tab10", alpha=0.5)
    axes.scatter(centres[:, 0], centres[:, 1], c="black", marker="x", s=80, label="centres")
    axes.set_xlabel("dimension 0")
    axes.set_ylabel("dimension 1")
    axes.set_title(f"k-means: {len(centres)} clusters (first two dimensions)")
    axes.legend(loc="best")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


# -- the command line ---------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> np.ndarray:
    """Start the cluster, run k-means, print the timings; returns the centres."""

    def report(i: int, seconds: float) -> None:
        note = " (generates and caches the points)" if i == 0 else ""
        print(f"iteration {i + 1}: {seconds:.3f} s{note}", flush=True)

    async with aiospark.Context(workers=args.workers) as ctx:
        centres, rdd = await kmeans(
            ctx,
            seed=args.seed,
            points=args.points,
            dim=args.dim,
            k=args.k,
            iterations=args.iterations,
            partitions=args.partitions,
            per_record=args.per_record,
            on_iteration=report,
        )
        sample = None
        if not args.per_record and args.plot:
            sample = (await rdd.take(1))[0]  # the first block
    if sample is not None and plot(args.plot, sample, centres):
        print(f"plot written to {args.plot}")
    return centres


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("-k", type=int, default=8, help="number of clusters")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--partitions", type=int, default=None, help="default: 2 x cores")
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    parser.add_argument("--per-record", action="store_true", help="per-point Python distance code")
    parser.add_argument("--plot", default="kmeans.png", help="PNG to write ('' for none)")
    parser.add_argument("--quick", action="store_true", help="5,000 points x 8 dims, k = 4")
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.dim, args.k = 5_000, 8, 4
    if min(args.points, args.dim, args.k, args.iterations) < 1 or args.k > args.points:
        parser.error("sizes must be positive, and -k at most --points")
    return args


async def main(argv: list[str] | None = None) -> None:
    centres = await run(parse_args(argv))
    np.set_printoptions(precision=3, suppress=True, linewidth=100)
    print(f"centres (first 4 of {centres.shape[1]} dimensions):")
    for j, centre in enumerate(centres):
        print(f"  {j}: {centre[:4]}")


if __name__ == "__main__":
    asyncio.run(main())
