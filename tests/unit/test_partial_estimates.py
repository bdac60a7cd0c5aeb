"""The approximate actions' statistics (aiospark.partial) and argument checks, without a cluster."""

from __future__ import annotations

import math
import pickle
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiospark import BoundedFloat
from aiospark.ops.approx import check_confidence, check_timeout
from aiospark.partial import (
    confidence_factor,
    count_estimate,
    mean_estimate,
    student_t_factor,
    sum_estimate,
)
from aiospark.statcounter import StatCounter

finite = st.floats(-1e6, 1e6, allow_nan=False)
confidences = st.floats(0.0, 0.999)


# -- BoundedFloat -------------------------------------------------------------------------


def test_bounded_float_is_its_value_with_the_interval_as_attributes():
    b = BoundedFloat(10, 0.9, 8, 12.5)
    assert repr(b) == "10.0" and str(b) == "10.0"  # PySpark's BoundedFloat prints as a float
    assert (b.confidence, b.low, b.high) == (0.9, 8.0, 12.5)
    assert b == 10.0 and b + 1 == 11.0 and type(b + 1) is float
    copy = pickle.loads(pickle.dumps(b))
    assert type(copy) is BoundedFloat and (copy, copy.confidence, copy.low, copy.high) == (
        10.0, 0.9, 8.0, 12.5)


# -- the quantiles ------------------------------------------------------------------------


@pytest.mark.parametrize(("confidence", "dof", "expected"), [
    # two-sided quantiles from the tables of Student's t
    (0.95, 1, 12.7062), (0.95, 2, 4.3027), (0.95, 3, 3.1824), (0.95, 4, 2.7764),
    (0.95, 10, 2.2281), (0.95, 30, 2.0423), (0.95, 99, 1.9842), (0.99, 5, 4.0321),
    (0.90, 7, 1.8946), (0.50, 1, 1.0), (0.0, 6, 0.0),
])
def test_student_t_factor_matches_the_tables(confidence, dof, expected):
    assert student_t_factor(confidence, dof) == pytest.approx(expected, abs=1e-4)


def test_the_normal_stands_in_past_100_samples_and_confidence_1_is_unbounded():
    assert confidence_factor(0.95, 101) == pytest.approx(1.95996, abs=1e-5)
    assert confidence_factor(0.95, 100) == pytest.approx(student_t_factor(0.95, 99))
    assert confidence_factor(1.0, 5) == math.inf


@given(st.integers(1, 99), st.floats(0.01, 0.99))
def test_student_t_is_wider_than_the_normal_and_narrows_with_more_samples(dof, confidence):
    t = student_t_factor(confidence, dof)
    assert t >= confidence_factor(confidence, 101) - 1e-9
    assert student_t_factor(confidence, dof + 1) <= t + 1e-9


# -- sums and counts ----------------------------------------------------------------------


@given(st.lists(finite, max_size=30), confidences)
def test_every_partition_finished_gives_the_exact_sum(values, confidence):
    b = sum_estimate(values, len(values), confidence)
    assert b == b.low == b.high == math.fsum(values) and b.confidence == 1.0


def test_no_partition_finished_gives_zero_with_no_confidence():
    b = sum_estimate([], 4, 0.95)
    assert (b, b.confidence, b.low, b.high) == (0.0, 0.0, -math.inf, math.inf)
    assert count_estimate([], 4, 0.95) == 0


def test_one_partition_finished_gives_the_scaled_value_with_infinite_bounds():
    b = sum_estimate([7.0], 4, 0.95)
    assert (b, b.confidence, b.low, b.high) == (28.0, 0.95, -math.inf, math.inf)


@given(st.lists(finite, min_size=2, max_size=30), st.integers(1, 30), confidences)
def test_a_partial_sum_scales_the_finished_mean_to_all_partitions(values, missing, confidence):
    total = len(values) + missing
    b = sum_estimate(values, total, confidence)
    assert b == pytest.approx(math.fsum(values) / len(values) * total, rel=1e-9, abs=1e-6)
    assert b.low <= b <= b.high and b.confidence == confidence
    wider = sum_estimate(values, total, min(1.0, confidence + 0.0005))
    assert wider.low <= b.low + 1e-6 and wider.high >= b.high - 1e-6


def test_half_of_a_uniform_dataset_estimates_the_total_within_its_interval():
    # 10 partitions of 100 records each drawn uniformly from [0, 1): half finished.
    rng = random.Random(7)
    partitions = [[rng.random() for _ in range(100)] for _ in range(10)]
    truth = sum(map(sum, partitions))
    done = [math.fsum(p) for p in partitions[:5]]
    b = sum_estimate(done, 10, 0.95)
    assert b == pytest.approx(2 * math.fsum(done))
    assert b.low < truth < b.high and b.low < b < b.high
    # The count of equal partitions is estimated exactly from any of them.
    assert count_estimate([100] * 5, 10, 0.95) == 1000
    assert count_estimate([100, 120], 4, 0.95) == 440


def test_the_sum_interval_covers_the_truth_at_least_as_often_as_promised():
    # Partitions are iid; the finished ones a random half: Spark's interval is conservative.
    rng = random.Random(11)
    hits = 0
    trials = 400
    for _ in range(trials):
        sums = [rng.gauss(100.0, 15.0) for _ in range(20)]
        done = rng.sample(sums, 10)
        b = sum_estimate(done, 20, 0.9)
        hits += b.low <= math.fsum(sums) <= b.high
    assert hits / trials >= 0.9


def test_an_exact_count_stays_an_exact_int():
    big = 2**53 + 1  # not a float
    assert count_estimate([big, 1], 2, 0.95) == big + 1


# -- means --------------------------------------------------------------------------------


def test_mean_edge_cases_follow_spark():
    assert math.isnan(mean_estimate(StatCounter(), 3, 3, 0.95))  # empty RDD, all done
    none = mean_estimate(StatCounter(), 0, 3, 0.95)
    assert (none, none.confidence, none.low, none.high) == (0.0, 0.0, -math.inf, math.inf)
    one = mean_estimate(StatCounter([4.0]), 1, 3, 0.95)
    assert (one, one.confidence, one.low, one.high) == (4.0, 0.95, -math.inf, math.inf)
    same = mean_estimate(StatCounter([4.0, 4.0]), 1, 3, 1.0)
    assert same.low == same == same.high == 4.0  # no spread: no infinite times zero


@given(st.lists(finite, min_size=1, max_size=50), confidences)
def test_every_partition_finished_gives_the_exact_mean(values, confidence):
    b = mean_estimate(StatCounter(values), 4, 4, confidence)
    assert b == b.low == b.high == pytest.approx(math.fsum(values) / len(values), abs=1e-6)
    assert b.confidence == 1.0


def test_the_mean_interval_is_students_t_interval():
    b = mean_estimate(StatCounter([1, 2, 3, 4]), 2, 4, 0.95)
    half = 3.182446 * math.sqrt((5 / 3) / 4)
    assert (b.low, b.high) == (pytest.approx(2.5 - half, abs=1e-5), pytest.approx(2.5 + half,
                                                                                  abs=1e-5))


@pytest.mark.parametrize("n", [5, 30, 200])
def test_the_mean_interval_covers_the_truth_as_often_as_promised(n):
    rng = random.Random(n)
    trials = 1000
    hits = sum(
        b.low <= 10.0 <= b.high
        for b in (mean_estimate(StatCounter([rng.gauss(10.0, 3.0) for _ in range(n)]), 1, 2, 0.9)
                  for _ in range(trials))
    )
    assert 0.87 <= hits / trials <= 0.93


# -- argument checks ----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "error", "message"), [
    (-1, ValueError, "timeout must be >= 0 milliseconds, got -1"),
    (float("nan"), ValueError, "timeout must be >= 0 milliseconds, got nan"),
    ("10", TypeError, "timeout must be a number of milliseconds, got '10'"),
    (True, TypeError, "timeout must be a number of milliseconds, got True"),
])
def test_bad_timeouts_are_named(value, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        check_timeout(value)


@pytest.mark.parametrize(("value", "error"), [
    (-0.1, ValueError), (1.01, ValueError), (float("nan"), ValueError), (None, TypeError),
    ("0.9", TypeError),
])
def test_bad_confidences_are_named(value, error):
    with pytest.raises(error, match="confidence must be"):
        check_confidence(value)


def test_good_arguments_pass():
    assert check_timeout(0) == 0.0 and check_timeout(2.5) == 2.5
    assert check_confidence(0) == 0.0 and check_confidence(1) == 1.0
