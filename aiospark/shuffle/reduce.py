"""The reduce side of a shuffle: combine or pass through the fetched batches of one split."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from aiospark.lineage import ShuffleDependency, TaskContext
from aiospark.pair_errors import reraise_for_batch
from aiospark.spill import ExternalMap


def reduce_split(dep: ShuffleDependency, reduce_id: int, tctx: TaskContext) -> Iterator[Any]:
    """The records of reduce split ``reduce_id``: combined by key when ``dep`` aggregates.

    Combining goes through an ``ExternalMap``, so it spills to disk rather
    than outgrow the task's share of the worker's memory.
    """
    batches = tctx.fetch_shuffle(dep.shuffle_id, reduce_id)
    aggregator = dep.aggregator
    if aggregator is None:
        return itertools.chain.from_iterable(batches)
    table = ExternalMap(aggregator.merge_combiners, tctx.memory, tctx.spill_dir)
    combine = aggregator.combine_combiners if dep.map_side_combine else aggregator.combine_values
    batch: list = []
    try:
        for batch in batches:
            table.merge_values(batch, combine=combine)
    except (TypeError, ValueError, IndexError) as exc:
        reraise_for_batch(exc, dep.op, batch)
    return table.items()
