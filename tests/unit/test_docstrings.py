"""Every public callable of the user-facing API has a numpydoc docstring (issue 12).

The API is what ``aiospark.__all__`` exports: the RDD class with its mixins'
methods, the Context, the shared variables, the partitioners, the storage
levels, the errors and ``portable_hash``; plus ``RangePartitioner`` (a sorted
RDD's partitioner) and ``StatCounter`` (what ``RDD.stats`` returns).  Each
public function or method needs, besides its example (``>>>``), a
``Parameters`` section when it takes parameters besides ``self``/``cls``, and
a ``Returns`` (or ``Yields``) section unless its return annotation is
``None``.  A class whose constructor users call documents the constructor's
parameters in the class docstring.  Sections are numpydoc's: a title line,
then a line of dashes as long as the title.
"""

from __future__ import annotations

import inspect
import re

import pytest

import aiospark
from aiospark.lineage import RangePartitioner
from aiospark.statcounter import StatCounter

#: Classes users never construct themselves (the Context, or the runtime, makes them).
INTERNAL_CONSTRUCTORS = {"Accumulator", "Broadcast", "RemoteTraceback", "RDD", "TaskContext"}

_HEADER = re.compile(r"^([ \t]*)(\S[^\n]*)\n\1(-{3,})[ \t]*$", re.MULTILINE)


def sections(doc: str) -> set[str]:
    """The numpydoc section titles of a docstring.

    >>> sorted(sections("Sum.\\n\\nParameters\\n----------\\nx : int\\n    A.\\n"))
    ['Parameters']
    >>> sections("Sum.\\n\\nParameters\\n---\\n")  # dashes as long as the title
    set()
    """
    return {m.group(2).strip() for m in _HEADER.finditer(doc)
            if len(m.group(3)) == len(m.group(2).strip())}


def _api_classes() -> list[type]:
    classes = [getattr(aiospark, name) for name in aiospark.__all__]
    return [c for c in classes if inspect.isclass(c)] + [RangePartitioner, StatCounter]


def _members(cls: type) -> dict[str, object]:
    """The public attributes ``cls`` gets from aiospark's own classes (mixins included)."""
    members: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("aiospark"):
            members.update((k, v) for k, v in vars(klass).items() if not k.startswith("_"))
    return members


def _callables() -> list[tuple[str, object]]:
    found = [
        (f"aiospark.{name}", getattr(aiospark, name))
        for name in aiospark.__all__
        if inspect.isfunction(getattr(aiospark, name))
    ]
    for cls in _api_classes():
        for name, member in _members(cls).items():
            if isinstance(member, staticmethod | classmethod):
                member = member.__func__
            if inspect.isfunction(member) or isinstance(member, property):
                found.append((f"{cls.__name__}.{name}", member))
    return found


CALLABLES = _callables()


def missing_sections(member: object) -> list[str]:
    """What ``member``'s docstring lacks: a list of section names (or ``example``)."""
    doc = inspect.getdoc(member) or ""
    missing = [] if ">>>" in doc else ["example"]
    if isinstance(member, property):  # documented as an attribute: summary and example
        return missing
    func = inspect.unwrap(member)
    found = sections(doc)
    signature = inspect.signature(func)
    params = [p for p in signature.parameters if p not in ("self", "cls")]
    if params and "Parameters" not in found:
        missing.append("Parameters")
    returns = signature.return_annotation
    returns_nothing = returns in (None, "None") or returns is inspect.Signature.empty
    if not returns_nothing and not found & {"Returns", "Yields"}:
        missing.append("Returns")
    return missing


@pytest.mark.parametrize(("name", "member"), CALLABLES, ids=[n for n, _ in CALLABLES])
def test_public_callable_has_numpydoc_sections(name: str, member: object) -> None:
    assert missing_sections(member) == [], f"{name}'s docstring lacks these sections"


def _constructed_by_users() -> list[type]:
    """The API classes with a constructor of their own that users call."""
    return [
        cls for cls in _api_classes()
        if cls.__name__ not in INTERNAL_CONSTRUCTORS
        and inspect.isfunction(vars(cls).get("__init__"))
    ]


@pytest.mark.parametrize("cls", _constructed_by_users(), ids=lambda c: c.__name__)
def test_public_constructor_parameters_are_documented(cls: type) -> None:
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    if params:
        assert "Parameters" in sections(inspect.getdoc(cls) or ""), cls.__name__


def test_the_check_finds_what_is_missing() -> None:
    def bare(x: int) -> int:
        """Double ``x``.

        >>> bare(2)
        4
        """
        return 2 * x

    def documented(x: int) -> int:
        """Double ``x``.

        Parameters
        ----------
        x : int
            The number.

        Returns
        -------
        int
            Twice ``x``.

        Examples
        --------
        >>> documented(2)
        4
        """
        return 2 * x

    async def quiet(x: int) -> None:
        """Wait.

        Parameters
        ----------
        x : int
            Ignored.
        """

    assert missing_sections(bare) == ["Parameters", "Returns"]
    assert missing_sections(documented) == []
    assert missing_sections(quiet) == ["example"]
    assert len(CALLABLES) > 100
    assert {c.__name__ for c in _constructed_by_users()} >= {
        "Context", "HashPartitioner", "RangePartitioner", "StatCounter", "StorageLevel"}
    assert {"RDD.map", "RDD.reduce_by_key", "Context.parallelize", "Broadcast.destroy",
            "StatCounter.mean", "aiospark.portable_hash"} <= {n for n, _ in CALLABLES}
