"""docs/migration.md has a row for every public name of PySpark's RDD and SparkContext.

``pyspark_methods.txt`` is PySpark 4.3's list (made by ``list_pyspark_api.py``
from the PySpark sources).  Each row says what the name is in aiospark: the
aiospark names a row gives must exist, except those of features still being
built for issue 15 (``PENDING``), which must not exist yet, so that the list
shrinks as they land.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import aiospark

HERE = Path(__file__).resolve().parent
MIGRATION = HERE.parent.parent / "docs" / "migration.md"
STATUSES = {"same", "renamed", "differs", "not applicable"}
SECTIONS = {
    "SparkContext": ("## SparkContext → Context", aiospark.Context),
    "RDD": ("## RDD → RDD", aiospark.RDD),
}

#: aiospark names the tables give that other branches of issue 15 are adding.
PENDING = {
    "Context": set(),
    "RDD": set(),
}  # fmt: skip


def pyspark_names() -> dict[str, list[str]]:
    """``{"SparkContext": [...], "RDD": [...]}`` from pyspark_methods.txt."""
    names: dict[str, list[str]] = {"SparkContext": [], "RDD": []}
    for line in (HERE / "pyspark_methods.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            cls, _, name = line.partition(".")
            names[cls].append(name)
    return names


def table_rows(section: str) -> dict[str, tuple[str, str, str]]:
    """``PySpark name -> (aiospark cell, status, how)`` for the four-column table of a section."""
    text = MIGRATION.read_text()
    body = text[text.index(section) :].split("\n## ", 1)[0]
    rows = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(\w+)`", cells[0]) if len(cells) == 4 else None
        if match:
            rows[match[1]] = (cells[1], cells[2], cells[3])
    return rows


def instance_attributes(cls: type) -> set[str]:
    """Attributes ``cls.__init__`` sets on ``self``."""
    tree = ast.parse(inspect.getsource(cls.__init__).strip().replace("\n    ", "\n"))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
        and isinstance(node.ctx, ast.Store)
    }


@pytest.mark.parametrize("pyspark_class", ["SparkContext", "RDD"])
def test_every_pyspark_name_has_a_row_with_a_status(pyspark_class):
    rows = table_rows(SECTIONS[pyspark_class][0])
    expected = pyspark_names()[pyspark_class]
    assert len(expected) > 50
    missing = [name for name in expected if name not in rows]
    assert missing == [], f"docs/migration.md has no row for {pyspark_class}.{missing}"
    for name in expected:
        aiospark_cell, status, how = rows[name]
        assert status in STATUSES, f"{name}: status {status!r}"
        if status in ("differs", "not applicable"):
            assert how, f"{name} {status}: the row must say how or why"
        if status == "renamed":
            assert aiospark_cell not in ("—", f"`{name}`"), f"{name} renamed to what?"


@pytest.mark.parametrize("pyspark_class", ["SparkContext", "RDD"])
def test_the_aiospark_names_of_the_table_exist(pyspark_class):
    section, cls = SECTIONS[pyspark_class]
    pending = PENDING[cls.__name__]
    real = set(dir(cls)) | instance_attributes(cls)
    named = {
        match[1]
        for aiospark_cell, _, _ in table_rows(section).values()
        if (match := re.fullmatch(r"`(\w+)`", aiospark_cell))
    }
    assert named - real - pending == set(), "the table names what aiospark has not"
    landed = pending & real
    assert landed == set(), f"{sorted(landed)} now exist: remove them from PENDING"
    assert pending <= named, "PENDING lists names the table does not give"
