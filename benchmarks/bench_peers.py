"""The same workloads on PySpark ``local[N]`` and on a Dask ``LocalCluster``, when installed.

Neither is a dependency of aiospark: each runs only if it can be imported.
Both get the same per-record functions (``bench_common``'s lambdas), the same input
file, the same partition counts and, for text, the same 32 MiB input splits.
"""

from __future__ import annotations

import importlib
import logging
import operator
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import bench_peer_apps
import numpy as np
from bench_apps import example
from bench_common import (
    Config,
    Results,
    add_value,
    check_rbk_keys,
    check_word_counts,
    first_of,
    inc,
    median_text,
    mod_pair,
    p90,
    report,
    text_block_bytes,
    timed,
    word_one,
)

#: Peers are much slower (PySpark runs ~33 trivial tasks/s): stop repeating a workload once
#: this many seconds are spent on it, to keep the whole run within minutes.
REPEAT_BUDGET_S = 20.0

#: Start-up of PySpark in a fresh interpreter, so each run launches its own JVM.
PYSPARK_STARTUP = """
import sys, time
from pyspark import SparkConf, SparkContext
conf = SparkConf().setMaster(sys.argv[1]).setAppName("startup").set("spark.ui.enabled", "false")
start = time.perf_counter()
sc = SparkContext(conf=conf)
print(time.perf_counter() - start)
sc.stop()
"""


class PeerEngine(Protocol):
    """One running peer cluster, able to run each workload synchronously."""

    def tiny(self) -> list[int]: ...
    def tasks(self, n: int) -> int: ...
    def word_count(self, path: Path, min_partitions: int | None) -> list[tuple[str, int]]: ...
    def rbk(self, pairs: int, slices: int) -> int: ...
    def sort(self, pairs: int, slices: int) -> int: ...
    def pagerank(self, nodes: int, edges: int, seed: int, iterations: int,
                 partitions: int) -> dict: ...
    def kmeans(self, seed: int, points: int, dim: int, k: int, iterations: int,
               partitions: int) -> tuple[list[float], Any]: ...
    def close(self) -> None: ...


def importable(module: str) -> bool:
    """Whether ``module`` can be imported here (nothing is installed)."""
    try:
        importlib.import_module(module)
    except Exception:
        return False
    return True


# -- PySpark -----------------------------------------------------------------------------------


def _use_this_python() -> None:
    """Make PySpark's Python workers run this interpreter."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def pyspark_startup(workers: int) -> float:
    """Seconds until a ``SparkContext("local[N]")`` is ready, in a fresh interpreter."""
    _use_this_python()
    out = subprocess.run(
        [sys.executable, "-c", PYSPARK_STARTUP, f"local[{workers}]"],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


class SparkEngine:
    """PySpark ``local[N]``: the workloads written with PySpark's RDD API."""

    def __init__(self, workers: int) -> None:
        from pyspark import SparkConf, SparkContext

        _use_this_python()
        conf = (
            SparkConf()
            .setMaster(f"local[{workers}]")
            .setAppName("aiospark-benchmarks")
            .set("spark.ui.enabled", "false")
            .set("spark.ui.showConsoleProgress", "false")  # no progress bars in the report
        )
        self.sc = SparkContext(conf=conf)
        self.sc.setLogLevel("ERROR")

    def tiny(self) -> list[int]:
        return self.sc.parallelize(range(8), 2).map(inc).collect()

    def tasks(self, n: int) -> int:
        return self.sc.parallelize(range(n), n).map(inc).count()

    def word_count(self, path: Path, min_partitions: int | None) -> list[tuple[str, int]]:
        # minPartitions defaults to min(parallelism, 2); local files have 32 MiB blocks
        lines = self.sc.textFile(str(path), minPartitions=min_partitions)
        return lines.flatMap(str.split).map(word_one).reduceByKey(operator.add).collect()

    def rbk(self, pairs: int, slices: int) -> int:
        rdd = self.sc.range(pairs, numSlices=slices).map(mod_pair)
        return rdd.reduceByKey(operator.add).count()

    def sort(self, pairs: int, slices: int) -> int:
        return self.sc.range(pairs, numSlices=slices).map(mod_pair).sortByKey().count()

    def pagerank(self, *args: int) -> dict:
        return bench_peer_apps.spark_pagerank(self.sc, *args)

    def kmeans(self, *args: int) -> tuple[list[float], Any]:
        return bench_peer_apps.spark_kmeans(self.sc, *args)

    def close(self) -> None:
        self.sc.stop()


# -- Dask --------------------------------------------------------------------------------------


def _dask_cluster(workers: int) -> tuple[Any, Any]:
    """A LocalCluster of ``workers`` single-thread worker processes, and its Client."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    return cluster, Client(cluster)


def dask_startup(workers: int) -> float:
    """Seconds until a LocalCluster and its Client are ready (fresh worker processes)."""
    start = time.perf_counter()
    cluster, client = _dask_cluster(workers)
    seconds = time.perf_counter() - start
    client.close()
    cluster.close()
    return seconds


class DaskEngine:
    """Dask ``LocalCluster``: the workloads written with ``dask.bag``."""

    def __init__(self, workers: int) -> None:
        self.cluster, self.client = _dask_cluster(workers)

    def tiny(self) -> list[int]:
        import dask.bag as db

        return list(db.from_sequence(range(8), npartitions=2).map(inc).compute())

    def tasks(self, n: int) -> int:
        import dask.bag as db

        return db.from_sequence(range(n), npartitions=n).map(inc).count().compute()

    def word_count(self, path: Path, min_partitions: int | None) -> list[tuple[str, int]]:
        import dask.bag as db

        blocksize = text_block_bytes(path.stat().st_size, min_partitions)  # as Hadoop splits
        lines = db.read_text(str(path), blocksize=blocksize)
        words = lines.map(str.split).flatten().map(word_one)
        return list(words.foldby(first_of, add_value, 0, operator.add, 0).compute())

    def rbk(self, pairs: int, slices: int) -> int:
        import dask.bag as db

        generated = db.range(pairs, npartitions=slices).map(mod_pair)
        return generated.foldby(first_of, add_value, 0, operator.add, 0).count().compute()

    def sort(self, pairs: int, slices: int) -> int:
        # dask.bag cannot sort: go through a dask DataFrame, as a Dask user would.
        import dask.bag as db

        frame = db.range(pairs, npartitions=slices).map(mod_pair).to_dataframe(
            columns=["key", "value"]
        )
        return int(frame.sort_values("key").map_partitions(len).compute().sum())

    def pagerank(self, *args: int) -> dict:
        return bench_peer_apps.dask_pagerank(self.client, *args)

    def kmeans(self, *args: int) -> tuple[list[float], Any]:
        return bench_peer_apps.dask_kmeans(self.client, *args)

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


# -- the shared measuring harness ---------------------------------------------------------------


PEERS: dict[str, tuple[str, Callable[[int], float], Callable[[int], PeerEngine]]] = {
    "pyspark": ("pyspark", pyspark_startup, SparkEngine),
    "dask": ("dask.distributed", dask_startup, DaskEngine),
}


def measure_engine(
    name: str,
    engine: PeerEngine,
    cfg: Config,
    corpus: Path | None,
    reference: Any,
    results: Results,
) -> None:
    """Every selected workload except start-up, on one running peer cluster."""
    if cfg.wants("tiny"):
        for _ in range(cfg.tiny_warmups):
            engine.tiny()
        samples = [timed(engine.tiny)[0] * 1000 for _ in range(cfg.tiny_runs)]
        median = statistics.median(samples)
        results.put(name, "tiny_p50_ms", median)
        results.put(name, "tiny_p90_ms", p90(samples))
        report(name, f"tiny job: p50 {median:.1f} ms, p90 {p90(samples):.1f} ms")
    if cfg.wants("tasks"):
        rate = best_rate(lambda: engine.tasks(cfg.tasks), cfg.tasks, cfg.tasks_runs)
        results.put(name, "tasks_per_s", rate)
        report(name, f"{cfg.tasks} trivial tasks: best {rate:,.0f} tasks/s")
    repeated = [
        ("wordcount", "wordcount_s", "word count (counts equal the serial Counter)",
         lambda: engine.word_count(corpus, cfg.text_partitions),
         lambda pairs: check_word_counts(name, pairs, reference)),
        ("rbk", "rbk_s", "reduce_by_key + count",
         lambda: engine.rbk(cfg.rbk_pairs, cfg.rbk_slices),
         lambda keys: check_rbk_keys(name, keys, cfg.rbk_pairs)),
        ("sort", "sort_s", "sort_by_key + count",
         lambda: engine.sort(cfg.rbk_pairs, cfg.rbk_slices),
         lambda count: _check_count(name, count, cfg.rbk_pairs)),
    ]
    for workload, metric, label, job, check in repeated:
        if cfg.wants(workload) and (workload != "wordcount" or corpus is not None):
            _guarded(name, workload, results, lambda job=job, check=check, metric=metric,
                     label=label: _measure_repeated(name, metric, label, job, check, cfg, results))
    for workload, measure in (("pagerank", measure_pagerank), ("kmeans", measure_kmeans)):
        if cfg.wants(workload):
            _guarded(name, workload, results,
                     lambda measure=measure: measure(name, engine, cfg, results))


def _measure_repeated(name: str, metric: str, label: str, job: Callable[[], Any],
                      check: Callable[[Any], None], cfg: Config, results: Results) -> None:
    samples = repeat(job, check, cfg.data_runs)
    results.put(name, metric, statistics.median(samples))
    report(name, f"{label}: {median_text(samples)}")


def _guarded(name: str, workload: str, results: Results, measure: Callable[[], None]) -> None:
    """Run one workload; a failure (a missing optional package, say) leaves only it out."""
    try:
        measure()
    except Exception as exc:
        results.note(f"{name}: {workload} failed and was left out: {type(exc).__name__}: {exc}")


def measure_pagerank(name: str, engine: PeerEngine, cfg: Config, results: Results) -> None:
    """PageRank of the benchmark's graph, checked against the serial ranks."""
    pr = example("pagerank")
    seed = pr.parse_args([]).seed
    graph = (cfg.pagerank_nodes, cfg.pagerank_edges, seed)
    expected = pr.pagerank_serial(pr.generated_edges(*graph), cfg.pagerank_iterations)
    samples = repeat(
        lambda: engine.pagerank(*graph, cfg.pagerank_iterations, 2 * cfg.workers),
        lambda ranks: bench_peer_apps.check_ranks(name, expected, ranks),
        cfg.pagerank_runs,
    )
    results.put(name, "pagerank_s", statistics.median(samples))
    report(name, f"PageRank: {median_text(samples)} (ranks equal the serial ones)")


def measure_kmeans(name: str, engine: PeerEngine, cfg: Config, results: Results) -> None:
    """Per-record k-means on cached points: first and later iterations, checked centres."""
    km = example("kmeans")
    sizes = (km.parse_args([]).seed, cfg.kmeans_points, cfg.kmeans_dim, cfg.kmeans_k)
    seconds, centres = engine.kmeans(*sizes, cfg.kmeans_iterations, 2 * cfg.workers)
    expected = km.kmeans_serial(*sizes, cfg.kmeans_iterations, per_record=False)
    np.testing.assert_allclose(centres, expected, rtol=1e-6, atol=1e-9,
                               err_msg=f"{name}: k-means centres differ from serial")
    later = seconds[1:] or seconds
    results.put(name, "kmeans_pr_s", statistics.median(later))
    results.put(name, "kmeans_pr_first_s", seconds[0])
    report(name, f"k-means per-record: later iterations {median_text(later)}; "
                 f"first {seconds[0]:.2f} s (generates and caches the points)")


def _check_count(name: str, count: int, expected: int) -> None:
    assert count == expected, f"{name}: sort_by_key + count gave {count}, not {expected}"


def repeat(job: Callable[[], Any], check: Callable[[Any], None], runs: int) -> list[float]:
    """Seconds of up to ``runs`` checked runs of ``job``, stopping early past the time budget."""
    samples: list[float] = []
    while len(samples) < runs and sum(samples) < REPEAT_BUDGET_S:
        seconds, value = timed(job)
        check(value)
        samples.append(seconds)
    return samples


def best_rate(job: Callable[[], int], n: int, runs: int) -> float:
    """Best items per second of up to ``runs`` runs, stopping early past the time budget."""

    def check(count: int) -> None:
        assert count == n, f"count of {n} tasks returned {count}"

    return max(n / seconds for seconds in repeat(job, check, runs))


def run_peer(name: str, cfg: Config, corpus: Path | None, reference: Any, results: Results) -> None:
    """Start-up (median of fresh starts), then the other workloads on one cluster."""
    _, startup, engine_type = PEERS[name]
    if cfg.wants("startup"):
        samples = [startup(cfg.workers) for _ in range(cfg.startup_runs)]
        results.put(name, "startup_s", statistics.median(samples))
        report(name, f"start-up: median {statistics.median(samples):.2f} s")
    if not any(cfg.wants(w) for w in
               ("tiny", "tasks", "wordcount", "rbk", "sort", "pagerank", "kmeans")):
        return
    engine = engine_type(cfg.workers)
    try:
        measure_engine(name, engine, cfg, corpus, reference, results)
    finally:
        engine.close()


def run_peers(cfg: Config, corpus: Path | None, reference: Any, results: Results) -> list[str]:
    """Run every importable peer; returns the names of those that ran to the end."""
    ran = []
    for name, (module, _, _) in PEERS.items():
        if not cfg.peers:
            results.note(f"{name} skipped (--quick or --no-peers)")
            continue
        if not importable(module):
            results.note(f"{name} skipped: {module} is not importable (not installed)")
            continue
        print(f"{name}:", flush=True)
        try:
            run_peer(name, cfg, corpus, reference, results)
        except Exception as exc:  # a broken peer install must not hide aiospark's figures
            results.note(f"{name} failed and was left out: {type(exc).__name__}: {exc}")
            results.figures.pop(name, None)
            continue
        ran.append(name)
    return ran
