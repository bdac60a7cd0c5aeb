"""Shared pieces of the benchmark suite: configuration, per-record functions, timing helpers.

The per-record functions are module-level *lambdas* on purpose: every engine's
cloudpickle (aiospark's, Dask's, PySpark's bundled copy) ships a lambda by value,
so the worker processes never need to import this module, and every engine runs
exactly the same Python code per record.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench_cpu import tree_cpu_seconds

#: How the workloads are named on the command line (``--only``), in running order.
WORKLOADS = (
    "startup",
    "tiny",
    "tasks",
    "looplag",
    "wordcount",
    "rbk",
    "sort",
    "pagerank",
    "kmeans",
    "broadcast",
)

#: The workloads timed against a serial run (next to which the machine is sampled).
DATA_WORKLOADS = ("wordcount", "rbk", "sort", "pagerank", "kmeans", "broadcast")

#: Number of distinct keys of the reduce_by_key workload.
RBK_KEYS = 100_000

#: Byte size of the text splits every engine is asked to use (aiospark's and Hadoop's default).
TEXT_BLOCK_BYTES = 32 * 2**20

# -- the per-record functions, shared by every engine ------------------------------------------

inc = lambda x: x + 1
word_one = lambda w: (w, 1)
mod_pair = lambda i: (i * 7919 % RBK_KEYS, 1)
first_of = lambda kv: kv[0]
add_value = lambda acc, kv: acc + kv[1]


def text_block_bytes(size: int, min_partitions: int | None) -> int:
    """Hadoop's split size: ``min(size // min_partitions, 32 MiB)`` (min_partitions default 2)."""
    return max(1, min(size // (min_partitions or 2), TEXT_BLOCK_BYTES))


def expected_rbk_keys(pairs: int) -> int:
    """Distinct keys of ``mod_pair`` over ``range(pairs)``: 7919 is coprime with ``RBK_KEYS``."""
    return min(pairs, RBK_KEYS)


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a run depends on (sizes, repetitions, which workloads)."""

    workers: int
    size_mb: float
    quick: bool
    only: tuple[str, ...]
    data_dir: Path
    seed: int = 20261121
    startup_runs: int = 3
    tiny_warmups: int = 3
    tiny_runs: int = 20
    tasks: int = 1000
    tasks_runs: int = 3
    looplag_rounds: int = 3  # the loop-lag cases (bench_loop_lag.py): the worst of this many
    rbk_pairs: int = 2_000_000
    data_runs: int = 5  # word count, reduce_by_key, sort, broadcast: the median of this many
    #: ``min_partitions`` of the word count's input (None: each engine's default, which for
    #: ~100 MB and 32 MiB blocks is 3 splits); a diagnostic knob, not part of the workload.
    text_partitions: int | None = None
    #: Also time the word count with ``min_partitions = 2 x workers`` (the "tuned" row).
    tuned_word_count: bool = True
    peers: bool = True
    # -- PageRank (examples/pagerank.py): a generated graph, the median of ``pagerank_runs``
    pagerank_nodes: int = 100_000
    pagerank_edges: int = 1_000_000
    pagerank_iterations: int = 5
    pagerank_runs: int = 3
    # -- k-means (examples/kmeans.py): the median of the iterations after the first
    kmeans_points: int = 200_000
    kmeans_dim: int = 32
    kmeans_k: int = 8
    kmeans_iterations: int = 5
    # -- broadcast of a numpy array of this many MB (10^6 bytes)
    broadcast_mb: int = 200

    def wants(self, workload: str) -> bool:
        """Whether ``workload`` is to be run."""
        return workload in self.only

    def full_size(self, metric: str) -> bool:
        """Whether ``metric``'s workload ran at the size its targets were set for."""
        if self.quick:
            return False
        if metric.startswith("wordcount"):
            return self.size_mb >= 100
        if metric.startswith(("rbk", "sort")):
            return self.rbk_pairs >= 2_000_000
        return True  # the other sizes change only with --quick

    @property
    def rbk_slices(self) -> int:
        """Partitions of the generated pairs: two per worker."""
        return self.workers * 2


@dataclasses.dataclass
class Results:
    """Measured figures by engine (``serial``, ``aiospark``, ``pyspark``, ``dask``) and metric."""

    figures: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    environment: dict[str, float] = dataclasses.field(default_factory=dict)

    def put(self, engine: str, metric: str, value: float) -> None:
        """Record one figure."""
        self.figures.setdefault(engine, {})[metric] = value

    def get(self, engine: str, metric: str) -> float | None:
        """One figure, or None when it was not measured."""
        return self.figures.get(engine, {}).get(metric)

    def note(self, text: str) -> None:
        """Record (and print) a remark that belongs with the figures."""
        print(f"  note: {text}", flush=True)
        self.notes.append(text)


def timed(fn: Callable[[], Any], cpu: list[float] | None = None) -> tuple[float, Any]:
    """Run ``fn()``; return (seconds, its result).  Appends its CPU-seconds to ``cpu``."""
    start, start_cpu = time.perf_counter(), time.process_time()
    value = fn()
    seconds = time.perf_counter() - start
    if cpu is not None:
        cpu.append(time.process_time() - start_cpu)
    return seconds, value


async def atimed(
    job: Callable[[], Awaitable[Any]], cpu: list[float] | None = None
) -> tuple[float, Any]:
    """Await ``job()``; return (seconds, its result).

    Appends to ``cpu`` the CPU-seconds that this process and every process below it
    (the embedded cluster's master, shuffle service, workers and executors) used
    meanwhile: the runtime's whole cost, compared with the serial run's ``timed`` CPU.
    """
    start_cpu = tree_cpu_seconds() if cpu is not None else 0.0
    start = time.perf_counter()
    value = await job()
    seconds = time.perf_counter() - start
    if cpu is not None:
        cpu.append(tree_cpu_seconds() - start_cpu)
    return seconds, value


def put_cpu(results: Results, metric: str, serial: list[float], engine: list[float]) -> None:
    """Record the median CPU-seconds of the serial runs and of aiospark's (``<metric>_cpu``)."""
    results.put("serial", f"{metric}_cpu", statistics.median(serial))
    results.put("aiospark", f"{metric}_cpu", statistics.median(engine))


def p90(samples: list[float]) -> float:
    """The 90th percentile (inclusive method; the maximum for fewer than two samples)."""
    if len(samples) < 2:
        return max(samples)
    return statistics.quantiles(samples, n=10, method="inclusive")[-1]


def workers_text(workers: int) -> str:
    """``"1 worker"``, ``"2 workers"``."""
    return f"{workers} worker" + ("" if workers == 1 else "s")


def median_text(samples: list[float]) -> str:
    """``"median 1.23 s of 1.20, 1.23, 1.31"`` (three decimals when under 0.1 s)."""
    digits = 3 if statistics.median(samples) < 0.1 else 2
    text = f"median {statistics.median(samples):.{digits}f} s"
    if len(samples) > 1:
        text += " of " + ", ".join(f"{s:.{digits}f}" for s in samples)
    return text


def report(engine: str, text: str) -> None:
    """Print one progress line of the run."""
    print(f"  {engine:<9} {text}", flush=True)


def warm_page_cache(path: Path) -> None:
    """Read ``path`` once so every engine then reads it from the page cache."""
    with path.open("rb") as f:
        while f.read(16 * 2**20):
            pass


def check_word_counts(engine: str, pairs: list[tuple[str, int]], reference: Any) -> None:
    """The correctness guard: ``engine``'s (word, count) pairs equal the serial Counter."""
    if reference is None:
        return
    counts = dict(pairs)
    assert len(counts) == len(pairs), f"{engine}: a word appears in more than one pair"
    assert counts == reference, f"{engine}: word counts differ from collections.Counter"


def check_rbk_keys(engine: str, keys: int, pairs: int) -> None:
    """The correctness guard of the reduce_by_key workload."""
    wanted = expected_rbk_keys(pairs)
    assert keys == wanted, f"{engine}: reduce_by_key + count gave {keys}, expected {wanted}"
