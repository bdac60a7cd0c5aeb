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


def test_migration_table_lists_every_public_method():
    # That the names it lists exist (or are pending): tests/pyspark_port/test_migration_table.py
    text = (ROOT / "docs" / "migration.md").read_text()
    listed = set(re.findall(r"^\| [^|]+ \| `(\w+)` \|", text, flags=re.M))
    api = _public(aiospark.Context) | _public(aiospark.RDD)
    assert api - listed == set(), "methods missing from docs/migration.md"


def test_readme_starts_with_the_install_and_test_commands():
    readme = (ROOT / "README.md").read_text()
    lines = [line.split("#")[0].strip() for line in readme.split("```")[1].splitlines()[1:]]
    venv, run, test = [line for line in lines if line]
    assert venv.startswith("python3 -m venv .venv") and ". .venv/bin/activate" in venv
    # Running needs only the core install; the test tools come with the test command.
    assert run.startswith("pip install -e . &&") and "examples/wordcount.py" in run
    assert test.startswith("pip install -e '.[test]' &&") and test.endswith("python -m pytest -q")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci and "python -m pytest -q" in ci


def test_readme_links_the_newcomer_docs():
    readme = (ROOT / "README.md").read_text()
    head = readme[: readme.index("## ")]
    for page in ("docs/getting-started.md", "docs/concepts.md", "docs/api/index.md"):
        assert f"]({page})" in head, page
        assert (ROOT / page).is_file(), page
