"""Mistakes a newcomer makes, each answered by an error that names the problem and the value
(issue 16, item 9)."""

from __future__ import annotations

import operator
import pathlib
import re

import pytest

from aiospark.errors import RemoteTraceback

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


# -- remote tracebacks show the user's file and line ------------------------------------------


def _fails_on_three(x):
    if x == 3:
        raise ValueError(f"no threes here: {x}")  # the line the traceback must show
    return x


async def test_remote_traceback_names_the_users_file_and_source_line(ctx):
    local_name = "from a closure"  # a closure: shipped by value, like a lambda or a REPL function

    def nested(x):
        if x == 3:
            raise KeyError(f"{local_name} {x}")  # nested source line
        return x

    cases = [
        (_fails_on_three, ValueError, "raise ValueError(f\"no threes here: {x}\")"),
        (nested, KeyError, "raise KeyError(f\"{local_name} {x}\")"),
        (lambda x: 1 // (x - 3), ZeroDivisionError, "(lambda x: 1 // (x - 3), ZeroDivisionError"),
    ]
    for func, error, source_line in cases:
        with pytest.raises(error) as info:
            await ctx.parallelize(range(6), 2).map(func).collect()
        cause = info.value.__cause__
        assert isinstance(cause, RemoteTraceback)
        assert "<dynamic-code>" not in cause.text, cause.text
        assert f'File "{__file__}", line ' in cause.text, cause.text
        assert source_line in cause.text, cause.text


# -- for x in rdd --------------------------------------------------------------------------------


async def test_iterating_an_rdd_with_for_says_to_use_async_for(ctx):
    rdd = ctx.parallelize(range(3))
    with pytest.raises(TypeError, match=r"async for.*await rdd\.collect\(\)"):
        for _ in rdd:
            pass
    with pytest.raises(TypeError, match="async for"):
        list(rdd)
    assert [x async for x in rdd] == [0, 1, 2]


# -- the paths of sources ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "source", ["text_file", "pickle_file", "whole_text_files", "binary_files"]
)
async def test_a_source_given_a_path_of_the_wrong_type_names_it(ctx, source):
    read = getattr(ctx, source)
    with pytest.raises(TypeError, match=rf"{source}: path must be a str .* got 123 \(an int\)"):
        read(123)
    with pytest.raises(TypeError, match=rf"{source}: path must be .* got None"):
        read(None)
    with pytest.raises(TypeError, match=r"path must be .* got a list holding 7 \(an int\)"):
        read(["/tmp", 7])


@pytest.mark.parametrize("method", ["add_file", "add_py_file", "set_checkpoint_dir"])
async def test_a_file_path_of_the_wrong_type_names_it(ctx, method):
    with pytest.raises(TypeError, match=rf"{method}: path must be a str .* got 123 \(an int\)"):
        getattr(ctx, method)(123)


@pytest.mark.parametrize("method", ["save_as_text_file", "save_as_pickle_file"])
async def test_a_save_path_of_the_wrong_type_names_it(ctx, method):
    with pytest.raises(TypeError, match=rf"{method}: path must be a str .* got 123 \(an int\)"):
        await getattr(ctx.parallelize([1]), method)(123)


async def test_sources_take_path_objects(ctx, tmp_path):
    (tmp_path / "lines.txt").write_text("one\ntwo\n")
    assert await ctx.text_file(tmp_path / "lines.txt").collect() == ["one", "two"]
    assert await ctx.text_file([pathlib.Path(tmp_path)]).collect() == ["one", "two"]
    assert await ctx.binary_files(tmp_path).map(lambda kv: kv[1]).collect() == [b"one\ntwo\n"]


# -- pair operations on records that are not pairs ---------------------------------------------


WORDS = ["to be", "or not", "to be", "x"]
#: Operations that read records one by one (no batch to show the record from).
STREAMING = {"map_values", "flat_map_values", "collect_as_map", "lookup", "reduce_by_key_locally"}


@pytest.mark.parametrize(
    ("op", "run"),
    [
        ("reduce_by_key", lambda rdd: rdd.reduce_by_key(operator.add).collect()),
        ("reduce_by_key", lambda rdd: rdd.reduce_by_key(operator.add, 1).collect()),
        ("combine_by_key", lambda rdd: rdd.combine_by_key(list, list.__add__, list.__add__)
         .collect()),
        ("group_by_key", lambda rdd: rdd.group_by_key().collect()),
        ("group_by_key", lambda rdd: rdd.group_by_key(1).collect()),
        ("fold_by_key", lambda rdd: rdd.fold_by_key(0, operator.add).collect()),
        ("aggregate_by_key", lambda rdd: rdd.aggregate_by_key(0, operator.add, operator.add)
         .collect()),
        ("join", lambda rdd: rdd.join(rdd).collect()),
        ("left_outer_join", lambda rdd: rdd.left_outer_join(rdd, 1).collect()),
        ("cogroup", lambda rdd: rdd.cogroup(rdd).collect()),
        ("map_values", lambda rdd: rdd.map_values(len).collect()),
        ("flat_map_values", lambda rdd: rdd.flat_map_values(list).collect()),
        ("collect_as_map", lambda rdd: rdd.collect_as_map()),
        ("lookup", lambda rdd: rdd.lookup("to")),
        ("reduce_by_key_locally", lambda rdd: rdd.reduce_by_key_locally(operator.add)),
    ],
)
async def test_pair_operations_on_strings_say_they_need_pairs(ctx, op, run):
    with pytest.raises(TypeError, match=rf"^{op} needs \(key, value\) pairs") as info:
        await run(ctx.parallelize(WORDS, 2))
    if op in STREAMING:  # no batch at hand: Python's words, not the record
        assert re.search("unpack|update sequence|index out of", str(info.value)), info.value
    else:  # the batch at hand shows the record itself
        assert "a record is a str: '" in str(info.value), info.value


@pytest.mark.parametrize(
    ("op", "run"),
    [
        ("join", lambda rdd: rdd.join(rdd).collect()),
        ("join", lambda rdd: rdd.join(rdd, 1).collect()),
        ("right_outer_join", lambda rdd: rdd.right_outer_join(rdd).collect()),
        ("full_outer_join", lambda rdd: rdd.full_outer_join(rdd).collect()),
        ("partition_by", lambda rdd: rdd.partition_by(3).collect()),
        ("reduce_by_key", lambda rdd: rdd.map(lambda x: x).reduce_by_key(operator.add).collect()),
        ("count_by_key", lambda rdd: rdd.count_by_key()),
        ("subtract_by_key", lambda rdd: rdd.subtract_by_key(rdd).collect()),
    ],
)
async def test_pair_operations_on_ints_name_the_record(ctx, op, run):
    with pytest.raises(TypeError, match=rf"{op} needs \(key, value\) pairs.*int"):
        await run(ctx.parallelize(range(10), 2))


async def test_the_record_shown_is_the_offending_one(ctx):
    records = [("a", 1), ("b", 2), "a long string record " * 10, ("c", 3)]
    with pytest.raises(TypeError) as info:
        await ctx.parallelize(records, 1).reduce_by_key(operator.add).collect()
    message = str(info.value)
    assert message.startswith("reduce_by_key needs (key, value) pairs"), message
    assert "a str: 'a long string record a long" in message and "..." in message, message
    assert len(message) < 300, message


def _first_of(value):
    first, _second = value  # the user's own unpacking: its error stays as it is
    return first


async def test_pair_errors_leave_user_errors_alone(ctx):
    def bad_merge(a, b):
        raise ValueError("too many values to unpack (expected 2)")  # the user's own

    with pytest.raises(ValueError, match="too many values to unpack"):
        await ctx.parallelize([("a", 1), ("a", 2)], 1).reduce_by_key(bad_merge).collect()
    with pytest.raises(TypeError, match="cannot unpack non-iterable int object"):
        await ctx.parallelize([("a", 1)]).map_values(_first_of).collect()
    # unhashable keys keep their own message
    with pytest.raises(TypeError, match="must be hashable"):
        await ctx.parallelize([([1], 1)], 1).reduce_by_key(operator.add).collect()


# -- negative counts -----------------------------------------------------------------------------


async def test_negative_counts_are_errors_naming_num(ctx):
    rdd = ctx.parallelize(range(10), 2)
    for action in (rdd.take, rdd.top, rdd.take_ordered):
        with pytest.raises(ValueError, match=r"num must be >= 0, got -1"):
            await action(-1)
        assert await action(0) == []
    with pytest.raises(ValueError, match=r"take_sample.*got -1"):
        await rdd.take_sample(False, -1)
    with pytest.raises(TypeError, match="take: num must be an int, got '3'"):
        await rdd.take("3")
    assert await rdd.take(3) == [0, 1, 2]
