"""A key hash that every process agrees on.

Python salts ``hash()`` of ``str`` and ``bytes`` per process (PYTHONHASHSEED),
so two workers would send the same word to different reducers.  ``portable_hash``
is deterministic across processes and machines for the built-in key types:

- ``None`` hashes to 0; ``bool``, ``int``, ``float``, ``complex``, ``Decimal``
  and ``Fraction`` use Python's own hash, which is not salted (so integer keys
  land where PySpark puts them);
- ``str`` hashes the CRC-32 of its UTF-8 bytes, ``bytes``/``bytearray``/
  ``memoryview`` the CRC-32 of the bytes;
- ``tuple`` and ``frozenset`` combine the portable hashes of their items;
- ``datetime``, ``date`` and ``time`` hash their ISO form;
- any other type falls back to ``hash()``.  Worker processes run with
  ``PYTHONHASHSEED=0``, so user classes whose ``__hash__`` is built from the
  fields' hashes agree across workers too.

>>> portable_hash(None), portable_hash(7), portable_hash(-3)
(0, 7, -3)
>>> portable_hash("spark") == portable_hash("spark") != portable_hash("sparks")
True
>>> portable_hash(("a", 1)) == portable_hash(("a", 1))
True
"""

from __future__ import annotations

import datetime as _dt
import sys
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zlib import crc32

_MASK = sys.maxsize


def _hash_str(key: str) -> int:
    return crc32(key.encode("utf-8", "surrogatepass"))


def _hash_tuple(key: tuple) -> int:
    acc = 0x345678
    for item in key:
        acc = ((acc ^ portable_hash(item)) * 1000003) & _MASK
    acc ^= len(key)
    return -2 if acc == -1 else acc


def _hash_frozenset(key: frozenset) -> int:
    acc = len(key)
    for item in key:
        acc ^= portable_hash(item)
    return acc


_BY_TYPE = {
    str: _hash_str,
    int: hash,
    bool: hash,
    float: hash,
    complex: hash,
    Decimal: hash,
    Fraction: hash,
    bytes: crc32,
    bytearray: crc32,
    memoryview: crc32,
    tuple: _hash_tuple,
    frozenset: _hash_frozenset,
    type(None): lambda _key: 0,
    _dt.datetime: lambda key: _hash_str(key.isoformat()),
    _dt.date: lambda key: _hash_str(key.isoformat()),
    _dt.time: lambda key: _hash_str(key.isoformat()),
}


def portable_hash(key: Any) -> int:
    """Hash ``key`` identically in every process (see the module docstring).

    Parameters
    ----------
    key : object
        The key; any hashable value.

    Returns
    -------
    int
        The hash, the same in every process and on every machine for the
        built-in types (for ``int`` keys, ``hash(key)``).

    Raises
    ------
    TypeError
        When ``key`` is unhashable, naming its type.

    See Also
    --------
    HashPartitioner : Places keys by this hash.

    Examples
    --------
    >>> portable_hash([1, 2])
    Traceback (most recent call last):
    ...
    TypeError: keys must be hashable: got a list ([1, 2])
    """
    fn = _BY_TYPE.get(type(key))
    if fn is not None:
        return fn(key)
    if isinstance(key, str):
        return _hash_str(key)
    if isinstance(key, tuple):
        return _hash_tuple(key)
    try:
        return hash(key)
    except TypeError:
        raise unhashable_key_error(key) from None


def unhashable_key_error(key: Any) -> TypeError:
    """The error for a key that cannot be hashed, naming its type and (briefly) its value.

    >>> unhashable_key_error({"a": 1})
    TypeError("keys must be hashable: got a dict ({'a': 1})")
    """
    text = repr(key)
    text = text if len(text) <= 60 else text[:57] + "..."
    return TypeError(f"keys must be hashable: got a {type(key).__name__} ({text})")


def hash_failure(key: Any) -> TypeError | None:
    """``unhashable_key_error(key)`` when ``key`` cannot be hashed, None when it can.

    For a ``TypeError`` caught mid-loop: was it the key, or the user's code?

    >>> hash_failure([1])
    TypeError('keys must be hashable: got a list ([1])')
    >>> hash_failure("fine") is None
    True
    """
    try:
        hash(key)
    except TypeError:
        return unhashable_key_error(key)
    return None


def named_hash_failure(exc: TypeError, what: str) -> TypeError | None:
    """``exc`` restated as "``what`` must be hashable" when it is Python's complaint
    about an unhashable value (the value itself unknown), else None.

    >>> named_hash_failure(TypeError("unhashable type: 'list'"), "distinct() records")
    TypeError("distinct() records must be hashable: unhashable type: 'list'")
    >>> named_hash_failure(TypeError("other"), "keys") is None
    True
    """
    if "unhashable" in str(exc):
        return TypeError(f"{what} must be hashable: {exc}")
    return None
