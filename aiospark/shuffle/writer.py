"""The map side of a shuffle: bucket (and pre-combine) records per reducer, write once."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

from aiospark.lineage import HashPartitioner, ShuffleDependency
from aiospark.protocol.frames import DEFAULT_BATCH, encode_frame
from aiospark.shuffle.files import encode_index, map_paths


def bucket_records(records: Iterator[Any], dep: ShuffleDependency) -> list[list[Any]]:
    """Split ``(key, value)`` records into one list per reducer, combining when asked."""
    partitioner = dep.partitioner
    n = partitioner.num_partitions
    if dep.map_side_combine:
        assert dep.aggregator is not None
        records = iter(dep.aggregator.combine_values(records).items())
    if n == 1:
        return [list(records)]
    buckets: list[list[Any]] = [[] for _ in range(n)]
    appenders = [b.append for b in buckets]
    hash_func = getattr(partitioner, "hash_func", None)
    if isinstance(partitioner, HashPartitioner) and hash_func is not None:
        for record in records:  # inlined HashPartitioner.partition: one call less per record
            appenders[hash_func(record[0]) % n](record)
    else:
        part = partitioner.partition
        for record in records:
            appenders[part(record[0])](record)
    return buckets


def write_map_output(
    records: Iterator[Any], dep: ShuffleDependency, directory: str, map_id: int
) -> list[int]:
    """Write one map task's output; returns the byte size of each reducer's segment.

    Files are written under temporary names and renamed into place, so a
    reducer never sees a partial output and a retried task simply replaces it.
    """
    try:
        buckets = bucket_records(records, dep)
    except TypeError as exc:
        if "unhashable" in str(exc) and "must be hashable" not in str(exc):
            raise TypeError(f"shuffle keys must be hashable: {exc}") from exc
        raise
    os.makedirs(directory, exist_ok=True)
    data_path, index_path = map_paths(directory, map_id)
    tag = f".tmp-{uuid.uuid4().hex}"
    offsets = [0]
    sizes = []
    with open(data_path + tag, "wb") as out:
        for bucket in buckets:
            written = 0
            for start in range(0, len(bucket), DEFAULT_BATCH):
                for piece in encode_frame(bucket[start : start + DEFAULT_BATCH]):
                    written += out.write(piece)
            sizes.append(written)
            offsets.append(offsets[-1] + written)
    with open(index_path + tag, "wb") as out:
        out.write(encode_index(offsets))
    os.replace(data_path + tag, data_path)
    os.replace(index_path + tag, index_path)
    return sizes
