"""Soak run: one context serving many mixed jobs, as a web service would (issue 14, item 1).

Each "request" builds its RDDs, runs its actions and keeps nothing, as a
request handler does: shuffles (``reduce_by_key``, a join, a sort), a cached
RDD read twice, a broadcast, and now and then a checkpoint.  Nothing calls
``gc.collect()``: the program's references go the ordinary way, and the
context's cleaner deletes what they held on the cluster.

Reported, at the start (after a warm-up) and at the end, from ``/proc``: the
shuffle directory and the workers' work directories (bytes and files), the
checkpoint directory, and every process's RSS and open file descriptors
(driver, master, shuffle service, worker supervisors and executors).  Also
the peak of the shuffle directory, sampled every tenth of the run.

    python benchmarks/bench_soak.py                # 400 jobs, about a minute or two
    python benchmarks/bench_soak.py --jobs 10000   # the full soak
    python benchmarks/bench_soak.py --no-cleanup   # the same without the cleaner
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import operator
import os
import shutil
import tempfile
import time
from typing import Any

from bench_procfs import descendants, process_stats, role

import aiospark

WARM_UP = 20


def dir_usage(path: str) -> tuple[int, int]:
    """``(bytes, files)`` below ``path``."""
    size = files = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                size += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
            files += 1
    return size, files


def snapshot(root: str, checkpoints: str) -> dict[str, Any]:
    shuffle = dir_usage(os.path.join(root, "shuffle"))
    work = [0, 0]
    for name in os.listdir(root):
        if name.startswith("worker-"):
            size, files = dir_usage(os.path.join(root, name))
            work[0] += size
            work[1] += files
    processes = {}
    roles: dict[str, int] = {}
    for pid in [os.getpid(), *descendants(os.getpid())]:
        try:
            name = "driver" if pid == os.getpid() else role(pid)
            stats = process_stats(pid)
        except OSError:
            continue
        if name == "?":
            continue
        roles[name] = roles.get(name, 0) + 1
        processes[f"{name} {roles[name]}" if name in ("executor", "worker supervisor")
                  else name] = stats
    return {"shuffle": shuffle, "work": tuple(work), "checkpoints": dir_usage(checkpoints),
            "processes": processes}


async def request(ctx: aiospark.Context, i: int, records: int) -> None:
    """One request's jobs; it keeps no RDD."""
    kind = i % 5
    if kind == 0:  # the measured case of issue 14
        pairs = ctx.range(records).map(lambda x: (x, x))
        assert await pairs.reduce_by_key(operator.add, 4).count() == records
    elif kind == 1:  # a cached RDD read twice
        cached = ctx.range(records // 4).map(lambda x: x * 2).cache()
        assert await cached.count() == records // 4
        assert await cached.sum() == (records // 4) * (records // 4 - 1)
    elif kind == 2:  # a broadcast lookup table
        table = ctx.broadcast({k: k * k for k in range(5000)})
        got = await ctx.range(1000, num_slices=4).map(lambda x: table.value[x % 5000]).sum()
        assert got == sum((x % 5000) ** 2 for x in range(1000))
    elif kind == 3:  # a join (two shuffles) and a sort (a sampled range shuffle)
        left = ctx.range(2000).map(lambda x: (x % 100, x))
        right = ctx.range(100).map(lambda x: (x, str(x)))
        assert await left.join(right).count() == 2000
        assert (await ctx.range(5000).map(lambda x: (-x, x)).sort_by_key().first())[1] == 4999
    else:  # now and then a checkpoint
        rdd = ctx.range(1000, num_slices=2).map(lambda x: x + 1)
        if i % 25 == 4:
            rdd.checkpoint()
        assert await rdd.sum() == 500500


def mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def report(start: dict[str, Any], end: dict[str, Any], peak: tuple[int, int],
           collected: dict[str, Any]) -> None:
    print("\n| what | start | end | end, after gc.collect() |")
    print("|---|---|---|---|")
    for key, label in (("shuffle", "shuffle dir"), ("work", "worker work dirs"),
                       ("checkpoints", "checkpoint dir")):
        row = [f"{mib(s[key][0])}, {s[key][1]} files" for s in (start, end, collected)]
        print(f"| {label} | " + " | ".join(row) + " |")
    for name in sorted(end["processes"]):
        cells = []
        for s in (start, end, collected):
            stats = s["processes"].get(name)
            cells.append("-" if stats is None else f"{stats[0]:.0f} MiB RSS, {stats[1]} fds")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\npeak of the shuffle dir (sampled): {mib(peak[0])}, {peak[1]} files")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=400, help="requests to serve (default 400)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--records", type=int, default=200_000,
                        help="records of the reduce_by_key request (default 200000)")
    parser.add_argument("--no-cleanup", action="store_true", help="Context(cleanup=False)")
    args = parser.parse_args()
    checkpoints = tempfile.mkdtemp(prefix="aiospark-soak-ckpt-")
    try:
        async with aiospark.Context(workers=args.workers, cleanup=not args.no_cleanup) as ctx:
            ctx.set_checkpoint_dir(checkpoints)
            root = ctx._cluster.root
            for i in range(min(WARM_UP, args.jobs)):
                await request(ctx, i, args.records)
            start = snapshot(root, checkpoints)
            peak = start["shuffle"]
            began = time.perf_counter()
            step = max(1, args.jobs // 10)
            for i in range(WARM_UP, args.jobs):
                await request(ctx, i, args.records)
                if i % step == 0:
                    usage = dir_usage(os.path.join(root, "shuffle"))
                    peak = max(peak, usage)
                    print(f"job {i}: shuffle dir {mib(usage[0])}, {usage[1]} files, "
                          f"{time.perf_counter() - began:.0f} s", flush=True)
            elapsed = time.perf_counter() - began
            await ctx._clean_now()
            end = snapshot(root, checkpoints)
            gc.collect()
            await ctx._clean_now()
            await asyncio.sleep(0.5)  # the workers apply what they were told (a report only)
            collected = snapshot(root, checkpoints)
            print(f"\n{args.jobs} requests ({args.jobs - WARM_UP} measured) in {elapsed:.0f} s, "
                  f"cleanup={'off' if args.no_cleanup else 'on'}, cleaned: "
                  f"{ctx._cleaner.cleaned}")
            report(start, end, peak, collected)
    finally:
        shutil.rmtree(checkpoints, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
