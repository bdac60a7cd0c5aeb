"""The map-side combine, including its C counting path, against plain Python."""

from __future__ import annotations

import operator
import random

import pytest

from aiospark.lineage import Aggregator

SUM = Aggregator(lambda v: v, operator.add, operator.add, identity_create=True)


def plain_sum(records):
    out = {}
    for k, v in records:
        out[k] = out[k] + v if k in out else v
    return out


@pytest.mark.parametrize("seed", range(5))
def test_sum_by_key_matches_python_with_ones_and_other_values_mixed(seed):
    rng = random.Random(seed)
    values = [1, 1, 1, 2, 1.5, True, -1, 10**20]
    records = [(rng.choice("abcdefg"), rng.choice(values if rng.random() < 0.1 else [1]))
               for _ in range(5000)]
    got = SUM.combine_values(iter(records))
    want = plain_sum(records)
    assert got == want
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in want.items()}


def test_counting_path_keeps_types_and_names_unhashable_keys():
    assert SUM.combine_values(iter([("a", 1)] * 3000)) == {"a": 3000}
    assert SUM.combine_values(iter([("a", True), ("a", True)])) == {"a": 2}
    assert SUM.combine_values(iter([("a", 1.0), ("a", 1)])) == {"a": 2.0}
    with pytest.raises(TypeError, match=r"keys must be hashable: got a list"):
        SUM.combine_values(iter([("a", 1), (["b"], 1)]))


def test_general_combine_with_create_combiner():
    to_list = Aggregator(lambda v: [v], lambda c, v: [*c, v], operator.add)
    assert to_list.combine_values(iter([(1, "x"), (2, "y"), (1, "z")])) == {
        1: ["x", "z"], 2: ["y"]
    }
