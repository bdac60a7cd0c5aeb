"""Spilling collections and the spilling map-output writer, against plain Python."""

from __future__ import annotations

import collections
import operator
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiospark import spill
from aiospark.lineage import Aggregator, HashPartitioner, ShuffleDependency
from aiospark.memory import MemoryManager, TaskMemory
from aiospark.plans.cogroup import _extend, _full_join, _inner_join, _merge_groups, group_values
from aiospark.protocol.frames import iter_file_frames
from aiospark.shuffle.layout import map_paths, read_segment_range
from aiospark.shuffle.writer import write_map_output
from aiospark.spill import ExternalMap, join_external, merge_external, sort_external


def tiny(budget: int = 50_000) -> TaskMemory:
    """A reservation so small that a few thousand records spill."""
    return TaskMemory(MemoryManager(budget=budget), "task", step=4096)


def batches(records, size=500):
    for start in range(0, len(records), size):
        yield records[start : start + size]


def test_external_map_spills_and_merges_like_a_dict(tmp_path):
    pairs = [(random.randrange(5000), 1) for _ in range(40_000)]
    table = ExternalMap(operator.add, tiny(), str(tmp_path))
    counting = Aggregator(lambda v: v, operator.add, operator.add, identity_create=True)
    for batch in batches(pairs):
        table.merge_values(batch, combine=counting.combine_values)
    assert table.spills > 1
    assert dict(table.items()) == collections.Counter(k for k, _ in pairs)
    assert os.listdir(tmp_path) == []  # every spill file was removed once read


def _fold_all(table: ExternalMap, records: list, combine=None, size: int = 700) -> None:
    for batch in batches(records, size):
        table.merge_values(list(batch), combine=combine)


@pytest.mark.parametrize("budget", [30_000, 10**9])
def test_external_map_sums_int_pairs_in_columns(tmp_path, monkeypatch, budget):
    written = []
    write = spill.write_column_spill
    monkeypatch.setattr(spill, "write_column_spill", lambda *a: written.append(1) or write(*a))
    rnd = random.Random(3)
    pairs = [(rnd.randrange(-3000, 3000), rnd.randrange(5)) for _ in range(60_000)]
    adding = Aggregator(lambda v: v, operator.add, operator.add, identity_create=True)
    table = ExternalMap(operator.add, tiny(budget), str(tmp_path))
    _fold_all(table, pairs, combine=adding.combine_combiners)
    wanted = collections.Counter()
    for key, value in pairs:
        wanted[key] += value
    got = list(table.items())
    assert len(got) == len({k for k, _ in got}) and dict(got) == wanted
    assert all(type(k) is int and type(v) is int for k, v in got)
    assert bool(written) == (budget < 10**6) and table.spilled == bool(written)
    assert os.listdir(tmp_path) == []


def test_external_map_leaves_columns_for_other_records(tmp_path):
    rnd = random.Random(4)
    ints = [(rnd.randrange(2000), 1) for _ in range(30_000)]
    others = [(f"k{rnd.randrange(500)}", 2) for _ in range(5_000)] + [(7, 2**62), (7, 2**62)]
    table = ExternalMap(operator.add, tiny(30_000), str(tmp_path))
    _fold_all(table, ints)
    _fold_all(table, others)
    _fold_all(table, ints)  # numbers again, now into the dict
    wanted = collections.Counter()
    for key, value in ints + others + ints:
        wanted[key] += value
    assert dict(table.items()) == wanted  # 2**63 + ...: Python ints, no wrap-around
    assert os.listdir(tmp_path) == []


def test_external_map_sums_past_64_bits_exactly(tmp_path):
    pairs = [(i % 3, 2**62) for i in range(3_000)]
    table = ExternalMap(operator.add, tiny(10**9), str(tmp_path))
    _fold_all(table, pairs)
    assert dict(table.items()) == {0: 1000 * 2**62, 1: 1000 * 2**62, 2: 1000 * 2**62}


def test_external_map_of_other_merges_keeps_records(tmp_path):
    table = ExternalMap(max, tiny(10**9), str(tmp_path))
    _fold_all(table, [(i % 10, i) for i in range(1000)])
    assert table._columns is None and dict(table.items()) == {k: 990 + k for k in range(10)}


def test_external_map_without_spilling_keeps_its_table(tmp_path):
    table = ExternalMap(operator.add, tiny(10**9), str(tmp_path))
    table.merge_values([("a", 1), ("b", 2), ("a", 3)])
    assert not table.spilled and dict(table.items()) == {"a": 4, "b": 2}


def test_skewed_part_recurses_with_another_salt(tmp_path, monkeypatch):
    # Two fan-out files only: every part is still too big, so parts spill again.
    monkeypatch.setattr(spill, "FANOUT", 2)
    levels = []
    original = ExternalMap.spill

    def spill_and_note_level(self):
        levels.append(self.level)
        original(self)

    monkeypatch.setattr(ExternalMap, "spill", spill_and_note_level)
    pairs = [(i % 3000, i) for i in range(12_000)]
    table = ExternalMap(_extend, tiny(30_000), str(tmp_path))
    for batch in batches(pairs):
        table.merge_values(batch, combine=group_values)
    expected = collections.defaultdict(list)
    for k, v in pairs:
        expected[k].append(v)
    got = dict(table.items())
    assert {k: sorted(v) for k, v in got.items()} == dict(expected)
    assert max(levels) >= 1  # a part was still too big and spilled again


def test_grace_join_matches_a_plain_join(tmp_path):
    left = [(random.randrange(3000), f"l{i}") for i in range(8000)]
    right = [(random.randrange(3000), f"r{i}") for i in range(8000)]
    table = ExternalMap(_extend, tiny(), str(tmp_path))
    for batch in batches(right):
        table.merge_values(batch, combine=group_values)
    assert table.spilled
    joined = sorted(join_external(table, iter(left), _full_join), key=repr)
    plain = sorted(_full_join(group_values(right), iter(left)), key=repr)
    assert joined == plain
    assert os.listdir(tmp_path) == []


def test_cogroup_of_a_spilled_and_an_unspilled_table(tmp_path):
    big = [(i % 4000, i) for i in range(20_000)]
    small = [(7, "x"), (4001, "y")]
    tables = []
    for records, budget in ((big, 40_000), (small, 10**9)):
        table = ExternalMap(_extend, tiny(budget), str(tmp_path))
        table.merge_values(records, combine=group_values)
        tables.append(table)
    assert tables[0].spilled and not tables[1].spilled
    merged = {k: (sorted(a), b) for k, (a, b) in merge_external(tables, _merge_groups)}
    plain = {k: (sorted(a), b) for k, (a, b) in _merge_groups([group_values(big),
                                                                group_values(small)])}
    assert merged == plain


def test_join_stream_errors_do_not_leave_files(tmp_path):
    table = ExternalMap(_extend, tiny(), str(tmp_path))
    for batch in batches([(i, i) for i in range(10_000)]):
        table.merge_values(batch, combine=group_values)

    def broken():
        yield (1, 1)
        raise RuntimeError("user code failed")

    with pytest.raises(RuntimeError, match="user code failed"):
        list(join_external(table, broken(), _inner_join))
    table_files = [f for f in os.listdir(tmp_path) if f.startswith("side")]
    assert table_files == []


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(-50, 50), st.integers()), max_size=3000),
       st.booleans())
def test_external_sort_is_sorted_and_stable(tmp_path_factory, records, reverse):
    directory = str(tmp_path_factory.mktemp("runs"))
    key = operator.itemgetter(0)
    got = list(sort_external(iter(records), key, reverse, tiny(20_000), directory))
    assert got == sorted(records, key=key, reverse=reverse)
    assert os.listdir(directory) == []


def test_external_sort_really_spills(tmp_path):
    before = spill.STATS.snapshot()["spills"]
    records = [random.random() for _ in range(50_000)]
    assert list(sort_external(iter(records), None, False, tiny(), str(tmp_path))) == sorted(
        records
    )
    assert spill.STATS.snapshot()["spills"] > before


def _numeric_then_mixed(rnd: random.Random) -> list[tuple]:
    ints = [(rnd.randint(-300, 300), i) for i in range(30_000)]
    floats = [(rnd.randint(0, 40), rnd.random()) for _ in range(10_000)]
    words = [(rnd.randint(0, 40), f"w{i}") for i in range(5_000)]
    return ints + floats + [(2**70, 1), (5, True)] + words + ints[:10_000]


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("budget", [1, 60_000, 10**9])  # 1: every batch spills, none is held
@pytest.mark.parametrize("mixed", [False, True])
def test_external_sort_of_numeric_pairs_in_columns(tmp_path, monkeypatch, reverse, budget, mixed):
    merges = []
    merge_columns = spill.columns.merge_columns
    monkeypatch.setattr(spill.columns, "merge_columns",
                        lambda *a: merges.append(1) or merge_columns(*a))
    rnd = random.Random(7)
    records = (_numeric_then_mixed(rnd) if mixed
               else [(rnd.randint(-10**12, 10**12) // 10**9, i) for i in range(60_000)])
    key = operator.itemgetter(0)
    before = spill.STATS.snapshot()["bytes"]
    got = list(sort_external(iter(records), key, reverse, tiny(budget), str(tmp_path)))
    want = sorted(records, key=key, reverse=reverse)
    assert got == want
    assert [tuple(map(type, r)) for r in got] == [tuple(map(type, r)) for r in want]
    spilled = spill.STATS.snapshot()["bytes"] - before
    assert (spilled > 0) == (budget < 10**6)
    assert bool(merges) == (not mixed and budget < 10**6)  # runs of columns, merged as such
    assert os.listdir(tmp_path) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 6), st.integers()), max_size=40),
                max_size=5),
       st.booleans(), st.integers(1, 9))
def test_merge_sorted_blocks_is_a_stable_merge(runs, reverse, block):
    key = operator.itemgetter(0)
    runs = [sorted(run, key=key, reverse=reverse) for run in runs]
    streams = [iter([run[i : i + block] for i in range(0, len(run), block)]) for run in runs]
    merged = [r for chunk in spill.merge_sorted_blocks(streams, key, reverse) for r in chunk]
    assert merged == sorted([r for run in runs for r in run], key=key, reverse=reverse)


def _segments(directory: str, map_id: int, reducers: int) -> list[list]:
    data, index = map_paths(directory, map_id)
    out = []
    for r in range(reducers):
        start, length = read_segment_range(index, r)
        out.append([x for batch in iter_file_frames(data, start, length) for x in batch])
    return out


@pytest.mark.parametrize("combine", [False, True])
def test_map_output_spills_but_reducers_see_the_same_data(tmp_path, combine):
    records = [(random.randrange(2000), 1) for _ in range(30_000)]
    aggregator = Aggregator(lambda v: v, operator.add, operator.add, identity_create=True)
    dep = ShuffleDependency(None, 0, HashPartitioner(3), aggregator if combine else None,
                            map_side_combine=combine)
    before = spill.STATS.snapshot()["spills"]
    sizes = write_map_output(iter(records), dep, str(tmp_path / "out"), 0, tiny(),
                             str(tmp_path / "spill"))
    assert spill.STATS.snapshot()["spills"] > before
    segments = _segments(str(tmp_path / "out"), 0, 3)
    assert len(sizes) == 3 and all(sizes)
    for r, segment in enumerate(segments):
        expected = [kv for kv in records if kv[0] % 3 == r]
        if combine:  # partial combiners from several spills: merge them
            assert Aggregator.combine_combiners(aggregator, segment) == collections.Counter(
                k for k, _ in expected
            )
        else:
            assert sorted(segment) == sorted(expected)
    assert os.listdir(tmp_path / "spill") == []


def test_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    def no_space(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spill.tempfile, "mkstemp", no_space)
    with pytest.raises(spill.SpillError, match=r"cannot create a spill file .*No space left"):
        list(sort_external(iter(range(50_000, 0, -1)), None, False, tiny(), str(tmp_path)))
