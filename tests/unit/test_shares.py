"""The master's split of the cluster's cores between applications (``master.shares``)."""

from __future__ import annotations

import pytest

from aiospark.master.shares import split_cores


@pytest.mark.parametrize(("total", "apps", "expected"), [
    (2, [("a", True), ("b", True)], {"a": 1, "b": 1}),
    (7, [("a", True), ("b", True), ("c", True)], {"a": 3, "b": 2, "c": 2}),  # oldest first
    (2, [("a", True), ("b", True), ("c", True)], {"a": 1, "b": 1, "c": 1}),  # at least 1
    (6, [("a", False), ("b", True)], {"a": 3, "b": 6}),  # idle: takes nothing from b
    (6, [("a", False), ("b", False)], {"a": 6, "b": 6}),
    (6, [], {}),
])
def test_busy_applications_split_the_cores_and_idle_ones_take_nothing(total, apps, expected):
    assert split_cores(total, apps) == expected


def test_an_application_ending_gives_its_cores_back():
    both = split_cores(4, [("a", True), ("b", True)])
    assert both == {"a": 2, "b": 2}
    assert split_cores(4, [("b", True)]) == {"b": 4}
    assert split_cores(4, [("a", False), ("b", True)])["b"] == 4
