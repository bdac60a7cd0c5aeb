"""Sort more data than the workers may hold: ``sort_by_key`` of 20 M (int, int) pairs.

    python benchmarks/bench_bigsort.py                    # 20 M records, budgets = 1/4 of the data
    python benchmarks/bench_bigsort.py --records 2000000 --fraction 0.25 --serial

The pairs are generated on the workers; each worker's ``worker_memory`` budget
is ``fraction`` of the records' in-memory size divided among the workers, so the
sort must spill.  Prints the time, what was spilled, and each worker's peak RSS
(VmHWM) against its budget plus 300 MB, the issue's bound.  ``--serial`` also
times ``sorted()`` of the same pairs in this process, for the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

import aiospark
from aiospark.sizeof import records_size

MB = 1 << 20
#: The issue's allowance over the budget for the interpreter, libraries and buffers.
RSS_SLACK = 300 * MB


def scrambled_pair(i: int) -> tuple[int, int]:
    """A pseudo-random key (a multiplicative hash of ``i``) with ``i`` as the value."""
    return (i * 2654435761) % 4294967296, i


def peak_rss(pid: int) -> int:
    """The process's resident-set high-water mark in bytes (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def in_memory_size(records: int) -> int:
    """Estimated bytes of ``records`` generated pairs held in one list."""
    sample = [scrambled_pair(i) for i in range(0, records, max(1, records // 100_000))]
    return records_size(sample) * records // len(sample)


async def run(records: int, workers: int, fraction: float, partitions: int) -> dict:
    data_bytes = in_memory_size(records)
    budget = int(data_bytes * fraction / workers)
    print(f"{records:,} pairs, about {data_bytes / MB:,.0f} MB in memory; "
          f"{workers} workers with a {budget / MB:,.0f} MB budget each")
    async with aiospark.Context(workers=workers, worker_memory=budget) as ctx:
        # Each worker's executor (its task process), whoever forked it.
        pids = {link.info.worker_id: link.info.pid for link in ctx._scheduler.links.values()}
        pairs = ctx.range(records, num_slices=partitions).map(scrambled_pair)
        start = time.perf_counter()
        ordered = pairs.sort_by_key(num_partitions=partitions)
        checks = await ordered.map_partitions(_check_sorted).collect()
        seconds = time.perf_counter() - start
        assert sum(c[0] for c in checks) == records, "records were lost or duplicated"
        assert all(c[1] for c in checks), "a partition came out unsorted"
        bounds = [(c[2], c[3]) for c in checks if c[0]]
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(bounds))
        spilled = sum(h["spilled"]["bytes"] for h in await healths(ctx))
        rss = {name: peak_rss(pid) for name, pid in pids.items()}
    print(f"sort_by_key + check: {seconds:.1f} s; spilled {spilled / MB:,.0f} MB")
    worst = max(rss.values())
    for name, value in sorted(rss.items()):
        verdict = "ok" if value <= budget + RSS_SLACK else "OVER"
        print(f"  {name}: peak RSS {value / MB:,.0f} MB "
              f"(budget {budget / MB:,.0f} + 300 MB = {(budget + RSS_SLACK) / MB:,.0f} MB) "
              f"{verdict}")
    return {"seconds": seconds, "budget": budget, "peak_rss": worst, "spilled": spilled,
            "ok": worst <= budget + RSS_SLACK}


def _check_sorted(records):
    count, ordered, first, last, previous = 0, True, None, None, None
    for key, _ in records:
        if previous is not None and key < previous:
            ordered = False
        if first is None:
            first = key
        previous = last = key
        count += 1
    return [(count, ordered, first, last)]


async def healths(ctx) -> list[dict]:
    """Every worker's ``/v1/health`` answer (its memory, blocks and spills)."""
    answers = []
    for link in ctx._scheduler.links.values():
        async with ctx._session.get(f"{link.info.url}/v1/health") as resp:
            answers.append(await resp.json())
    return answers


def serial(records: int) -> float:
    start = time.perf_counter()
    pairs = [scrambled_pair(i) for i in range(records)]
    pairs.sort(key=operator.itemgetter(0))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fraction", type=float, default=0.25,
                        help="all workers' budgets together, as a fraction of the data")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--serial", action="store_true", help="also time sorted() in-process")
    args = parser.parse_args()
    result = asyncio.run(run(args.records, args.workers, args.fraction, args.partitions))
    if args.serial:
        seconds = serial(args.records)
        print(f"serial generate + sort: {seconds:.1f} s "
              f"(aiospark {seconds / result['seconds']:.2f}x serial)")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
