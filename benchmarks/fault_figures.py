"""Fault-tolerance figures: word count with a worker killed halfway, and a fault-injected run.

    python benchmarks/fault_figures.py [--size-mb 100] [--workers 3]

Prints (and the closing notes of issue 4 quote):
- the time to finish word count with one of N workers killed halfway through,
  as a ratio of the failure-free time (median of the failure-free runs);
- a run under ``AIOSPARK_FAULTS``: requests and tasks made to fail, tasks
  retried, and whether the result was exact.
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import os
import signal
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_corpus import ensure_corpus

import aiospark

DATA = Path(__file__).resolve().parent / "data"
FAULTS = "fail=0.2,hang=0.05,hang_seconds=0.5,task_fail=0.2,seed=7"


def word_count(ctx: aiospark.Context, path: Path, partitions: int) -> aiospark.RDD:
    return (
        ctx.text_file(str(path), partitions)
        .flat_map(str.split)
        .map(lambda w: (w, 1))
        .reduce_by_key(operator.add)
    )


async def timed_count(ctx: aiospark.Context, path: Path, partitions: int) -> tuple[float, dict]:
    started = time.perf_counter()
    counts = dict(await word_count(ctx, path, partitions).collect())
    return time.perf_counter() - started, counts


async def kill_halfway(path: Path, workers: int, partitions: int, truth: Counter) -> None:
    async with aiospark.Context(workers=workers) as ctx:
        await ctx.parallelize([("warm", 1)], 1).reduce_by_key(operator.add).collect()
        clean = []
        for _ in range(3):
            seconds, counts = await timed_count(ctx, path, partitions)
            assert counts == truth, "failure-free run gave a wrong result"
            clean.append(seconds)
        baseline = statistics.median(clean)
        events = ctx.progress()
        job = asyncio.ensure_future(timed_count(ctx, path, partitions))
        finished = 0
        async for event in events:  # kill one worker when half the map tasks are done
            if event["event"] == "task_finished":
                finished += 1
                if finished >= partitions // 2:
                    break
        events.close()
        victim = ctx._cluster.processes["worker-0"].pid
        os.kill(victim, signal.SIGKILL)
        seconds, counts = await job
        exact = counts == truth
    print(f"word count, {workers} workers, {partitions} splits: failure-free median "
          f"{baseline:.2f}s; one worker killed halfway {seconds:.2f}s "
          f"= {seconds / baseline:.2f}x; result exact: {'yes' if exact else 'NO'}")


async def fault_injected(path: Path, workers: int, partitions: int, truth: Counter) -> None:
    os.environ["AIOSPARK_FAULTS"] = FAULTS
    os.environ["AIOSPARK_SHUFFLE_LOCAL_READS"] = "0"  # every read through a shuffle service
    try:
        async with aiospark.Context(workers=workers, max_task_attempts=8) as ctx:
            events = ctx.progress()
            seconds, counts = await timed_count(ctx, path, partitions)
            retried = sum(1 for e in events.drain() if e["event"] == "task_failed")
            launched_ok = sum(1 for e in events.drain() if e["event"] == "task_finished")
            events.close()
            injected: Counter = Counter()
            urls = [link.info.url for link in ctx._scheduler.links.values()]
            urls += [ctx._cluster.master_url, ctx._cluster.shuffle_url]
            for url in urls:
                async with ctx._session.get(f"{url}/v1/health") as resp:
                    injected.update((await resp.json()).get("faults", {}))
    finally:
        del os.environ["AIOSPARK_FAULTS"], os.environ["AIOSPARK_SHUFFLE_LOCAL_READS"]
    del launched_ok
    requests = injected["request_total"] or 1
    failed = injected["request_fail"] / requests
    hung = injected["request_hang"] / requests
    print(f"fault injection ({FAULTS}): {seconds:.2f}s; {injected['request_total']} requests, "
          f"{failed:.1%} failed, {hung:.1%} hung; {injected['shuffle_read_total']} shuffle reads; "
          f"{injected['task_fail']} of {injected['task_total']} task runs failed on purpose; "
          f"tasks retried {retried}; result exact: {'yes' if counts == truth else 'NO'}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=100)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only-faults", action="store_true", help="skip the kill-halfway run")
    args = parser.parse_args()
    path, _ = ensure_corpus(DATA, args.size_mb, args.seed)
    with open(path, encoding="utf-8") as f:
        truth = Counter(w for line in f for w in line.split())
    partitions = args.workers * 4
    if not args.only_faults:
        await kill_halfway(path, args.workers, partitions, truth)
    await fault_injected(path, args.workers, partitions, truth)


if __name__ == "__main__":
    asyncio.run(main())
