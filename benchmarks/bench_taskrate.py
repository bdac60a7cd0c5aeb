"""Trivial tasks per second and the CPU each process role spends per task.

    python benchmarks/bench_taskrate.py --workers 2 --tasks 5000 --rounds 3
    python benchmarks/bench_taskrate.py --workers 64 --tasks 10000
    python benchmarks/bench_taskrate.py --job-group nightly   # tasks carrying properties

Starts an embedded cluster of ``--workers`` workers, waits until every one is
connected, warms up, then runs ``parallelize(range(N), N).map(inc).count()`` (one
task per element) ``--rounds`` times.  For each round it prints the rate and the
CPU-seconds (user + system, from /proc) of every role, in microseconds per task:
the driver, the master, the shuffle service, the workers' supervisors and their
executors.  CPU-seconds barely depend on how busy the machine is, wall time does.
It also prints the tiny job's p50 (eight items in two partitions).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from bench_common import inc
from bench_cpu import cpu_by_role as cpu_by_process

import aiospark


def cpu_by_role() -> dict[str, float]:
    """CPU-seconds used so far by this process and its descendants, summed by role
    (``worker`` is a worker's supervisor, ``executor`` the process running its tasks)."""
    used: dict[str, float] = {}
    for role, seconds in cpu_by_process().items():
        role = role.split()[0]  # "worker 12" -> "worker"
        used[role] = used.get(role, 0.0) + seconds
    return used


def per_role(before: dict[str, float], after: dict[str, float], count: int) -> str:
    """The CPU used between two readings, in microseconds per one of ``count``, all
    processes and by role."""
    used = {role: after[role] - before.get(role, 0.0) for role in after}
    parts = ", ".join(f"{role} {1e6 * s / count:.0f}" for role, s in sorted(used.items()))
    return f"all {1e6 * sum(used.values()) / count:.0f} ({parts})"


async def run(args: argparse.Namespace) -> None:
    """Start the cluster, then time the rounds."""
    start = time.perf_counter()
    async with aiospark.Context(workers=args.workers) as ctx:
        print(f"{args.workers} workers ready in {time.perf_counter() - start:.2f} s", flush=True)
        await ctx.parallelize(range(args.workers * 4), args.workers * 4).map(inc).count()
        tiny = []
        before = cpu_by_role()
        for _ in range(args.tiny):
            t0 = time.perf_counter()
            await ctx.parallelize(range(8), 2).map(inc).collect()
            tiny.append((time.perf_counter() - t0) * 1000)
        if tiny:
            print(f"tiny job p50 {statistics.median(tiny):.2f} ms over {len(tiny)}; CPU us/job: "
                  f"{per_role(before, cpu_by_role(), len(tiny))}", flush=True)
        if args.idle:
            before = cpu_by_role()
            await asyncio.sleep(args.idle)
            after = cpu_by_role()
            parts = ", ".join(f"{role} {after[role] - before.get(role, 0.0):.2f}"
                              for role in sorted(after))
            print(f"idle for {args.idle:.0f} s: CPU-s {parts}", flush=True)
        n = args.tasks
        if args.job_group:  # every task then carries the job's local properties
            ctx.set_job_group(args.job_group, f"bench_taskrate {n} tasks")
        for _ in range(args.rounds):
            before = cpu_by_role()
            t0 = time.perf_counter()
            count = await ctx.parallelize(range(n), n).map(inc).count()
            wall = time.perf_counter() - t0
            after = cpu_by_role()
            assert count == n, count
            print(f"{n} tasks: {n / wall:,.0f} tasks/s; CPU us/task: "
                  f"{per_role(before, after, n)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=0.0,
                        help="first measure the idle cluster's CPU over this many seconds")
    parser.add_argument("--tiny", type=int, default=50, help="tiny jobs timed for the p50")
    parser.add_argument("--job-group", default="",
                        help="run the rounds in this job group (tasks carry its properties)")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
