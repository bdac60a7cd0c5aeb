"""The workloads on aiospark's embedded cluster (real local processes).

The data workloads alternate serial and aiospark runs, so that both see the same
machine conditions (other processes, CPU frequency) and the ratio stays fair.
"""

from __future__ import annotations

import asyncio
import operator
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_loop_lag
from bench_apps import measure_broadcast, measure_kmeans, measure_pagerank
from bench_baseline import reduce_by_key_count, sort_by_key_count, word_count
from bench_common import (
    DATA_WORKLOADS,
    WORKLOADS,
    Config,
    Results,
    atimed,
    check_rbk_keys,
    check_word_counts,
    inc,
    median_text,
    mod_pair,
    p90,
    put_cpu,
    report,
    timed,
    word_one,
)

import aiospark

ENGINE = "aiospark"

#: Called between timed runs (the machine-capacity probe).
Hook = Callable[[], object]


async def measure_startup(cfg: Config, results: Results) -> None:
    """Median time of ``async with Context(workers=N)`` until ready, over fresh contexts."""
    context = aiospark.Context  # importing the driver's modules is not part of a start
    samples = []
    for _ in range(cfg.startup_runs):
        start = time.perf_counter()
        async with context(workers=cfg.workers):
            samples.append(time.perf_counter() - start)
    median = statistics.median(samples)
    results.put(ENGINE, "startup_s", median)
    report(ENGINE, f"start-up: median {median:.3f} s of {samples_text(samples)}")


async def measure_loop_lag(cfg: Config, results: Results) -> None:
    """The driver loop's max lag during each case of bench_loop_lag.py (fresh contexts)."""
    lags = await bench_loop_lag.measure(
        cfg.workers, list(bench_loop_lag.CASES), cfg.looplag_rounds, cfg.quick
    )
    names = bench_loop_lag.labels(cfg.workers, cfg.quick)
    for case in bench_loop_lag.CASES:
        lag = lags[case]["max_lag_ms"]
        results.put(ENGINE, f"looplag_{case}_ms", lag)
        report(ENGINE, f"loop lag, {names[case]}: max {lag:,.1f} ms")


async def tiny_job(ctx: aiospark.Context) -> list[int]:
    """Eight items in two partitions through a trivial map."""
    return await ctx.parallelize(range(8), 2).map(inc).collect()


async def measure_tiny(ctx: aiospark.Context, cfg: Config, results: Results) -> None:
    """p50 and p90 latency of the tiny job, after warm-ups."""
    for _ in range(cfg.tiny_warmups):
        await tiny_job(ctx)
    samples = []
    for _ in range(cfg.tiny_runs):
        seconds, value = await atimed(lambda: tiny_job(ctx))
        assert value == list(range(1, 9)), f"tiny job returned {value}"
        samples.append(seconds * 1000)
    results.put(ENGINE, "tiny_p50_ms", statistics.median(samples))
    results.put(ENGINE, "tiny_p90_ms", p90(samples))
    report(ENGINE, f"tiny job: p50 {statistics.median(samples):.2f} ms, p90 {p90(samples):.2f} ms")


async def measure_tasks(ctx: aiospark.Context, cfg: Config, results: Results) -> None:
    """Trivial tasks per second: one task per element (best of ``tasks_runs``)."""
    rates = []
    for _ in range(cfg.tasks_runs):
        job = lambda: ctx.parallelize(range(cfg.tasks), cfg.tasks).map(inc).count()
        seconds, count = await atimed(job)
        assert count == cfg.tasks, f"count of {cfg.tasks} tasks returned {count}"
        rates.append(cfg.tasks / seconds)
    results.put(ENGINE, "tasks_per_s", max(rates))
    report(
        ENGINE,
        f"{cfg.tasks} trivial tasks: best {max(rates):,.0f} tasks/s "
        f"of {', '.join(f'{r:,.0f}' for r in rates)}",
    )


def word_count_job(ctx: aiospark.Context, corpus: Path, min_partitions: int | None) -> Any:
    """The word count's lineage, built fresh (rerunning one shuffled RDD would reuse its map
    outputs); returns (the text RDD, the counts' ``collect`` coroutine function)."""
    lines = ctx.text_file(str(corpus), min_partitions=min_partitions)
    counts = lines.flat_map(str.split).map(word_one).reduce_by_key(operator.add)
    return lines, counts.collect


async def measure_word_count(
    ctx: aiospark.Context, cfg: Config, corpus: Path, results: Results, between: Hook
) -> Counter[str]:
    """Word count, serial and aiospark runs alternating; returns the serial Counter.

    aiospark: text_file -> flat_map(str.split) -> map((w, 1)) -> reduce_by_key(add) ->
    collect.  Each round runs the serial Counter, aiospark with the default input splits
    (or ``--text-partitions``), and, unless disabled, aiospark with ``min_partitions =
    2 x workers`` (the "tuned" run: every worker gets the same number of splits).
    """
    serial, mine, tuned, serial_cpu, mine_cpu = [], [], [], [], []
    tuned_min = 2 * cfg.workers
    reference: Counter[str] = Counter()
    for _ in range(cfg.data_runs):
        between()
        seconds, reference = timed(lambda: word_count(corpus), serial_cpu)
        serial.append(seconds)
        lines, collect = word_count_job(ctx, corpus, cfg.text_partitions)
        seconds, pairs = await atimed(collect, mine_cpu)
        check_word_counts(ENGINE, pairs, reference)
        mine.append(seconds)
        if cfg.tuned_word_count:
            tuned_lines, collect = word_count_job(ctx, corpus, tuned_min)
            seconds, pairs = await atimed(collect)
            check_word_counts(ENGINE, pairs, reference)
            tuned.append(seconds)
    partitions = lines.get_num_partitions()
    results.put("serial", "wordcount_s", statistics.median(serial))
    results.put(ENGINE, "wordcount_s", statistics.median(mine))
    results.put(ENGINE, "wordcount_partitions", partitions)
    put_cpu(results, "wordcount", serial_cpu, mine_cpu)
    report("serial", f"word count: {median_text(serial)} ({len(reference):,} distinct words)")
    how = "default" if cfg.text_partitions is None else f"min_partitions={cfg.text_partitions}"
    report(
        ENGINE,
        f"word count: {median_text(mine)} ({how}: {partitions} input partitions; "
        "counts equal the serial Counter)",
    )
    if tuned:
        results.put("serial", "wordcount_tuned_s", statistics.median(serial))
        results.put(ENGINE, "wordcount_tuned_s", statistics.median(tuned))
        results.put(ENGINE, "wordcount_tuned_partitions", tuned_lines.get_num_partitions())
        report(
            ENGINE,
            f"word count, tuned: {median_text(tuned)} (min_partitions={tuned_min}: "
            f"{tuned_lines.get_num_partitions()} input partitions)",
        )
    return reference


async def measure_rbk(ctx: aiospark.Context, cfg: Config, results: Results, between: Hook) -> None:
    """reduce_by_key + count of generated pairs, serial and aiospark runs alternating."""
    serial, mine, serial_cpu, mine_cpu = [], [], [], []
    for _ in range(cfg.data_runs):
        between()
        seconds, keys = timed(lambda: reduce_by_key_count(cfg.rbk_pairs), serial_cpu)
        check_rbk_keys("serial", keys, cfg.rbk_pairs)
        serial.append(seconds)
        pairs = ctx.range(cfg.rbk_pairs, num_slices=cfg.rbk_slices).map(mod_pair)
        seconds, keys = await atimed(pairs.reduce_by_key(operator.add).count, mine_cpu)
        check_rbk_keys(ENGINE, keys, cfg.rbk_pairs)
        mine.append(seconds)
    results.put("serial", "rbk_s", statistics.median(serial))
    results.put(ENGINE, "rbk_s", statistics.median(mine))
    put_cpu(results, "rbk", serial_cpu, mine_cpu)
    report("serial", f"reduce_by_key + count: {median_text(serial)}")
    report(ENGINE, f"reduce_by_key + count: {median_text(mine)} ({keys:,} keys)")


async def measure_sort(ctx: aiospark.Context, cfg: Config, results: Results, between: Hook) -> None:
    """sort_by_key + count of the generated pairs, serial and aiospark runs alternating."""
    serial, mine, serial_cpu, mine_cpu = [], [], [], []
    for _ in range(cfg.data_runs):
        between()
        seconds, count = timed(lambda: sort_by_key_count(cfg.rbk_pairs), serial_cpu)
        assert count == cfg.rbk_pairs, f"serial sort counted {count}"
        serial.append(seconds)
        pairs = ctx.range(cfg.rbk_pairs, num_slices=cfg.rbk_slices).map(mod_pair)
        seconds, count = await atimed(pairs.sort_by_key().count, mine_cpu)
        assert count == cfg.rbk_pairs, f"{ENGINE}: sort_by_key + count gave {count}"
        mine.append(seconds)
    results.put("serial", "sort_s", statistics.median(serial))
    results.put(ENGINE, "sort_s", statistics.median(mine))
    put_cpu(results, "sort", serial_cpu, mine_cpu)
    report("serial", f"sort_by_key + count: {median_text(serial)}")
    report(ENGINE, f"sort_by_key + count: {median_text(mine)} ({count:,} pairs)")


async def warm_up_shuffle(ctx: aiospark.Context) -> None:
    """One tiny shuffle, so the workers' first-shuffle imports are not timed as data work."""
    pairs = ctx.parallelize([(i % 3, i) for i in range(12)], 2)
    assert await pairs.reduce_by_key(operator.add).count() == 3


async def run_workloads(
    cfg: Config, corpus: Path | None, results: Results, between: Hook
) -> Counter[str] | None:
    """Every selected workload: start-up on fresh contexts, the rest on one shared context.

    ``between()`` is called before each pair of timed data runs (serial, aiospark).
    Returns the serial word counts, the reference the peers are checked against.
    """
    reference = None
    if cfg.wants("startup"):
        await measure_startup(cfg, results)
    if cfg.wants("looplag"):
        await measure_loop_lag(cfg, results)
    if not any(cfg.wants(w) for w in WORKLOADS if w not in ("startup", "looplag")):
        return reference
    async with aiospark.Context(workers=cfg.workers) as ctx:
        if cfg.wants("tiny"):
            await measure_tiny(ctx, cfg, results)
        if cfg.wants("tasks"):
            await measure_tasks(ctx, cfg, results)
        if any(cfg.wants(w) for w in DATA_WORKLOADS):
            await warm_up_shuffle(ctx)
        if cfg.wants("wordcount") and corpus is not None:
            reference = await measure_word_count(ctx, cfg, corpus, results, between)
        if cfg.wants("rbk"):
            await measure_rbk(ctx, cfg, results, between)
        if cfg.wants("sort"):
            await measure_sort(ctx, cfg, results, between)
        if cfg.wants("pagerank"):
            await measure_pagerank(ctx, cfg, results, between)
        if cfg.wants("kmeans"):
            await measure_kmeans(ctx, cfg, results, between)
        if cfg.wants("broadcast"):
            await measure_broadcast(ctx, cfg, results, between)
    return reference


def run_aiospark(
    cfg: Config, corpus: Path | None, results: Results, between: Hook = lambda: None
) -> Counter[str] | None:
    """Run the aiospark workloads (and their serial counterparts) in a fresh event loop."""
    return asyncio.run(run_workloads(cfg, corpus, results, between))


def samples_text(samples: list[float]) -> str:
    """Samples as a short comma-separated list of seconds."""
    return ", ".join(f"{s:.3f}" for s in samples)
