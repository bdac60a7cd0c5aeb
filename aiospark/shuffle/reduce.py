"""The reduce side of a shuffle: combine or pass through the fetched batches of one split."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from aiospark.lineage import ShuffleDependency, TaskContext


def reduce_split(dep: ShuffleDependency, reduce_id: int, tctx: TaskContext) -> Iterator[Any]:
    """The records of reduce split ``reduce_id``: combined by key when ``dep`` aggregates."""
    batches = tctx.fetch_shuffle(dep.shuffle_id, reduce_id)
    aggregator = dep.aggregator
    if aggregator is None:
        return itertools.chain.from_iterable(batches)
    combined: dict = {}
    if dep.map_side_combine:
        for batch in batches:
            aggregator.combine_combiners(batch, combined)
        return iter(combined.items())
    records = itertools.chain.from_iterable(batches)
    return iter(aggregator.combine_values(records).items())
