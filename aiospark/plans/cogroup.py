"""Plans that read several pair RDDs by key at once: cogroups, joins and ``subtract_by_key``.

Each parent is read through a ``OneToOneDependency`` when it is already
partitioned by the target partitioner (its split *i* holds exactly the keys of
split *i*, so no shuffle is needed) and through its own ``ShuffleDependency``
otherwise.  Joins build a hash table of one side per partition and stream the
other side through it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn

from aiospark.batching import batched
from aiospark.hashing import hash_failure
from aiospark.lineage import (
    Aggregator,
    Dependency,
    Node,
    OneToOneDependency,
    Partitioner,
    Plan,
    ShuffleDependency,
    Split,
    TaskContext,
)
from aiospark.pair_errors import pair_error, raised_here, reraise_for_batch
from aiospark.spill import ExternalMap, join_external, merge_external

_NO_KEY = object()


@dataclasses.dataclass(frozen=True)
class CoGroupSplit(Split):
    """Split *i* of a multi-parent RDD: parent *i*'s split for each narrow parent, else None."""

    parent_splits: tuple[Split | None, ...] = ()


def _keep_first(a: Any, _b: Any = None) -> Any:
    return a


#: Map-side combiner that keeps one record per key (the side only contributes keys).
KEYS_ONLY = Aggregator(_keep_first, _keep_first, _keep_first, identity_create=True)


def group_values(records: Iterable[tuple], into: dict | None = None) -> dict:
    """``{key: [values...]}`` from ``(key, value)`` records, in arrival order.

    >>> group_values([("a", 1), ("b", 2), ("a", 3)])
    {'a': [1, 3], 'b': [2]}
    """
    table: dict = {} if into is None else into
    key = _NO_KEY
    try:
        for key, value in records:
            bucket = table.get(key)
            if bucket is None:
                table[key] = [value]
            else:
                bucket.append(value)
    except TypeError as exc:
        _reraise_unhashable(exc, key)
    return table


class CoGrouped(Plan):
    """Parents read side by side, key-partitioned by ``partitioner``.

    ``compute`` yields ``(key, (values of parent 0, values of parent 1, ...))``
    with one list per parent; subclasses combine the sides differently.
    Parents listed in ``keys_only`` contribute only their keys: when such a
    parent must be shuffled, it ships each key once per map task (the caller
    maps such a parent by ``keys_with_none`` first, see ``ops.pairs``).
    """

    def __init__(
        self,
        parents: list[Node],
        partitioner: Partitioner,
        keys_only: frozenset[int] = frozenset(),
        op: str = "cogroup",
    ) -> None:
        #: the operation, named by errors about its records
        self.op = op
        new_shuffle_id = parents[0].ctx.new_shuffle_id
        deps: list[Dependency] = []
        for i, parent in enumerate(parents):
            if parent.partitioner is not None and parent.partitioner == partitioner:
                deps.append(OneToOneDependency(parent))
            elif i in keys_only:
                deps.append(
                    ShuffleDependency(
                        parent, new_shuffle_id(), partitioner, KEYS_ONLY, True, op
                    )
                )
            else:
                deps.append(ShuffleDependency(parent, new_shuffle_id(), partitioner, op=op))
        super().__init__(deps, partitioner)

    def compute_splits(self) -> list[Split]:
        n = self.partitioner.num_partitions  # type: ignore[union-attr]
        narrow = [
            dep.rdd.splits() if isinstance(dep, OneToOneDependency) else None
            for dep in self.deps
        ]
        return [
            CoGroupSplit(i, tuple(None if s is None else s[i] for s in narrow))
            for i in range(n)
        ]

    def side(self, split: Split, i: int, tctx: TaskContext) -> Iterator[tuple]:
        """The ``(key, value)`` records of parent ``i`` that belong to ``split``."""
        dep = self.deps[i]
        if isinstance(dep, ShuffleDependency):
            return itertools.chain.from_iterable(tctx.fetch_shuffle(dep.shuffle_id, split.index))
        return dep.rdd.iterator(split.parent_splits[i], tctx)  # type: ignore[attr-defined]

    def grouped(self, split: Split, i: int, tctx: TaskContext) -> ExternalMap:
        """Parent ``i``'s values by key, spilling past the task's memory share."""
        table = ExternalMap(_extend, tctx.memory, tctx.spill_dir)
        batch: list = []
        try:
            for batch in batched(self.side(split, i, tctx), 4096):
                table.merge_values(batch, combine=group_values)
        except (TypeError, ValueError, IndexError) as exc:
            reraise_for_batch(exc, self.op, batch)
        return table

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        tables = [self.grouped(split, i, tctx) for i in range(len(self.deps))]
        return merge_external(tables, _merge_groups)


def _extend(values: list, more: list) -> list:
    values.extend(more)
    return values


def keys_with_none(records: Iterable[tuple]) -> Iterator[tuple]:
    """``(key, None)`` for each pair: what a keys-only side of a cogroup ships.

    >>> list(keys_with_none(iter([("a", 1), ("b", 2)])))
    [('a', None), ('b', None)]
    """
    try:
        for kv in records:
            yield kv[0], None
    except (TypeError, IndexError) as exc:
        _reraise_for_key(exc, _NO_KEY, "subtract_by_key")


def _merge_groups(tables: list[dict]) -> Iterator[tuple]:
    n = len(tables)
    if n == 2:
        first, second = tables
        for key, values in first.items():
            yield key, (values, second.pop(key, []))
        for key, values in second.items():
            yield key, ([], values)
        return
    for i, table in enumerate(tables):
        later = tables[i + 1 :]
        for key, values in table.items():
            groups = [[] for _ in range(i)]
            groups.append(values)
            groups.extend(t.pop(key, []) for t in later)
            yield key, tuple(groups)


class Joined(CoGrouped):
    """An inner or outer join of two pair RDDs: ``(key, (left value, right value))``.

    ``how`` is ``"inner"``, ``"left"``, ``"right"`` or ``"full"``; a missing side
    is ``None``.  Each partition builds a table of one side (the right one, or
    the left one for a right outer join) and streams the other side through it.
    """

    def __init__(self, left: Node, right: Node, partitioner: Partitioner, how: str) -> None:
        if how not in ("inner", "left", "right", "full"):
            raise ValueError(f"unknown join type {how!r}")
        op = {"inner": "join"}.get(how, f"{how}_outer_join")
        super().__init__([left, right], partitioner, op=op)
        self.how = how

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        how = self.how
        if how == "right":
            return join_external(
                self.grouped(split, 0, tctx), self.side(split, 1, tctx), _right_join
            )
        join = {"inner": _inner_join, "left": _left_join, "full": _full_join}[how]
        return join_external(self.grouped(split, 1, tctx), self.side(split, 0, tctx), join)


def _inner_join(table: dict, stream: Iterator[tuple]) -> Iterator[tuple]:
    get = table.get
    key = _NO_KEY
    try:
        for key, v in stream:
            ws = get(key)
            if ws is not None:
                for w in ws:
                    yield key, (v, w)
    except (TypeError, ValueError) as exc:
        _reraise_for_key(exc, key, "join")


def _left_join(table: dict, stream: Iterator[tuple]) -> Iterator[tuple]:
    get = table.get
    key = _NO_KEY
    try:
        for key, v in stream:
            ws = get(key)
            if ws is None:
                yield key, (v, None)
            else:
                for w in ws:
                    yield key, (v, w)
    except (TypeError, ValueError) as exc:
        _reraise_for_key(exc, key, "left_outer_join")


def _right_join(table: dict, stream: Iterator[tuple]) -> Iterator[tuple]:
    get = table.get
    key = _NO_KEY
    try:
        for key, w in stream:
            vs = get(key)
            if vs is None:
                yield key, (None, w)
            else:
                for v in vs:
                    yield key, (v, w)
    except (TypeError, ValueError) as exc:
        _reraise_for_key(exc, key, "right_outer_join")


def _full_join(table: dict, stream: Iterator[tuple]) -> Iterator[tuple]:
    get = table.get
    matched: set = set()
    add = matched.add
    key = _NO_KEY
    try:
        for key, v in stream:
            ws = get(key)
            if ws is None:
                yield key, (v, None)
            else:
                add(key)
                for w in ws:
                    yield key, (v, w)
    except (TypeError, ValueError) as exc:
        _reraise_for_key(exc, key, "full_outer_join")
    for key, ws in table.items():
        if key not in matched:
            for w in ws:
                yield key, (None, w)


def _reraise_unhashable(exc: TypeError, key: Any) -> NoReturn:
    clear = None if key is _NO_KEY else hash_failure(key)
    if clear is None:
        raise exc
    raise clear from exc


def _reraise_for_key(exc: Exception, key: Any, op: str) -> NoReturn:
    """Raise ``exc``, restated when the loop's own unpacking met a record that is not a
    pair, or its ``key`` is unhashable."""
    clear = pair_error(op, exc) if raised_here(exc) else None
    if clear is None and key is not _NO_KEY and isinstance(exc, TypeError):
        clear = hash_failure(key)
    if clear is None:
        raise exc
    raise clear from exc


class Subtracted(CoGrouped):
    """The pairs of ``left`` whose key does not occur in ``right``.

    Only ``right``'s keys are shuffled (combined map-side); ``left`` streams
    through a set of them.
    """

    def __init__(self, left: Node, right: Node, partitioner: Partitioner) -> None:
        super().__init__([left, right], partitioner, keys_only=frozenset({1}), op="subtract_by_key")

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        seen = ExternalMap(_keep_first, tctx.memory, tctx.spill_dir)
        batch: list = []
        try:
            for batch in batched(self.side(split, 1, tctx), 4096):
                seen.merge_values(batch, combine=_note_keys)
        except (TypeError, ValueError, IndexError) as exc:
            reraise_for_batch(exc, self.op, batch)
        return join_external(seen, self.side(split, 0, tctx), _without_keys)


def _note_keys(batch: list, table: dict) -> None:
    key = _NO_KEY
    try:
        for key, _ in batch:
            table[key] = None
    except TypeError as exc:
        _reraise_unhashable(exc, key)


def _without_keys(seen: dict, stream: Iterator[tuple]) -> Iterator[tuple]:
    key = _NO_KEY
    try:
        for kv in stream:
            key = kv[0]
            if key not in seen:
                yield kv
    except (TypeError, IndexError) as exc:
        _reraise_for_key(exc, key, "subtract_by_key")
