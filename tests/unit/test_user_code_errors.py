"""StopIteration and BaseExceptions from user code, without a cluster.

The record-by-record transformations must behave as builtin ``map`` and
``filter`` do, except that a StopIteration from the user's function fails
instead of ending the records early; the driver must turn whatever a task
raised into an ``Exception``.
"""

from __future__ import annotations

import cloudpickle
import pytest

from aiospark.errors import RemoteTraceback, UserCodeError
from aiospark.mapped import map_records as _map_records
from aiospark.rdd import (
    _filter_records,
    _flat_map_value_records,
    _map_value_records,
)
from aiospark.scheduler.runner import _user_error

RECORDS = list(range(10))
PAIRS = [(x % 3, x) for x in RECORDS]


def stop_at_7(x):
    if x == 7:
        raise StopIteration("seven")
    return x


def test_generators_match_the_builtins_when_nothing_raises():
    assert list(_map_records(str, RECORDS)) == list(map(str, RECORDS))
    assert list(_filter_records(lambda x: x % 3, RECORDS)) == list(
        filter(lambda x: x % 3, RECORDS)
    )
    assert list(_map_value_records(str, PAIRS)) == [(k, str(v)) for k, v in PAIRS]
    assert list(_flat_map_value_records(lambda v: [v] * (v % 3), PAIRS)) == [
        (k, x) for k, v in PAIRS for x in [v] * (v % 3)
    ]


def test_builtin_map_would_truncate():
    """What the generators are for: builtin map stops silently at the StopIteration."""
    assert list(map(stop_at_7, RECORDS)) == list(range(7))


@pytest.mark.parametrize(
    "records",
    [
        lambda: _map_records(stop_at_7, RECORDS),
        lambda: _filter_records(stop_at_7, RECORDS),
        lambda: _map_value_records(stop_at_7, PAIRS),
        lambda: _flat_map_value_records(lambda v: [stop_at_7(v)], PAIRS),
    ],
    ids=["map", "filter", "map_values", "flat_map_values"],
)
def test_stop_iteration_from_the_function_fails_instead_of_truncating(records):
    with pytest.raises(UserCodeError, match="raised StopIteration: seven") as info:
        list(records())
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value.__cause__, StopIteration)


def test_stop_iteration_of_a_returned_iterator_still_ends_it():
    """flat_map_values: the iterable ``f`` returns may end with StopIteration, as usual."""
    assert list(_flat_map_value_records(lambda v: iter(range(v % 2)), PAIRS)) == [
        (k, 0) for k, v in PAIRS if v % 2
    ]


@pytest.mark.parametrize(
    "error", [StopIteration("x"), SystemExit(2), KeyboardInterrupt(), GeneratorExit()],
    ids=lambda e: type(e).__name__,
)
def test_driver_wraps_what_cannot_be_raised_as_itself(error):
    wrapped = _user_error(cloudpickle.dumps(error), "Traceback: the worker's")
    assert isinstance(wrapped, UserCodeError)
    assert type(error).__name__ in str(wrapped)
    original = wrapped.__cause__
    assert type(original) is type(error) and original.args == error.args
    assert isinstance(original.__cause__, RemoteTraceback)
    assert "the worker's" in original.__cause__.text


def test_driver_keeps_ordinary_exceptions_as_they_are():
    error = _user_error(cloudpickle.dumps(ValueError("v")), "tb")
    assert type(error) is ValueError and error.args == ("v",)
    assert isinstance(error.__cause__, RemoteTraceback)


def test_user_code_error_pickles():
    error = UserCodeError.wrapping(SystemExit(3))
    copy = cloudpickle.loads(cloudpickle.dumps(error))
    assert type(copy) is UserCodeError and str(copy) == str(error)
