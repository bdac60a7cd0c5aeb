"""The result table: figures, ratios against plain Python, targets met or missed; JSON output."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_loop_lag
from bench_common import Config, Results, workers_text
from bench_machine import machine

ENGINES = ("serial", "aiospark", "pyspark", "dask")


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the table: a metric, how to show it, and whether it has a serial baseline."""

    metric: str
    label: str
    unit: str
    higher_is_better: bool = False
    has_serial: bool = False


@dataclasses.dataclass(frozen=True)
class Target:
    """A goal for aiospark's figure (or for its ratio to serial), from DESIGN.md §8 or the bar."""

    metric: str
    text: str
    source: str  # "§8" (DESIGN.md) or "bar" (the acceptance thresholds)
    passes: Callable[[float], bool]
    on_ratio: bool = False
    needs_full_size: bool = False
    needs_two_workers: bool = True

    def applies(self, cfg: Config) -> bool:
        """Whether the target was set for a run like ``cfg``."""
        two = cfg.workers == 2 or not self.needs_two_workers
        return two and (cfg.full_size(self.metric) or not self.needs_full_size)


def rows(cfg: Config, results: Results | None = None) -> list[Row]:
    """The table's rows, in workload order (``results`` fills in the word count's splits)."""
    got = results.get if results is not None else (lambda engine, metric: None)
    splits = got("aiospark", "wordcount_partitions")
    tuned_splits = got("aiospark", "wordcount_tuned_partitions")
    default = "default" if cfg.text_partitions is None else f"min_partitions={cfg.text_partitions}"
    if splits:
        default += f": {splits:.0f} splits"
    tuned = f"min_partitions = 2 x workers = {2 * cfg.workers}"
    if tuned_splits:
        tuned += f": {tuned_splits:.0f} splits"
    kmeans = f"{cfg.kmeans_points:,} x {cfg.kmeans_dim}, k={cfg.kmeans_k}"
    return [
        Row("startup_s", "start-up", "s"),
        Row("tiny_p50_ms", "tiny job p50 (8 items, 2 partitions)", "ms"),
        Row("tiny_p90_ms", "tiny job p90", "ms"),
        Row("tasks_per_s", f"trivial tasks per second ({cfg.tasks:,} tasks)", "/s", True),
        *(
            Row(f"looplag_{case}_ms", f"driver loop's max lag: {label}", "ms")
            for case, label in bench_loop_lag.labels(cfg.workers, cfg.quick).items()
        ),
        Row("wordcount_s", f"word count, {cfg.size_mb:g} MB ({default})", "s", has_serial=True),
        Row(
            "wordcount_tuned_s",
            f"word count, {cfg.size_mb:g} MB, tuned ({tuned})",
            "s",
            has_serial=True,
        ),
        Row(
            "rbk_s", f"reduce_by_key + count, {cfg.rbk_pairs / 1e6:g} M pairs", "s", has_serial=True
        ),
        Row(
            "sort_s", f"sort_by_key + count, {cfg.rbk_pairs / 1e6:g} M pairs", "s", has_serial=True
        ),
        Row(
            "pagerank_s",
            f"PageRank, {cfg.pagerank_edges / 1e6:g} M edges, {cfg.pagerank_iterations} iterations",
            "s",
            has_serial=True,
        ),
        Row("kmeans_pr_s", f"k-means later iteration, per-record ({kmeans})", "s", has_serial=True),
        Row("kmeans_np_s", f"k-means later iteration, vectorised ({kmeans})", "s", has_serial=True),
        Row(
            "broadcast_s",
            f"broadcast {cfg.broadcast_mb} MB until every worker used it",
            "s",
        ),
        Row("broadcast_mb_per_s", "broadcast throughput (MB x workers / s)", "MB/s", True),
    ]


def targets(cfg: Config) -> list[Target]:
    """The goals: DESIGN.md §8 (2 workers) and the acceptance bar."""
    speedup = 0.8 * cfg.workers  # 80 % parallel efficiency: 1.6x with 2 workers
    faster = lambda r: r > 1.0  # §8's aim: beat one core of plain Python on every row
    found = []
    for metric in ("wordcount_s", "wordcount_tuned_s"):
        found += [
            Target(
                metric,
                f"≥ {speedup:g}x",
                "bar",
                lambda r: r >= speedup,
                on_ratio=True,
                needs_full_size=True,
                needs_two_workers=False,
            ),
            Target(metric, "≤ 3.0 s", "§8", lambda v: v <= 3.0, needs_full_size=True),
        ]
    for metric, limit in (("rbk_s", 0.8), ("sort_s", 1.5), ("pagerank_s", 4.0)):
        found += [
            Target(
                metric,
                "> 1x",
                "§8",
                faster,
                on_ratio=True,
                needs_full_size=True,
                needs_two_workers=False,
            ),
            Target(
                metric, f"≤ {limit:g} s", "§8", lambda v, lim=limit: v <= lim, needs_full_size=True
            ),
        ]
    return [
        Target("startup_s", "≤ 0.5 s", "§8", lambda v: v <= 0.5),
        Target("startup_s", "≤ 1.5 s", "bar", lambda v: v <= 1.5),
        Target("tiny_p50_ms", "≤ 3 ms", "§8", lambda v: v <= 3.0),
        Target("tiny_p50_ms", "≤ 5 ms", "bar", lambda v: v <= 5.0),
        Target("tasks_per_s", "≥ 2,000/s", "§8, bar", lambda v: v >= 2000),
        *(
            Target(f"looplag_{case}_ms", "≤ 50 ms", "issue 11", lambda v: v <= 50,
                   needs_full_size=True)
            for case in bench_loop_lag.CASES
        ),
        *found,
        Target(
            "kmeans_pr_s",
            "> 1x",
            "§8",
            faster,
            on_ratio=True,
            needs_full_size=True,
            needs_two_workers=False,
        ),
        Target("kmeans_pr_s", "≤ 5.2 s", "§8", lambda v: v <= 5.2, needs_full_size=True),
    ]


def ratio(results: Results, engine: str, row: Row) -> float | None:
    """serial / engine for rows with a serial baseline (above 1: the engine is faster)."""
    serial, value = results.get("serial", row.metric), results.get(engine, row.metric)
    if not row.has_serial or serial is None or not value:
        return None
    return serial / value


def evaluate(cfg: Config, results: Results) -> list[dict[str, Any]]:
    """Each target with aiospark's value and a status: met, missed or n/a."""
    by_metric = {row.metric: row for row in rows(cfg, results)}
    evaluated = []
    for target in targets(cfg):
        row = by_metric[target.metric]
        value = (
            ratio(results, "aiospark", row)
            if target.on_ratio
            else results.get("aiospark", target.metric)
        )
        if value is None or not target.applies(cfg):
            status = "n/a"
        else:
            status = "met" if target.passes(value) else "missed"
        evaluated.append(
            {
                "metric": target.metric,
                "target": target.text,
                "source": target.source,
                "value": value,
                "status": status,
            }
        )
    return evaluated


def fmt_value(value: float | None, unit: str) -> str:
    """A figure with its unit, or a dash."""
    if value is None:
        return "—"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "MB/s":
        return f"{value:,.0f} MB/s"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"
    return f"{value:.3f} s" if value < 0.1 else f"{value:.2f} s"


def fmt_ratio(value: float | None) -> str:
    """A ratio as ``1.23x``, or a dash."""
    return "—" if value is None else f"{value:.2f}x"


def table_lines(cfg: Config, results: Results, peers: list[str]) -> list[str]:
    """The table as Markdown lines (readable as plain text too)."""
    header = ["workload", "serial (1 core)", f"aiospark ({workers_text(cfg.workers)})", "ratio"]
    for peer in peers:
        header += [peer, "ratio"]
    header += ["aiospark target", "status"]
    body = [header, ["---"] * len(header)]
    evaluated = evaluate(cfg, results)
    for row in rows(cfg, results):
        if all(results.get(e, row.metric) is None for e in ENGINES):
            continue
        cells = [row.label, fmt_value(results.get("serial", row.metric), row.unit)]
        for engine in ("aiospark", *peers):
            cells += [
                fmt_value(results.get(engine, row.metric), row.unit),
                fmt_ratio(ratio(results, engine, row)),
            ]
        mine = [t for t in evaluated if t["metric"] == row.metric]
        cells.append("; ".join(f"{t['target']} ({t['source']})" for t in mine) or "—")
        cells.append("; ".join(t["status"] for t in mine) or "—")
        body.append(cells)
    widths = [max(len(line[i]) for line in body) for i in range(len(header))]
    body[1] = ["-" * w for w in widths]
    return [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in body
    ]


def summary_lines(cfg: Config, results: Results) -> list[str]:
    """Speedup and parallel efficiency of the word count, and the count of missed targets."""
    lines = []
    wc = ratio(results, "aiospark", Row("wordcount_s", "", "s", has_serial=True))
    capacity = results.environment.get("parallel_capacity")
    if wc is not None:
        line = (
            f"word count speedup {wc:.2f}x with {workers_text(cfg.workers)}: parallel "
            f"efficiency {wc / cfg.workers:.0%} (speedup / workers)"
        )
        if capacity:
            line += f"; {wc / capacity:.0%} of the {capacity:.2f}x this machine delivered"
        lines.append(line)
    tuned = ratio(results, "aiospark", Row("wordcount_tuned_s", "", "s", has_serial=True))
    if tuned is not None:
        lines.append(
            f"word count speedup with min_partitions = {2 * cfg.workers} (tuned, not the "
            f"default): {tuned:.2f}x, parallel efficiency {tuned / cfg.workers:.0%}"
        )
    for metric, label in (("kmeans_pr", "per-record"), ("kmeans_np", "vectorised")):
        serial = results.get("serial", f"{metric}_first_s")
        mine = results.get("aiospark", f"{metric}_first_s")
        if serial is not None and mine is not None:
            lines.append(
                f"k-means {label} first iteration, including producing the points: serial "
                f"{serial:.2f} s, aiospark {mine:.2f} s (generating, caching on the workers)"
            )
    lines += cpu_lines(results)
    evaluated = evaluate(cfg, results)
    missed = [f"{t['metric']} {t['target']}" for t in evaluated if t["status"] == "missed"]
    met = sum(t["status"] == "met" for t in evaluated)
    lines.append(
        f"targets: {met} met, {len(missed)} missed" + (f" ({', '.join(missed)})" if missed else "")
    )
    return lines


#: The workloads whose CPU cost is measured, and issue 13's ceiling on CPU / serial CPU.
CPU_ROWS = {"wordcount": None, "rbk": 1.25, "sort": 1.25, "pagerank": 1.25}


def cpu_lines(results: Results) -> list[str]:
    """The headline overhead: CPU-seconds of every process over the serial CPU-seconds."""
    lines = []
    for metric, ceiling in CPU_ROWS.items():
        serial = results.get("serial", f"{metric}_cpu")
        mine = results.get("aiospark", f"{metric}_cpu")
        if not serial or mine is None:
            continue
        line = (
            f"CPU cost of {metric}: aiospark {mine:.2f} CPU-s in all processes / serial "
            f"{serial:.2f} CPU-s = {mine / serial:.2f}x"
        )
        if ceiling is not None:
            met = "met" if mine / serial <= ceiling else "missed"
            line += f" (target <= {ceiling:g}x: {met})"
        lines.append(line)
    return lines


def advantage(results: Results, peer: str, row: Row) -> float | None:
    """How many times faster aiospark is than ``peer`` on ``row`` (below 1: slower).

    >>> r = Results()
    >>> r.put("aiospark", "rbk_s", 0.5); r.put("dask", "rbk_s", 5.0)
    >>> advantage(r, "dask", Row("rbk_s", "", "s"))
    10.0
    """
    mine, theirs = results.get("aiospark", row.metric), results.get(peer, row.metric)
    if not mine or not theirs:
        return None
    return mine / theirs if row.higher_is_better else theirs / mine


def comparison_lines(cfg: Config, results: Results, peers: list[str]) -> list[str]:
    """aiospark against each peer, and each engine's parallel efficiency, as Markdown."""
    header = ["workload", *(f"aiospark vs {p}" for p in peers),
              *(f"efficiency {e}" for e in ("aiospark", *peers))]
    body = [header]
    for row in rows(cfg, results):
        cells = [row.label]
        cells += [fmt_ratio(advantage(results, peer, row)) for peer in peers]
        cells += [
            "—" if (r := ratio(results, engine, row)) is None else f"{r / cfg.workers:.0%}"
            for engine in ("aiospark", *peers)
        ]
        if any(c != "—" for c in cells[1:]):
            body.append(cells)
    widths = [max(len(line[i]) for line in body) for i in range(len(header))]
    body.insert(1, ["-" * w for w in widths])
    return [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in body
    ]


def print_report(cfg: Config, results: Results, peers: list[str]) -> None:
    """Print the table, aiospark against the peers, then the summary lines."""
    print()
    for line in table_lines(cfg, results, peers):
        print(line)
    print()
    if peers:
        for line in comparison_lines(cfg, results, peers):
            print(line)
        print(
            "aiospark vs a peer = how many times faster aiospark is (below 1x: slower); "
            f"efficiency = speed-up over one-core Python / {cfg.workers} workers"
        )
        print()
    for line in summary_lines(cfg, results):
        print(line)
    print(
        "ratio = serial time / engine time (above 1: faster than plain one-core Python); "
        "§8 targets apply to 2 workers and the default sizes"
    )


def write_json(path: Path, cfg: Config, results: Results, peers: list[str]) -> None:
    """Everything measured, as JSON."""
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()}
    document = {
        "machine": {**machine(), **results.environment},
        "config": config,
        "engines": ["serial", "aiospark", *peers],
        "figures": results.figures,
        "targets": evaluate(cfg, results),
        "notes": results.notes,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
