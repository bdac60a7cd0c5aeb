"""Charts of a benchmark run (PNG, matplotlib), from the JSON that ``run.py --json`` writes.

    python benchmarks/run.py --json results.json --charts docs/images
    python benchmarks/charts.py results.json [more.json ...] --out docs/images
    python benchmarks/charts.py --scale [before.json] docs/images/scale.json --out docs/images

Several JSON files are merged (a later file's figures win), so a run of some
workloads can complete an earlier one.  Two charts: each workload's time per
engine (log scale, lower is better), and each engine's speed relative to plain
one-core Python (above 1: faster than serial).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import WORKLOADS, Config
from bench_report import rows

#: Short names of the timed workloads on the charts' axes.
SHORT = {
    "startup_s": "start-up",
    "wordcount_s": "word count",
    "wordcount_tuned_s": "word count\n(tuned splits)",
    "rbk_s": "reduce_by_key",
    "sort_s": "sort_by_key",
    "pagerank_s": "PageRank",
    "kmeans_pr_s": "k-means\n(per-record)",
    "kmeans_np_s": "k-means\n(numpy)",
    "broadcast_s": "broadcast\n200 MB",
}
#: Engine order and colours in every chart.
ENGINES = {"serial": "#9e9e9e", "aiospark": "#1f6feb", "pyspark": "#e8590c", "dask": "#2f9e44"}


def merge(documents: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The figures of several runs, by engine and metric; later runs win.

    >>> merge([{"figures": {"serial": {"rbk_s": 1.0}}},
    ...        {"figures": {"serial": {"rbk_s": 0.9}, "dask": {"rbk_s": 7.0}}}])
    {'serial': {'rbk_s': 0.9}, 'dask': {'rbk_s': 7.0}}
    """
    figures: dict[str, dict[str, float]] = {}
    for document in documents:
        for engine, values in document.get("figures", {}).items():
            figures.setdefault(engine, {}).update(values)
    return figures


def time_rows(figures: dict[str, dict[str, float]]) -> list[tuple[str, str, dict[str, float]]]:
    """``(metric, label, {engine: seconds})`` for every timed workload someone measured."""
    found = []
    # The labels of a full-size run: charts name the workloads, not one run's sizes.
    config = Config(workers=2, size_mb=100.0, quick=False, only=WORKLOADS, data_dir=Path("."))
    for row in rows(config):
        if row.unit != "s":
            continue
        values = {e: figures[e][row.metric] for e in ENGINES if row.metric in figures.get(e, {})}
        if values:
            found.append((row.metric, SHORT.get(row.metric, row.label), values))
    return found


def draw(figures: dict[str, dict[str, float]], out: Path) -> list[Path]:
    """Write ``times.png`` and ``speedup.png`` into ``out``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = time_rows(figures)
    if not data:
        raise ValueError("no timed workload in these results")
    out.mkdir(parents=True, exist_ok=True)
    engines = [e for e in ENGINES if any(e in values for _, _, values in data)]
    labels = [label for _, label, _ in data]
    width = 0.8 / len(engines)
    written = []

    figure, axes = plt.subplots(figsize=(11, 5.5))
    for i, engine in enumerate(engines):
        xs = [j + (i - (len(engines) - 1) / 2) * width for j in range(len(data))]
        ys = [values.get(engine, float("nan")) for _, _, values in data]
        axes.bar(xs, ys, width, label=engine, color=ENGINES[engine])
    axes.set_yscale("log")
    axes.set_ylabel("seconds (log scale; lower is better)")
    axes.set_xticks(range(len(data)), labels, rotation=0)
    axes.set_title("Time per workload, 2 workers / local[2] / 2 Dask workers vs one core")
    axes.legend()
    figure.tight_layout()
    written.append(out / "times.png")
    figure.savefig(written[-1], dpi=100)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(11, 5.5))
    with_serial = [(label, values) for label, (_, _, values) in zip(labels, data, strict=True)
                   if "serial" in values]
    others = [e for e in engines if e != "serial"]
    width = 0.8 / max(1, len(others))
    for i, engine in enumerate(others):
        xs = [j + (i - (len(others) - 1) / 2) * width for j in range(len(with_serial))]
        ys = [values["serial"] / values[engine] if engine in values else float("nan")
              for _, values in with_serial]
        axes.bar(xs, ys, width, label=engine, color=ENGINES[engine])
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_ylabel("speed relative to one-core Python (higher is better)")
    axes.set_xticks(range(len(with_serial)), [label for label, _ in with_serial],
                    rotation=0)
    axes.set_title("Speed-up over plain single-process Python")
    axes.legend()
    figure.tight_layout()
    written.append(out / "speedup.png")
    figure.savefig(written[-1], dpi=100)
    plt.close(figure)
    return written


#: Colours of the scaling chart's workloads (bench_scale.py).
SCALE_WORKLOADS = {
    "rbk": ("reduce_by_key, 100k keys", "#1f6feb"),
    "rbk-wide": ("reduce_by_key, n/20 keys", "#2f9e44"),
    "sort": ("sort_by_key", "#e8590c"),
}


def per_million(runs: list[dict[str, Any]], workload: str, metric: str) -> tuple[list, list]:
    """``(sizes, metric per million records)`` of one workload's runs, by size.

    >>> per_million([{"workload": "rbk", "records": 2_000_000, "seconds": 1.0}], "rbk", "seconds")
    ([2000000], [0.5])
    """
    mine = sorted((r for r in runs if r["workload"] == workload), key=lambda r: r["records"])
    return [r["records"] for r in mine], [r[metric] * 1e6 / r["records"] for r in mine]


def draw_scale(
    document: dict[str, Any], path: Path, before: dict[str, Any] | None = None
) -> Path:
    """The cost curve of a ``bench_scale.py`` run: seconds and CPU-seconds per million records
    against the number of records, per workload, with plain Python's where it was run (and
    the CPU-seconds of ``before``, an earlier run to compare with, dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, 2, figsize=(11, 4.8))
    budget = document["worker_memory"] / 2**20
    for axes, metric, title in (
        (panels[0], "seconds", "wall time"),
        (panels[1], "cpu_seconds", "CPU time, all processes"),
    ):
        for workload, (label, colour) in SCALE_WORKLOADS.items():
            sizes, values = per_million(document["runs"], workload, metric)
            if sizes:
                axes.plot(sizes, values, "o-", color=colour, label=f"{label}, aiospark")
                for size, value in zip(sizes, values, strict=True):
                    axes.annotate(f"{value:.2f}", (size, value), textcoords="offset points",
                                  xytext=(0, 6), ha="center", fontsize=8)
            sizes, values = per_million(document.get("serial", []), workload, metric)
            if sizes:
                axes.plot(sizes, values, "s--", color=colour, alpha=0.5,
                          label=f"{label}, one-core Python")
            runs = (before or {}).get("runs", []) if metric == "cpu_seconds" else []
            sizes, values = per_million(runs, workload, metric)
            if sizes:
                axes.plot(sizes, values, "x:", color=colour, alpha=0.7,
                          label=f"{label}, before")
        axes.set_xscale("log")
        axes.set_ylim(bottom=0)
        axes.set_xlabel("records (log scale)")
        axes.set_ylabel(f"{'CPU-' if metric == 'cpu_seconds' else ''}seconds per million records")
        axes.set_title(title)
        axes.grid(alpha=0.3)
    panels[0].legend(fontsize=8)
    if before is not None:
        panels[1].legend(fontsize=8)
    spilled = sorted({r["records"] for r in document["runs"] if r.get("spilled_bytes")})
    figure.suptitle(f"Cost per record as the data grow past memory: {document['workers']} "
                    f"workers of {budget:,.0f} MB each"
                    + (f" (spilling at {', '.join(f'{n:,}' for n in spilled)} records)"
                       if spilled else ""))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON files from run.py --json")
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--scale", action="store_true",
                        help="the JSON is bench_scale.py's: draw OUT/scale.png from it "
                        "(from the last file; an earlier one is drawn dotted, as 'before')")
    args = parser.parse_args(argv)
    documents = [json.loads(path.read_text()) for path in args.results]
    if args.scale:
        before = documents[0] if len(documents) > 1 else None
        print(f"wrote {draw_scale(documents[-1], args.out / 'scale.png', before)}")
        return
    for path in draw(merge(documents), args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
