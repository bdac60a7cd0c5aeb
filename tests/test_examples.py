"""The examples: their cluster code against plain Python, and one command-line run each.

The PageRank and k-means examples expose their core functions: these tests run
them on the session's cluster (``ctx``) and compare with the plain-Python version
of the same computation on the same (small) input.  Then each example runs once
as a subprocess, as a user would start it, and its printed result is checked
against a plain-Python computation.
"""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import cloudpickle
import numpy as np
import pytest

from aiospark.lineage import ShuffleDependency

pytestmark = [pytest.mark.cluster]
on_session_loop = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RUN_TIMEOUT = 120


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py``; its functions are shipped to workers by value."""
    module_name = f"aiospark_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    # The workers cannot import this module: pickle its functions by value.
    cloudpickle.register_pickle_by_value(module)
    return module


pagerank = load_example("pagerank")
kmeans = load_example("kmeans")


def run_example(*argv: str) -> str:
    """Run an example the way a user would; returns its standard output."""
    done = subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


# -- PageRank --------------------------------------------------------------------------------------


@on_session_loop
async def test_pagerank_matches_plain_python(ctx):
    nodes, edges, seed, iterations, partitions = 2_000, 20_000, 3, 5, 4
    links = pagerank.cached_links(pagerank.cluster_edges(ctx, nodes, edges, seed), partitions)
    # The links are partitioned like the ranks: the join reads both without a shuffle.
    ranks0 = links.map_values(lambda _: 1.0)
    ranks1 = (
        links.join(ranks0)
        .flat_map(pagerank.contributions)
        .reduce_by_key(lambda a, b: a + b, partitions)
    )
    assert not any(isinstance(d, ShuffleDependency) for d in links.join(ranks1).deps)

    ranks = dict(await pagerank.pagerank(links, iterations, partitions).collect())
    expected = pagerank.pagerank_serial(pagerank.generated_edges(nodes, edges, seed), iterations)
    assert ranks.keys() == expected.keys()
    for node, rank in expected.items():
        assert math.isclose(ranks[node], rank, rel_tol=1e-9), node
    links.unpersist()


@on_session_loop
async def test_pagerank_reads_an_edge_list(ctx, tmp_path):
    path = tmp_path / "graph.txt"
    lines = ["# from to", "1 2", "1 3", "2 3", "3 1", "3 1", "4 3  # a comment", "", "a b"]
    path.write_text("\n".join(lines) + "\n")
    edges = pagerank.cluster_edges(ctx, 0, 0, 0, edges_file=str(path))
    links = pagerank.cached_links(edges, 3)
    ranks = dict(await pagerank.pagerank(links, 4, 3).collect())
    expected = pagerank.pagerank_serial(pagerank.read_edges(str(path)), 4)
    # 4 and "a" have no in-links, so they drop out, and "b" with its only source.
    assert ranks.keys() == expected.keys() == {1, 2, 3}
    for node, rank in expected.items():
        assert math.isclose(ranks[node], rank, rel_tol=1e-12)
    links.unpersist()


def test_pagerank_command_line_prints_the_top_ranks():
    out = run_example("examples/pagerank.py", "--quick", "--workers", "2")
    assert re.search(r"PageRank of 2,000 nodes, 20,000 generated edges: 5 iterations", out)
    printed = re.findall(r"^\s*\d+\. node (\d+): rank ([\d.]+)$", out, re.MULTILINE)
    args = pagerank.parse_args(["--quick"])
    expected = pagerank.pagerank_serial(
        pagerank.generated_edges(args.nodes, args.edges, args.seed), args.iterations
    )
    top = sorted(expected.items(), key=pagerank.by_rank)[:10]
    assert [int(node) for node, _ in printed] == [node for node, _ in top]
    for (_, shown), (_, rank) in zip(printed, top, strict=True):
        assert abs(float(shown) - rank) < 1e-6


# -- k-means -------------------------------------------------------------------------------------


@on_session_loop
async def test_kmeans_matches_plain_python(ctx):
    sizes = {"seed": 5, "points": 25_000, "dim": 6, "k": 4}
    times = []
    centres, points = await kmeans.kmeans(
        ctx, **sizes, iterations=4, partitions=3, on_iteration=lambda i, s: times.append(s)
    )
    expected = kmeans.kmeans_serial(**sizes, iterations=4)
    np.testing.assert_allclose(centres, expected, rtol=1e-9, atol=1e-9)
    assert len(times) == 4
    assert await points.count() == kmeans.point_blocks(sizes["points"])  # numpy blocks
    points.unpersist()


@on_session_loop
async def test_kmeans_per_record_matches_plain_python(ctx):
    sizes = {"seed": 6, "points": 3_000, "dim": 4, "k": 3}
    centres, points = await kmeans.kmeans(ctx, **sizes, iterations=2, per_record=True)
    expected = kmeans.kmeans_serial(**sizes, iterations=2, per_record=True)
    np.testing.assert_allclose(centres, expected, rtol=1e-9, atol=1e-9)
    assert await points.count() == sizes["points"]  # one row per record
    points.unpersist()


def test_kmeans_command_line_prints_iterations_and_centres(tmp_path):
    png = tmp_path / "clusters.png"
    out = run_example("examples/kmeans.py", "--quick", "--workers", "2", "--plot", str(png))
    times = re.findall(r"^iteration (\d): (\d+\.\d+) s", out, re.MULTILINE)
    assert [int(i) for i, _ in times] == [1, 2, 3, 4, 5]
    printed = re.findall(r"^\s+(\d): \[([^\]]*)\]$", out, re.MULTILINE)
    args = kmeans.parse_args(["--quick"])
    expected = kmeans.kmeans_serial(args.seed, args.points, args.dim, args.k, args.iterations)
    assert len(printed) == args.k
    for j, values in printed:
        shown = [float(v) for v in values.split()]
        np.testing.assert_allclose(shown, expected[int(j), :4], atol=1e-3)
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    assert png.exists() == has_matplotlib
    assert ("plot written" in out) == has_matplotlib


# -- word count ------------------------------------------------------------------------------------


def test_wordcount_command_line_matches_counter():
    out = run_example("examples/wordcount.py", "README.md", "--top", "10", "--workers", "2")
    printed = [
        (word, int(count)) for count, word in re.findall(r"^\s*(\d+)  (\S+)$", out, re.MULTILINE)
    ]
    counts = Counter((ROOT / "README.md").read_text(encoding="utf-8").split())
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert printed == expected
