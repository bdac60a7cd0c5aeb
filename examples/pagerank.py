"""PageRank on an embedded aiospark cluster: a generated graph (or an edge list), top ranks.

    python examples/pagerank.py                         # 100,000 nodes, 1,000,000 edges
    python examples/pagerank.py --quick                 # 2,000 nodes, 20,000 edges
    python examples/pagerank.py --edges-file graph.txt  # "src dst" lines; '#' comments

The links ``(src, [dsts])`` are hash-partitioned once (``partition_by``) and
cached.  Every iteration's ranks come out of ``reduce_by_key`` with the same
number of partitions, hence the same partitioner, so the join of links with
ranks reads both split by split in one task: only the contributions are shuffled,
never the links again.  The semantics are those of Spark's classic example:
duplicate edges count once, a node without out-links keeps its rank to itself
(it contributes nothing), and a node nobody links to drops out after the first
iteration.  It prints the time taken, then the nodes of highest rank (``--quick``):

    PageRank of 2,000 nodes, 20,000 generated edges: 5 iterations, 4 partitions, 0.24 s
      1. node 7: rank 34.381861
      2. node 1768: rank 18.569682
    ...
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

import aiospark

DAMPING = 0.85
#: Edges generated per block: a block is the unit of generation, whatever the partitioning.
EDGE_BLOCK = 100_000
#: Scrambles the popularity order, so the most linked-to nodes are not simply 0, 1, 2 ...
SCRAMBLE = 2_654_435_761


# -- the graph ---------------------------------------------------------------------------------


def edge_block(nodes: int, edges: int, seed: int, block: int) -> list[tuple[int, int]]:
    """Block ``block`` of the generated graph: uniform sources, skewed destinations.

    The same (nodes, edges, seed) always give the same edges, in any process.

    >>> edge_block(10, 5, 1, 0) == edge_block(10, 5, 1, 0)
    True
    >>> len(edge_block(10, 150_000, 1, 1))
    50000
    """
    size = min(EDGE_BLOCK, edges - block * EDGE_BLOCK)
    rng = np.random.default_rng([seed, block])
    src = rng.integers(0, nodes, size)
    popular = (nodes * rng.random(size) ** 2).astype(np.int64)  # low numbers are popular
    dst = (popular * SCRAMBLE + 7) % nodes
    return list(zip(src.tolist(), dst.tolist(), strict=True))


def edge_blocks(edges: int) -> int:
    """How many blocks ``edges`` edges make."""
    return -(-edges // EDGE_BLOCK)


def generated_edges(nodes: int, edges: int, seed: int) -> Iterator[tuple[int, int]]:
    """Every edge of the generated graph, in one process."""
    for block in range(edge_blocks(edges)):
        yield from edge_block(nodes, edges, seed, block)


def parse_edge(line: str) -> list[tuple[Any, Any]]:
    """``"1 2"`` -> ``[(1, 2)]``; comments and blank lines -> ``[]``; ids stay strings unless ints.

    >>> parse_edge("1\\t2"), parse_edge("# a comment"), parse_edge("a b")
    ([(1, 2)], [], [('a', 'b')])
    """
    fields = line.split("#", 1)[0].split()
    if len(fields) < 2:
        return []
    src, dst = fields[0], fields[1]
    return [(int(src), int(dst))] if src.isdigit() and dst.isdigit() else [(src, dst)]


def read_edges(path: str) -> Iterator[tuple[Any, Any]]:
    """The edges of an edge-list file, in one process."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            yield from parse_edge(line)


# -- PageRank on the cluster ---------------------------------------------------------------------


def group_links(edges: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, list]]:
    """``(src, dst)`` -> ``(src, [distinct dsts])``, in a partition holding all of a src's edges."""
    table: dict[Any, set] = {}
    for src, dst in edges:
        targets = table.get(src)
        if targets is None:
            table[src] = {dst}
        else:
            targets.add(dst)
    return ((src, list(targets)) for src, targets in table.items())


def contributions(record: tuple[Any, tuple[list, float]]) -> Iterator[tuple[Any, float]]:
    """A node's rank, shared out equally among the nodes it links to."""
    _, (targets, rank) = record
    share = rank / len(targets)
    return ((dst, share) for dst in targets)


def damp(total: float) -> float:
    """The new rank from the sum of the contributions a node received."""
    return (1 - DAMPING) + DAMPING * total


def cluster_edges(
    ctx: aiospark.Context, nodes: int, edges: int, seed: int, edges_file: str | None = None
) -> aiospark.RDD:
    """The edges as an RDD: generated on the workers (block by block), or read from a file."""
    if edges_file is not None:
        return ctx.text_file(edges_file).flat_map(parse_edge)
    blocks = edge_blocks(edges)
    return ctx.parallelize(range(blocks), blocks).flat_map(
        lambda block: edge_block(nodes, edges, seed, block)
    )


def cached_links(edges: aiospark.RDD, partitions: int) -> aiospark.RDD:
    """``(src, [dsts])``, hash-partitioned into ``partitions`` splits and cached."""
    by_source = edges.partition_by(partitions)
    return by_source.map_partitions(group_links, preserves_partitioning=True).cache()


def pagerank(links: aiospark.RDD, iterations: int, partitions: int) -> aiospark.RDD:
    """The ``(node, rank)`` pairs after ``iterations`` iterations (lazy: nothing runs yet).

    ``links`` must be partitioned into ``partitions`` splits (``cached_links``): then
    every join below is narrow, and only the contributions cross the network.
    """
    ranks = links.map_values(lambda _: 1.0)
    for _ in range(iterations):
        contribs = links.join(ranks).flat_map(contributions)
        ranks = contribs.reduce_by_key(operator.add, partitions).map_values(damp)
    return ranks


# -- the same in plain Python (the reference the tests and the benchmark compare against) ------


def pagerank_serial(edges: Iterable[tuple[Any, Any]], iterations: int) -> dict[Any, float]:
    """Dict-based PageRank in one process, with the cluster version's semantics."""
    links = dict(group_links(edges))
    ranks = dict.fromkeys(links, 1.0)
    for _ in range(iterations):
        sums: dict[Any, float] = {}
        get = sums.get
        for src, targets in links.items():
            rank = ranks.get(src)
            if rank is None:
                continue
            share = rank / len(targets)
            for dst in targets:
                sums[dst] = get(dst, 0.0) + share
        ranks = {node: (1 - DAMPING) + DAMPING * total for node, total in sums.items()}
    return ranks


# -- the command line ---------------------------------------------------------------------------


def by_rank(pair: tuple[Any, float]) -> tuple[float, str]:
    """Sort key: highest rank first, then the node's id (as text, so any ids compare)."""
    return (-pair[1], str(pair[0]))


async def run(args: argparse.Namespace) -> list[tuple[Any, float]]:
    """Start the cluster, rank the graph, return the top ``args.top`` (node, rank) pairs."""
    async with aiospark.Context(workers=args.workers) as ctx:
        partitions = args.partitions or 2 * ctx.default_parallelism
        start = time.perf_counter()
        edges = cluster_edges(ctx, args.nodes, args.edges, args.seed, args.edges_file)
        links = cached_links(edges, partitions)
        ranks = pagerank(links, args.iterations, partitions)
        top = await ranks.take_ordered(args.top, key=by_rank)
        seconds = time.perf_counter() - start
    source = args.edges_file or f"{args.nodes:,} nodes, {args.edges:,} generated edges"
    print(
        f"PageRank of {source}: {args.iterations} iterations, {partitions} partitions, "
        f"{seconds:.2f} s"
    )
    return top


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=100_000, help="nodes of the generated graph")
    parser.add_argument("--edges", type=int, default=1_000_000, help="edges of the generated graph")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated graph")
    parser.add_argument("--edges-file", default=None, help="read this edge list instead")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=None, help="default: 2 x cores")
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    parser.add_argument("--top", type=int, default=10, help="how many nodes to print")
    parser.add_argument("--quick", action="store_true", help="2,000 nodes, 20,000 edges")
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.edges = 2_000, 20_000
    if args.nodes < 1 or args.edges < 1 or args.iterations < 1:
        parser.error("--nodes, --edges and --iterations must be positive")
    return args


async def main(argv: list[str] | None = None) -> None:
    for place, (node, rank) in enumerate(await run(parse_args(argv)), 1):
        print(f"{place:3d}. node {node}: rank {rank:.6f}")


if __name__ == "__main__":
    asyncio.run(main())
