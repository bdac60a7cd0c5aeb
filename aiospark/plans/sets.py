"""Plans behind the set-like and structural operations of ``aiospark.ops.sets``.

Every split here carries the parent split objects it reads, because a task
ships only its own split (the RDD travels without its splits).
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from aiospark.lineage import (
    HashPartitioner,
    NarrowDependency,
    Node,
    OneToOneDependency,
    Partitioner,
    Plan,
    ShuffleDependency,
    Split,
    TaskContext,
)


def _ranked_locations(locations: Iterator[str]) -> list[str]:
    """Hosts ordered by how many parent splits prefer them (most first, then by name)."""
    counts = collections.Counter(locations)
    return sorted(counts, key=lambda host: (-counts[host], host))


# -- empty ----------------------------------------------------------------------------


class Empty(Plan):
    """An RDD without partitions (``Context.empty_rdd``)."""

    def compute_splits(self) -> list[Split]:
        return []

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        raise IndexError("an empty RDD has no partitions")


# -- union ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UnionSplit(Split):
    """Split ``index`` of a union: split ``parent_split`` of parent number ``parent_index``."""

    parent_index: int
    parent_split: Split


class RangeDependency(NarrowDependency):
    """Child splits ``out_start .. out_start + length`` read parent splits ``in_start ..``.

    >>> dep = RangeDependency(None, 0, 3, 2)
    >>> dep.parents(2), dep.parents(3), dep.parents(4), dep.parents(5)
    ([], [0], [1], [])
    """

    def __init__(self, rdd: Node, in_start: int, out_start: int, length: int) -> None:
        super().__init__(rdd)
        self.in_start = in_start
        self.out_start = out_start
        self.length = length

    def parents(self, split_index: int) -> list[int]:
        offset = split_index - self.out_start
        if 0 <= offset < self.length:
            return [self.in_start + offset]
        return []


class Union(Plan):
    """The parents' splits one after the other: as many splits as all parents together."""

    def __init__(self, rdds: list[Node]) -> None:
        deps: list[Any] = []
        position = 0
        for rdd in rdds:
            count = rdd.get_num_partitions()
            deps.append(RangeDependency(rdd, 0, position, count))
            position += count
        super().__init__(deps)
        self.rdds = rdds

    def compute_splits(self) -> list[Split]:
        splits: list[Split] = []
        for number, rdd in enumerate(self.rdds):
            for parent_split in rdd.splits():
                splits.append(UnionSplit(len(splits), number, parent_split))
        return splits

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        assert isinstance(split, UnionSplit)
        return self.rdds[split.parent_index].iterator(split.parent_split, tctx)

    def preferred_locations(self, split: Split) -> list[str]:
        assert isinstance(split, UnionSplit)
        return self.rdds[split.parent_index].preferred_locations(split.parent_split)


@dataclasses.dataclass(frozen=True)
class MultiSplit(Split):
    """A split made of several parent splits read one after the other."""

    parent_splits: tuple[Split, ...]


class PartitionerAwareUnion(Plan):
    """Union of parents sharing one partitioner: split *i* is every parent's split *i*.

    The result keeps the partitioner, and as many splits as each parent.
    """

    def __init__(self, rdds: list[Node]) -> None:
        super().__init__([OneToOneDependency(rdd) for rdd in rdds], rdds[0].partitioner)
        self.rdds = rdds

    def compute_splits(self) -> list[Split]:
        columns = zip(*(rdd.splits() for rdd in self.rdds), strict=True)
        return [MultiSplit(i, tuple(parts)) for i, parts in enumerate(columns)]

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        assert isinstance(split, MultiSplit)
        return itertools.chain.from_iterable(
            rdd.iterator(part, tctx)
            for rdd, part in zip(self.rdds, split.parent_splits, strict=True)
        )

    def preferred_locations(self, split: Split) -> list[str]:
        assert isinstance(split, MultiSplit)
        return _ranked_locations(
            host
            for rdd, part in zip(self.rdds, split.parent_splits, strict=True)
            for host in rdd.preferred_locations(part)
        )


def union_plan(rdds: Sequence[Node]) -> Plan:
    """Spark's union rule: parents without partitions are skipped; when every remaining
    parent has the same partitioner the union is partitioner-aware, else the splits are
    concatenated.  (``ops.sets.union_of`` checks the parents first.)"""
    non_empty = [rdd for rdd in rdds if rdd.get_num_partitions() > 0]
    partitioners = [rdd.partitioner for rdd in non_empty]
    first = partitioners[0] if partitioners else None
    if first is not None and all(p is not None and p == first for p in partitioners):
        return PartitionerAwareUnion(non_empty)
    return Union(non_empty)


# -- coalesce -------------------------------------------------------------------------


class CoalescedDependency(NarrowDependency):
    """Child split *i* reads a run of consecutive parent splits (``num_parent`` into ``num``).

    >>> dep = CoalescedDependency(None, 5, 2)
    >>> dep.parents(0), dep.parents(1)
    ([0, 1], [2, 3, 4])
    """

    def __init__(self, rdd: Node, num_parent: int, num: int) -> None:
        super().__init__(rdd)
        self.num_parent = num_parent
        self.num = num

    def parents(self, split_index: int) -> list[int]:
        start = split_index * self.num_parent // self.num
        end = (split_index + 1) * self.num_parent // self.num
        return list(range(start, end))


class Coalesced(Plan):
    """Fewer splits without a shuffle: split *i* reads a run of consecutive parent splits.

    Like Spark's default coalescer when the parent has no preferred locations,
    ``n`` parent splits become ``min(n, num_partitions)`` groups, group *i*
    holding parent splits ``i*n//k`` up to ``(i+1)*n//k``.
    """

    def __init__(self, parent: Node, num_partitions: int) -> None:
        num_parent = parent.get_num_partitions()
        self.num = min(num_parent, num_partitions)
        dep = CoalescedDependency(parent, num_parent, max(self.num, 1))
        super().__init__([dep])
        self.parent = parent
        self.dep = dep

    def compute_splits(self) -> list[Split]:
        parent_splits = self.parent.splits()
        return [
            MultiSplit(i, tuple(parent_splits[j] for j in self.dep.parents(i)))
            for i in range(self.num)
        ]

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        assert isinstance(split, MultiSplit)
        parent = self.parent
        return itertools.chain.from_iterable(
            parent.iterator(part, tctx) for part in split.parent_splits
        )

    def preferred_locations(self, split: Split) -> list[str]:
        assert isinstance(split, MultiSplit)
        parent = self.parent
        return _ranked_locations(
            host for part in split.parent_splits for host in parent.preferred_locations(part)
        )


class RoundRobinPartitioner(Partitioner):
    """Keys are already partition numbers (``coalesce`` with a shuffle deals them out)."""

    def __init__(self, num_partitions: int) -> None:
        self.num_partitions = num_partitions
        self.partition = int  # type: ignore[method-assign]  # a C call per record

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RoundRobinPartitioner) and (
            other.num_partitions == self.num_partitions
        )

    def __hash__(self) -> int:
        return hash(("round-robin", self.num_partitions))


# -- cartesian and zip ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PairSplit(Split):
    """A split reading one split of each of two parents."""

    left: Split
    right: Split


class CartesianDependency(NarrowDependency):
    """Cartesian split *i* reads left split ``i // n_right`` or right split ``i % n_right``.

    >>> left, right = CartesianDependency(None, 3, True), CartesianDependency(None, 3, False)
    >>> left.parents(4), right.parents(4)
    ([1], [1])
    """

    def __init__(self, rdd: Node, num_right: int, is_left: bool) -> None:
        super().__init__(rdd)
        self.num_right = num_right
        self.is_left = is_left

    def parents(self, split_index: int) -> list[int]:
        if self.is_left:
            return [split_index // self.num_right]
        return [split_index % self.num_right]


class Cartesian(Plan):
    """Every pair ``(x, y)``: one split per pair of parent splits, left-major."""

    def __init__(self, left: Node, right: Node) -> None:
        num_right = right.get_num_partitions()
        left_dep = CartesianDependency(left, num_right, True)
        super().__init__([left_dep, CartesianDependency(right, num_right, False)])
        self.left = left
        self.right = right

    def compute_splits(self) -> list[Split]:
        rights = self.right.splits()
        return [
            PairSplit(i * len(rights) + j, a, b)
            for i, a in enumerate(self.left.splits())
            for j, b in enumerate(rights)
        ]

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        assert isinstance(split, PairSplit)
        right, right_split = self.right, split.right
        cached: list[list[Any]] = []

        def with_right(x: Any) -> Iterator[tuple[Any, Any]]:
            if not cached:  # read the right split once, when the left one has a record
                cached.append(list(right.iterator(right_split, tctx)))
            return zip(itertools.repeat(x), cached[0])

        return itertools.chain.from_iterable(
            map(with_right, self.left.iterator(split.left, tctx))
        )

    def preferred_locations(self, split: Split) -> list[str]:
        assert isinstance(split, PairSplit)
        hosts = self.left.preferred_locations(split.left)
        hosts += self.right.preferred_locations(split.right)
        return list(dict.fromkeys(hosts))


class Zipped(Plan):
    """Pairs ``(x, y)`` of the records at the same position of the same split of two parents."""

    def __init__(self, left: Node, right: Node) -> None:
        super().__init__([OneToOneDependency(left), OneToOneDependency(right)])
        self.left = left
        self.right = right

    def compute_splits(self) -> list[Split]:
        return [
            PairSplit(i, a, b)
            for i, (a, b) in enumerate(zip(self.left.splits(), self.right.splits(), strict=True))
        ]

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        assert isinstance(split, PairSplit)
        left = self.left.iterator(split.left, tctx)
        return _zip_exactly(left, self.right.iterator(split.right, tctx), split.index)

    def preferred_locations(self, split: Split) -> list[str]:
        assert isinstance(split, PairSplit)
        left = self.left.preferred_locations(split.left)
        right = self.right.preferred_locations(split.right)
        both = [host for host in left if host in right]
        return both or list(dict.fromkeys(left + right))


def _zip_exactly(left: Iterator[Any], right: Iterator[Any], index: int) -> Iterator[tuple]:
    try:
        yield from zip(left, right, strict=True)
    except ValueError as exc:
        # Only the length check of zip() itself, not a ValueError from the parents' code.
        tb = exc.__traceback__
        if tb is None or tb.tb_next is not None or not str(exc).startswith("zip() argument"):
            raise
        longer = "first" if "shorter" in str(exc) else "second"
        raise ValueError(
            f"zip(): partition {index} has more elements in the {longer} RDD than in the "
            "other; can only zip RDDs with the same number of elements in each partition"
        ) from None


# -- zip_with_index --------------------------------------------------------------------


def count_pair(index: int, records: Iterator[Any]) -> list[tuple[int, int]]:
    count = 0
    for count, _record in enumerate(records, 1):  # noqa: B007 - counting is the point
        pass
    return [(index, count)]


class ZipWithIndex(Plan):
    """``(record, index)`` with indices counted across partitions in order.

    Like PySpark, the partitions' sizes are counted first (computing the parent
    once more) unless there is a single partition.  The count is a small stage
    of its own that runs before this RDD's tasks: a shuffle of one
    ``(split_index, count)`` record per parent split into one bucket, which every
    task reads to find where its indices start.  Later actions reuse it.
    ``counts`` is the parent mapped by ``count_pair`` (None for one partition).
    """

    def __init__(self, parent: Node, counts: Node | None) -> None:
        deps: list[Any] = [OneToOneDependency(parent)]
        counts_dep = None
        if counts is not None:
            counts_dep = ShuffleDependency(counts, parent.ctx.new_shuffle_id(), HashPartitioner(1))
            deps.append(counts_dep)
        super().__init__(deps)
        self.parent = parent
        self.counts_dep = counts_dep

    def compute_splits(self) -> list[Split]:
        return self.parent.splits()

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        start = 0
        if self.counts_dep is not None and split.index > 0:
            batches = tctx.fetch_shuffle(self.counts_dep.shuffle_id, 0)
            sizes = dict(itertools.chain.from_iterable(batches))
            start = sum(sizes[i] for i in range(split.index))
        return zip(self.parent.iterator(split, tctx), itertools.count(start))

    def preferred_locations(self, split: Split) -> list[str]:
        return self.parent.preferred_locations(split)
