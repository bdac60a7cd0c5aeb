"""Shuffled pairs as columns: every vectorised step agrees with the per-record one it replaces."""

from __future__ import annotations

import math
import operator
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiospark.lineage import HashPartitioner, RangePartitioner
from aiospark.plans.sort import identity, sort_partition
from aiospark.protocol.frames import decode_frame, frame_bytes
from aiospark.shuffle.columns import (
    Columns,
    partition_ids,
    split_by_partition,
    sum_by_key,
    typed,
)
from aiospark.shuffle.reduce import FetchedRecords

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
floats = st.floats(allow_nan=True, allow_infinity=True)
keys = st.one_of(
    st.lists(ints, max_size=60),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=60),
    st.lists(floats, max_size=60),
    st.lists(st.text(max_size=4), max_size=60),
    st.lists(st.one_of(st.integers(), st.text(max_size=2), st.booleans()), max_size=60),
)


def same(a: list, b: list) -> bool:
    """Equal item by item, with the same types, NaN equal to NaN and -0.0 unlike 0.0."""
    return len(a) == len(b) and all(
        type(x) is type(y) and (x == y or (x != x and y != y)) and repr(x) == repr(y)
        for x, y in zip(a, b, strict=True)
    )


@given(keys, st.data())
def test_columns_round_trip_exactly_through_a_frame(key_list, data):
    values = data.draw(st.lists(floats | ints, min_size=len(key_list), max_size=len(key_list)))
    records = list(zip(key_list, values, strict=True))
    cols = Columns.of(records)
    if not records:
        assert cols is None
        return
    back = list(decode_frame(frame_bytes(cols)))
    assert same([k for k, _ in back], key_list)
    assert same([v for _, v in back], values)
    assert all(type(r) is tuple for r in back)


def test_only_tuples_of_two_become_columns():
    assert Columns.of([(1, 2), [3, 4]]) is None
    assert Columns.of([(1, 2), (3, 4, 5)]) is None
    assert Columns.of([(1, 2), 7]) is None
    assert Columns.of([]) is None


def test_typed_keeps_what_numpy_would_change():
    assert isinstance(typed([1, 2**40]), np.ndarray)
    for items in ([True, False], [1, 2.0], [2**64], [np.int64(1)], ["a"]):
        assert typed(items) is items


@given(keys, st.integers(min_value=1, max_value=9))
def test_hash_partition_ids_agree_with_the_partitioner(key_list, n):
    partitioner = HashPartitioner(n)
    ids = partition_ids(typed(list(key_list)), partitioner)
    if ids is not None:
        assert ids.tolist() == [partitioner.partition(k) for k in key_list]


@given(st.lists(st.integers(-50, 50), max_size=80), st.lists(st.integers(-50, 50), max_size=5),
       st.booleans())
def test_range_partition_ids_agree_with_bisect(key_list, bounds, ascending):
    partitioner = RangePartitioner(len(bounds) + 1, sorted(bounds), ascending)
    ids = partition_ids(typed(list(key_list)), partitioner)
    assert ids is not None or not key_list
    if ids is not None:
        assert ids.tolist() == [partitioner.partition(k) for k in key_list]


def test_range_ids_of_float_keys_with_nan_are_left_to_bisect():
    partitioner = RangePartitioner(2, [0.5])
    assert partition_ids(np.array([0.1, math.nan]), partitioner) is None
    assert partition_ids(np.array([0.1, 0.9]), partitioner).tolist() == [0, 1]


def test_user_partition_functions_are_not_vectorised():
    assert partition_ids(np.array([1, 2]), HashPartitioner(2, lambda k: k)) is None


@given(keys, st.integers(min_value=1, max_value=6))
def test_split_by_partition_keeps_each_reducers_pairs_in_order(key_list, n):
    records = [(k, i) for i, k in enumerate(key_list)]
    cols = Columns.of(records)
    partitioner = HashPartitioner(n)
    parts = split_by_partition(cols, partitioner) if cols is not None else None
    if parts is None:
        return
    expected = [[] for _ in range(n)]
    for record in records:
        expected[partitioner.partition(record[0])].append(record)
    assert [repr(list(p)) for p in parts] == [repr(e) for e in expected]


def loop_sum(records: list) -> dict:
    table: dict = {}
    for k, v in records:
        table[k] = table[k] + v if k in table else v
    return table


@given(st.lists(st.tuples(st.integers(-(2**40), 2**40), floats), max_size=200),
       st.integers(1, 4))
def test_float_sums_are_bit_for_bit_the_loops(records, pieces):
    parts = [Columns.of(records[i::pieces]) for i in range(pieces)]
    ordered = [r for i in range(pieces) for r in records[i::pieces]]
    got = dict(sum_by_key([p for p in parts if p is not None]))
    expected = loop_sum(ordered)
    assert sorted(got) == sorted(expected)
    assert all(repr(got[k]) == repr(expected[k]) for k in expected)


@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(-(2**40), 2**40)), max_size=300))
def test_int_sums_match_the_loop_for_sparse_and_dense_keys(records):
    cols = Columns.of(records)
    got = dict(sum_by_key([cols])) if cols is not None else {}
    assert got == loop_sum(records)
    assert all(type(v) is int for v in got.values())


def test_negative_zero_alone_stays_negative_zero():
    assert repr(dict(sum_by_key([Columns.of([(1, -0.0)])]))[1]) == "-0.0"


def test_int_sums_that_could_overflow_64_bits_refuse():
    cols = Columns.of([(1, 2**62), (1, 2**62)])
    with pytest.raises(OverflowError):
        list(sum_by_key([cols]))


def sort_shuffled(batches: list, descending: bool) -> list:
    """A range shuffle's reduce side: the sort over the fetched batches as they came."""
    return list(sort_partition(identity, descending, 0, FetchedRecords(iter(batches))))


@given(st.lists(st.tuples(st.integers(-20, 20), st.integers(-(2**40), 2**40)), max_size=200),
       st.booleans())
def test_shuffled_columns_sort_as_a_stable_sorted(records, descending):
    cols = Columns.of(records)
    if cols is None:
        return
    got = sort_shuffled([cols[: len(cols) // 2], cols[len(cols) // 2 :]], descending)
    assert got == sorted(records, key=operator.itemgetter(0), reverse=descending)


def test_shuffled_nan_and_object_keys_sort_as_sorted_does():
    for records in ([(math.nan, 1), (1.0, 2)], [("b", 1), ("a", 2)]):
        got = sort_shuffled([Columns.of(records)], False)
        assert repr(got) == repr(sorted(records, key=operator.itemgetter(0)))


def test_columns_pickle_as_raw_buffers():
    cols = Columns.of([(i, float(i)) for i in range(10_000)])
    assert len(pickle.dumps(cols, protocol=5)) < 16 * 10_000 + 1_000
