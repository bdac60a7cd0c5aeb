"""The examples: their cluster code against plain Python, and one command-line run each.

The examples expose their core functions: these tests run them on the session's
cluster (``ctx``) and compare with a plain-Python (or numpy-only) version of the
same computation on the same (small) input.  Then each example runs once as a
subprocess, as a user would start it, and its printed result is checked against
a plain-Python computation.  The log-mining session of its docstring is typed
into ``python -m asyncio``; the web service answers concurrent requests.
"""

from __future__ import annotations

import asyncio
import doctest
import importlib.util
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import aiohttp
import cloudpickle
import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer

from aiospark.lineage import HashPartitioner, ShuffleDependency, StorageLevel
from tests.conftest import pid_alive, wait_until

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
log_mining = load_example("log_mining")
logistic_regression = load_example("logistic_regression")
als = load_example("als")
web_service = load_example("web_service")
NAMES = ["wordcount", "pagerank", "kmeans", "log_mining", "logistic_regression", "als",
         "web_service"]


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


def shuffles(rdd) -> dict[int, ShuffleDependency]:
    """Every shuffle in ``rdd``'s lineage, by shuffle id (each RDD visited once)."""
    found: dict[int, ShuffleDependency] = {}
    seen: set[int] = set()
    stack = [rdd]
    while stack:
        node = stack.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        for dep in node.deps:
            if isinstance(dep, ShuffleDependency):
                found[dep.shuffle_id] = dep
            stack.append(dep.rdd)
    return found


@pytest.mark.parametrize("name", NAMES)
def test_every_example_is_documented_and_its_doctests_pass(name):
    module = load_example(name) if name != "wordcount" else None
    source = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
    docstring = source.split('"""')[1]
    assert f"python examples/{name}.py" in docstring  # the command that runs it
    assert "print" in docstring  # and what it prints
    assert "async def main(" in source and "asyncio.run(main())" in source
    if module is not None:
        finder = doctest.DocTestFinder(exclude_empty=True)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        for test in finder.find(module, module.__name__, globs=vars(module).copy()):
            if test.name != module.__name__:  # the module docstring shows sessions, not tests
                runner.run(test)
        assert runner.failures == 0


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
    assert links.partitioner == ranks1.partitioner == HashPartitioner(partitions)
    assert links.get_storage_level() == StorageLevel.MEMORY_ONLY
    # The links are shuffled once, whatever the iterations: then once per iteration for
    # the contributions (a join that reshuffled the links would add two per iteration).
    final = pagerank.pagerank(links, iterations, partitions)
    assert len(shuffles(final)) == iterations + 1
    assert len(shuffles(links)) == 1

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
    if has_matplotlib:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_kmeans_plot_is_skipped_quietly_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    sample = kmeans.point_block(1, 100, 2, 2, 0)
    assert kmeans.plot(str(tmp_path / "k.png"), sample, sample[:2]) is False
    assert not (tmp_path / "k.png").exists()


# -- word count ------------------------------------------------------------------------------------


def test_wordcount_command_line_matches_counter():
    out = run_example("examples/wordcount.py", "README.md", "--top", "10", "--workers", "2")
    printed = [
        (word, int(count)) for count, word in re.findall(r"^\s*(\d+)  (\S+)$", out, re.MULTILINE)
    ]
    counts = Counter((ROOT / "README.md").read_text(encoding="utf-8").split())
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert printed == expected


# -- log mining ------------------------------------------------------------------------------------


def plain_log_answers(lines: list[str], word: str) -> dict:
    """The log-mining answers, straight from the lines."""
    errors = [line for line in lines if line.split()[2] == "ERROR"]
    hours = Counter(int(line[11:13]) for line in errors if word in line)
    return {
        "errors": len(errors),
        "mentioning": sum(word in line for line in errors),
        "by_hour": dict(sorted(hours.items())),
        "by_service": dict(sorted(Counter(line.split()[3][:-1] for line in errors).items())),
    }


@on_session_loop
async def test_log_mining_queries_match_plain_python_and_read_the_cache(ctx, tmp_path):
    path = log_mining.sample_log(str(tmp_path / "app.log"), lines=6_000, seed=3)
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    expected = plain_log_answers(lines, "db")
    assert expected["by_hour"][14] > 3 * expected["by_hour"][10]  # the incident shows

    errors = log_mining.error_lines(ctx, path)
    assert await errors.count() == expected["errors"]
    os.remove(path)  # the later queries must be answered from the cached errors
    mentioning, by_hour, by_service = await asyncio.gather(
        log_mining.count_mentioning(errors, "db"),
        log_mining.errors_by_hour(errors, "db"),
        log_mining.errors_by_service(errors),
    )
    assert mentioning == expected["mentioning"]
    assert by_hour == expected["by_hour"] and list(by_hour) == sorted(by_hour)
    assert by_service == expected["by_service"]
    errors.unpersist()


def test_log_mining_command_line_prints_the_answers(tmp_path):
    path = log_mining.sample_log(str(tmp_path / "app.log"), lines=4_000, seed=5)
    out = run_example("examples/log_mining.py", path, "auth", "--workers", "2")
    expected = plain_log_answers(Path(path).read_text(encoding="utf-8").splitlines(), "auth")
    assert "sample log" not in out  # it reads the log it is given
    assert re.search(rf"^ERROR lines: {expected['errors']:,} ", out, re.MULTILINE), out
    assert re.search(rf"^mentioning 'auth': {expected['mentioning']:,} ", out, re.MULTILINE)
    services = ", ".join(f"{name} {n:,}" for name, n in expected["by_service"].items())
    assert f"by service: {services}\n" in out
    hours = re.findall(r"^  (\d\d):00 +(\d+) #*$", out, re.MULTILINE)
    assert {int(h): int(n) for h, n in hours} == expected["by_hour"]


@pytest.mark.parametrize("repl", ["python -m asyncio", "aiospark shell"])
def test_log_mining_docstring_session_runs_in_the_repl(repl, tmp_path):
    """The interactive session of the docstring, typed into the asyncio REPL or the shell."""
    examples = doctest.DocTestParser().get_examples(log_mining.__doc__)
    assert any("error_lines" in e.source for e in examples) and examples[-1].want == ""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOSPARK_")}
    env.update(TMPDIR=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    if repl == "python -m asyncio":
        argv = [sys.executable, "-m", "asyncio"]
    else:  # the shell has its own ctx, which it stops on leaving
        argv = [sys.executable, "-m", "aiospark", "shell", "--workers", "2"]
        examples = [e for e in examples if "ctx = " not in e.source and "stop()" not in e.source]
    done = subprocess.run(
        argv,
        cwd=EXAMPLES,  # as the docstring says: cd examples && python -m asyncio
        input="".join(e.source for e in examples),
        capture_output=True,
        text=True,
        env=env,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    shown = [line for line in done.stdout.replace(">>> ", "").splitlines() if line]
    wanted = [line for e in examples for line in e.want.splitlines()]
    assert shown == wanted
    # The docstring's answers are those of the sample log, computed in plain Python.
    expected = plain_log_answers(log_mining.sample_lines(), "db")
    assert wanted[:2] == [str(expected["errors"]), str(expected["mentioning"])]
    assert f"{expected['by_hour']}" in wanted and f"{expected['by_service']}" in wanted
    assert list(tmp_path.glob("aiospark-sample-*.log"))  # sample_log() wrote in TMPDIR


# -- logistic regression ---------------------------------------------------------------------------


def logistic_serial(X: np.ndarray, y: np.ndarray, iterations: int, step: float) -> list:
    """Gradient descent on the logistic loss with numpy only: the weights after each step."""
    w = np.zeros(X.shape[1])
    history = []
    for _ in range(iterations):
        margins = y * (X @ w)
        w = w - step * (X.T @ (-y / (1.0 + np.exp(margins)))) / len(y)
        history.append(w)
    return history


def logistic_data(seed: int, points: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    blocks = [
        logistic_regression.point_block(seed, points, features, b)
        for b in range(logistic_regression.blocks_of(points))
    ]
    return np.concatenate([X for X, _ in blocks]), np.concatenate([y for _, y in blocks])


@on_session_loop
async def test_logistic_regression_matches_numpy(ctx):
    seed, count, features, iterations = 9, 25_000, 4, 8
    points = logistic_regression.cached_points(ctx, seed, count, features, 3)
    history = await logistic_regression.train(points, count, features, iterations, step=1.0)
    X, y = logistic_data(seed, count, features)
    expected = logistic_serial(X, y, iterations, step=1.0)
    assert len(history) == iterations
    for (w, _), w_serial in zip(history, expected, strict=True):
        np.testing.assert_allclose(w, w_serial, rtol=1e-9, atol=1e-12)
    w = history[-1][0]
    right = await logistic_regression.accuracy(points, count, w)
    assert right == np.mean(np.where(X @ w >= 0, 1.0, -1.0) == y)
    assert right > 0.9  # 3% of the labels are flipped
    hidden = logistic_regression.hidden_weights(seed, features)
    assert logistic_regression.angle(w, hidden) < np.radians(5)
    assert await points.count() == logistic_regression.blocks_of(count)  # cached blocks
    points.unpersist()


def test_logistic_regression_command_line_prints_weights_and_accuracy():
    out = run_example(
        "examples/logistic_regression.py", "--quick", "--iterations", "6", "--workers", "2"
    )
    times = re.findall(r"^iteration (\d+): \d+\.\d+ s", out, re.MULTILINE)
    assert [int(i) for i in times] == [1, 2, 3, 4, 5, 6]
    X, y = logistic_data(42, 10_000, 5)  # the example's --quick data and default seed
    w = logistic_serial(X, y, 6, step=1.0)[-1]
    shown = [float(v) for v in re.search(r"^weights: \[([^\]]*)\]", out, re.MULTILINE)[1].split()]
    np.testing.assert_allclose(shown, w, atol=1e-3)
    right = np.mean(np.where(X @ w >= 0, 1.0, -1.0) == y)
    assert f"accuracy: {right:.2%} of 10,000 points" in out


# -- ALS -------------------------------------------------------------------------------------------


def als_serial(R: np.ndarray, M: np.ndarray, iterations: int, lam: float) -> list:
    """ALS with numpy only, one row at a time: ``(U, M)`` after each iteration."""

    def solve(rows: np.ndarray, other: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), other.shape[1]))
        for i, row in enumerate(rows):
            known = ~np.isnan(row)
            A = other[known]
            out[i] = np.linalg.solve(A.T @ A + lam * np.eye(other.shape[1]), A.T @ row[known])
        return out

    history = []
    for _ in range(iterations):
        U = solve(R, M)
        M = solve(R.T, U)
        history.append((U, M))
    return history


@on_session_loop
async def test_als_matches_serial_numpy_and_its_error_decreases(ctx, monkeypatch):
    seed, users, movies, factors, iterations = 4, 120, 80, 4, 6
    R = als.ratings(seed, users, movies, factors)
    broadcast = []
    original = ctx.broadcast

    def recording(value):
        broadcast.append(value)
        return original(value)

    monkeypatch.setattr(ctx, "broadcast", recording)
    history = await als.als(ctx, R, factors, iterations, seed, partitions=3)
    monkeypatch.undo()

    # R (and its transpose) broadcast once; the fixed factors once per half-iteration.
    assert len(broadcast) == 2 + 2 * iterations
    assert np.array_equal(broadcast[0], R, equal_nan=True)
    assert np.array_equal(broadcast[1], R.T, equal_nan=True)
    M0 = als.initial_factors(seed, movies, factors)
    expected = als_serial(R, M0, iterations, als.LAMBDA)
    for (U, M, _), (U_serial, M_serial) in zip(history, expected, strict=True):
        np.testing.assert_allclose(U, U_serial, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(M, M_serial, rtol=1e-9, atol=1e-12)
    errors = [als.rmse(R, U, M) for U, M, _ in history]
    assert all(b < a for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 2 * als.NOISE  # down to about the noise in the ratings


def test_als_command_line_prints_a_falling_rmse():
    out = run_example("examples/als.py", "--quick", "--iterations", "4", "--workers", "2")
    shown = [float(v) for v in re.findall(r"^iteration \d: RMSE (\d+\.\d+) ", out, re.MULTILINE)]
    seed, users, movies, factors = 3, 300, 200, 5  # --quick with the default seed
    R = als.ratings(seed, users, movies, factors)
    expected = als_serial(R, als.initial_factors(seed, movies, factors), 4, als.LAMBDA)
    assert shown == [round(als.rmse(R, U, M), 4) for U, M in expected]
    assert shown == sorted(shown, reverse=True)


# -- the web service -------------------------------------------------------------------------------


def expected_answers(orders: list, customers: int) -> dict[str, object]:
    """Every endpoint's answer, from the orders in plain Python."""
    answers: dict[str, object] = {}
    for c in range(customers):
        answers[f"/customers/{c}"] = [web_service.as_row(o) for o in orders if o[1] == c]
    revenue: Counter = Counter()
    count: Counter = Counter()
    for _, _, product, quantity, price in orders:
        revenue[product] += quantity * price
        count[product] += 1
    answers["/products"] = [
        {"product": p, "orders": count[p], "revenue": revenue[p]} for p in sorted(count)
    ]
    answers["/stats"] = {
        "orders": len(orders),
        "customers": len({o[1] for o in orders}),
        "revenue": sum(revenue.values()),
    }
    return answers


async def fetch(client, path: str) -> object:
    async with client.get(path) as resp:
        assert resp.status == 200, await resp.text()
        if path == "/stats":
            return await resp.json()
        assert resp.headers["Content-Type"] == "application/x-ndjson"
        assert resp.headers["Transfer-Encoding"] == "chunked"  # streamed, not buffered
        return [json.loads(line) async for line in resp.content]


async def test_web_service_answers_concurrent_requests_exactly():
    orders, customers, seed = 25_000, 18, 4
    app = web_service.make_app(orders, customers, seed, workers=2)
    expected = expected_answers(web_service.all_orders(seed, orders, customers), customers)
    paths = list(expected)  # 18 customers, the products and the stats: 20 requests
    async with asyncio.timeout(90), TestClient(TestServer(app)) as client:
        ctx = app[web_service.CONTEXT]
        pids = list(ctx._cluster.pids().values())
        answers = await asyncio.gather(*(fetch(client, path) for path in paths))
        for path, answer in zip(paths, answers, strict=True):
            assert answer == expected[path], path
        assert sum(len(expected[f"/customers/{c}"]) for c in range(customers)) == orders
        async with client.get("/customers/seven") as resp:
            assert resp.status == 400
    # The cleanup hook stopped the context and its processes.
    assert ctx._scheduler is None
    await wait_until(lambda: not any(pid_alive(pid) for pid in pids), 10, "cluster to exit")


async def test_web_service_command_serves_until_interrupted(tmp_path):
    argv = ["examples/web_service.py", "--port", "0", "--orders", "3000", "--customers", "5",
            "--workers", "1"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=ROOT, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            first = (await proc.stdout.readline()).decode()
        url = re.search(r"serving 3,000 orders on (http://\S+) ", first)
        assert url, first + (await proc.stderr.read()).decode()
        expected = expected_answers(web_service.all_orders(1, 3000, 5), 5)
        async with aiohttp.ClientSession(url[1]) as client, asyncio.timeout(60):
            assert await fetch(client, "/stats") == expected["/stats"]
            assert await fetch(client, "/customers/3") == expected["/customers/3"]
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()[-3000:]
        assert b"Traceback" not in err, err.decode()[-3000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
