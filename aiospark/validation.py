"""Checks of the arguments users pass, with errors that name the argument and the value.

>>> positive_int(3, "num_partitions")
3
>>> positive_int(True, "num_partitions")
Traceback (most recent call last):
...
ValueError: num_partitions must be a positive int, got True
>>> non_negative_int(0, "batch_size")
0
"""

from __future__ import annotations

from typing import Any


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(value: Any, name: str) -> int:
    """``value`` when it is an int >= 1 (not a bool), else ``ValueError`` naming ``name``."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def non_negative_int(value: Any, name: str) -> int:
    """``value`` when it is an int >= 0 (not a bool), else ``ValueError`` naming ``name``."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value
