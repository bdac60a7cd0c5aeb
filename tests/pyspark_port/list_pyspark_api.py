"""Print the public API of PySpark's RDD and SparkContext, as ``pyspark_methods.txt`` holds it.

Usage: ``python tests/pyspark_port/list_pyspark_api.py PYSPARK/core > pyspark_methods.txt``
where ``PYSPARK/core`` is the ``pyspark/core`` directory of an unpacked PySpark
sdist or wheel (``pip download pyspark --no-deps``; PySpark need not be installed).

Public means: methods not starting with ``_`` (and ``__add__``, ``__enter__``,
``__exit__``), public class attributes, and public attributes set in ``__init__``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

KEEP_DUNDER = {"__add__", "__enter__", "__exit__"}


def assigned_names(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        return list(node.targets)
    if isinstance(node, ast.AnnAssign):
        return [node.target]
    return []


def public_names(source: str, class_name: str) -> set[str]:
    """The public methods and attributes of ``class_name`` in ``source``."""
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    names: set[str] = set()
    for item in cls.body:
        for target in assigned_names(item):
            if isinstance(target, ast.Name) and not target.id.startswith("_"):
                names.add(target.id)
        if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if not item.name.startswith("_") or item.name in KEEP_DUNDER:
            names.add(item.name)
        if item.name in ("__init__", "_do_init"):
            for sub in ast.walk(item):
                for target in assigned_names(sub):
                    if (
                        isinstance(target, ast.Attribute)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == "self"
                        and not target.attr.startswith("_")
                    ):
                        names.add(target.attr)
    return names


def main(core: Path) -> None:
    print("# Public methods and attributes of PySpark 4.3's RDD (pyspark/core/rdd.py) and")
    print("# SparkContext (pyspark/core/context.py), listed with list_pyspark_api.py.")
    print("# docs/migration.md has a row for each (tests/pyspark_port/test_migration_table.py).")
    for file, class_name in (("context.py", "SparkContext"), ("rdd.py", "RDD")):
        names = public_names((core / file).read_text(encoding="utf-8"), class_name)
        for name in sorted(names, key=str.lower):
            print(f"{class_name}.{name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
