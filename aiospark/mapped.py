"""The records of ``map(f)``, in a form a consumer may fuse with its own loop.

``map(f)`` yields ``MappedRecords``: iterated, they are ``f(record)`` for each
record (from a generator, see ``map_records``); a shuffle writer that combines
by key instead calls ``f`` in its own loop over ``records``, saving a generator
step and a list of pairs per record.

Word count's ``map(lambda w: (w, 1))`` calls a Python function per word only to
build a tuple, and the ``reduce_by_key(add)`` after it adds up ones.  When the
function passed to ``map`` is exactly ``lambda x: (x, c)`` (its bytecode loads
its one argument and a constant, builds a pair and returns it), ``map``
produces ``ConstantPairs`` instead: a C-level ``zip`` of the records with the
constant, which iterates as the same tuples without the call, and which a
shuffle writer can count by key in C (``collections.Counter``'s loop) when the
constant is the int 1.

>>> constant_of(lambda w: (w, 1)), constant_of(lambda w: (w, w)), constant_of(len)
((1,), None, None)
>>> list(ConstantPairs(iter("ab"), 1))
[('a', 1), ('b', 1)]
>>> list(MappedRecords(str.upper, ["a", "b"]))
['A', 'B']
"""

from __future__ import annotations

import dis
import functools
import inspect
import itertools
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from aiospark.errors import UserCodeError

#: Opcodes that do nothing for the result (3.11's RESUME, NOP).
_IGNORED = frozenset({"RESUME", "NOP", "CACHE"})
#: What loads the argument and the constant, across CPython versions.
_LOAD_ARG = frozenset({"LOAD_FAST", "LOAD_FAST_BORROW"})
_LOAD_CONST = frozenset({"LOAD_CONST", "LOAD_SMALL_INT"})
#: Bytes of bytecode above which a function cannot be ``lambda x: (x, c)`` (10 in 3.11).
_MAX_PAIRING_BYTES = 12
#: Code flags that make a call more than its bytecode (generators, coroutines, *args).
_SPECIAL = (
    inspect.CO_VARARGS | inspect.CO_VARKEYWORDS | inspect.CO_GENERATOR
    | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE
)


def constant_of(f: Callable[[Any], Any]) -> tuple[Any] | None:
    """``(c,)`` when ``f`` is exactly ``lambda x: (x, c)`` for a constant ``c``, else None.

    Only a plain Python function of one positional argument qualifies, whose
    code is nothing but returning the pair: calling it can have no other effect
    and cannot raise, so not calling it changes nothing but the time taken.

    >>> def pair(word):
    ...     return (word, 1)
    >>> constant_of(pair), constant_of(lambda x, y=1: (x, y)), constant_of(lambda x: (1, x))
    ((1,), None, None)
    """
    if type(f) is not types.FunctionType:
        return None
    code = f.__code__
    if code.co_argcount != 1 or code.co_kwonlyargcount or code.co_flags & _SPECIAL:
        return None
    if len(code.co_code) > _MAX_PAIRING_BYTES:  # most functions: no need to disassemble
        return None
    return _pairing_constant(code)


@functools.lru_cache(maxsize=256)
def _pairing_constant(code: types.CodeType) -> tuple[Any] | None:
    """``constant_of`` for a code object (cached: ``map`` is called with the same
    functions over and over, and disassembling takes ~10 us)."""
    ops = [i for i in dis.get_instructions(code) if i.opname not in _IGNORED]
    if len(ops) != 4:
        return None
    load_arg, load_const, build, ret = ops
    if (
        load_arg.opname in _LOAD_ARG and load_arg.argval == code.co_varnames[0]
        and load_const.opname in _LOAD_CONST
        and build.opname == "BUILD_TUPLE" and build.arg == 2
        and ret.opname == "RETURN_VALUE"
    ):
        return (load_const.argval,)
    return None


class ConstantPairs(zip):
    """``(record, value)`` for each record: what ``map(lambda x: (x, value))`` yields.

    It is a ``zip``, so it iterates at C speed; ``records`` and ``value`` stay
    readable for a consumer that wants them apart (counting keys, for one).

    >>> pairs = ConstantPairs(iter([3, 4]), "v")
    >>> next(pairs), pairs.value
    ((3, 'v'), 'v')
    """

    records: Iterator[Any]
    value: Any

    def __new__(cls, records: Any, value: Any) -> ConstantPairs:
        records = iter(records)
        self = super().__new__(cls, records, itertools.repeat(value))
        self.records, self.value = records, value
        return self

    def counts_ones(self) -> bool:
        """Whether every value is the int 1: the pairs of a count by key.

        >>> ConstantPairs([], 1).counts_ones(), ConstantPairs([], True).counts_ones()
        (True, False)
        """
        return type(self.value) is int and self.value == 1


# The record-by-record transformations call user functions from generators
# rather than builtin map() and filter(): those take a StopIteration raised by
# the function for the end of the records and silently drop the rest of the
# partition.  The generators fail the task instead, and cost less per record
# than wrapping each function in a checking closure.


def map_records(f: Callable[[Any], Any], records: Iterable[Any]) -> Iterator[Any]:
    """``f(record)`` for each record; a ``StopIteration`` out of ``f`` is an error.

    >>> list(map_records(len, ["ab", ""]))
    [2, 0]
    >>> list(map_records(next, [iter([])]))
    Traceback (most recent call last):
    ...
    aiospark.errors.UserCodeError: user code in a task raised StopIteration
    """
    try:
        for record in records:
            yield f(record)
    except StopIteration as exc:
        raise UserCodeError.wrapping(exc) from exc


class MappedRecords:
    """``f(record)`` for each of ``records``: what ``map(f)`` yields, ``f`` and the
    records still at hand for a consumer that calls ``f`` itself (``started`` false).

    >>> mapped = MappedRecords(abs, [-1, 2])
    >>> mapped.started, next(mapped), mapped.started, list(mapped)
    (False, 1, True, [2])
    """

    __slots__ = ("_it", "f", "records")

    def __init__(self, f: Callable[[Any], Any], records: Iterable[Any]) -> None:
        self.f = f
        self.records = records
        self._it: Iterator[Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        if self._it is None:
            self._it = map_records(self.f, self.records)
        return self._it

    def __next__(self) -> Any:
        return next(iter(self))

    @property
    def started(self) -> bool:
        """Whether records were read (then ``records`` is partly consumed)."""
        return self._it is not None
