"""User code raising StopIteration, SystemExit or KeyboardInterrupt in a task.

A StopIteration must fail the job with an error naming it, whatever operation
called the function: it must not end a partition early (builtin ``map`` and
``filter`` take it for the end of their input) nor hang the job (an asyncio
future cannot hold it).  A SystemExit or KeyboardInterrupt must reach the
driver as an ``Exception`` (a ``UserCodeError`` caused by it), never as itself:
raised inside an asyncio task it would escape the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import operator
from collections.abc import Callable
from typing import Any

import pytest

from aiospark.errors import UserCodeError
from tests.conftest import pid_alive

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

DATA = list(range(20))
#: (x % 3, x): key 1 holds 13 and occurs in several of the 4 partitions.
PAIRS = [(x % 3, x) for x in DATA]
#: (x, -x): 13 is a key.
BY_X = [(x, -x) for x in DATA]
TRIGGER = 13


def armed(x: Any) -> None:
    """The hook of the failing runs: user code that lets a StopIteration out at 13."""
    if x == TRIGGER:
        raise StopIteration(f"no more after {x}")


def disarmed(x: Any) -> None:
    """The hook of the control runs."""


# User functions, each calling ``hook`` on what it is given first.


def double(hook: Callable, x: int) -> int:
    hook(x)
    return 2 * x


def even(hook: Callable, x: int) -> bool:
    hook(x)
    return x % 2 == 0


def mod5(hook: Callable, x: int) -> int:
    hook(x)
    return x % 5


def keyed(hook: Callable, x: int) -> tuple[int, int]:
    hook(x)
    return (x % 3, x)


def twice(hook: Callable, x: int) -> list[int]:
    hook(x)
    return [x, x]


def plus(hook: Callable, a: int, b: int) -> int:
    hook(b)
    return a + b


def doubled_list(hook: Callable, it: Any) -> list[int]:
    return [double(hook, x) for x in it]


def doubled_gen(hook: Callable, it: Any) -> Any:
    for x in it:
        yield double(hook, x)


def merge_lists(hook: Callable, a: list, b: list) -> list:
    for x in a + b:
        hook(x)
    return a + b


async def double_async(hook: Callable, x: int) -> int:
    await asyncio.sleep(0)
    return double(hook, x)


def summed(pairs: list[tuple]) -> list[tuple]:
    out: dict = {}
    for k, v in pairs:
        out[k] = out.get(k, 0) + v
    return sorted(out.items())


def grouped(pairs: list[tuple]) -> list[tuple]:
    out: dict = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return sorted((k, sorted(vs)) for k, vs in out.items())


async def _accumulated(ctx, action: Callable) -> int:
    """Run a foreach-style ``action(acc)``; the sum its user function added."""
    acc = ctx.accumulator(0)
    await action(acc)
    return acc.value


def _add(hook: Callable, acc: Any, x: int) -> None:
    hook(x)
    acc.add(x)


def _add_all(hook: Callable, acc: Any, it: Any) -> None:
    for x in it:
        _add(hook, acc, x)


def _lists(ctx, hook):
    """PAIRS' values listed by key; only merge_combiners (the reduce side) calls ``hook``."""
    return ctx.parallelize(PAIRS, 4).combine_by_key(
        lambda v: [v], _list_append, functools.partial(merge_lists, hook)
    )


def _list_append(c: list, v: int) -> list:
    return [*c, v]


def _sorted_lists(result: list[tuple]) -> list[tuple]:
    return sorted((k, sorted(vs)) for k, vs in result)


async def _sorted(result: Any) -> list:
    return sorted(await result)


async def _items(result: Any) -> list:
    return sorted((await result).items())


async def _lists_sorted(result: Any) -> list:
    return _sorted_lists(await result)


#: name -> (run on the cluster with a hook, the same computed by plain Python)
CASES: dict[str, tuple[Callable, Any]] = {
    "map": (
        lambda ctx, h: ctx.parallelize(DATA, 4).map(functools.partial(double, h)).collect(),
        [2 * x for x in DATA],
    ),
    # the map side of reduce_by_key calls map's function in its own loop (writer._merge_mapped)
    "map then reduce_by_key": (
        lambda ctx, h: _items(ctx.parallelize(DATA, 4).map(functools.partial(keyed, h))
                              .reduce_by_key(operator.add).collect_as_map()),
        summed(PAIRS),
    ),
    "filter": (
        lambda ctx, h: ctx.parallelize(DATA, 4).filter(functools.partial(even, h)).collect(),
        [x for x in DATA if x % 2 == 0],
    ),
    "flat_map": (
        lambda ctx, h: ctx.parallelize(DATA, 4).flat_map(functools.partial(twice, h)).collect(),
        [x for x in DATA for _ in range(2)],
    ),
    "map_partitions": (
        lambda ctx, h: ctx.parallelize(DATA, 4)
        .map_partitions(functools.partial(doubled_list, h))
        .collect(),
        [2 * x for x in DATA],
    ),
    "map_partitions (generator)": (
        lambda ctx, h: ctx.parallelize(DATA, 4)
        .map_partitions(functools.partial(doubled_gen, h))
        .collect(),
        [2 * x for x in DATA],
    ),
    "map_partitions_with_index": (
        lambda ctx, h: ctx.parallelize(DATA, 4)
        .map_partitions_with_index(lambda _, it: doubled_list(h, it))
        .collect(),
        [2 * x for x in DATA],
    ),
    "map_async": (
        lambda ctx, h: ctx.parallelize(DATA, 4)
        .map_async(functools.partial(double_async, h))
        .collect(),
        [2 * x for x in DATA],
    ),
    "key_by": (
        lambda ctx, h: ctx.parallelize(DATA, 4).key_by(functools.partial(mod5, h)).collect(),
        [(x % 5, x) for x in DATA],
    ),
    "map_values": (
        lambda ctx, h: ctx.parallelize(PAIRS, 4)
        .map_values(functools.partial(double, h))
        .collect(),
        [(k, 2 * v) for k, v in PAIRS],
    ),
    "flat_map_values": (
        lambda ctx, h: ctx.parallelize(PAIRS, 4)
        .flat_map_values(functools.partial(twice, h))
        .collect(),
        [(k, v) for k, v in PAIRS for _ in range(2)],
    ),
    "group_by": (
        lambda ctx, h: _lists_sorted(
            ctx.parallelize(DATA, 4).group_by(functools.partial(mod5, h)).collect()
        ),
        grouped([(x % 5, x) for x in DATA]),
    ),
    "sort_by": (
        lambda ctx, h: ctx.parallelize(DATA, 4)
        .sort_by(functools.partial(mod5, h))
        .collect(),
        sorted(DATA, key=lambda x: x % 5),
    ),
    "sort_by_key (key_func)": (
        lambda ctx, h: ctx.parallelize(BY_X, 4)
        .sort_by_key(key_func=functools.partial(mod5, h))
        .collect(),
        sorted(BY_X, key=lambda kv: kv[0] % 5),
    ),
    "partition_by (partition_func)": (
        lambda ctx, h: ctx.parallelize(BY_X, 4)
        .partition_by(2, functools.partial(mod5, h))
        .glom()
        .collect(),
        [[kv for kv in BY_X if kv[0] % 5 % 2 == i] for i in range(2)],
    ),
    "repartition_and_sort_within_partitions": (
        lambda ctx, h: ctx.parallelize(BY_X, 4)
        .repartition_and_sort_within_partitions(2, key_func=functools.partial(mod5, h))
        .glom()
        .collect(),
        [
            sorted((kv for kv in BY_X if kv[0] % 2 == i), key=lambda kv: kv[0] % 5)
            for i in range(2)
        ],
    ),
    "foreach": (
        lambda ctx, h: _accumulated(
            ctx, lambda acc: ctx.parallelize(DATA, 4).foreach(functools.partial(_add, h, acc))
        ),
        sum(DATA),
    ),
    "foreach_partition": (
        lambda ctx, h: _accumulated(
            ctx,
            lambda acc: ctx.parallelize(DATA, 4).foreach_partition(
                functools.partial(_add_all, h, acc)
            ),
        ),
        sum(DATA),
    ),
    "reduce": (
        lambda ctx, h: ctx.parallelize(DATA, 4).reduce(functools.partial(plus, h)),
        sum(DATA),
    ),
    "fold": (
        lambda ctx, h: ctx.parallelize(DATA, 4).fold(0, functools.partial(plus, h)),
        sum(DATA),
    ),
    "aggregate": (
        lambda ctx, h: ctx.parallelize(DATA, 4).aggregate(
            0, functools.partial(plus, h), operator.add
        ),
        sum(DATA),
    ),
    "tree_aggregate": (
        lambda ctx, h: ctx.parallelize(DATA, 4).tree_aggregate(
            0, functools.partial(plus, h), operator.add
        ),
        sum(DATA),
    ),
    "tree_reduce": (
        lambda ctx, h: ctx.parallelize(DATA, 4).tree_reduce(functools.partial(plus, h)),
        sum(DATA),
    ),
    "reduce_by_key": (
        lambda ctx, h: _sorted(
            ctx.parallelize(PAIRS, 4).reduce_by_key(functools.partial(plus, h)).collect()
        ),
        summed(PAIRS),
    ),
    "reduce_by_key (partitioned: no shuffle)": (
        lambda ctx, h: _sorted(
            ctx.parallelize(PAIRS, 4)
            .partition_by(2)
            .reduce_by_key(functools.partial(plus, h), 2)
            .collect()
        ),
        summed(PAIRS),
    ),
    "reduce_by_key_locally": (
        lambda ctx, h: _items(
            ctx.parallelize(PAIRS, 4).reduce_by_key_locally(functools.partial(plus, h))
        ),
        summed(PAIRS),
    ),
    "combine_by_key (create_combiner)": (  # one record per partition: create sees 13
        lambda ctx, h: _sorted(
            ctx.parallelize(PAIRS, len(PAIRS))
            .combine_by_key(lambda v: double(h, v), operator.add, operator.add)
            .collect()
        ),
        summed([(k, 2 * v) for k, v in PAIRS]),
    ),
    "combine_by_key (merge_combiners: reduce side)": (
        lambda ctx, h: _lists_sorted(_lists(ctx, h).collect()),
        grouped(PAIRS),
    ),
    "aggregate_by_key": (
        lambda ctx, h: _sorted(
            ctx.parallelize(PAIRS, 4)
            .aggregate_by_key(0, functools.partial(plus, h), operator.add)
            .collect()
        ),
        summed(PAIRS),
    ),
    "fold_by_key": (
        lambda ctx, h: _sorted(
            ctx.parallelize(PAIRS, 4).fold_by_key(0, functools.partial(plus, h)).collect()
        ),
        summed(PAIRS),
    ),
    "cartesian (reduce side of the right input)": (
        lambda ctx, h: ctx.parallelize([0, 1], 2).cartesian(_lists(ctx, h)).count(),
        2 * len({k for k, _ in PAIRS}),
    ),
    "top (key)": (
        lambda ctx, h: ctx.parallelize(DATA, 4).top(3, key=functools.partial(mod5, h)),
        sorted(DATA, key=lambda x: x % 5, reverse=True)[:3],
    ),
    "take_ordered (key)": (
        lambda ctx, h: ctx.parallelize(DATA, 4).take_ordered(3, key=functools.partial(mod5, h)),
        sorted(DATA, key=lambda x: x % 5)[:3],
    ),
    "max (key)": (
        lambda ctx, h: ctx.parallelize(DATA, 4).max(key=functools.partial(mod5, h)),
        max(DATA, key=lambda x: x % 5),
    ),
    "min (key)": (
        lambda ctx, h: ctx.parallelize(DATA, 4).min(key=functools.partial(mod5, h)),
        min(DATA, key=lambda x: x % 5),
    ),
}


def _chain_text(exc: BaseException | None) -> str:
    """Every message in an exception's cause/context chain (remote tracebacks included)."""
    parts = []
    while exc is not None:
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


@pytest.mark.parametrize("name", list(CASES))
async def test_stop_iteration_from_user_code_fails_the_job_naming_it(ctx, name):
    run, expected = CASES[name]
    assert await run(ctx, disarmed) == expected  # the control: same as plain Python
    async with asyncio.timeout(60):  # it used to hang forever
        with pytest.raises(RuntimeError, match="StopIteration") as info:
            await run(ctx, armed)
    assert not isinstance(info.value, StopIteration)
    # The user's own StopIteration, with its message, is in the chain.
    assert "no more after 13" in _chain_text(info.value)


def _workers(ctx) -> dict[str, int]:
    return {worker_id: link.info.pid for worker_id, link in ctx._scheduler.links.items()}


def _raise(error: BaseException, x: int) -> int:
    if x == TRIGGER:
        raise error
    return x


async def _in_gather(job: Any) -> Any:
    return (await asyncio.gather(job))[0]


async def _in_wait_for(job: Any) -> Any:
    return await asyncio.wait_for(job, 60)


@pytest.mark.parametrize("error_type", [SystemExit, KeyboardInterrupt, GeneratorExit])
@pytest.mark.parametrize("wrap", [_in_gather, _in_wait_for], ids=["gather", "wait_for"])
async def test_base_exception_in_a_task_arrives_as_an_exception(ctx, error_type, wrap):
    workers = _workers(ctx)
    assert len(workers) == 2
    error = error_type(3) if error_type is SystemExit else error_type()
    job = ctx.parallelize(DATA, 4).map(functools.partial(_raise, error)).collect()
    caught: Exception | None = None
    try:
        await wrap(job)
    except Exception as exc:  # a BaseException would fly past this, and out of the loop
        caught = exc
    assert isinstance(caught, UserCodeError)
    assert error_type.__name__ in str(caught)
    assert type(caught.__cause__) is error_type
    assert "_raise" in _chain_text(caught)  # the worker's traceback is still attached
    # The context, and both workers (the same processes), are still usable.
    assert await wrap(ctx.parallelize(DATA, 4).map(lambda x: x + 1).sum()) == sum(DATA) + 20
    assert _workers(ctx) == workers
    assert all(pid_alive(pid) for pid in workers.values())


async def test_system_exit_in_foreach_leaves_other_jobs_in_the_same_gather_intact(ctx):
    good = ctx.parallelize(DATA, 4).map(lambda x: x * 3).collect()
    bad = ctx.parallelize(DATA, 4).foreach(functools.partial(_raise, SystemExit("bye")))
    results = await asyncio.gather(good, bad, return_exceptions=True)
    assert results[0] == [3 * x for x in DATA]
    assert isinstance(results[1], UserCodeError)
    assert "SystemExit: bye" in str(results[1])
    assert await ctx.parallelize(DATA, 4).collect() == DATA


def _merge_by_lookup(a: Any, b: Any) -> Any:
    """A merge function whose lookup fails with a KeyError on the second value of a key."""
    return {0: a}[b]


@pytest.mark.parametrize("side", ["map", "reduce"])
async def test_a_key_error_raised_by_the_merge_function_fails_the_job(ctx, side):
    # The combining loops catch KeyError for a key seen first; one raised by the
    # user's function must not be taken for that and silently keep the last value.
    parts = 1 if side == "map" else 4  # 1 partition: the map side merges; 4: the reduce side
    pairs = ctx.parallelize([("k", 5), ("k", 7)] if side == "map" else
                            [("k", 5), ("j", 1), ("k", 7), ("j", 2)], parts)
    with pytest.raises(KeyError, match="7"):  # the user's error, as raised in the task
        await pairs.reduce_by_key(_merge_by_lookup, 2).collect()
