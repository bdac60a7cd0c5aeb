"""Preferred locations of input splits, from the filesystem's block locations.

fsspec has no standard call for where a file's blocks are stored, so aiospark
uses one when a filesystem offers it, by duck typing, named after Hadoop's
``FileSystem.getFileBlockLocations``::

    fs.get_file_block_locations(path, start, length) -> iterable of blocks

Each block is an ``(offset, length, hosts)`` tuple, or any object with
``offset``, ``length`` and ``hosts`` attributes (like Hadoop's
``BlockLocation``), where ``hosts`` lists the host names (or aiospark worker
ids) holding a replica of the bytes ``[offset, offset + length)``.  The driver
calls it once per input file, with ``start=0`` and ``length`` the file's size;
a filesystem without the method, or whose method raises
``NotImplementedError``, gives no preference.  The scheduler runs a split's
task on a worker whose id or host is in the split's hosts when one has a free
core (waiting ``locality_wait`` seconds for one), as it does for cached splits.

>>> class Located:
...     def get_file_block_locations(self, path, start, length):
...         return [(0, 100, ["h1", "h2"]), (100, 100, ["h2", "h3"])]
>>> blocks = block_locations(Located(), "/data/big.txt", 200)
>>> hosts_for_range(blocks, 0, 100), hosts_for_range(blocks, 80, 120)
(('h1', 'h2'), ('h2', 'h3'))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["Block", "block_locations", "hosts_for_files", "hosts_for_range", "reports_locations"]

#: One block of a file: (offset, length, hosts holding it).
Block = tuple[int, int, tuple[str, ...]]


def _as_block(block: Any) -> Block:
    if isinstance(block, tuple | list):
        offset, length, hosts = block
    else:
        offset, length, hosts = block.offset, block.length, block.hosts
    if isinstance(hosts, str):
        hosts = [hosts]
    return int(offset), int(length), tuple(str(h) for h in hosts)


def reports_locations(fs: Any) -> bool:
    """Whether ``fs`` has a ``get_file_block_locations`` method.

    >>> import fsspec
    >>> reports_locations(fsspec.filesystem("file"))
    False
    """
    return callable(getattr(fs, "get_file_block_locations", None))


def block_locations(fs: Any, path: str, size: int) -> list[Block]:
    """The blocks of ``path`` (``size`` bytes) with their hosts, if ``fs`` reports them.

    >>> import fsspec
    >>> block_locations(fsspec.filesystem("memory"), "/any", 10)
    []
    """
    if not reports_locations(fs):
        return []
    try:
        reported = fs.get_file_block_locations(path, 0, size)
    except NotImplementedError:
        return []
    return [_as_block(b) for b in reported or ()]


def hosts_for_range(blocks: Iterable[Block], start: int, length: int) -> tuple[str, ...]:
    """Hosts to prefer for bytes ``[start, start + length)``, as Hadoop's input splits do.

    Hosts are ranked by how many of the range's bytes they hold (ties by
    name), and as many are kept as the most replicated overlapping block has
    replicas.  An empty range prefers the hosts of the block holding ``start``.

    >>> blocks = [(0, 10, ("a", "b")), (10, 10, ("b", "c")), (20, 10, ("c", "d"))]
    >>> hosts_for_range(blocks, 5, 20)
    ('b', 'c')
    >>> hosts_for_range(blocks, 12, 0), hosts_for_range(blocks, 99, 5)
    (('b', 'c'), ())
    """
    end = start + max(length, 1)
    weight: dict[str, int] = {}
    replicas = 0
    for offset, size, hosts in blocks:
        overlap = min(offset + size, end) - max(offset, start)
        if overlap <= 0 or not hosts:
            continue
        replicas = max(replicas, len(set(hosts)))
        for host in set(hosts):
            weight[host] = weight.get(host, 0) + overlap
    ranked = sorted(weight, key=lambda h: (-weight[h], h))
    return tuple(ranked[:replicas])


def hosts_for_files(fs: Any, files: list[tuple[str, int]]) -> tuple[str, ...]:
    """Hosts to prefer for reading whole files, given as ``(path, size)`` pairs.

    The files count as one range, their sizes added up, ranked as in
    :func:`hosts_for_range`.

    >>> class Located:
    ...     def get_file_block_locations(self, path, start, length):
    ...         return [(0, length, ["h-" + path])]
    >>> hosts_for_files(Located(), [("a", 10), ("b", 30)])
    ('h-b',)
    """
    if not reports_locations(fs):
        return ()
    blocks: list[Block] = []
    offset = 0
    for path, size in files:
        blocks.extend((offset + o, n, h) for o, n, h in block_locations(fs, path, size))
        offset += size
    return hosts_for_range(blocks, 0, offset)
