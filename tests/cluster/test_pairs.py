"""Pair-RDD operations (aggregations, cogroups, joins, by-key actions) against plain Python."""

from __future__ import annotations

import operator
import random
from collections import Counter, defaultdict

import pytest

import aiospark
from aiospark import HashPartitioner, portable_hash
from aiospark.lineage import OneToOneDependency, ShuffleDependency

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

RNG = random.Random(4321)
KEYS = [None, 0, 1, -7, 2**40, "a", "béta", "", ("t", 1), 3.5, "日本"]


def random_pairs(n: int, keys: list, unhashable_values: bool = True) -> list[tuple]:
    pairs = []
    for _ in range(n):
        value = RNG.randint(-100, 100)
        if unhashable_values and RNG.random() < 0.2:
            value = [value, {"v": value}]  # values need not be hashable
        pairs.append((RNG.choice(keys), value))
    return pairs


def canon(records) -> list:
    """A multiset of records in a canonical order (works for mixed and unhashable records)."""
    return sorted(records, key=repr)


def py_groups(pairs) -> dict:
    groups = defaultdict(list)
    for k, v in pairs:
        groups[k].append(v)
    return groups


def py_join(left, right, how: str) -> list[tuple]:
    lg, rg = py_groups(left), py_groups(right)
    out = []
    for k in {*lg, *rg}:
        vs, ws = lg.get(k, []), rg.get(k, [])
        if vs and ws:
            out.extend((k, (v, w)) for v in vs for w in ws)
        elif vs and how in ("left", "full"):
            out.extend((k, (v, None)) for v in vs)
        elif ws and how in ("right", "full"):
            out.extend((k, (None, w)) for w in ws)
    return out


def py_cogroup(*sides) -> list[tuple]:
    groups = [py_groups(side) for side in sides]
    keys = set().union(*groups)
    return [(k, tuple(canon(g.get(k, [])) for g in groups)) for k in keys]


def canon_cogroup(records) -> list:
    return canon((k, tuple(canon(vs) for vs in groups)) for k, groups in records)


def shuffle_deps(rdd) -> list[ShuffleDependency]:
    """Every ShuffleDependency reachable from ``rdd``'s lineage."""
    found, seen, stack = [], set(), [rdd]
    while stack:
        node = stack.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        for dep in node.deps:
            if isinstance(dep, ShuffleDependency):
                found.append(dep)
            stack.append(dep.rdd)
    return found


async def assert_partitioned(rdd, n: int) -> None:
    """Every record of split i has a key that hashes to i."""
    parts = await rdd.glom().collect()
    assert len(parts) == n
    for i, part in enumerate(parts):
        assert all(portable_hash(k) % n == i for k, _ in part)


JOINS = {
    "inner": "join",
    "left": "left_outer_join",
    "right": "right_outer_join",
    "full": "full_outer_join",
}


async def test_joins_match_python_on_random_data(ctx):
    # Duplicate keys on both sides, keys on one side only, None keys, unhashable values.
    left = random_pairs(600, KEYS[:8])
    right = random_pairs(400, [*KEYS[3:], "only-right"])
    x, y = ctx.parallelize(left, 5), ctx.parallelize(right, 3)
    for how, method in JOINS.items():
        joined = getattr(x, method)(y)
        assert joined.get_num_partitions() == 8  # the sum of the parents', as in PySpark
        assert canon(await joined.collect()) == canon(py_join(left, right, how)), how
        explicit = getattr(x, method)(y, 7)
        assert explicit.get_num_partitions() == 7
        await assert_partitioned(explicit, 7)
        assert canon(await explicit.collect()) == canon(py_join(left, right, how)), how
    # Either side may be the bigger one.
    assert canon(await y.join(x, 2).collect()) == canon(py_join(right, left, "inner"))


async def test_joins_with_empty_sides_and_more_partitions_than_records(ctx):
    some = [(None, 1), ("a", 2), ("a", [3])]
    cases = [([], []), (some, []), ([], some), (some, some), (some, [("b", 0), (None, None)])]
    for left, right in cases:
        x, y = ctx.parallelize(left, 6), ctx.parallelize(right, 4)
        for how, method in JOINS.items():
            for n in (None, 1, 10):
                got = await getattr(x, method)(y, n).collect()
                assert canon(got) == canon(py_join(left, right, how)), (left, right, how, n)
        assert canon_cogroup(await x.cogroup(y, 9).collect()) == canon(py_cogroup(left, right))
        expected = [(k, v) for k, v in left if k not in {k for k, _ in right}]
        assert canon(await x.subtract_by_key(y, 9).collect()) == canon(expected)


async def test_self_join_and_chained_joins(ctx):
    pairs = random_pairs(200, KEYS, unhashable_values=False)
    x = ctx.parallelize(pairs, 4)
    assert canon(await x.join(x).collect()) == canon(py_join(pairs, pairs, "inner"))
    p = x.partition_by(3)
    both_narrow = p.full_outer_join(p)
    assert all(isinstance(dep, OneToOneDependency) for dep in both_narrow.deps)
    assert canon(await both_narrow.collect()) == canon(py_join(pairs, pairs, "full"))
    # A join's result keeps its partitioner, so joining it again on the same
    # partitioner needs no further shuffle of it.
    other = random_pairs(100, KEYS, unhashable_values=False)
    y = ctx.parallelize(other, 3)
    first = x.join(y, 4)
    assert first.partitioner == HashPartitioner(4)
    second = first.join(y, 4)
    assert isinstance(second.deps[0], OneToOneDependency)
    assert len(shuffle_deps(second)) == 3
    expected = py_join(py_join(pairs, other, "inner"), other, "inner")
    assert canon(await second.collect()) == canon(expected)


async def test_cogroup_and_group_with_match_python(ctx):
    a = random_pairs(300, KEYS)
    b = random_pairs(200, KEYS[2:])
    c = random_pairs(50, ["c-only", None])
    d: list = []
    x, y, z, w = (ctx.parallelize(a, 3), ctx.parallelize(b, 5),
                  ctx.parallelize(c, 2), ctx.parallelize(d, 1))
    grouped = x.cogroup(y)
    assert grouped.get_num_partitions() == 8
    got = await grouped.collect()
    assert all(isinstance(vs, list) for _, groups in got for vs in groups)
    assert canon_cogroup(got) == canon(py_cogroup(a, b))
    assert canon_cogroup(await x.cogroup(y, 2).collect()) == canon(py_cogroup(a, b))
    many = x.group_with(y, z, w)
    assert many.get_num_partitions() == 11
    assert canon_cogroup(await many.collect()) == canon(py_cogroup(a, b, c, d))
    assert canon_cogroup(await z.group_with(x).collect()) == canon(py_cogroup(c, a))


async def test_a_side_partitioned_like_the_result_is_not_shuffled_again(ctx):
    left = random_pairs(300, KEYS)
    right = random_pairs(300, KEYS)
    a = ctx.parallelize(left, 3).partition_by(4)
    b = ctx.parallelize(right, 2)
    joined = a.join(b, 4)
    # a's side is read split by split; only b is shuffled (plus a's own partition_by).
    assert isinstance(joined.deps[0], OneToOneDependency) and joined.deps[0].rdd is a
    assert isinstance(joined.deps[1], ShuffleDependency) and joined.deps[1].rdd is b
    assert len(shuffle_deps(joined)) == 2
    assert canon(await joined.collect()) == canon(py_join(left, right, "inner"))
    await assert_partitioned(joined, 4)
    # Default partition count: a has the most partitions, so its partitioner is reused.
    assert isinstance(a.full_outer_join(b).deps[0], OneToOneDependency)
    # A different partition count means shuffling a again.
    assert isinstance(a.join(b, 5).deps[0], ShuffleDependency)
    assert canon(await a.join(b, 5).collect()) == canon(py_join(left, right, "inner"))
    # Both sides co-partitioned: the join adds no shuffle at all.
    bp = b.partition_by(4)
    both = a.left_outer_join(bp)
    assert all(isinstance(dep, OneToOneDependency) for dep in both.deps)
    assert len(shuffle_deps(both)) == 2
    assert canon(await both.collect()) == canon(py_join(left, right, "left"))
    # Narrow deps work for cached sides, cogroup, group_with and subtract_by_key too.
    cached = a.cache()
    assert canon_cogroup(await cached.cogroup(b, 4).collect()) == canon(py_cogroup(left, right))
    assert canon_cogroup(await cached.group_with(bp, b).collect()) == canon(
        py_cogroup(left, right, right)
    )
    sub = cached.subtract_by_key(bp)
    assert all(isinstance(dep, OneToOneDependency) for dep in sub.deps)
    right_keys = {k for k, _ in right}
    assert canon(await sub.collect()) == canon([kv for kv in left if kv[0] not in right_keys])
    cached.unpersist()


async def test_default_partitioner_reuses_a_custom_hash(ctx):
    def by_length(key) -> int:
        return len(str(key))

    left = random_pairs(100, KEYS, unhashable_values=False)
    right = random_pairs(100, KEYS, unhashable_values=False)
    a = ctx.parallelize(left, 2).partition_by(3, by_length)
    b = ctx.parallelize(right, 3)
    joined = a.right_outer_join(b)
    assert joined.partitioner is a.partitioner
    assert isinstance(joined.deps[0], OneToOneDependency)
    assert canon(await joined.collect()) == canon(py_join(left, right, "right"))
    parts = await joined.glom().collect()
    assert all(by_length(k) % 3 == i for i, part in enumerate(parts) for k, _ in part)


async def test_range_partitioned_inputs(ctx):
    # A sort's range partitioner is never reused for the other side (its bounds
    # may exist only on the cluster), and lookup still finds the keys.
    left = [(RNG.randint(0, 50), RNG.randint(0, 9)) for _ in range(200)]
    right = [(RNG.randint(25, 75), None) for _ in range(100)]
    ranged = ctx.parallelize(left, 3).sort_by_key(num_partitions=4)
    other = ctx.parallelize(right, 2)
    joined = ranged.join(other)
    assert joined.get_num_partitions() == 6
    assert joined.partitioner == HashPartitioner(6)
    assert canon(await joined.collect()) == canon(py_join(left, right, "inner"))
    groups = py_groups(left)
    for key in (0, 25, 50, 99):
        assert sorted(await ranged.lookup(key)) == sorted(groups.get(key, []))


async def test_subtract_by_key_matches_python(ctx):
    left = random_pairs(500, KEYS)
    right = random_pairs(100, [*KEYS[::2], "other"])
    x, y = ctx.parallelize(left, 4), ctx.parallelize(right, 6)
    result = x.subtract_by_key(y)
    assert result.get_num_partitions() == 10
    right_keys = {k for k, _ in right}
    expected = [kv for kv in left if kv[0] not in right_keys]
    assert canon(await result.collect()) == canon(expected)
    # Only keys of the other side travel, combined on the map side.
    dep = result.deps[1]
    assert isinstance(dep, ShuffleDependency) and dep.map_side_combine
    assert canon(await x.subtract_by_key(y, 1).collect()) == canon(expected)


async def test_aggregate_fold_and_group_by_match_python(ctx):
    pairs = random_pairs(800, KEYS, unhashable_values=False)
    rdd = ctx.parallelize(pairs, 6)
    groups = py_groups(pairs)

    # A mutable zero is copied per key: appending in place must not leak across keys.
    def append(acc, v):
        acc.append(v)
        return acc

    lists = rdd.aggregate_by_key([], append, operator.add)
    assert lists.get_num_partitions() == 6
    got = await lists.collect()
    assert canon((k, sorted(vs)) for k, vs in got) == canon(
        (k, sorted(vs)) for k, vs in groups.items()
    )
    stats = rdd.aggregate_by_key(
        (0, 0), lambda acc, v: (acc[0] + v, acc[1] + 1),
        lambda p, q: (p[0] + q[0], p[1] + q[1]), 3,
    )
    assert stats.get_num_partitions() == 3
    assert canon(await stats.collect()) == canon(
        (k, (sum(vs), len(vs))) for k, vs in groups.items()
    )
    sets = rdd.fold_by_key(set(), lambda acc, v: acc | ({v} if isinstance(v, int) else v))
    assert canon((k, sorted(s)) for k, s in await sets.collect()) == canon(
        (k, sorted(set(vs))) for k, vs in groups.items()
    )
    sums = rdd.fold_by_key(0, operator.add, 2)
    assert canon(await sums.collect()) == canon((k, sum(vs)) for k, vs in groups.items())
    # Already partitioned by the target partitioner: combined without a shuffle.
    parted = rdd.partition_by(5)
    again = parted.fold_by_key(0, operator.add, 5)
    assert len(shuffle_deps(again)) == 1
    assert canon(await again.collect()) == canon((k, sum(vs)) for k, vs in groups.items())

    records = [RNG.choice([None, 1, 2, "x", (1, 2)]) for _ in range(300)] + [[1], [1]]
    by_type = ctx.parallelize(records, 7).group_by(lambda r: type(r).__name__)
    assert by_type.get_num_partitions() == 7
    expected = defaultdict(list)
    for r in records:
        expected[type(r).__name__].append(r)
    got = await by_type.collect()
    assert canon((k, canon(vs)) for k, vs in got) == canon(
        (k, canon(vs)) for k, vs in expected.items()
    )
    assert (await ctx.parallelize([], 3).group_by(str, 2).collect()) == []


async def test_by_key_actions_match_python(ctx):
    pairs = random_pairs(700, KEYS)
    hashable = random_pairs(700, KEYS, unhashable_values=False)
    rdd = ctx.parallelize(pairs, 5)
    assert await rdd.count_by_key() == dict(Counter(k for k, _ in pairs))
    assert await ctx.parallelize(hashable, 5).count_by_value() == dict(Counter(hashable))
    assert await rdd.collect_as_map() == dict(pairs)
    assert list(await rdd.collect_as_map()) == list(dict(pairs))  # same key order too
    reduced = await ctx.parallelize(hashable, 4).reduce_by_key_locally(operator.add)
    assert reduced == {k: sum(vs) for k, vs in py_groups(hashable).items()}
    concat = await rdd.map_values(lambda v: [v]).reduce_by_key_locally(operator.add)
    assert {k: canon(vs) for k, vs in concat.items()} == {
        k: canon(vs) for k, vs in py_groups(pairs).items()
    }
    empty = ctx.parallelize([], 3)
    for action in ("count_by_key", "count_by_value", "collect_as_map"):
        assert await getattr(empty, action)() == {}
    assert await empty.reduce_by_key_locally(operator.add) == {}
    assert await ctx.parallelize([1, 1, 2], 8).count_by_value() == {1: 2, 2: 1}


async def test_lookup(ctx):
    pairs = random_pairs(400, KEYS)
    groups = py_groups(pairs)
    plain = ctx.parallelize(pairs, 5)
    for key in [*KEYS, "missing"]:
        assert canon(await plain.lookup(key)) == canon(groups.get(key, []))
    assert await ctx.parallelize([], 2).lookup(None) == []

    # With a partitioner only the partition holding the key is computed: every
    # other partition would fail if it ran.
    n = 4
    parted = plain.partition_by(n)

    def only(target):
        def check(index, it):
            if index != target:
                raise AssertionError(f"partition {index} computed for a lookup in {target}")
            return it

        return parted.map_partitions_with_index(check, preserves_partitioning=True)

    for key in KEYS:
        guarded = only(portable_hash(key) % n)
        assert guarded.partitioner == parted.partitioner
        assert canon(await guarded.lookup(key)) == canon(groups.get(key, []))
    with pytest.raises(AssertionError, match="computed for a lookup"):
        await only(0).collect()


async def test_unhashable_keys_fail_clearly(ctx):
    bad = ctx.parallelize([(1, "a"), ([1, 2], "b")], 2)
    good = ctx.parallelize([(1, "x")], 2)
    with pytest.raises(TypeError, match="hashable"):
        await bad.join(good).collect()
    with pytest.raises(TypeError, match="hashable"):
        await bad.join(good, 1).collect()  # one reducer: the shuffle never hashes keys
    with pytest.raises(TypeError, match="hashable"):
        await good.left_outer_join(bad, 1).collect()
    with pytest.raises(TypeError, match="hashable"):
        await bad.cogroup(good, 1).collect()
    with pytest.raises(TypeError, match="hashable"):
        await good.subtract_by_key(bad, 1).collect()
    with pytest.raises(TypeError, match="hashable"):
        await bad.subtract_by_key(good, 1).collect()
    with pytest.raises(TypeError, match="hashable"):
        await bad.count_by_key()
    with pytest.raises(TypeError, match="hashable"):
        await bad.collect_as_map()
    with pytest.raises(TypeError, match="hashable"):
        await bad.reduce_by_key_locally(operator.add)
    with pytest.raises(TypeError, match="hashable"):
        await ctx.parallelize([[1], [1]]).count_by_value()
    with pytest.raises(TypeError, match="hashable"):
        await bad.partition_by(3).lookup([1, 2])


async def test_bad_arguments(ctx):
    rdd = ctx.parallelize([(1, 2)], 2)
    with pytest.raises(TypeError, match="RDD"):
        rdd.join([(1, 2)])
    with pytest.raises(TypeError, match="RDD"):
        rdd.group_with(rdd, "not an rdd")
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="num_partitions"):
            rdd.cogroup(rdd, bad)
        with pytest.raises(ValueError, match="num_partitions"):
            rdd.full_outer_join(rdd, bad)
        with pytest.raises(ValueError, match="num_partitions"):
            rdd.subtract_by_key(rdd, bad)
        with pytest.raises(ValueError, match="num_partitions"):
            rdd.aggregate_by_key(0, operator.add, operator.add, bad)
    with pytest.raises(TypeError, match="seq_func"):
        rdd.aggregate_by_key(0, None, operator.add)
    with pytest.raises(TypeError, match="func"):
        rdd.fold_by_key(0, "add")
    with pytest.raises(TypeError, match="f must be callable"):
        rdd.group_by(3)
    with pytest.raises(TypeError, match="func"):
        await rdd.reduce_by_key_locally(None)
    elsewhere = aiospark.Context(workers=1).parallelize([(1, 2)], 1)  # never started
    with pytest.raises(ValueError, match="another Context"):
        rdd.join(elsewhere)


@pytest.mark.parametrize("values", [
    [True, True, False, True],  # bools: a key's lone True stays True; two make the int 2
    [1, 1, 1, 1],  # counting
    [1.5, -0.0, 2, True],  # mixed numbers
    ["x", "y", "z", "w"],
    [(1,), (2,), (3,), (4,)],
], ids=["bools", "ones", "mixed-numbers", "str", "tuples"])
@pytest.mark.parametrize("slices", [1, 3])
async def test_reduce_by_key_add_keeps_the_types_plain_python_gives(ctx, values, slices):
    pairs = [(k % 5, values[k % len(values)]) for k in range(23)]
    expected: dict = {}
    for k, v in pairs:
        expected[k] = expected[k] + v if k in expected else v
    # int keys take the vectorised paths (columns, numpy sums) wherever their types allow
    got = dict(await ctx.parallelize(pairs, slices).reduce_by_key(operator.add, 2).collect())
    assert repr(sorted(got.items())) == repr(sorted(expected.items()))
    lone = [(k, True) for k in range(6)]  # every key once: the values must stay True
    got = await ctx.parallelize(lone, 3).reduce_by_key(operator.add, 2).collect()
    assert sorted(got) == lone and all(v is True for _, v in got)


@pytest.mark.parametrize("pair", [lambda w: (w, 1), lambda w: (w, 2), lambda w: (w, True),
                                  lambda w: (w, 1.0), lambda w: (w, "s")],
                         ids=["one", "two", "true", "float", "str"])
async def test_pairing_with_a_constant_counts_as_plain_python_does(ctx, pair):
    # map(lambda w: (w, c)) is not called per record (aiospark.mapped): the results
    # must be what calling it gives, with and without the counting shuffle.
    words = [w for line in ["a b c a", "b a", "", "c c c d"] * 7 for w in line.split()]
    pairs = list(map(pair, words))
    expected: dict = {}
    for k, v in pairs:
        expected[k] = expected[k] + v if k in expected else v
    rdd = ctx.parallelize(words, 3).map(pair)
    assert await rdd.collect() == pairs
    got = dict(await rdd.reduce_by_key(operator.add, 2).collect())
    assert repr(sorted(got.items())) == repr(sorted(expected.items()))


def _called_from_the_combining_loop(x: int) -> tuple[int, int]:
    """(x % 3, 1 when the shuffle writer's combining loop called this, else 0)."""
    import inspect

    return (x % 3, int(any(f.function == "_merge_mapped" for f in inspect.stack())))


async def test_map_before_reduce_by_key_is_called_by_the_combining_loop(ctx):
    # The fused path (mapped.MappedRecords, writer._merge_mapped) must really be taken:
    # an iter() on the way to the writer once turned it back into a generator, silently.
    got = await ctx.range(30, num_slices=3).map(_called_from_the_combining_loop) \
        .reduce_by_key(operator.add).collect()
    assert sorted(got) == [(0, 10), (1, 10), (2, 10)]
