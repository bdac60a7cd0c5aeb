"""README.md's tally of the port matches the marks in the test files."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent


def recount(pyspark_file: str) -> list[int]:
    """``[ported, pass, jvm, not applicable, pending]`` for one ported PySpark file."""
    source = (HERE / pyspark_file).read_text()
    ported = len(re.findall(r"^# \w+Tests?\w*\.\w+", source, flags=re.M))
    jvm, na, pending = (
        len(re.findall(rf"^@{mark}\(", source, flags=re.M))
        for mark in ("needs_jvm", "not_applicable", "pending")
    )
    tests = len(re.findall(r"^async def test_", source, flags=re.M))
    assert tests == ported, f"{pyspark_file}: every test names its original, once"
    return [ported, ported - jvm - na - pending, jvm, na, pending]


def test_the_readme_tally_is_the_marks_count():
    readme = (HERE / "README.md").read_text()
    rows = re.findall(r"^\| (test_\w+\.py) \| ([\d |]+)\|$", readme, flags=re.M)
    assert len(rows) == 8
    totals = [0] * 5
    for pyspark_file, figures in rows:
        counted = recount(pyspark_file)
        assert [int(x) for x in figures.split("|")] == counted, pyspark_file
        totals = [a + b for a, b in zip(totals, counted, strict=True)]
    total = re.search(r"^\| \*\*total\*\* \| (.*) \|$", readme, flags=re.M)[1]
    assert [int(x.strip("* ")) for x in total.split("|")] == totals
