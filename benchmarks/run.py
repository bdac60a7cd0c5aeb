"""aiospark's benchmark suite: the embedded cluster against plain single-process Python.

    python benchmarks/run.py                       # the full run (~4 min; more with peers)
    python benchmarks/run.py --quick               # a small smoke run (~15 s)
    python benchmarks/run.py --only tiny,tasks --workers 4 --json results.json
    python benchmarks/run.py --json results.json --charts docs/images   # and the PNG charts

``pip install -e '.[bench]'`` adds PySpark, Dask and matplotlib.

Workloads: ``startup`` (fresh contexts until ready), ``tiny`` (an 8-item job's
latency), ``tasks`` (trivial tasks per second), ``looplag`` (the driver loop's max lag
during start-up, a 1 M-record collect, collect_as_map and parallelize: see
bench_loop_lag.py), ``wordcount`` (a generated ~100 MB
text, with the default input splits and with ``min_partitions = 2 x workers``),
``rbk`` (reduce_by_key + count of 2 M generated pairs), ``sort`` (sort_by_key +
count of the same pairs), ``pagerank`` (examples/pagerank.py: 1 M edges, 5
iterations), ``kmeans`` (examples/kmeans.py: later iterations on 200,000 x 32
points, per-record and vectorised) and ``broadcast`` (a 200 MB numpy array until
every worker has used it).  Data workloads are checked against the serial results
(a mismatch fails the run).  PySpark ``local[N]`` and a Dask ``LocalCluster`` run
the first six workloads when importable (Dask sorts through a dask DataFrame).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import blas_threads  # noqa: F401 - before numpy: one BLAS thread per process
import charts
from bench_aiospark import run_aiospark
from bench_common import (
    DATA_WORKLOADS,
    WORKLOADS,
    Config,
    Results,
    warm_page_cache,
    workers_text,
)
from bench_corpus import ensure_corpus
from bench_machine import CapacityProbe, machine, machine_line
from bench_peers import run_peers
from bench_report import print_report, write_json

HERE = Path(__file__).resolve().parent
QUICK_SIZE_MB = 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--size-mb",
        type=float,
        default=None,
        help="word-count input size in MB of 10^6 bytes (default 100; 2 --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, few repetitions, no peers: a smoke run of seconds",
    )
    parser.add_argument(
        "--only",
        default=",".join(WORKLOADS),
        help=f"comma-separated workloads to run, of: {','.join(WORKLOADS)}",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--charts", type=Path, default=None,
        help="also draw the charts (times.png, speedup.png) into this directory (matplotlib)",
    )
    parser.add_argument("--no-peers", action="store_true", help="skip PySpark and Dask")
    parser.add_argument(
        "--no-tuned",
        action="store_true",
        help="skip the word count's second run with min_partitions = 2 x workers",
    )
    parser.add_argument(
        "--text-partitions",
        type=int,
        default=None,
        metavar="N",
        help="diagnostic: min_partitions of the word-count input "
        "(default: each engine's default, 3 splits of 32 MiB)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=HERE / "data",
        help="where the generated input lives (default benchmarks/data)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    unknown = set(split_names(args.only)) - set(WORKLOADS)
    if unknown:
        parser.error(
            f"unknown workload(s) {', '.join(sorted(unknown))}; choose from {', '.join(WORKLOADS)}"
        )
    if args.text_partitions is not None and args.text_partitions < 1:
        parser.error("--text-partitions must be at least 1")
    if args.size_mb is not None and args.size_mb <= 0:
        parser.error("--size-mb must be positive")
    return args


def split_names(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [name.strip() for name in text.split(",") if name.strip()]


def make_config(args: argparse.Namespace) -> Config:
    """The run's configuration: the defaults, or the small ones of ``--quick``."""
    only = tuple(w for w in WORKLOADS if w in split_names(args.only))
    common = {
        "workers": args.workers,
        "quick": args.quick,
        "only": only,
        "data_dir": args.data_dir,
        "peers": not (args.quick or args.no_peers),
        "text_partitions": args.text_partitions,
        "tuned_word_count": not args.no_tuned,
    }
    if not args.quick:
        return Config(size_mb=args.size_mb or 100.0, **common)
    return Config(
        size_mb=args.size_mb or QUICK_SIZE_MB,
        startup_runs=1,
        tiny_warmups=1,
        tiny_runs=5,
        tasks_runs=1,
        looplag_rounds=1,
        rbk_pairs=200_000,
        data_runs=1,
        pagerank_nodes=10_000,
        pagerank_edges=100_000,
        pagerank_runs=1,
        kmeans_points=20_000,
        kmeans_iterations=3,
        broadcast_mb=20,
        **common,
    )


def prepare_corpus(cfg: Config) -> Path | None:
    """Generate (or reuse) the word-count input, and bring it into the page cache."""
    if not cfg.wants("wordcount"):
        return None
    path, reused = ensure_corpus(cfg.data_dir, cfg.size_mb, cfg.seed)
    size = path.stat().st_size
    print(f"input: {path} ({size / 1e6:.1f} MB, {'reused' if reused else 'generated'})")
    warm_page_cache(path)
    return path


def environment_notes(results: Results) -> None:
    """Warn about what makes this run's figures less representative."""
    load = os.getloadavg()[0]
    results.environment["load_average_start"] = load
    if load > 0.5:
        results.note(
            f"load average {load:.2f} at start on {os.cpu_count()} CPUs: other "
            "processes are busy, figures will be noisy (and slower)"
        )
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        results.note(
            "PYTHONDONTWRITEBYTECODE is set: processes that find no cached bytecode "
            "compile aiospark's modules at every start (slower start-up)"
        )


def report_capacity(cfg: Config, probe: CapacityProbe, results: Results) -> None:
    """Print what the machine delivered in parallel while the data workloads ran."""
    summary = probe.summary()
    results.environment.update(summary)
    if summary:
        print(
            f"machine check: {cfg.workers} processes running plain Python at once did "
            f"{summary['parallel_capacity']:.2f}x the work of one (median of "
            f"{len(probe.samples)} samples next to the timed runs, "
            f"{summary['parallel_capacity_min']:.2f}-{summary['parallel_capacity_max']:.2f}x; "
            f"ideal {cfg.workers}x)",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    """Run the selected workloads on every engine, then print (and save) the table."""
    args = parse_args(argv)
    cfg = make_config(args)
    print(machine_line(machine()))
    print(
        f"workloads: {', '.join(cfg.only)}; workers: {cfg.workers}"
        + ("; quick smoke run" if cfg.quick else ""),
        flush=True,
    )
    results = Results()
    environment_notes(results)
    corpus = prepare_corpus(cfg)
    print(
        f"aiospark (embedded cluster, {workers_text(cfg.workers)}) and serial (plain Python, "
        "one process; runs alternate with aiospark's):",
        flush=True,
    )
    if any(cfg.wants(w) for w in DATA_WORKLOADS):  # sample the machine next to data runs
        with CapacityProbe(cfg.workers) as probe:
            reference = run_aiospark(cfg, corpus, results, probe.sample)
        report_capacity(cfg, probe, results)
    else:
        reference = run_aiospark(cfg, corpus, results)
    peers = run_peers(cfg, corpus, reference, results)
    results.environment["load_average_end"] = os.getloadavg()[0]
    print_report(cfg, results, peers)
    if args.json is not None:
        write_json(args.json, cfg, results, peers)
        print(f"results written to {args.json}")
    if args.charts is not None:
        for path in charts.draw(results.figures, args.charts):
            print(f"chart written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
