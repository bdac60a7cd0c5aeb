"""The docs stay true: the migration table covers the whole API, the README its commands."""

from __future__ import annotations

import pathlib
import re

import aiospark

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _public(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("aiospark"):
            names |= {n for n in vars(klass) if not n.startswith("_")}
    return names


def test_migration_table_lists_every_public_method_and_only_real_ones():
    text = (ROOT / "docs" / "migration.md").read_text()
    listed = set(re.findall(r"^\| [^|]+ \| `(\w+)` \|", text, flags=re.M))
    api = _public(aiospark.Context) | _public(aiospark.RDD)
    assert api - listed == set(), "methods missing from docs/migration.md"
    assert listed - api == set(), "docs/migration.md lists methods that do not exist"


def test_readme_starts_with_the_install_and_test_commands():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "pip install -e '.[test]'" in first_block and "examples/wordcount.py" in first_block
    assert "python -m pytest -q" in first_block
    assert "python -m pytest -q" in (ROOT / ".ci" / "run").read_text()
