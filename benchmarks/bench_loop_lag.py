"""How long aiospark blocks the driver's event loop: the max lag of a 10 ms ticker.

    python benchmarks/bench_loop_lag.py                 # the four cases, 2 workers, 3 rounds
    python benchmarks/bench_loop_lag.py --quick         # smaller data, one round (~10 s)
    python benchmarks/bench_loop_lag.py --only collect,map --rounds 5 --json lag.json

The driver lives in the user's event loop (a web service, the asyncio REPL), so
no aiospark code may run on that loop for a time proportional to the data.  A
ticker task sleeps 10 ms at a time and records how late each wake-up is; the
figure is the largest delay seen while the case runs (worst of ``--rounds``).
The goal is at most 50 ms for each case:

- ``startup``: ``await aiospark.Context(workers=N).start()`` (a fresh embedded cluster);
- ``collect``: ``collect()`` of 1 M ``(int, [10 floats])`` records from one partition
  (also printed for 20 partitions, as ``collect20``);
- ``map``: ``collect_as_map()`` of 1 M ``(int, int)`` pairs;
- ``parallelize``: ``parallelize()`` of a 5 M-item list, then ``count()`` of it.

The records are generated on the workers (the list for ``parallelize`` before
the ticker starts): only aiospark's own work on the driver is measured.
Between cases the loop turns and garbage is collected, outside the ticker:
freeing the last case's million records (a few hundred ms here, on whichever
thread drops them) is the program's cost, not the next case's.  For the
collect cases, the table also shows how long one full garbage collection takes
while the result is held: CPython runs such collections now and then, and
they visit every object the program holds, aiospark's results included.  The
ticker's own lag on an idle loop is printed too, as the floor of what this
machine can show.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiospark

#: The ticker's period, and the most a case may delay one of its wake-ups.
TICK = 0.010
GOAL_MS = 50.0
CASES = ("startup", "collect", "collect20", "map", "parallelize")


class LagMeter:
    """An async context manager running a ticker on the loop; ``max_ms`` is its worst delay.

    Each wake-up of ``asyncio.sleep(period)`` that comes later than ``period``
    counts as lag; the wake-up still pending when the block ends counts too,
    so a stall at the very end is not missed.
    """

    def __init__(self, period: float = TICK) -> None:
        self.period = period
        self.max_ms = 0.0
        self.ticks = 0
        self._since = 0.0
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> LagMeter:
        self._since = time.perf_counter()
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)  # the ticker is waiting before the measured code starts
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self._note(time.perf_counter() - self._since - self.period)

    def _note(self, late: float) -> None:
        self.max_ms = max(self.max_ms, late * 1000)

    async def _tick(self) -> None:
        while True:
            self._since = time.perf_counter()
            await asyncio.sleep(self.period)
            self._note(time.perf_counter() - self._since - self.period)
            self.ticks += 1


async def measured(job: Callable[[], Awaitable[Any]]) -> tuple[float, float, Any]:
    """Run ``job()`` under a ``LagMeter``: (max lag in ms, seconds, its result)."""
    start = time.perf_counter()
    async with LagMeter() as meter:
        value = await job()
    return meter.max_ms, time.perf_counter() - start, value


def record(i: int) -> tuple[int, list[float]]:
    """One ``(int, [10 floats])`` record, its floats all distinct (no pickle memo sharing)."""
    return i, [i + j / 16 for j in range(10)]


async def settle() -> None:
    """Let the loop drop what the last case held, then collect what it left."""
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()


def full_collection_ms() -> float:
    """How long one full garbage collection takes now, in ms."""
    start = time.perf_counter()
    gc.collect()
    return (time.perf_counter() - start) * 1000


async def case_startup(workers: int, _: Any) -> tuple[float, float]:
    """Max lag while a fresh embedded cluster starts (its stop is not measured)."""
    holder: list[aiospark.Context] = []

    async def start() -> None:
        holder.append(await aiospark.Context(workers=workers).start())

    try:
        lag, seconds, _ = await measured(start)
    finally:
        for ctx in holder:
            await ctx.stop()
    return lag, seconds


async def case_collect(
    ctx: aiospark.Context, records: int, partitions: int, held_gc: list[float]
) -> tuple[float, float]:
    """Max lag while ``records`` generated records are collected from ``partitions``.

    Appends to ``held_gc`` how long a full collection takes while the result is held.
    """
    rdd = ctx.range(records, num_slices=partitions).map(record)
    lag, seconds, got = await measured(rdd.collect)
    assert len(got) == records and got[-1] == record(records - 1), "collect lost records"
    held_gc.append(full_collection_ms())
    return lag, seconds


async def case_map(ctx: aiospark.Context, pairs: int) -> tuple[float, float]:
    """Max lag while ``pairs`` generated pairs are collected as a dict."""
    rdd = ctx.range(pairs, num_slices=ctx.default_parallelism).map(lambda i: (i, i))
    lag, seconds, got = await measured(rdd.collect_as_map)
    assert len(got) == pairs and got[pairs - 1] == pairs - 1, "collect_as_map lost pairs"
    return lag, seconds


async def case_parallelize(ctx: aiospark.Context, items: int) -> tuple[float, float]:
    """Max lag while a list of ``items`` ints is parallelized and counted."""
    data = list(range(items))
    lag, seconds, got = await measured(lambda: ctx.parallelize(data).count())
    assert got == items, f"count of parallelized data returned {got}"
    return lag, seconds


async def idle_lag(seconds: float = 1.0) -> float:
    """The ticker's worst delay on an idle loop: what the machine shows with no work at all."""
    lag, _, _ = await measured(lambda: asyncio.sleep(seconds))
    return lag


def sizes(quick: bool) -> dict[str, int]:
    """Records of each case (a tenth with ``quick``)."""
    scale = 10 if quick else 1
    return {"collect": 1_000_000 // scale, "map": 1_000_000 // scale,
            "parallelize": 5_000_000 // scale}


def labels(workers: int, quick: bool) -> dict[str, str]:
    """Each case, in words."""
    n = sizes(quick)
    return {
        "startup": f"start-up ({workers} workers)",
        "collect": f"collect {n['collect']:,} (int, [10 floats]), 1 partition",
        "collect20": f"collect {n['collect']:,} (int, [10 floats]), 20 partitions",
        "map": f"collect_as_map {n['map']:,} pairs",
        "parallelize": f"parallelize {n['parallelize']:,} items + count",
    }


async def measure(
    workers: int, only: list[str], rounds: int, quick: bool = False
) -> dict[str, dict[str, Any]]:
    """Every case in ``only``, ``rounds`` times each: by case, its max lag and more.

    Each case's entry holds ``max_lag_ms`` (the worst of the rounds), ``lags_ms``,
    ``seconds`` (median), ``status`` against ``GOAL_MS`` and, for the collect
    cases, ``full_gc_result_held_ms``; ``"idle"`` holds the idle loop's lag.
    """
    n = sizes(quick)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in only}
    held_gc: dict[str, list[float]] = {"collect": [], "collect20": []}
    report: dict[str, dict[str, Any]] = {"idle": {"max_lag_ms": await idle_lag()}}
    for _ in range(rounds):
        if "startup" in samples:
            samples["startup"].append(await case_startup(workers, None))
    if set(samples) - {"startup"}:
        async with aiospark.Context(workers=workers) as ctx:
            await ctx.parallelize(range(4), 2).collect()  # warm: workers import their modules
            for _ in range(rounds):
                for name, partitions in (("collect", 1), ("collect20", 20)):
                    if name in samples:
                        samples[name].append(
                            await case_collect(ctx, n["collect"], partitions, held_gc[name])
                        )
                        await settle()
                if "map" in samples:
                    samples["map"].append(await case_map(ctx, n["map"]))
                    await settle()
                if "parallelize" in samples:
                    samples["parallelize"].append(await case_parallelize(ctx, n["parallelize"]))
                    await settle()
    for name, runs in samples.items():
        lags = [lag for lag, _ in runs]
        worst = max(lags)
        report[name] = {"max_lag_ms": worst, "lags_ms": lags,
                        "seconds": statistics.median(s for _, s in runs),
                        "goal_ms": GOAL_MS, "status": "met" if worst <= GOAL_MS else "missed"}
        if held_gc.get(name):
            report[name]["full_gc_result_held_ms"] = statistics.median(held_gc[name])
    return report


def print_table(report: dict[str, dict[str, Any]], workers: int, rounds: int, quick: bool) -> None:
    """The figures as a Markdown table."""
    print(f"idle loop: max lag {report['idle']['max_lag_ms']:.1f} ms (the machine's floor)")
    print(f"\n| case | max loop lag (worst of {rounds}) | median | time | "
          f"goal ≤ {GOAL_MS:.0f} ms | a full GC, result held |")
    print("|---|---|---|---|---|---|")
    names = labels(workers, quick)
    for name, entry in report.items():
        if name == "idle":
            continue
        held = entry.get("full_gc_result_held_ms")
        print(f"| {names[name]} | {entry['max_lag_ms']:,.1f} ms | "
              f"{statistics.median(entry['lags_ms']):,.1f} ms | {entry['seconds']:.2f} s | "
              f"{entry['status']} | {'—' if held is None else f'{held:,.0f} ms'} |")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the cases, print the table (and write JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--rounds", type=int, default=None, help="runs per case (default 3)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the data, one round")
    parser.add_argument("--only", default=",".join(CASES),
                        help=f"comma-separated cases, of: {','.join(CASES)}")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown))}; "
                     f"choose from {', '.join(CASES)}")
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    report = asyncio.run(measure(args.workers, args.only, args.rounds, args.quick))
    print_table(report, args.workers, args.rounds, args.quick)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0 if all(r.get("status", "met") == "met" for r in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
