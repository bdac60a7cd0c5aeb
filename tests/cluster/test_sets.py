"""Set-like and structural operations on the real cluster, against plain Python.

union, distinct, intersection, subtract, cartesian, zip, zip_with_index,
zip_with_unique_id, coalesce, repartition, empty_rdd, is_empty and pipe.
"""

from __future__ import annotations

import itertools
import operator
import sys
from collections import Counter

import pytest

from aiospark.hashing import portable_hash
from aiospark.lineage import HashPartitioner
from aiospark.plans.basic import ParallelCollection
from aiospark.rdd import RDD
from aiospark.scheduler.dag import preferred_locations
from aiospark.sources import slice_collection

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

#: Duplicates, None, mixed types; sliced into more partitions than records below.
DATA = [3, None, "a", 3, (1, 2), "a", None, 7, 0, 3, "b", (1, 2), 2.5]
OTHER = [None, "b", 9, (1, 2), 2.5, 9, "zz"]


def _sort_key(x):
    return (type(x).__name__, repr(x))


def _sorted(xs):
    return sorted(xs, key=_sort_key)


def _slices(data, n):
    """How parallelize cuts a list into n slices (PySpark's rule)."""
    return slice_collection(list(data), n)


# -- union ------------------------------------------------------------------------------


async def test_union_concatenates_partitions_including_empty_ones(ctx):
    left = ctx.parallelize(DATA, 4)
    right = ctx.parallelize(OTHER, 20)  # more partitions than records
    both = left.union(right)
    assert both.get_num_partitions() == 24
    assert both.partitioner is None
    assert await both.glom().collect() == _slices(DATA, 4) + _slices(OTHER, 20)
    assert await both.collect() == DATA + OTHER
    assert await left.union(left).collect() == DATA + DATA
    assert await left.union(ctx.empty_rdd()).glom().collect() == _slices(DATA, 4)


async def test_union_of_unhashable_values_and_chained_unions(ctx):
    lists = [[1], [2, 3], [], [1]]
    rdd = ctx.parallelize(lists, 3).union(ctx.parallelize([{"k": 1}], 1))
    rdd = rdd.union(rdd.map(len))
    assert await rdd.collect() == [*lists, {"k": 1}, 1, 2, 0, 1, 1]
    assert rdd.get_num_partitions() == 8


async def test_union_of_same_partitioner_keeps_it_and_its_partition_count(ctx):
    pairs = [(k, v) for v, k in enumerate([1, 2, None, 3, 1, "x", 4, None])]
    a = ctx.parallelize(pairs, 3).partition_by(3)
    b = ctx.parallelize([(k, 10 * v) for k, v in pairs], 2).partition_by(3)
    both = a.union(b)
    assert both.get_num_partitions() == 3
    assert both.partitioner == HashPartitioner(3)
    a_parts, b_parts, parts = (
        await a.glom().collect(), await b.glom().collect(), await both.glom().collect()
    )
    assert parts == [x + y for x, y in zip(a_parts, b_parts, strict=True)]
    for i, part in enumerate(parts):
        assert all(portable_hash(k) % 3 == i for k, _ in part)
    # Still partitioned: reduce_by_key with the same partitioning needs no shuffle.
    summed = both.reduce_by_key(operator.add, 3)
    assert summed.partitioner == both.partitioner
    expected = Counter()
    for k, v in pairs:
        expected[k] += 11 * v
    assert dict(await summed.collect()) == dict(expected)
    # An RDD without partitions does not break partitioner-awareness.
    with_empty = ctx.union([a, ctx.empty_rdd(), b])
    assert with_empty.get_num_partitions() == 3 and with_empty.partitioner == a.partitioner
    assert await with_empty.glom().collect() == parts


async def test_union_of_different_partitioners_concatenates(ctx):
    a = ctx.parallelize([(1, "a"), (2, "b")], 2).partition_by(2)
    b = ctx.parallelize([(1, "c")], 1).partition_by(3)
    both = a.union(b)
    assert both.get_num_partitions() == 5 and both.partitioner is None
    assert _sorted(await both.collect()) == _sorted([(1, "a"), (2, "b"), (1, "c")])
    mixed = a.union(ctx.parallelize([(5, "z")], 2))
    assert mixed.get_num_partitions() == 4 and mixed.partitioner is None


async def test_context_union(ctx):
    rdds = [ctx.parallelize(range(i), i + 1) for i in range(4)]
    union = ctx.union(rdds)
    assert union.get_num_partitions() == 1 + 2 + 3 + 4
    assert await union.collect() == [x for i in range(4) for x in range(i)]
    assert await ctx.union(iter([ctx.parallelize(["x"], 1)])).collect() == ["x"]
    nothing = ctx.union([ctx.empty_rdd(), ctx.empty_rdd()])
    assert nothing.get_num_partitions() == 0 and await nothing.collect() == []


async def test_union_bad_arguments(ctx):
    rdd = ctx.parallelize([1])
    with pytest.raises(ValueError, match="at least one RDD"):
        ctx.union([])
    with pytest.raises(TypeError, match="list of RDDs"):
        ctx.union(rdd)
    with pytest.raises(TypeError, match="takes RDDs, got a list"):
        ctx.union([rdd, [1, 2]])
    with pytest.raises(TypeError, match="takes an RDD"):
        rdd.union([1, 2])


# -- distinct, intersection, subtract ---------------------------------------------------


async def test_distinct_matches_python_and_is_hash_partitioned(ctx):
    for slices in (1, 3, 30):
        rdd = ctx.parallelize(DATA, slices)
        result = rdd.distinct()
        assert result.get_num_partitions() == slices
        out = await result.collect()
        assert len(out) == len(set(out))
        assert Counter(out) == Counter(set(DATA))
    parts = await ctx.parallelize(DATA, 5).distinct(4).glom().collect()
    assert len(parts) == 4
    for i, part in enumerate(parts):
        assert all(portable_hash(x) % 4 == i for x in part)
    assert await ctx.parallelize([], 3).distinct().glom().collect() == [[], [], []]


async def test_distinct_of_empty_rdd(ctx):
    empty = ctx.empty_rdd()
    assert empty.distinct().get_num_partitions() == 0
    assert await empty.distinct().collect() == []
    assert await empty.distinct(3).glom().collect() == [[], [], []]


async def test_intersection_matches_python(ctx):
    left = ctx.parallelize(DATA, 4)
    right = ctx.parallelize(OTHER, 9)
    result = left.intersection(right)
    assert result.get_num_partitions() == 4 + 9  # like PySpark: both inputs' partitions
    out = await result.collect()
    assert len(out) == len(set(out))
    assert set(out) == set(DATA) & set(OTHER)
    assert _sorted(await left.intersection(left).collect()) == _sorted(set(DATA))
    assert await left.intersection(ctx.parallelize([], 2)).collect() == []
    assert await left.intersection(ctx.empty_rdd()).collect() == []
    assert await ctx.empty_rdd().intersection(ctx.empty_rdd()).collect() == []


async def test_subtract_keeps_duplicates_like_pyspark(ctx):
    left = ctx.parallelize(DATA, 4)
    right = ctx.parallelize(OTHER, 3)
    result = left.subtract(right)
    assert result.get_num_partitions() == 4 + 3
    removed = set(OTHER)
    assert Counter(await result.collect()) == Counter(x for x in DATA if x not in removed)
    assert left.subtract(right, 2).get_num_partitions() == 2
    assert Counter(await left.subtract(ctx.empty_rdd()).collect()) == Counter(DATA)
    assert await left.subtract(left).collect() == []
    assert await ctx.parallelize([], 5).subtract(right).collect() == []
    parts = await left.subtract(right, 3).glom().collect()
    for i, part in enumerate(parts):
        assert all(portable_hash(x) % 3 == i for x in part)


async def test_operations_needing_hashable_records_raise_type_error(ctx):
    lists = ctx.parallelize([[1], [2], [1]], 2)
    fine = ctx.parallelize([1, 2], 2)
    with pytest.raises(TypeError, match=r"distinct\(\) records must be hashable.*list"):
        await lists.distinct().collect()
    with pytest.raises(TypeError, match=r"intersection\(\) records must be hashable"):
        await fine.intersection(lists).collect()
    with pytest.raises(TypeError, match=r"subtract\(\) records must be hashable"):
        await lists.subtract(fine).collect()
    with pytest.raises(TypeError, match=r"subtract\(\) records must be hashable"):
        await fine.subtract(lists).collect()


async def test_bad_partition_counts(ctx):
    rdd = ctx.parallelize([1, 2])
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="num_partitions"):
            rdd.coalesce(bad)
        with pytest.raises(ValueError, match="num_partitions"):
            rdd.repartition(bad)
    for bad in (0, -2, 2.0):
        with pytest.raises(ValueError, match="num_partitions"):
            rdd.distinct(bad)
        with pytest.raises(ValueError, match="num_partitions"):
            rdd.subtract(rdd, bad)


# -- cartesian and zip -----------------------------------------------------------------


async def test_cartesian_order_and_partitioning_like_pyspark(ctx):
    left_data, right_data = [1, None, [1], 1], ["x", "y", {"d": 0}]
    for n_left, n_right in ((1, 1), (2, 3), (6, 2)):  # 6 > 4 records: empty partitions
        left = ctx.parallelize(left_data, n_left)
        right = ctx.parallelize(right_data, n_right)
        product = left.cartesian(right)
        assert product.get_num_partitions() == n_left * n_right
        expected = [
            [(x, y) for x in a for y in b]
            for a in _slices(left_data, n_left)
            for b in _slices(right_data, n_right)
        ]
        assert await product.glom().collect() == expected
    rdd = ctx.parallelize(range(3), 2)
    assert await rdd.cartesian(rdd).collect() == [
        (0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (1, 1), (1, 2), (2, 1), (2, 2)
    ]
    empty = rdd.cartesian(ctx.empty_rdd())
    assert empty.get_num_partitions() == 0 and await empty.collect() == []
    assert await rdd.cartesian(ctx.parallelize([], 2)).count() == 0


async def test_cartesian_of_shuffled_and_cached_inputs(ctx):
    words = ctx.parallelize(["a", "b", "a", "c"], 3).distinct(2).cache()
    nums = ctx.parallelize(range(50), 4).map(lambda x: x % 5).distinct()
    out = await words.cartesian(nums).collect()
    assert sorted(out) == sorted(itertools.product("abc", range(5)))
    assert await words.cartesian(nums).count() == 15  # cached side reused


async def test_zip_pairs_records_and_keeps_unhashable_values(ctx):
    xs = [[i] for i in range(10)]
    a = ctx.parallelize(xs, 4)
    ys = list(range(100, 110))
    zipped = a.zip(ctx.parallelize(ys, 4))
    assert zipped.get_num_partitions() == 4
    assert await zipped.collect() == list(zip(xs, ys, strict=True))
    assert await zipped.glom().collect() == [
        list(zip(p, q, strict=True)) for p, q in zip(_slices(xs, 4), _slices(ys, 4), strict=True)
    ]
    # parallelize cuts a range (2, 3, 2, 3) unlike a list (2, 2, 2, 4), as in PySpark.
    with pytest.raises(ValueError, match="same number of elements in each partition"):
        await a.zip(ctx.parallelize(range(100, 110), 4)).collect()
    sparse = ctx.parallelize([1, 2], 5)
    assert await sparse.zip(sparse.map(str)).collect() == [(1, "1"), (2, "2")]
    assert await ctx.empty_rdd().zip(ctx.empty_rdd()).collect() == []


async def test_zip_mismatches(ctx):
    a = ctx.parallelize(range(10), 3)
    with pytest.raises(ValueError, match="same number of partitions"):
        a.zip(ctx.parallelize(range(10), 4))
    with pytest.raises(ValueError, match=r"partition 1 has more elements in the first RDD"):
        await a.zip(a.filter(lambda x: x != 4)).collect()
    with pytest.raises(ValueError, match=r"partition 0 has more elements in the second RDD"):
        await a.filter(lambda x: x != 0).zip(a).collect()

    def picky(x):
        if x == 5:
            raise ValueError("zip() argument 2 is mine")
        return x

    # A ValueError from user code is not mistaken for a length mismatch.
    with pytest.raises(ValueError, match="is mine"):
        await a.zip(a.map(picky)).collect()


# -- indices ---------------------------------------------------------------------------


async def test_zip_with_index_pyspark_example_and_partitioning(ctx):
    rdd = ctx.parallelize(["a", "b", "c", "d"], 3)
    indexed = rdd.zip_with_index()
    assert await indexed.collect() == [("a", 0), ("b", 1), ("c", 2), ("d", 3)]
    assert await indexed.glom().collect() == [[("a", 0)], [("b", 1)], [("c", 2), ("d", 3)]]
    assert indexed.get_num_partitions() == 3 and indexed.partitioner is None
    assert await indexed.count() == 4  # the count stage is reused by a second job


async def test_zip_with_index_empty_partitions_unhashable_and_shuffled_input(ctx):
    data = [[x] for x in "abcde"]
    for slices in (1, 2, 5, 12):
        out = await ctx.parallelize(data, slices).zip_with_index().glom().collect()
        counter = itertools.count()
        assert out == [[(x, next(counter)) for x in part] for part in _slices(data, slices)]
    one = ctx.parallelize(range(5), 1).zip_with_index()
    assert len(one.deps) == 1  # a single partition needs no counting stage
    assert await one.collect() == [(x, x) for x in range(5)]
    assert await ctx.empty_rdd().zip_with_index().collect() == []
    shuffled = ctx.parallelize(range(40), 4).map(lambda x: (x % 7, x)).reduce_by_key(max)
    parts = await shuffled.glom().collect()
    flat = [x for part in parts for x in part]
    assert await shuffled.zip_with_index().collect() == [(x, i) for i, x in enumerate(flat)]
    big = ctx.parallelize(range(3000), 7).filter(lambda x: x % 3).zip_with_index()
    assert await big.map(operator.itemgetter(1)).collect() == list(range(2000))


async def test_zip_with_unique_id(ctx):
    rdd = ctx.parallelize(["a", "b", "c", "d", "e"], 3)
    assert await rdd.zip_with_unique_id().collect() == [
        ("a", 0), ("b", 1), ("c", 4), ("d", 2), ("e", 5)
    ]
    data = [None, [1], None, "x"]
    out = await ctx.parallelize(data, 6).zip_with_unique_id().glom().collect()
    slices = _slices(data, 6)
    assert out == [[(x, i * 6 + k) for i, x in enumerate(p)] for k, p in enumerate(slices)]
    ids = await ctx.parallelize(range(500), 7).zip_with_unique_id().values().collect()
    assert len(set(ids)) == 500


# -- coalesce and repartition ---------------------------------------------------------


async def test_coalesce_groups_consecutive_partitions(ctx):
    rdd = ctx.parallelize([1, 2, 3, 4, 5], 3)
    assert await rdd.coalesce(1).glom().collect() == [[1, 2, 3, 4, 5]]
    assert await rdd.coalesce(2).glom().collect() == [[1], [2, 3, 4, 5]]
    assert await rdd.coalesce(3).glom().collect() == [[1], [2, 3], [4, 5]]
    assert rdd.coalesce(10).get_num_partitions() == 3  # never more without a shuffle
    data = [None, [0], "a", None]
    for parents, target in ((7, 3), (10, 4), (5, 5), (9, 2)):
        slices = _slices(data, parents)
        expected = [
            [x for s in slices[i * parents // target : (i + 1) * parents // target] for x in s]
            for i in range(target)
        ]
        out = await ctx.parallelize(data, parents).coalesce(target).glom().collect()
        assert out == expected, (parents, target)
    assert ctx.empty_rdd().coalesce(3).get_num_partitions() == 0
    pairs = ctx.parallelize([(1, 2)]).partition_by(2)
    assert pairs.coalesce(1).partitioner is None


async def test_coalesce_with_shuffle_and_repartition_balance_records(ctx):
    data = [(i % 5, None if i % 3 else [i]) for i in range(103)]
    rdd = ctx.parallelize(data, 4)
    for n in (1, 3, 4, 11):
        parts = await rdd.coalesce(n, shuffle=True).glom().collect()
        assert len(parts) == n
        assert _sorted(x for p in parts for x in p) == _sorted(data)
        # Each of the 4 partitions deals its records round-robin: sizes differ by <= 4.
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 4, sizes
    one_source = await ctx.parallelize(range(100), 1).repartition(7).glom().collect()
    assert sorted(len(p) for p in one_source) == [14, 14, 14, 14, 14, 15, 15]
    again = await ctx.parallelize(range(100), 1).repartition(7).glom().collect()
    assert [sorted(p) for p in again] == [sorted(p) for p in one_source]  # deterministic
    assert await ctx.empty_rdd().repartition(3).glom().collect() == [[], [], []]
    assert await ctx.parallelize([], 4).repartition(2).glom().collect() == [[], []]


# -- empty RDDs ---------------------------------------------------------------------------


async def test_actions_on_empty_rdd(ctx):
    empty = ctx.empty_rdd()
    assert empty.get_num_partitions() == 0
    assert await empty.collect() == []
    assert await empty.count() == 0
    assert await empty.sum() == 0
    assert await empty.take(3) == []
    assert await empty.glom().collect() == []
    assert await empty.map(lambda x: x + 1).collect() == []
    assert await empty.fold(0, operator.add) == 0
    with pytest.raises(ValueError, match="empty RDD"):
        await empty.reduce(operator.add)
    with pytest.raises(ValueError, match="empty"):
        await empty.first()
    assert [x async for x in empty] == []


async def test_is_empty(ctx):
    assert await ctx.empty_rdd().is_empty()
    assert await ctx.parallelize([], 4).is_empty()
    assert await ctx.parallelize(range(100), 10).filter(lambda x: x > 1000).is_empty()
    assert not await ctx.parallelize([None], 1).is_empty()
    late = ctx.parallelize(range(60), 30).filter(lambda x: x == 59)  # only the last partition
    assert not await late.is_empty()


# -- pipe ---------------------------------------------------------------------------------


async def test_pipe_cat_tr_and_grep(ctx):
    data = ["one", "", "two words", 3, None, [1, "x"], "trailing\n"]
    expected = ["one", "", "two words", "3", "None", "[1, 'x']", "trailing"]
    assert await ctx.parallelize(data, 3).pipe("cat").collect() == expected
    rdd = ctx.parallelize(data, 10)  # with empty partitions
    assert await rdd.pipe("cat").glom().collect() == [
        [str(x).rstrip("\n") for x in p] for p in _slices(data, 10)
    ]
    assert await rdd.pipe(["tr", "a-z", "A-Z"]).collect() == [s.upper() for s in expected]
    assert await rdd.pipe("grep -v o").collect() == [s for s in expected if "o" not in s]
    assert await rdd.pipe("grep nothing-matches").collect() == []  # grep exits 1: ignored
    assert await ctx.empty_rdd().pipe("cat").collect() == []


async def test_pipe_exit_codes(ctx):
    rdd = ctx.parallelize(["a", "b"], 2)
    assert await rdd.pipe(["sh", "-c", "cat; exit 3"]).collect() == ["a", "b"]
    with pytest.raises(RuntimeError, match=r"sh -c 'cat; exit 3'.* exited with code 3"):
        await rdd.pipe("sh -c 'cat; exit 3'", check_code=True).collect()
    with pytest.raises(RuntimeError, match=r"'grep zzz' exited with code 1"):
        await rdd.pipe("grep zzz", check_code=True).collect()
    assert await rdd.pipe("grep a", check_code=False).collect() == ["a"]
    with pytest.raises(FileNotFoundError):
        await rdd.pipe("no-such-command-for-aiospark-tests").collect()
    with pytest.raises(ValueError, match="needs a command"):
        rdd.pipe("   ")


async def test_pipe_env_volume_early_stop_and_upstream_errors(ctx):
    out = await ctx.parallelize(["x"], 1).pipe(
        ["sh", "-c", 'cat; echo "$AIOSPARK_PIPE_TEST"'], env={"AIOSPARK_PIPE_TEST": "hello"}
    ).collect()
    assert out == ["x", "hello"]
    # Much more data than a pipe buffer holds, both ways: the feeder thread must not deadlock.
    n = 200_000
    piped = ctx.parallelize(range(n), 2).pipe("cat").map(int)
    assert await piped.sum() == n * (n - 1) // 2
    # A command that stops reading early is not an error for the feeder.
    assert await ctx.parallelize(range(n), 1).pipe("head -n 2").collect() == ["0", "1"]
    # take() stops reading a partition early: the command is killed, the job finishes.
    assert await ctx.parallelize(range(n), 2).pipe("cat").take(3) == ["0", "1", "2"]
    python = [sys.executable, "-c", "import sys\nfor line in sys.stdin: print(line[-2::-1])"]
    assert await ctx.parallelize(["abc", "de"], 2).pipe(python).collect() == ["cba", "ed"]

    # User code before the pipe runs in the task's own thread: broadcasts and accumulators work.
    factor, seen = ctx.broadcast(10), ctx.accumulator(0)
    scaled = ctx.parallelize(range(6), 3).map(lambda x: (seen.add(1), x * factor.value)[1])
    assert await scaled.pipe("cat").collect() == [str(x * 10) for x in range(6)]
    assert seen.value == 6

    def bad(x):
        if x == 7:
            raise KeyError("upstream broke")
        return x

    with pytest.raises(KeyError, match="upstream broke"):
        await ctx.parallelize(range(10), 2).map(bad).pipe("cat").collect()


# -- preferred locations ---------------------------------------------------------------


class Located(ParallelCollection):
    """Split i prefers hosts ``common`` and ``h<i>``."""

    def preferred_locations(self, split):
        return ["common", f"h{split.index}"]


async def test_preferred_locations_come_from_parent_splits(ctx):
    located = RDD(ctx, Located(_slices(range(8), 4)))
    plain = ctx.parallelize(range(8), 4)

    def prefs(rdd):
        return [rdd.preferred_locations(s) for s in rdd.splits()]

    assert prefs(plain.union(located)) == [[]] * 4 + [["common", f"h{i}"] for i in range(4)]
    assert prefs(located.coalesce(2)) == [["common", "h0", "h1"], ["common", "h2", "h3"]]
    assert prefs(located.coalesce(1)) == [["common", "h0", "h1", "h2", "h3"]]
    assert prefs(located.cartesian(located.coalesce(1)))[1] == ["common", "h1", "h0", "h2", "h3"]
    assert prefs(located.zip(plain)) == [["common", f"h{i}"] for i in range(4)]
    assert prefs(located.zip(located.map(str)))[2] == ["common", "h2"]
    pairs = located.map(lambda x: (x, x)).partition_by(2)
    assert prefs(pairs.union(pairs)) == [[], []]  # shuffled: no preference
    # The scheduler's rule finds them through the new RDDs, and through narrow ancestors.
    assert preferred_locations(plain.union(located).map(str), 5, lambda *_: set()) == [
        "common", "h1"
    ]
    assert preferred_locations(located.zip_with_index(), 3, lambda *_: set()) == ["common", "h3"]
