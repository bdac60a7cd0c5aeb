"""benchmarks/charts.py draws the run's figures (the charts of docs/benchmarks.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="matplotlib draws the charts (test and bench extras)")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import charts

FIGURES = {
    "serial": {"rbk_s": 0.3, "sort_s": 1.0, "pagerank_s": 4.4},
    "aiospark": {"rbk_s": 0.4, "sort_s": 1.5, "pagerank_s": 5.0, "startup_s": 0.4},
    "pyspark": {"rbk_s": 2.0, "pagerank_s": 30.0},
    "dask": {"rbk_s": 7.0},
}


def test_charts_are_written_as_png(tmp_path):
    paths = charts.draw(FIGURES, tmp_path / "images")
    assert [p.name for p in paths] == ["times.png", "speedup.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_rows_keep_every_engine_that_measured_a_workload():
    rows = {metric: values for metric, _, values in charts.time_rows(FIGURES)}
    assert set(rows) == {"startup_s", "rbk_s", "sort_s", "pagerank_s"}
    assert rows["rbk_s"] == {"serial": 0.3, "aiospark": 0.4, "pyspark": 2.0, "dask": 7.0}


def test_no_timed_figures_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no timed workload"):
        charts.draw({"aiospark": {"tiny_p50_ms": 0.8}}, tmp_path)


def test_scale_chart_is_written_from_bench_scale_json(tmp_path):
    runs = [{"workload": w, "records": n, "seconds": n / 1e6, "cpu_seconds": n / 2e6}
            for w in ("rbk", "sort") for n in (2_000_000, 20_000_000)]
    document = {"runs": runs, "serial": runs[:1], "workers": 2, "worker_memory": 128 << 20}
    path = charts.draw_scale(document, tmp_path / "scale.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert charts.per_million(runs, "sort", "seconds") == ([2_000_000, 20_000_000], [1.0, 1.0])
