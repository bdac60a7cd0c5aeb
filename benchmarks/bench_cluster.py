"""An embedded cluster of N workers: time until every worker has registered, and its idle cost.

Each run starts ``aiospark.Context(workers=N)`` in this process, which returns once
all N workers have registered with the master and connected to the driver (the
"registration time"), then lets the cluster idle a moment and reads from
``/proc`` the PSS of every process (driver, zygote, master, shuffle service,
supervisors, executors) and the CPU-seconds they used.  The first run is in a
fresh process: the driver imports its own modules during it, as a program's
first context does.

    python benchmarks/bench_cluster.py                     # 64 workers, 3 runs
    python benchmarks/bench_cluster.py --workers 2         # the idle cluster of run.py
    AIOSPARK_FORK=0 python benchmarks/bench_cluster.py     # every process spawned
    python benchmarks/bench_cluster.py --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

from bench_procfs import cpu_seconds, descendants, pss_mib, role

import aiospark

#: Seconds the cluster idles before its memory is read (heartbeats, first GC passes).
SETTLE = 2.0


def memory_by_role(pids: list[int]) -> dict[str, tuple[int, float]]:
    """``role -> (processes, PSS MiB)`` of ``pids`` (this process is the driver)."""
    found: dict[str, tuple[int, float]] = {}
    for pid in pids:
        name = "driver" if pid == os.getpid() else role(pid)
        if name == "?":
            continue
        count, pss = found.get(name, (0, 0.0))
        found[name] = (count + 1, pss + pss_mib(pid))
    return found


async def one_run(workers: int) -> dict[str, Any]:
    """One cluster: registration time, CPU-seconds until then, idle PSS by role."""
    before = os.times()
    start = time.perf_counter()
    async with aiospark.Context(workers=workers) as ctx:
        registered = time.perf_counter() - start
        assert len(ctx._scheduler.links) == workers
        pids = [os.getpid(), *descendants(os.getpid())]
        after = os.times()
        cpu = (after.user + after.system - before.user - before.system
               + sum(cpu_seconds(p) for p in pids[1:]))
        await asyncio.sleep(SETTLE)
        pids = [os.getpid(), *descendants(os.getpid())]
        by_role = memory_by_role(pids)
    return {
        "registered_s": registered,
        "cpu_s": cpu,
        "processes": sum(n for n, _ in by_role.values()),
        "pss_mib": sum(p for _, p in by_role.values()),
        "pss_by_role": {k: {"processes": n, "pss_mib": p} for k, (n, p) in by_role.items()},
    }


def show(i: int, run: dict[str, Any]) -> None:
    roles = ", ".join(f"{name} {v['pss_mib']:.0f}" + (f" ({v['processes']})"
                      if v["processes"] > 1 else "")
                      for name, v in sorted(run["pss_by_role"].items()))
    print(f"run {i}: registered in {run['registered_s']:.2f} s, {run['cpu_s']:.2f} CPU-s; "
          f"idle PSS {run['pss_mib']:.0f} MiB over {run['processes']} processes "
          f"[{roles}]", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="write the runs and medians to this file")
    args = parser.parse_args()
    mode = "spawned" if os.environ.get("AIOSPARK_FORK", "1") == "0" else "forked"
    print(f"{args.workers} workers, processes {mode}, load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs", flush=True)
    runs = []
    for i in range(args.runs):
        runs.append(await one_run(args.workers))
        show(i + 1, runs[-1])
    summary = {key: statistics.median(r[key] for r in runs)
               for key in ("registered_s", "cpu_s", "pss_mib")}
    print(f"median: registered in {summary['registered_s']:.2f} s, "
          f"{summary['cpu_s']:.2f} CPU-s, idle PSS {summary['pss_mib']:.0f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"workers": args.workers, "mode": mode, "runs": runs, "median": summary},
                      f, indent=2)


if __name__ == "__main__":
    asyncio.run(main())
