"""Run every docstring example in aiospark as a test, against a live embedded cluster.

Examples use top-level ``await`` (as in the ``python -m asyncio`` REPL), so
they are compiled with ``PyCF_ALLOW_TOP_LEVEL_AWAIT`` and coroutine examples
are run on the loop that owns the shared ``ctx``.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import doctest
import importlib
import inspect
import operator
import os
import pkgutil
import tempfile

import pytest

import aiospark
from aiospark.lineage import StorageLevel


def _modules() -> list[str]:
    names = ["aiospark"]
    for info in pkgutil.walk_packages(aiospark.__path__, "aiospark."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return sorted(names)


def _doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for name in _modules():
        module = importlib.import_module(name)
        tests.extend(t for t in finder.find(module) if t.examples)
    return tests


DOCTESTS = _doctests()


@pytest.fixture(scope="module")
def doctest_loop():
    loop = asyncio.new_event_loop()
    context = aiospark.Context(workers=2)
    loop.run_until_complete(context.start())
    tmp = tempfile.TemporaryDirectory(prefix="aiospark-doctest-")
    yield loop, context, tmp.name
    loop.run_until_complete(context.stop())
    loop.close()
    tmp.cleanup()


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_examples(test: doctest.DocTest, doctest_loop) -> None:
    loop, context, tmp_dir = doctest_loop
    test.globs.update(
        ctx=context, tmp_dir=tmp_dir, os=os, operator=operator, StorageLevel=StorageLevel,
        aiospark=aiospark, asyncio=asyncio,
    )

    def run_example(code, globs, *args):
        if code.co_flags & inspect.CO_COROUTINE:
            return loop.run_until_complete(eval(code, globs))
        return builtins.exec(code, globs, *args)

    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    doctest.exec = run_example  # doctest looks exec up in its module globals first
    try:
        runner.run(test, compileflags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, out=_collect(out := []))
    finally:
        del doctest.exec
    failed = runner.summarize(verbose=False).failed
    assert failed == 0, "".join(out)


def _collect(sink: list[str]):
    return sink.append


def test_every_public_method_has_an_example() -> None:
    """Every public method of RDD and Context carries a runnable example."""
    missing = []
    for cls in (aiospark.RDD, aiospark.Context, aiospark.Broadcast, aiospark.Accumulator):
        members = {}
        for klass in reversed(cls.__mro__):
            if klass.__module__.startswith("aiospark"):
                members.update(vars(klass))
        for name, member in members.items():
            if name.startswith("_") and name != "__aiter__":
                continue
            if not callable(member) and not isinstance(member, property):
                continue
            doc = inspect.getdoc(member) or ""
            if ">>>" not in doc:
                missing.append(f"{cls.__name__}.{name}")
    assert not missing, f"public methods without a docstring example: {missing}"
