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

import os
from collections.abc import Iterable
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


def check_partitions(partitions: Iterable[Any] | None, total: int) -> list[int] | None:
    """The partition indices a job runs on (None: all), each checked to be in ``range(total)``.

    >>> check_partitions(range(2), 3), check_partitions(None, 3)
    ([0, 1], None)
    >>> check_partitions([3], 3)
    Traceback (most recent call last):
    ...
    ValueError: partition 3 is out of range: the RDD has 3 partitions
    """
    if partitions is None:
        return None
    wanted = list(partitions)
    for index in wanted:
        if not _is_int(index) or not 0 <= index < total:
            raise ValueError(f"partition {index!r} is out of range: the RDD has {total} partitions")
    return wanted


def check_count(value: Any, what: str, name: str = "num") -> int:
    """``value`` when it is an int >= 0 (not a bool): how many records an action returns.

    A ``TypeError`` for a value that is not an int, a ``ValueError`` for a
    negative one, each naming ``what`` (the operation) and ``name``:

    >>> check_count(-1, "take")
    Traceback (most recent call last):
    ...
    ValueError: take: num must be >= 0, got -1
    >>> check_count("3", "top")
    Traceback (most recent call last):
    ...
    TypeError: top: num must be an int, got '3' (a str)
    """
    if not _is_int(value):
        raise TypeError(f"{what}: {name} must be an int, got {value!r} (a {type(value).__name__})")
    if value < 0:
        raise ValueError(f"{what}: {name} must be >= 0, got {value!r}")
    return value


def _an(type_name: str) -> str:
    return f"an {type_name}" if type_name[:1] in "aeiouAEIOU" else f"a {type_name}"


_PATH_TYPES = "a str (a path or URL) or an os.PathLike"


def check_path(value: Any, what: str, name: str = "path") -> str:
    """``value`` as a str when it is one path: a str or an ``os.PathLike``.

    Anything else is a ``TypeError`` naming ``what`` (the operation), ``name``
    and the value:

    >>> from pathlib import PurePosixPath
    >>> check_path(PurePosixPath("/data/a.txt"), "add_file")
    '/data/a.txt'
    >>> check_path(123, "add_file")
    Traceback (most recent call last):
    ...
    TypeError: add_file: path must be a str (a path or URL) or an os.PathLike, got 123 (an int)
    """
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return str(os.fspath(value))
    raise TypeError(
        f"{what}: {name} must be {_PATH_TYPES}, got {value!r} ({_an(type(value).__name__)})"
    )


def check_paths(value: Any, what: str, name: str = "path") -> str | list[str]:
    """``value`` when it names input paths: a str (maybe comma-separated), an
    ``os.PathLike``, or a list (any iterable) of them; PathLikes become str.

    >>> check_paths(["a.txt", "b.txt"], "text_file")
    ['a.txt', 'b.txt']
    >>> check_paths(123, "text_file")
    Traceback (most recent call last):
    ...
    TypeError: text_file: path must be a str (a path or URL) or an os.PathLike, or a list of them, got 123 (an int)
    >>> check_paths(["a.txt", 7], "text_file")
    Traceback (most recent call last):
    ...
    TypeError: text_file: path must be a str (a path or URL) or an os.PathLike, or a list of them, got a list holding 7 (an int)
    """  # noqa: E501
    accepted = f"{_PATH_TYPES}, or a list of them"
    if isinstance(value, str | os.PathLike):
        return check_path(value, what, name)
    if not isinstance(value, Iterable) or isinstance(value, bytes | bytearray):
        raise TypeError(
            f"{what}: {name} must be {accepted}, got {value!r} ({_an(type(value).__name__)})"
        )
    items = list(value)
    for item in items:
        if not isinstance(item, str | os.PathLike):
            raise TypeError(
                f"{what}: {name} must be {accepted}, got {_an(type(value).__name__)} holding "
                f"{item!r} ({_an(type(item).__name__)})"
            )
    return [check_path(item, what, name) for item in items]
