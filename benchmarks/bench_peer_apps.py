"""PageRank and k-means on the peers, with the examples' own per-record functions.

PySpark runs them with its RDD API, as in Spark's classic examples: links
hash-partitioned once and cached, joined with the ranks each iteration; points
cached, centres broadcast, ``reduceByKeyLocally``.  Dask has no partitioned join
or broadcast in ``dask.bag``: the links bag is persisted on the workers and each
iteration's ranks (or centres) travel to the tasks as a delayed value, which is
how a Dask user would write it.  Both are checked against the serial results.
"""

from __future__ import annotations

import math
import operator
import time
from typing import Any

import numpy as np
from bench_apps import example


def _ship_by_value(module: Any) -> None:
    """PySpark pickles with its bundled cloudpickle: ship the example module by value there too."""
    from pyspark import cloudpickle as spark_cloudpickle

    spark_cloudpickle.register_pickle_by_value(module)


def check_ranks(engine: str, expected: dict, ranks: dict) -> None:
    assert ranks.keys() == expected.keys(), f"{engine}: PageRank ranked other nodes than serial"
    for node, rank in expected.items():
        assert math.isclose(ranks[node], rank, rel_tol=1e-9), f"{engine}: rank of {node} differs"


# -- PySpark ---------------------------------------------------------------------------------


def spark_pagerank(sc: Any, nodes: int, edges: int, seed: int, iterations: int,
                   partitions: int) -> dict:
    pr = example("pagerank")
    _ship_by_value(pr)
    blocks = pr.edge_blocks(edges)
    edge_rdd = sc.parallelize(range(blocks), blocks).flatMap(
        lambda block: pr.edge_block(nodes, edges, seed, block)
    )
    links = edge_rdd.partitionBy(partitions).mapPartitions(
        pr.group_links, preservesPartitioning=True
    ).cache()
    ranks = links.mapValues(lambda _: 1.0)
    for _ in range(iterations):
        contribs = links.join(ranks).flatMap(pr.contributions)
        ranks = contribs.reduceByKey(operator.add, partitions).mapValues(pr.damp)
    result = dict(ranks.collect())
    links.unpersist()
    return result


def spark_kmeans(sc: Any, seed: int, points: int, dim: int, k: int, iterations: int,
                 partitions: int) -> tuple[list[float], np.ndarray]:
    """Per-record k-means; returns each iteration's seconds and the final centres."""
    km = example("kmeans")
    _ship_by_value(km)
    blocks = km.point_blocks(points)
    rows = sc.parallelize(range(blocks), min(partitions, blocks)).flatMap(
        lambda block: list(km.point_block(seed, points, dim, k, block))
    ).cache()
    centres = km.initial_centres(seed, points, dim, k)
    seconds = []
    for _ in range(iterations):
        start = time.perf_counter()
        shared = sc.broadcast(list(centres))
        stats = rows.map(
            lambda p, shared=shared: (km.closest(p, shared.value), (p, 1))
        ).reduceByKeyLocally(km.add_stats)
        shared.unpersist()
        centres = km.new_centres(stats, centres)
        seconds.append(time.perf_counter() - start)
    rows.unpersist()
    return seconds, centres


# -- Dask ------------------------------------------------------------------------------------


def dask_pagerank(client: Any, nodes: int, edges: int, seed: int, iterations: int,
                  partitions: int) -> dict:
    import dask
    import dask.bag as db

    pr = example("pagerank")
    blocks = pr.edge_blocks(edges)
    edge_bag = db.from_sequence(range(blocks), npartitions=blocks).map(
        lambda block: pr.edge_block(nodes, edges, seed, block)
    ).flatten()
    links = edge_bag.groupby(operator.itemgetter(0), npartitions=partitions).map(
        lambda group: next(pr.group_links(group[1]))
    ).persist()
    ranks: dict = {}
    for i in range(iterations):
        current = dask.delayed(ranks)
        first = i == 0

        def node_contributions(link: tuple, ranks: dict, first: bool = first) -> list:
            src, targets = link
            rank = 1.0 if first else ranks.get(src)
            if rank is None:
                return []
            return list(pr.contributions((src, (targets, rank))))

        contribs = links.map(node_contributions, current).flatten()
        sums = contribs.foldby(operator.itemgetter(0), lambda acc, kv: acc + kv[1], 0.0,
                               operator.add, 0.0)
        ranks = {node: pr.damp(total) for node, total in sums.compute()}
    del links
    return ranks


def dask_kmeans(client: Any, seed: int, points: int, dim: int, k: int, iterations: int,
                partitions: int) -> tuple[list[float], np.ndarray]:
    import dask
    import dask.bag as db

    km = example("kmeans")
    blocks = km.point_blocks(points)
    rows = db.from_sequence(range(blocks), npartitions=min(partitions, blocks)).map(
        lambda block: list(km.point_block(seed, points, dim, k, block))
    ).flatten().persist()
    centres = km.initial_centres(seed, points, dim, k)
    seconds = []
    for _ in range(iterations):
        start = time.perf_counter()
        shared = dask.delayed(list(centres))
        pairs = rows.map(lambda p, cs: (km.closest(p, cs), (p, 1)), shared)
        stats = dict(pairs.foldby(operator.itemgetter(0), lambda acc, kv: _merge(km, acc, kv[1]),
                                  None, lambda a, b: _merge(km, a, b), None).compute())
        centres = km.new_centres(stats, centres)
        seconds.append(time.perf_counter() - start)
    del rows
    return seconds, centres


def _merge(km: Any, a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return km.add_stats(a, b)
