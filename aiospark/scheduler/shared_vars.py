"""The driver's side of broadcasts and accumulators.

Broadcast values are pickled once, here; which workers hold (or are fetching)
each one is tracked by the scheduler's worker links.  Accumulator updates from
tasks are applied once per (stage, partition): a retried, duplicated or
recomputed task's updates are dropped.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from aiospark.errors import SerializationError
from aiospark.protocol.frames import frame_bytes
from aiospark.shared import Accumulator, AccumulatorParam, AddingParam, Broadcast


class SharedVariables:
    """Every broadcast and accumulator a driver created."""

    def __init__(
        self,
        on_unpersist: Callable[[int], None],
        watch: Callable[[object, Any, int], None] | None = None,
    ) -> None:
        self._on_unpersist = on_unpersist
        #: called with each new broadcast, to clean it up once garbage-collected
        self._watch = watch
        self.blobs: dict[int, bytes] = {}
        self._accumulators: weakref.WeakValueDictionary[int, Accumulator] = (
            weakref.WeakValueDictionary()
        )
        self._applied: set[tuple[int, int]] = set()
        self._next_id = 0

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def new_broadcast(self, value: Any) -> Broadcast:
        try:
            blob = frame_bytes(value)
        except Exception as exc:  # pickle raises TypeError, PicklingError, AttributeError ...
            raise SerializationError(f"could not serialize the broadcast value: {exc}") from exc
        bid = self._new_id()
        self.blobs[bid] = blob
        broadcast = Broadcast(bid, value, registry=self)
        if self._watch is not None:
            self._watch(broadcast, "broadcast", bid)
        return broadcast

    def unpersist_broadcast(self, bid: int) -> None:
        self._on_unpersist(bid)

    def destroy_broadcast(self, bid: int) -> None:
        self.blobs.pop(bid, None)

    def new_accumulator(self, value: Any, param: AccumulatorParam | None) -> Accumulator:
        if param is not None and not isinstance(param, AccumulatorParam):
            raise TypeError(f"param must be an AccumulatorParam, got {type(param).__name__}")
        acc = Accumulator(self._new_id(), value, param or AddingParam(), on_driver=True)
        self._accumulators[acc.aid] = acc
        return acc

    def apply_updates(self, stage_id: int, partition: int, updates: dict[int, Any]) -> bool:
        """Apply one task's accumulator updates unless that partition's already were."""
        key = (stage_id, partition)
        if key in self._applied:
            return False
        self._applied.add(key)
        for aid, update in updates.items():
            acc = self._accumulators.get(aid)
            if acc is not None:
                acc._merge(update)
        return True
