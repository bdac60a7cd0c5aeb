"""The application workloads: PageRank and k-means (the examples' code), and a large broadcast.

PageRank and k-means run the functions of ``examples/pagerank.py`` and
``examples/kmeans.py``: their cluster code on aiospark, their plain-Python
reference in this process, so both sides run the same per-record functions.
Each aiospark result is checked against the serial one (a mismatch fails the run).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle
import numpy as np
from bench_common import Config, Results, atimed, median_text, put_cpu, report, timed

import aiospark

ENGINE = "aiospark"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: Called between timed runs (the machine-capacity probe).
Hook = Callable[[], object]

#: Broadcast: jobs of one task per core to run, at most, until every worker has used the value.
BROADCAST_MAX_ROUNDS = 5


def example(name: str) -> ModuleType:
    """``examples/<name>.py`` as a module whose functions are shipped to workers by value."""
    module_name = f"aiospark_example_{name}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        cloudpickle.register_pickle_by_value(module)  # workers cannot import it
    return module


# -- PageRank -----------------------------------------------------------------------------------


def check_ranks(expected: dict, ranks: dict) -> None:
    """The correctness guard: the same nodes, with the same ranks (up to summation order)."""
    assert ranks.keys() == expected.keys(), f"{ENGINE}: PageRank ranked other nodes than serial"
    for node, rank in expected.items():
        assert math.isclose(ranks[node], rank, rel_tol=1e-9), f"{ENGINE}: rank of {node} differs"


async def measure_pagerank(
    ctx: aiospark.Context, cfg: Config, results: Results, between: Hook
) -> None:
    """PageRank of the generated graph, serial and aiospark runs alternating.

    Both sides generate the edges (aiospark on the workers), group them into links
    and run the iterations; aiospark then collects every rank to the driver.
    """
    pr = example("pagerank")
    nodes, edges, iterations = cfg.pagerank_nodes, cfg.pagerank_edges, cfg.pagerank_iterations
    seed = pr.parse_args([]).seed
    partitions = 2 * ctx.default_parallelism  # the example's default
    serial, mine, serial_cpu, mine_cpu = [], [], [], []
    for _ in range(cfg.pagerank_runs):
        between()
        seconds, expected = timed(
            lambda: pr.pagerank_serial(pr.generated_edges(nodes, edges, seed), iterations),
            serial_cpu,
        )
        serial.append(seconds)
        links = pr.cached_links(pr.cluster_edges(ctx, nodes, edges, seed), partitions)
        ranks = pr.pagerank(links, iterations, partitions)
        seconds, pairs = await atimed(ranks.collect, mine_cpu)
        links.unpersist()
        check_ranks(expected, dict(pairs))
        mine.append(seconds)
    results.put("serial", "pagerank_s", statistics.median(serial))
    results.put(ENGINE, "pagerank_s", statistics.median(mine))
    put_cpu(results, "pagerank", serial_cpu, mine_cpu)
    report("serial", f"PageRank: {median_text(serial)} ({len(expected):,} ranked nodes)")
    report(
        ENGINE,
        f"PageRank: {median_text(mine)} ({partitions} partitions; ranks equal the serial ones)",
    )


# -- k-means ------------------------------------------------------------------------------------


def all_rows(blocks: list[np.ndarray]) -> list[np.ndarray]:
    """The rows of every block: the per-record variant's records (views, as on the workers)."""
    return [row for block in blocks for row in block]


async def measure_kmeans(
    ctx: aiospark.Context, cfg: Config, results: Results, between: Hook
) -> None:
    """k-means, per-record and vectorised: serial and aiospark iterations alternating.

    Every iteration gives both sides the same centres and checks that they compute
    the same new ones.  The figures are the medians of the iterations after the
    first; the first aiospark iteration also generates and caches the points (the
    serial side's "first iteration" is its data generation plus its first iteration).
    """
    km = example("kmeans")
    sizes = {
        "seed": km.parse_args([]).seed,
        "points": cfg.kmeans_points,
        "dim": cfg.kmeans_dim,
        "k": cfg.kmeans_k,
    }
    partitions = 2 * ctx.default_parallelism  # the example's default
    for metric, per_record in (("kmeans_pr", True), ("kmeans_np", False)):
        label = "per-record" if per_record else "vectorised"
        load, data = timed(functools.partial(km.serial_blocks, **sizes))
        if per_record:
            more, data = timed(functools.partial(all_rows, data))
            load += more
        points = km.cached_points(ctx, **sizes, partitions=partitions, per_record=per_record)
        centres = km.initial_centres(**sizes)
        serial, mine = [], []
        for _ in range(cfg.kmeans_iterations):
            between()
            step = functools.partial(km.serial_iteration, data, centres, per_record)
            seconds, expected = timed(step)
            serial.append(seconds)
            seconds, centres = await atimed(
                functools.partial(km.iterate, ctx, points, centres, per_record)
            )
            mine.append(seconds)
            np.testing.assert_allclose(centres, expected, rtol=1e-9, atol=1e-9)
        points.unpersist()
        del data
        later_serial = serial[1:] or serial
        later_mine = mine[1:] or mine
        results.put("serial", f"{metric}_s", statistics.median(later_serial))
        results.put(ENGINE, f"{metric}_s", statistics.median(later_mine))
        results.put("serial", f"{metric}_first_s", load + serial[0])
        results.put(ENGINE, f"{metric}_first_s", mine[0])
        report(
            "serial",
            f"k-means {label}: later iterations {median_text(later_serial)}; "
            f"first {serial[0]:.2f} s + {load:.2f} s generating the points",
        )
        report(
            ENGINE,
            f"k-means {label}: later iterations {median_text(later_mine)}; first {mine[0]:.2f} s "
            "(generates and caches the points); centres equal the serial ones",
        )


# -- broadcast ---------------------------------------------------------------------------------


def use_broadcast(shared: Any) -> Callable[[int], tuple[int, int]]:
    """The task function: read the broadcast array once; report the worker and the sum."""
    return lambda _: (os.getpid(), int(shared.value.sum()))


async def broadcast_until_used(ctx: aiospark.Context, array: np.ndarray, workers: int) -> dict:
    """Broadcast ``array``, then run jobs of one task per core reading ``.value.sum()`` until
    every worker has run one; returns the seconds, the jobs run and the failed tasks."""
    expected = int(array.sum())
    cores = ctx.default_parallelism
    stream = ctx.progress()
    start = time.perf_counter()
    shared = ctx.broadcast(array)
    seen: set[int] = set()
    rounds = 0
    while len(seen) < workers and rounds < BROADCAST_MAX_ROUNDS:
        used = await ctx.parallelize(range(cores), cores).map(use_broadcast(shared)).collect()
        rounds += 1
        for pid, total in used:
            assert total == expected, f"{ENGINE}: broadcast array summed to {total}"
            seen.add(pid)
    seconds = time.perf_counter() - start
    shared.destroy()
    failed = [e.get("worker_id", "?") for e in stream.drain() if e["event"] == "task_failed"]
    stream.close()
    assert len(seen) == workers, f"{ENGINE}: only {len(seen)} of {workers} workers used it"
    return {"seconds": seconds, "rounds": rounds, "failed": failed}


async def measure_broadcast(
    ctx: aiospark.Context, cfg: Config, results: Results, between: Hook
) -> None:
    """Time from ``ctx.broadcast(array)`` until every worker has used the array once.

    One job of one task per core, each reading ``.value.sum()``; should a worker have
    run none of them (a failed task retried elsewhere), more such jobs run until every
    worker has, and the time counts them all.  Each run uses a fresh cluster (its
    start-up is not timed): a task that fails on a worker counts towards excluding
    that worker for a while (3 failures in 60 s), which would distort later runs on
    the shared one.
    """
    array = np.arange(cfg.broadcast_mb * 1_000_000 // 8, dtype=np.int64)
    runs = []
    for _ in range(cfg.data_runs):
        between()
        async with aiospark.Context(workers=cfg.workers) as fresh:
            runs.append(await broadcast_until_used(fresh, array, cfg.workers))
    samples = [run["seconds"] for run in runs]
    failures = sum(len(run["failed"]) for run in runs)
    median = statistics.median(samples)
    mb = array.nbytes / 1e6
    results.put(ENGINE, "broadcast_s", median)
    results.put(ENGINE, "broadcast_mb_per_s", mb * cfg.workers / median)
    results.put(ENGINE, "broadcast_jobs_max", max(run["rounds"] for run in runs))
    results.put(ENGINE, "broadcast_failed_tasks", failures)
    report(
        ENGINE,
        f"broadcast of {mb:.0f} MB until all {cfg.workers} workers used it: {median_text(samples)}"
        f" = {mb * cfg.workers / median:,.0f} MB/s delivered; jobs needed per run "
        f"{', '.join(str(run['rounds']) for run in runs)}; {failures} task(s) failed and were "
        "retried",
    )
    if failures:
        results.note(
            f"broadcast: {failures} task(s) failed on a worker that could not fetch the value "
            "from its peer yet (HTTP 404) and were retried on the worker holding it; the time "
            "includes the extra jobs needed until every worker had used the value"
        )
