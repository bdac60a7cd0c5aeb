"""What a replicated storage level costs, in CPU-seconds of every process.

    python benchmarks/bench_replication.py                  # 3 workers, 1 M records
    python benchmarks/bench_replication.py --records 2000000 --workers 2

For each level, a fresh cluster persists ``records`` pairs in 12 partitions at that
level and counts them (the job that caches, and pushes the copies), then counts
them again (reading the cache), and prints the CPU-seconds of each job summed
over the driver, master, shuffle service, supervisors and executors
(``bench_cpu``), and its wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench_cpu import tree_cpu_seconds

import aiospark
from aiospark import StorageLevel

LEVELS = ["MEMORY_ONLY", "MEMORY_ONLY_2", "MEMORY_ONLY_SER", "MEMORY_ONLY_SER_2",
          "DISK_ONLY", "DISK_ONLY_2"]


def pair(x: int) -> tuple[int, str]:
    return x, str(x)


async def measure(level_name: str, records: int, workers: int) -> tuple[float, ...]:
    """CPU-seconds and wall seconds of the caching job, then of the cached one."""
    level = getattr(StorageLevel, level_name)
    async with aiospark.Context(workers=workers) as ctx:
        await ctx.range(workers * 4, num_slices=workers * 4).count()  # warm every worker
        rdd = ctx.range(records, num_slices=12).map(pair).persist(level)
        figures = []
        for _ in range(2):
            cpu, wall = tree_cpu_seconds(), time.perf_counter()
            assert await rdd.count() == records
            figures += [tree_cpu_seconds() - cpu, time.perf_counter() - wall]
        return tuple(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--levels", nargs="*", default=LEVELS)
    args = parser.parse_args()
    print(f"{args.records:,} records, {args.workers} workers; CPU-s of all processes (wall s)")
    print(f"{'level':<20} {'caching job':>20} {'cached job':>20}")
    for name in args.levels:
        put_cpu, put_wall, read_cpu, read_wall = asyncio.run(
            measure(name, args.records, args.workers))
        print(f"{name:<20} {put_cpu:>10.2f} ({put_wall:5.2f} s) {read_cpu:>10.2f} "
              f"({read_wall:5.2f} s)", flush=True)


if __name__ == "__main__":
    main()
