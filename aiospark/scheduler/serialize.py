"""Pickling what tasks need, with errors that name what could not be pickled.

A stage travels once per worker as ``cloudpickle((rdd, func_or_dependency))``;
each task carries only its split.  Functions cloudpickle ships by value (lambdas,
closures, functions of ``__main__`` or of a REPL) keep the file name of their
code, so a worker's traceback names the user's file and line (cloudpickle
itself replaces it with ``"<dynamic-code>"``).  When cloudpickle fails, the error names the
RDD, the user function, and the variable it captured that cannot be pickled:

>>> import threading
>>> lock = threading.Lock()
>>> describe_unpicklable(lambda x: lock.locked())
"global 'lock' (a _thread.lock): cannot pickle '_thread.lock' object"
"""

from __future__ import annotations

import io
import pickle
import types
from collections import ChainMap
from typing import Any

import cloudpickle

from aiospark.errors import SerializationError
from aiospark.scheduler.dag import Stage, narrow_ancestors
from aiospark.slices import PickledSplit

_CLOUDPICKLE_CODE_REDUCE = cloudpickle.Pickler.dispatch_table[types.CodeType]
_DYNAMIC_CODE = "<dynamic-code>"


def _code_reduce_keeping_filename(code: types.CodeType) -> tuple[Any, tuple[Any, ...]]:
    """cloudpickle's reduction of a code object, with the code's own ``co_filename``."""
    constructor, args = _CLOUDPICKLE_CODE_REDUCE(code)
    where = [i for i, arg in enumerate(args) if isinstance(arg, str) and arg == _DYNAMIC_CODE]
    if len(where) == 1 and code.co_filename != _DYNAMIC_CODE:
        args = (*args[: where[0]], code.co_filename, *args[where[0] + 1 :])
    return constructor, args


class _LineagePickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle, but code shipped by value keeps its file name (for tracebacks)."""

    dispatch_table = ChainMap(
        {types.CodeType: _code_reduce_keeping_filename}, cloudpickle.Pickler.dispatch_table
    )


def dumps_lineage(obj: Any) -> bytes:
    """``cloudpickle.dumps(obj, protocol=5)``, keeping the file names of shipped functions.

    >>> f = pickle.loads(dumps_lineage(lambda x: x + 1))
    >>> f(1), f.__code__.co_filename
    (2, '<doctest aiospark.scheduler.serialize.dumps_lineage[0]>')
    """
    with io.BytesIO() as file:
        _LineagePickler(file, protocol=5).dump(obj)
        return file.getvalue()


def serialize_split(split: Any) -> bytes:
    """Pickle one task's split (plain pickle when it can, cloudpickle otherwise).

    A split pickled ahead of time, off the event loop (``slices.PickledSplit``),
    is returned as it is.
    """
    if isinstance(split, PickledSplit):
        return split.pickled
    try:
        return pickle.dumps(split, protocol=5)
    except Exception:
        try:
            data: bytes = cloudpickle.dumps(split, protocol=5)
            return data
        except Exception as exc:
            raise SerializationError(
                f"could not serialize partition {split.index}'s data: {exc}"
            ) from exc


def serialize_stage(stage: Stage) -> bytes:
    """Pickle a stage's lineage and action; ``SerializationError`` names the culprit."""
    action = stage.func if stage.shuffle_dep is None else stage.shuffle_dep
    try:
        return dumps_lineage((stage.rdd, action))
    except Exception as exc:
        raise SerializationError(_explain(stage, action, exc)) from exc


def _explain(stage: Stage, action: Any, exc: Exception) -> str:
    for rdd in narrow_ancestors(stage.rdd):
        # An RDD's functions live on its plan (aiospark.plans), when it has one.
        holder: Any = getattr(rdd, "plan", rdd)
        for name, value in vars(holder).items():
            if name in ("ctx", "_splits") or not callable(value):
                continue
            problem = describe_unpicklable(value)
            if problem:
                return (
                    f"could not serialize a function of {rdd!r} for shipping to workers: "
                    f"{problem}. Create that object inside the function instead of "
                    "capturing it, or make it picklable."
                )
    problem = describe_unpicklable(action) if callable(action) else None
    if problem:
        return f"could not serialize the action's function: {problem}"
    return f"could not serialize the job's lineage ({stage!r}): {type(exc).__name__}: {exc}"


def describe_unpicklable(fn: Any, _depth: int = 0) -> str | None:
    """Why ``fn`` cannot be pickled, naming the captured variable; None if it can."""
    try:
        cloudpickle.dumps(fn)
        return None
    except Exception as exc:
        reason = f"{exc}"
    if not isinstance(fn, types.FunctionType) or _depth > 5:
        return f"{type(fn).__name__} {getattr(fn, '__qualname__', '')}: {reason}".strip()
    code = fn.__code__
    captured: list[tuple[str, str, Any]] = []
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        try:
            captured.append(("closure variable", name, cell.cell_contents))
        except ValueError:  # empty cell
            continue
    for name in code.co_names:
        if name in fn.__globals__:
            captured.append(("global", name, fn.__globals__[name]))
    for i, default in enumerate(fn.__defaults__ or ()):
        captured.append(("default argument", str(i), default))
    for kind, name, value in captured:
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            if isinstance(value, types.FunctionType):
                inner = describe_unpicklable(value, _depth + 1)
                if inner:
                    return inner
            return f"{kind} {name!r} (a {type(value).__module__}.{type(value).__qualname__}): {exc}"
    return f"function {fn.__qualname__}: {reason}"
