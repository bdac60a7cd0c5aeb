"""Profile one benchmark workload across the driver and every cluster process.

    python benchmarks/profile_workload.py wordcount          # py-spy over all processes
    python benchmarks/profile_workload.py rbk --pyinstrument # plus pyinstrument on the driver
    python benchmarks/profile_workload.py kmeans             # later iterations (per-record)

Runs the workload as ``run.py`` does while ``py-spy record --subprocesses`` samples
this process and its children (master, shuffle service, workers; needs root or
ptrace permission), then prints, per process role, the busy time and the top
functions by self and by inclusive samples.  Raw collapsed stacks are kept in
``--out`` for flame graphs.  Needs ``pip install py-spy`` (and ``pyinstrument``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import operator
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import blas_threads  # noqa: F401 - before numpy: one BLAS thread per process
import numpy as np
from bench_aiospark import tiny_job
from bench_apps import example, use_broadcast
from bench_common import WORKLOADS, inc, mod_pair, word_one
from bench_corpus import ensure_corpus
from bench_cpu import cpu_by_role, role_of

import aiospark

HERE = Path(__file__).resolve().parent
PROCESS_FRAME = re.compile(r'^process (\d+):"(.*)"$')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=[w for w in WORKLOADS if w in REPEATS])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size-mb", type=float, default=100.0)
    parser.add_argument(
        "--text-partitions",
        type=int,
        default=None,
        help="min_partitions of the word-count input (default: aiospark's)",
    )
    parser.add_argument(
        "--vectorised",
        action="store_true",
        help="kmeans: profile the vectorised variant instead of the per-record one",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs to sample (default: per workload)"
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="no py-spy: print the CPU seconds each role used per run (from /proc), unslowed",
    )
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=15, help="functions listed per role")
    parser.add_argument(
        "--pyinstrument",
        action="store_true",
        help="also profile the driver with pyinstrument (adds overhead)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "profiles")
    return parser.parse_args(argv)


# -- the workloads, repeated enough to collect samples -----------------------------------------


async def prepare_job(
    name: str, ctx: aiospark.Context, corpus: Path | None, args: argparse.Namespace
) -> Callable[[], Awaitable]:
    """One run of ``name`` on ``ctx`` (start-up is handled separately), after any set-up.

    Each call builds fresh lineage: rerunning the same shuffled RDD would reuse
    its map outputs and measure nothing.  k-means caches its points first (not
    sampled), so the runs are later iterations.
    """
    slices = ctx.default_parallelism * 2
    if name == "tiny":
        return lambda: tiny_job(ctx)
    if name == "tasks":
        return lambda: ctx.parallelize(range(1000), 1000).map(inc).count()
    if name == "wordcount":
        return lambda: (
            ctx.text_file(str(corpus), args.text_partitions)
            .flat_map(str.split)
            .map(word_one)
            .reduce_by_key(operator.add)
            .collect()
        )
    if name == "sort":
        return lambda: ctx.range(2_000_000, num_slices=slices).map(mod_pair).sort_by_key().count()
    if name == "pagerank":
        pr = example("pagerank")

        async def pagerank() -> None:
            seed = pr.parse_args([]).seed
            links = pr.cached_links(pr.cluster_edges(ctx, 100_000, 1_000_000, seed), slices)
            await pr.pagerank(links, 5, slices).collect()
            links.unpersist()

        return pagerank
    if name == "kmeans":
        km = example("kmeans")
        per_record = not args.vectorised
        sizes = {"seed": km.parse_args([]).seed, "points": 200_000, "dim": 32, "k": 8}
        points = km.cached_points(ctx, **sizes, partitions=slices, per_record=per_record)
        centres = km.initial_centres(**sizes)
        await km.iterate(ctx, points, centres, per_record)  # generates and caches the points
        return lambda: km.iterate(ctx, points, centres, per_record)
    if name == "broadcast":
        array = np.arange(200_000_000 // 8, dtype=np.int64)
        cores = ctx.default_parallelism

        async def broadcast() -> None:
            shared = ctx.broadcast(array)
            await ctx.parallelize(range(cores), cores).map(use_broadcast(shared)).collect()
            shared.destroy()

        return broadcast
    return lambda: (
        ctx.range(2_000_000, num_slices=slices).map(mod_pair).reduce_by_key(operator.add).count()
    )


REPEATS = {
    "tiny": 200,
    "tasks": 3,
    "wordcount": 1,
    "rbk": 3,
    "startup": 3,
    "sort": 3,
    "pagerank": 1,
    "kmeans": 3,
    "broadcast": 3,
}


async def run_cpu_accounting(args: argparse.Namespace, corpus: Path | None) -> list[float]:
    """Run the workload without a profiler; print each run's wall time and CPU time by role."""
    times = []
    async with aiospark.Context(workers=args.workers) as ctx:
        job = await prepare_job(args.workload, ctx, corpus, args)
        for _ in range(args.repeats or REPEATS[args.workload]):
            before = cpu_by_role()
            start = time.perf_counter()
            await job()
            times.append(time.perf_counter() - start)
            after = cpu_by_role()
            used = {role: after[role] - before.get(role, 0.0) for role in after}
            total = sum(used.values())
            parts = ", ".join(f"{role} {seconds:.2f}" for role, seconds in sorted(used.items()))
            print(
                f"run: {times[-1]:.3f} s wall, {total:.2f} CPU-s in all ({parts}); "
                f"CPU / wall {total / times[-1]:.2f}",
                flush=True,
            )
    return times


async def run_workload(args: argparse.Namespace, corpus: Path | None, raw: Path) -> list[float]:
    """Run the workload ``REPEATS`` times under py-spy; return the wall time of each run.

    Start-up is sampled from before the first context; the other workloads only
    once their context is ready, so the processes' own start-up is left out.
    """
    times = []
    context = aiospark.Context  # import the driver's modules before sampling
    repeats = args.repeats or REPEATS[args.workload]
    if args.workload == "startup":
        with sampling(raw, args.rate):
            for _ in range(repeats):
                start = time.perf_counter()
                async with context(workers=args.workers):
                    times.append(time.perf_counter() - start)
        return times
    async with context(workers=args.workers) as ctx:
        job = await prepare_job(args.workload, ctx, corpus, args)
        with sampling(raw, args.rate):
            for _ in range(repeats):
                start = time.perf_counter()
                await job()
                times.append(time.perf_counter() - start)
    return times


# -- sampling -----------------------------------------------------------------------------------


@contextlib.contextmanager
def sampling(raw: Path, rate: int) -> Iterator[None]:
    """py-spy sampling this process and its children meanwhile, into a collapsed-stack file."""
    exe = shutil.which("py-spy")
    if exe is None:
        sys.exit("py-spy is not installed: pip install py-spy")
    argv = [
        exe,
        "record",
        "--subprocesses",
        "--nonblocking",
        "--function",
        "--format",
        "raw",
        "--rate",
        str(rate),
        "--output",
        str(raw),
        "--pid",
        str(os.getpid()),
    ]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # let it attach to every process before the workload starts
    if spy.poll() is not None:
        sys.exit(f"py-spy failed: {spy.stderr.read().decode() if spy.stderr else ''}")
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # it writes its output on SIGINT
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


def load_stacks(raw: Path) -> dict[str, list[tuple[str, list[str], int]]]:
    """Collapsed stacks by role: (pid, frames root first, samples)."""
    by_role: dict[str, list[tuple[str, list[str], int]]] = collections.defaultdict(list)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        pid, role = "?", "driver"
        while frames and (match := PROCESS_FRAME.match(frames[0])):
            pid, role = match.group(1), role_of(match.group(2))
            frames = frames[1:]
        by_role[role].append((pid, frames, int(count)))
    return by_role


def short(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py:12)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1]}" if where else name


def summarize(role: str, stacks: list[tuple[str, list[str], int]], rate: int, top: int) -> None:
    """Print busy seconds per process, then the top self and inclusive functions."""
    busy: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for pid, frames, count in stacks:
        busy[pid] += count
        if frames:
            own[short(frames[-1])] += count
        for frame in {short(f) for f in frames}:
            inclusive[frame] += count
    total = sum(busy.values())
    per_pid = ", ".join(f"pid {pid} {n / rate:.2f} s" for pid, n in sorted(busy.items()))
    print(f"\n== {role}: {total / rate:.2f} s busy ({per_pid})")
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"   top {title}:")
        for frame, n in counter.most_common(top):
            print(f"   {100 * n / total:5.1f}%  {n / rate:6.2f} s  {frame}")


def main(argv: list[str] | None = None) -> int:
    """Profile the workload and print the summary."""
    args = parse_args(argv)
    corpus = None
    if args.workload == "wordcount":
        corpus, _ = ensure_corpus(HERE / "data", args.size_mb, 20261121)
    args.out.mkdir(parents=True, exist_ok=True)
    variant = "-vectorised" if args.workload == "kmeans" and args.vectorised else ""
    raw = args.out / f"{args.workload}{variant}-{args.workers}w.raw.txt"
    profiler = None
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="enabled")
        profiler.start()
    if args.cpu:
        times = asyncio.run(run_cpu_accounting(args, corpus))
        print(f"{args.workload}: {len(times)} run(s), median {statistics.median(times):.3f} s")
        return 0
    try:
        times = asyncio.run(run_workload(args, corpus, raw))
    finally:
        if profiler is not None:
            profiler.stop()
    print(
        f"{args.workload}: {len(times)} run(s), median {statistics.median(times):.3f} s "
        f"(min {min(times):.3f}, max {max(times):.3f}) while sampled"
    )
    for role, stacks in sorted(load_stacks(raw).items()):
        summarize(role, stacks, args.rate, args.top)
    if profiler is not None:
        print("\n== driver (pyinstrument)")
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    print(f"\nraw stacks: {raw} (e.g. flamegraph.pl or speedscope)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
