"""How cost grows: ``reduce_by_key`` and ``sort_by_key`` at 2 M, 20 M and 100 M pairs, spilling.

    python benchmarks/bench_scale.py                          # 2 M, 20 M, 100 M (~10 min)
    python benchmarks/bench_scale.py --sizes 2e6,20e6 --no-chart   # a quicker curve
    python benchmarks/bench_scale.py --quick --no-chart         # 200k-2M on 4 MB workers

Each workload runs on a fresh embedded cluster (``--workers`` workers, each with
a ``--worker-memory`` budget, 32 MB by default).  Shuffled numeric pairs are
held as columns, 16 bytes a pair, so each task's 500,000 pairs of the 2 M runs
(8 MB) fit in it; the 5 and 25 million pairs of a task at 20 M and 100 M do not
(nor, as Python objects, the 1.8 and 9 GB of all the pairs), and spill:

- ``rbk``: ``ctx.range(n).map(mod_pair).reduce_by_key(operator.add).count()``,
  run.py's workload: 100,000 keys whatever ``n``, so the combined tables stay
  small and only the records stream past the budget.
- ``rbk-wide``: the same with ``pair(i) = (i * 7919 % keys, 1)`` and
  ``keys = n // 20`` (100,000 at 2 M): the tables grow with the data, so the
  map-side combine and the reduce side spill (``--rbk-keys`` fixes the keys).
- ``sort``: ``ctx.range(n).map(mod_pair).sort_by_key().count()``, run.py's sort.

Per run it records the wall time, the CPU-seconds of every process of the
cluster and the driver (from /proc, as ``profile_workload.py --cpu``), records/s,
the bytes spilled (the workers' health reports, before and after) and the
workers' peak RSS.  The counts are checked (``keys`` distinct keys, ``n``
records); up to ``--verify-max`` records a second, untimed job also checks
the sums, and for the sort the order within and across partitions.  Up to
``--serial-max`` records plain one-process Python does the same work
(``bench_baseline.py``), timed and checked alike.  Results go to ``--json``,
and the curve (time per million records against size) to
``docs/images/scale.png`` through ``charts.draw_scale``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import json
import math
import operator
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import blas_threads  # noqa: F401 - before numpy: one BLAS thread per process
import charts
from bench_baseline import reduce_by_key_count, sort_by_key_count
from bench_bigsort import healths, peak_rss
from bench_common import RBK_KEYS, mod_pair
from bench_cpu import cpu_by_role
from bench_machine import machine, machine_line
from bench_procfs import descendants as below
from profile_workload import load_stacks, sampling, summarize

import aiospark
from aiospark.memory import parse_size

HERE = Path(__file__).resolve().parent
MB = 1 << 20
#: py-spy samples per second with ``--profile``.
PROFILE_RATE = 100
SIZES = (2_000_000, 20_000_000, 100_000_000)
WORKLOADS = ("rbk", "rbk-wide", "sort")
#: Pairs per distinct key of the rbk workload (2 M pairs: 100,000 keys, as in run.py).
PAIRS_PER_KEY = 20
#: The multiplier scattering the keys; a prime, so coprime with almost every key count.
SCATTER = 7919


def rbk_keys(workload: str, records: int, fixed: int | None = None) -> int:
    """Distinct keys the pairs of an rbk workload draw from.

    >>> rbk_keys("rbk-wide", 2_000_000), rbk_keys("rbk-wide", 100), rbk_keys("rbk", 10**8)
    (100000, 5, 100000)
    """
    if workload == "rbk":
        return RBK_KEYS
    return fixed or max(1, records // PAIRS_PER_KEY)


def keyed_pair(keys: int) -> Callable[[int], tuple[int, int]]:
    """``i -> (i * 7919 % keys, 1)`` (a lambda: cloudpickle ships it by value)."""
    return lambda i: (i * SCATTER % keys, 1)


def expected_keys(records: int, keys: int) -> int:
    """Distinct keys of ``keyed_pair(keys)`` over ``range(records)``.

    ``i * 7919 % keys`` cycles through ``keys / gcd(7919, keys)`` values.

    >>> expected_keys(2_000_000, 100_000), expected_keys(10, 100_000)
    (100000, 10)
    """
    return min(records, keys // math.gcd(SCATTER, keys))


def parse_count(text: str) -> int:
    """``"2e6"``, ``"20_000_000"`` or ``"100M"`` -> an int.

    >>> parse_count("2e6"), parse_count("20_000_000"), parse_count("100M"), parse_count("5k")
    (2000000, 20000000, 100000000, 5000)
    """
    text = text.strip().replace("_", "")
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(text[-1:].lower(), 1)
    if scale != 1:
        text = text[:-1]
    return int(float(text) * scale)


# -- one run ---------------------------------------------------------------------------------


def summarise(it: Any) -> Any:
    """One partition's ``(count, value sum, ordered, first key, last key)``."""
    count = total = 0
    ordered = True
    first = last = None
    for key, value in it:
        if last is not None and key < last:
            ordered = False
        if first is None:
            first = key
        last = key
        count += 1
        total += value
    yield (count, total, ordered, first, last)


@contextlib.contextmanager
def profiled(args: argparse.Namespace, name: str) -> Iterator[None]:
    """With ``--profile``: py-spy over every process meanwhile, then the top functions by role."""
    if not args.profile:
        yield
        return
    raw = args.profile / f"scale-{name}.raw.txt"
    args.profile.mkdir(parents=True, exist_ok=True)
    with sampling(raw, PROFILE_RATE):
        yield
    for role, stacks in sorted(load_stacks(raw).items()):
        summarize(role, stacks, PROFILE_RATE, 25)
    print(f"raw stacks: {raw}")


def descendants(roots: Any) -> set[int]:
    """``roots`` and every process below them (a worker's executor runs its tasks)."""
    return {pid for root in roots for pid in (root, *below(root))}


async def spilled_bytes(ctx: aiospark.Context) -> int:
    """Bytes the workers have spilled since they started."""
    return sum(h["spilled"]["bytes"] for h in await healths(ctx))


def build(ctx: aiospark.Context, workload: str, records: int, slices: int, keys: int) -> Any:
    """The workload's RDD (before its action)."""
    pairs = ctx.range(records, num_slices=slices)
    if workload == "rbk":
        return pairs.map(mod_pair).reduce_by_key(operator.add)
    if workload == "rbk-wide":
        return pairs.map(keyed_pair(keys)).reduce_by_key(operator.add)
    return pairs.map(mod_pair).sort_by_key()


def expected_count(workload: str, records: int, keys: int) -> int:
    return records if workload == "sort" else expected_keys(records, keys)


async def run_one(
    workload: str, records: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One timed run of ``workload`` at ``records`` on a fresh cluster, then its checks."""
    keys = rbk_keys(workload, records, args.rbk_keys)
    budget = parse_size(args.worker_memory)
    async with aiospark.Context(workers=args.workers, worker_memory=budget) as ctx:
        pids = {name: proc.pid for name, proc in ctx._cluster.processes.items()
                if name.startswith("worker-")}
        spilled_before = await spilled_bytes(ctx)
        rdd = build(ctx, workload, records, args.slices, keys)
        with profiled(args, f"{workload}-{records}"):
            cpu_before = cpu_by_role()
            start = time.perf_counter()
            count = await rdd.count()
            seconds = time.perf_counter() - start
            cpu_after = cpu_by_role()
        spilled = await spilled_bytes(ctx) - spilled_before
        wanted = expected_count(workload, records, keys)
        assert count == wanted, f"{workload} at {records:,}: counted {count:,}, expected {wanted:,}"
        verified = False
        if records <= args.verify_max:
            await verify(rdd, workload, records)
            verified = True
        rss = max(peak_rss(pid) for pid in descendants(pids.values()))
    cpu = {role: cpu_after[role] - cpu_before.get(role, 0.0) for role in cpu_after}
    return {
        "workload": workload,
        "records": records,
        "keys": None if workload == "sort" else keys,
        "seconds": seconds,
        "cpu_seconds": sum(cpu.values()),
        "cpu_by_role": cpu,
        "records_per_s": records / seconds,
        "us_per_record": 1e6 * seconds / records,
        "spilled_bytes": spilled,
        "worker_peak_rss": rss,
        "worker_memory": budget,
        "count": count,
        "verified": verified,
        "load_average": os.getloadavg()[0],  # the last minute's: other work on the machine
    }


async def verify(rdd: Any, workload: str, records: int) -> None:
    """An untimed second pass: the values add up to ``records``; a sort is in order."""
    parts = await rdd.map_partitions(summarise).collect()
    total = sum(p[1] for p in parts)
    assert total == records, f"{workload}: values add up to {total:,}, not {records:,}"
    if workload == "sort":
        assert all(p[2] for p in parts), "sort: a partition came out unsorted"
        ends = [(p[3], p[4]) for p in parts if p[0]]
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(ends)), "sort: partitions overlap"


def run_serial(workload: str, records: int, args: argparse.Namespace) -> dict[str, Any]:
    """The same work in plain one-process Python, timed and checked."""
    keys = rbk_keys(workload, records, args.rbk_keys)
    cpu = time.process_time()
    start = time.perf_counter()
    if workload == "rbk":
        count = reduce_by_key_count(records)
    elif workload == "rbk-wide":
        count = reduce_by_key_count(records, keyed_pair(keys))
    else:
        count = sort_by_key_count(records)
    seconds = time.perf_counter() - start
    wanted = expected_count(workload, records, keys)
    assert count == wanted, f"serial {workload} at {records:,}: {count:,}, expected {wanted:,}"
    return {
        "workload": workload,
        "records": records,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "records_per_s": records / seconds,
        "us_per_record": 1e6 * seconds / records,
    }


# -- the whole benchmark ---------------------------------------------------------------------


def growth(runs: list[dict[str, Any]], metric: str) -> dict[str, float]:
    """Per workload: the largest ``metric`` per record at any size over the smallest size's.

    >>> growth([{"workload": "w", "records": 10, "seconds": 1.0},
    ...         {"workload": "w", "records": 100, "seconds": 12.0}], "seconds")
    {'w': 1.2}
    """
    out = {}
    for workload in dict.fromkeys(r["workload"] for r in runs):
        mine = sorted((r for r in runs if r["workload"] == workload), key=lambda r: r["records"])
        base = mine[0][metric] / mine[0]["records"]
        out[workload] = round(max(r[metric] / r["records"] for r in mine) / base, 3)
    return out


def print_run(engine: str, run: dict[str, Any]) -> None:
    spill = run.get("spilled_bytes")
    extra = "" if spill is None else (
        f", {run['cpu_seconds']:.1f} CPU-s, spilled {spill / MB:,.0f} MB, "
        f"worker peak RSS {run['worker_peak_rss'] / MB:,.0f} MB"
        + (", verified" if run["verified"] else "")
    )
    print(
        f"  {engine:<8} {run['workload']:<8} {run['records']:>12,}: {run['seconds']:7.1f} s, "
        f"{run['us_per_record']:.2f} us/record ({run['records_per_s'] / 1e6:.2f} M/s){extra}",
        flush=True,
    )


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    document: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "workers": args.workers,
        "slices": args.slices,
        "worker_memory": parse_size(args.worker_memory),
        "load_average_start": os.getloadavg()[0],
        "runs": [],
        "serial": [],
    }
    for records in args.sizes:
        for workload in args.workloads:
            if records <= args.serial_max:
                serial = run_serial(workload, records, args)
                print_run("serial", serial)
                document["serial"].append(serial)
            run = await run_one(workload, records, args)
            print_run("aiospark", run)
            document["runs"].append(run)
            if args.json:
                write(document, args.json)
    document["growth_seconds"] = growth(document["runs"], "seconds")
    document["growth_cpu_seconds"] = growth(document["runs"], "cpu_seconds")
    return document


def write(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="comma-separated record counts (2e6, 20M, ...; default 2M,20M,100M)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated, of {','.join(WORKLOADS)}")
    parser.add_argument("--quick", action="store_true",
                        help="200k, 1M and 2M records on 4 MB workers: spills in a minute")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--slices", type=int, default=None,
                        help="partitions of the input and of the shuffle (default 2 x workers)")
    parser.add_argument("--worker-memory", default="32m",
                        help="each worker's memory budget (default 32m)")
    parser.add_argument("--rbk-keys", type=parse_count, default=None,
                        help=f"rbk-wide's key count (default: records // {PAIRS_PER_KEY})")
    parser.add_argument("--serial-max", type=parse_count, default=20_000_000,
                        help="run plain Python up to this many records (default 20M)")
    parser.add_argument("--verify-max", type=parse_count, default=20_000_000,
                        help="run the untimed checking pass up to this many records (default 20M)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "scale.json")
    parser.add_argument("--chart", type=Path, default=Path("docs/images/scale.png"))
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--before", type=Path, default=None, metavar="JSON",
                        help="an earlier run's JSON, drawn dotted on the chart to compare")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="sample every timed run with py-spy (slower), raw stacks into DIR")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.worker_memory = "200k,1M,2M", "4m"
    args.sizes = sorted(parse_count(s) for s in args.sizes.split(",") if s.strip())
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(sorted(unknown))}")
    args.slices = args.slices or 2 * args.workers
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_line(machine()))
    print(f"sizes {', '.join(f'{n:,}' for n in args.sizes)}; {args.workers} workers with "
          f"{args.worker_memory} each; {args.slices} partitions", flush=True)
    document = asyncio.run(run_all(args))
    for metric in ("seconds", "cpu_seconds"):
        text = ", ".join(f"{w} {g:.2f}x" for w, g in document[f"growth_{metric}"].items())
        print(f"{metric.replace('_', '-')} per record, worst size over the smallest: {text}")
    if args.json:
        write(document, args.json)
        print(f"wrote {args.json}")
    if not args.no_chart:
        before = json.loads(args.before.read_text()) if args.before else None
        print(f"wrote {charts.draw_scale(document, args.chart, before)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
