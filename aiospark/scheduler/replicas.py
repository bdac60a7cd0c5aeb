"""Where the copies of a replicated cached block go (pure).

A split persisted at a level with ``replication = n`` is kept by the worker that
computed it and pushed by that worker to ``n - 1`` peers.  The driver, which
knows every worker and its host, names the peers in the task's launch: an
ordered list of candidates, the first ``n - 1`` to try and a few spares for
when one of them refuses (no room) or cannot be reached.

The order is Spark's ``RandomBlockReplicationPolicy`` with its host rule made
strict: a random order seeded by the block (so the copies of different splits
spread over the cluster, and the same split picks the same peers on a retry),
then other hosts before a second worker on a host already holding a copy.

>>> workers = {"w1": "a", "w2": "a", "w3": "b", "w4": "c"}
>>> replica_peers((7, 0), "w1", workers, holders=(), replication=2, spare=1)
['w3', 'w4']
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping

#: Candidates sent beyond the ``replication - 1`` wanted, tried when one fails.
SPARE_PEERS = 2


def block_seed(rdd_id: int, split: int) -> int:
    """The seed a block's peers are drawn with: fixed per block, different between blocks.

    >>> block_seed(3, 1) == block_seed(3, 1) != block_seed(3, 2)
    True
    """
    return rdd_id * 1_000_003 + split


def order_peers(own_host: str, candidates: Iterable[tuple[str, str]], seed: int) -> list[str]:
    """Every candidate worker id, in the order to push copies to.

    ``candidates`` are ``(worker_id, host)`` pairs, the pushing worker left
    out; it runs on ``own_host``.  The workers are shuffled (deterministically
    for a given ``seed``), then stably sorted by how many workers of the same
    host come before them, counting the pusher on its host: first one worker
    of each other host, then a second one per host (or a first one on the
    pusher's host), and so on.

    Examples
    --------
    >>> pairs = [("w2", "a"), ("w3", "b"), ("w4", "b"), ("w5", "c")]
    >>> order = order_peers("a", pairs, seed=1)
    >>> sorted(order[:2]) in (["w3", "w5"], ["w4", "w5"]), order == order_peers("a", pairs, 1)
    (True, True)
    >>> order_peers("x", [("w1", "x"), ("w2", "x")], seed=1)   # one host: distinct workers
    ['w2', 'w1']
    """
    shuffled = sorted(candidates)
    random.Random(seed).shuffle(shuffled)
    seen: dict[str, int] = {own_host: 1}
    ranked = []
    for position, (worker_id, host) in enumerate(shuffled):
        rank = seen.get(host, 0)
        seen[host] = rank + 1
        ranked.append((rank, position, worker_id))
    return [worker_id for _, _, worker_id in sorted(ranked)]


def replica_peers(
    block: tuple[int, int],
    own_id: str,
    workers: Mapping[str, str],
    holders: Collection[str],
    replication: int,
    spare: int = SPARE_PEERS,
) -> list[str]:
    """The peers a worker computing ``block`` should push copies to, best first.

    ``workers`` maps each worker that may take a copy to its host (the pusher
    ``own_id`` included); workers in ``holders`` already have the block and
    are left out.  Returns at most ``replication - 1 + spare`` ids, none for
    an unreplicated level, and fewer when the cluster has fewer workers: then
    every worker gets a copy.

    Examples
    --------
    >>> workers = {"w1": "h", "w2": "h", "w3": "h"}
    >>> replica_peers((1, 0), "w1", workers, holders=(), replication=1)
    []
    >>> sorted(replica_peers((1, 0), "w1", workers, holders=["w3"], replication=3))
    ['w2']
    >>> len(replica_peers((1, 0), "w1", {f"w{i}": "h" for i in range(9)}, (), 2, spare=2))
    3
    """
    if replication <= 1:
        return []
    own_host = workers.get(own_id, "")
    candidates = (
        (worker_id, host) for worker_id, host in workers.items()
        if worker_id != own_id and worker_id not in holders
    )
    order = order_peers(own_host, candidates, block_seed(*block))
    return order[: replication - 1 + spare]
