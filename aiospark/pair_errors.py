"""Clear errors for records that a pair operation cannot read as ``(key, value)``.

The per-record loops of the pair operations unpack each record without a
check (``for key, value in records``, ``record[0]``), so a record that is not a
pair fails with Python's own words: ``too many values to unpack``,
``'int' object is not subscriptable``.  The loops catch that around the loop
(no cost per record) and ask :func:`pair_error` for an error naming the
operation and, when the loop's batch is at hand, the offending record:

>>> try:
...     for key, value in ["to be", "or"]:
...         pass
... except ValueError as exc:
...     print(pair_error("reduce_by_key", exc, ["to be", "or"]))
reduce_by_key needs (key, value) pairs, but a record is a str: 'to be' (make pairs first, e.g. rdd.map(lambda x: (x, 1)) or rdd.key_by(f))

Nothing here imports the driver's layers.
"""  # noqa: E501

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NoReturn

#: What Python says when a record is unpacked (``k, v = r``), indexed (``r[0]``) or
#: made a dict entry (``dict(records)``) as a pair but is not one.
_SAYS = {
    "unpack": r"cannot unpack non-iterable|values to unpack",
    "index": r"object is not subscriptable|index out of range",
    "dict": r"dictionary update sequence element",
}
_NOT_A_PAIR = {kind: re.compile(words) for kind, words in _SAYS.items()}
_NOT_A_PAIR["any"] = re.compile("|".join(_SAYS.values()))
_HINT = "make pairs first, e.g. rdd.map(lambda x: (x, 1)) or rdd.key_by(f)"


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters.

    >>> short_repr("ab" * 50, 12)
    "'abababab..."
    """
    try:
        text = repr(value)
    except Exception:  # a record whose repr fails is still shown by its type
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _an(type_name: str) -> str:
    return f"an {type_name}" if type_name[:1] in "aeiouAEIOU" else f"a {type_name}"


def is_pair(record: Any) -> bool:
    """Whether ``record`` unpacks as ``key, value``.

    >>> is_pair(("a", 1)), is_pair(["a", 1]), is_pair("ab"), is_pair("abc"), is_pair(3)
    (True, True, True, False, False)
    """
    try:
        _key, _value = record
    except Exception:
        return False
    return True


def not_a_pair_error(what: str | None, record: Any) -> TypeError:
    """The error for ``record``, which ``what`` (an operation) needed to be a pair.

    >>> not_a_pair_error("join", 7)
    TypeError('join needs (key, value) pairs, but a record is an int: 7 (make pairs first, e.g. rdd.map(lambda x: (x, 1)) or rdd.key_by(f))')
    """  # noqa: E501
    kind = _an(type(record).__name__)
    return TypeError(
        f"{what or 'a pair operation'} needs (key, value) pairs, but a record is {kind}: "
        f"{short_repr(record)} ({_HINT})"
    )


def pair_error(
    what: str | None, exc: BaseException, records: Iterable[Any] | None = None, how: str = "any"
) -> TypeError | None:
    """A clear error when ``exc`` is Python's complaint about a record that is not a pair.

    ``records`` is the batch the failing loop was reading (a list): the error
    shows its first record that is not a pair, and there is none when the
    batch holds only pairs (``exc`` came from elsewhere, such as the user's
    function).  Without ``records``, the caller must know that ``exc`` was
    raised by its own unpacking (``raised_here``); the error then quotes
    Python's words.

    Parameters
    ----------
    what : str or None
        The operation, for the message (None: "a pair operation").
    exc : BaseException
        What the loop raised.
    records : iterable or None, optional
        The records the loop was reading, when it still has them.
    how : {"any", "unpack", "index", "dict"}, default "any"
        How the loop reads a record (``k, v = r``, ``r[0]``, ``dict(records)``):
        only Python's words for that failure count.

    Returns
    -------
    TypeError or None
        The error to raise (from ``exc``), or None when ``exc`` is not about a
        record that is not a pair.

    Examples
    --------
    >>> pair_error("group_by_key", TypeError("cannot unpack non-iterable int object"))
    TypeError('group_by_key needs (key, value) pairs, but a record is not one: cannot unpack non-iterable int object (make pairs first, e.g. rdd.map(lambda x: (x, 1)) or rdd.key_by(f))')
    >>> pair_error("group_by_key", ValueError("too many values to unpack"), [("a", 1)]) is None
    True
    >>> pair_error("group_by_key", ValueError("bad literal")) is None
    True
    """  # noqa: E501
    if not isinstance(exc, TypeError | ValueError | IndexError):
        return None
    if not _NOT_A_PAIR[how].search(str(exc)):
        return None
    if records is None:
        return TypeError(
            f"{what or 'a pair operation'} needs (key, value) pairs, but a record is not one: "
            f"{exc} ({_HINT})"
        )
    for record in records:
        if not is_pair(record):
            return not_a_pair_error(what, record)
    return None


def raised_in(exc: BaseException, *functions: Any) -> bool:
    """Whether the innermost frame of ``exc``'s traceback runs one of ``functions``:
    the failure is their own unpacking or indexing, not that of a function they called
    or of the iterator they read (whose frames would come after theirs).

    >>> def unpack(record):
    ...     key, value = record
    >>> try:
    ...     unpack(3)
    ... except TypeError as exc:
    ...     raised_in(exc, unpack), raised_in(exc, short_repr)
    (True, False)
    """
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return any(getattr(f, "__code__", None) is code for f in functions)


def raised_here(exc: BaseException, depth: int = 0) -> bool:
    """Whether ``exc`` (being handled) was raised by the frame handling it, not by a
    function it called: Python's own unpacking or indexing in that frame.  With
    ``depth``, the frames of that many calls below it count too (a comprehension's).

    >>> try:
    ...     a, b = 1
    ... except TypeError as exc:
    ...     raised_here(exc)
    True
    """
    tb = exc.__traceback__
    for _ in range(depth):
        if tb is None or tb.tb_next is None:
            break
        tb = tb.tb_next
    return tb is not None and tb.tb_next is None


def reraise_for_batch(exc: BaseException, what: str | None, batch: list) -> NoReturn:
    """Raise ``exc``, or ``pair_error``'s clearer error when ``batch`` holds a record that
    is not a pair (the loop over ``batch`` raised ``exc``)."""
    clear = pair_error(what, exc, batch)
    if clear is None:
        raise exc
    raise clear from exc
