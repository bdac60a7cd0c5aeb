"""The reduce side of a shuffle: combine or pass through the fetched batches of one split."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator
from typing import Any

from aiospark.lineage import ShuffleDependency, TaskContext
from aiospark.memory import TaskMemory
from aiospark.pair_errors import reraise_for_batch
from aiospark.shuffle.columns import Columns, numeric, sum_by_key
from aiospark.spill import ExternalMap

#: Memory a numpy sum of held batches takes, in multiples of the batches: the batches,
#: their concatenation, and the keys' inverse index with the sums.
WORKING_COPIES = 3


class FetchedRecords:
    """The records of a reduce split that combines nothing, still in the batches they came in.

    Iterates as the records themselves; a consumer that can use whole batches
    (``spill.sort_external``) takes ``batches`` before iterating starts.
    """

    def __init__(self, batches: Iterator[Any]) -> None:
        self.batches = batches
        self._records: Iterator[Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        if self._records is None:
            self._records = itertools.chain.from_iterable(self.batches)
        return self._records

    def __next__(self) -> Any:
        return next(iter(self))

    @property
    def started(self) -> bool:
        """Whether records were read (then ``batches`` is partly consumed)."""
        return self._records is not None


def reduce_split(dep: ShuffleDependency, reduce_id: int, tctx: TaskContext) -> Iterator[Any]:
    """The records of reduce split ``reduce_id``: combined by key when ``dep`` aggregates.

    Combining goes through an ``ExternalMap``, so it spills to disk rather
    than outgrow the task's share of the worker's memory.  Map outputs that
    arrive as numeric ``Columns`` and combine with ``operator.add`` are summed
    by numpy instead, while they fit in memory.
    """
    batches: Iterator[Any] = tctx.fetch_shuffle(dep.shuffle_id, reduce_id)
    aggregator = dep.aggregator
    if aggregator is None:
        return FetchedRecords(batches)
    if dep.map_side_combine and aggregator.merge_combiners is operator.add:
        summed, batches = _sum_numeric(batches, tctx.memory.spawn())
        if summed is not None:
            return summed
    table = ExternalMap(aggregator.merge_combiners, tctx.memory, tctx.spill_dir)
    combine = aggregator.combine_combiners if dep.map_side_combine else aggregator.combine_values
    batch: list = []
    try:
        for batch in batches:
            table.merge_values(batch, combine=combine)
    except (TypeError, ValueError, IndexError) as exc:
        reraise_for_batch(exc, dep.op, batch)
    return table.items()


def _sum_numeric(
    batches: Iterator[Any], memory: TaskMemory
) -> tuple[Iterator[tuple] | None, Iterator[Any]]:
    """``(sums, _)`` if every batch is numeric and all fit in ``memory``, else ``(None, batches)``.

    The batches read so far are put back in front of the rest when giving up.
    """
    held: list[Columns] = []
    nbytes = 0
    for batch in batches:
        nbytes += batch.nbytes() if type(batch) is Columns else 0
        if not numeric(batch) or not memory.ensure(WORKING_COPIES * nbytes):
            memory.release()
            return None, itertools.chain(held, [batch], batches)
        held.append(batch)
    try:
        return sum_by_key(held), iter(())
    except OverflowError:
        return None, iter(held)
    finally:
        memory.release()
