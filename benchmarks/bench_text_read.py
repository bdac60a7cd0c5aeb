"""Reading text: ``await ctx.text_file(path).count()`` against plain Python counting lines.

    python benchmarks/bench_text_read.py                  # 1 GB (10^9 bytes), 2 workers, 5 rounds
    python benchmarks/bench_text_read.py --quick          # 50 MB, 2 rounds: a smoke run
    python benchmarks/bench_text_read.py --size-mb 200 --workers 4 --json results/read.json

The input is the word-count corpus of ``bench_corpus.py`` (generated once into
``benchmarks/data``, git-ignored), read from the page cache.  The serial baseline
is single-process Python reading the same file as text, line by line::

    with open(path, encoding="utf-8") as f:
        n = sum(1 for _ in f)

Each round runs the baseline, then aiospark (default splits: 32 MiB byte ranges),
and a machine-capacity sample (how much parallel work N plain-Python processes get
done at once, see ``bench_machine.py``).  Both counts must agree.  The figure is
the per-core ratio: ``(serial seconds / aiospark seconds) / workers``; the target
(issue 5) is at least 0.70.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import blas_threads  # noqa: F401 - before numpy: one BLAS thread per process
from bench_common import median_text, report, warm_page_cache, workers_text
from bench_corpus import ensure_corpus
from bench_machine import CapacityProbe, machine, machine_line

import aiospark

HERE = Path(__file__).resolve().parent
TARGET_PER_CORE = 0.70


def serial_line_count(path: Path) -> int:
    """Lines of ``path`` counted by single-process Python, reading it as UTF-8 text."""
    with path.open(encoding="utf-8") as f:
        return sum(1 for _ in f)


async def measure(path: Path, workers: int, rounds: int, probe: CapacityProbe) -> dict:
    """Alternate serial and aiospark line counts; return every sample."""
    serial, mine, capacity = [], [], []
    async with aiospark.Context(workers=workers) as ctx:
        await ctx.text_file(str(path)).count()  # warm-up: workers import the reader
        for _ in range(rounds):
            start = time.perf_counter()
            expected = serial_line_count(path)
            serial.append(time.perf_counter() - start)
            start = time.perf_counter()
            counted = await ctx.text_file(str(path)).count()
            mine.append(time.perf_counter() - start)
            assert counted == expected, f"aiospark counted {counted} lines, Python {expected}"
            capacity.append(probe.sample())
        splits = ctx.text_file(str(path)).get_num_partitions()
    return {"serial_s": serial, "aiospark_s": mine, "capacity": capacity,
            "lines": expected, "splits": splits}


def per_core(serial_s: float, aiospark_s: float, workers: int) -> float:
    """Speed per worker core relative to one Python process: 1.0 is perfect scaling."""
    return serial_s / aiospark_s / workers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--size-mb", type=float, default=None,
                        help="input size in MB of 10^6 bytes (default 1000; 50 with --quick)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5; 2 --quick)")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--seed", type=int, default=20261121, help="corpus seed")
    parser.add_argument("--data-dir", type=Path, default=HERE / "data",
                        help="where the generated input lives (default benchmarks/data)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.size_mb is not None and args.size_mb <= 0:
        parser.error("--size-mb must be positive")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Generate or reuse the input, measure, print the medians, ranges and the ratio."""
    args = parse_args(argv)
    size_mb = args.size_mb or (50.0 if args.quick else 1000.0)
    rounds = args.rounds or (2 if args.quick else 5)
    print(machine_line(machine()))
    path, reused = ensure_corpus(args.data_dir, size_mb, args.seed)
    size = path.stat().st_size
    print(f"input: {path} ({size / 1e6:.1f} MB, {'reused' if reused else 'generated'})")
    warm_page_cache(path)
    with CapacityProbe(args.workers) as probe:
        runs = asyncio.run(measure(path, args.workers, rounds, probe))
    serial, mine = runs["serial_s"], runs["aiospark_s"]
    report("serial", f"{runs['lines']:,} lines: {median_text(serial)} "
                     f"({size / 1e6 / statistics.median(serial):,.0f} MB/s)")
    report("aiospark", f"{workers_text(args.workers)}, {runs['splits']} splits: "
                       f"{median_text(mine)} ({size / 1e6 / statistics.median(mine):,.0f} MB/s)")
    ratios = [per_core(s, a, args.workers) for s, a in zip(serial, mine, strict=True)]
    ratio = per_core(statistics.median(serial), statistics.median(mine), args.workers)
    capacity = statistics.median(runs["capacity"])
    verdict = "meets" if ratio >= TARGET_PER_CORE else "MISSES"
    print(
        f"per worker core: {ratio:.2f} of single-process Python (rounds: "
        f"{min(ratios):.2f}-{max(ratios):.2f}); target >= {TARGET_PER_CORE:.2f}: {verdict}\n"
        f"machine check: {args.workers} plain-Python processes at once did {capacity:.2f}x "
        f"the work of one (ideal {args.workers}x; "
        f"{min(runs['capacity']):.2f}-{max(runs['capacity']):.2f})"
    )
    if args.json is not None:
        result = {"machine": machine(), "size_bytes": size, "workers": args.workers,
                  "per_core_ratio": ratio, "target": TARGET_PER_CORE, **runs}
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
