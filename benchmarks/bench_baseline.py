"""The baseline: the same work in plain, single-process Python."""

from __future__ import annotations

import operator
from collections import Counter
from pathlib import Path

from bench_common import Config, Results, check_rbk_keys, mod_pair, report, timed


def word_count(path: Path) -> Counter[str]:
    """``collections.Counter`` over ``line.split()`` for each line of the file."""
    counts: Counter[str] = Counter()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            counts.update(line.split())
    return counts


def reduce_by_key_count(pairs: int) -> int:
    """Reduce the generated pairs by key with ``operator.add`` in a dict; count the keys."""
    add = operator.add
    sums: dict[int, int] = {}
    for key, value in map(mod_pair, range(pairs)):
        sums[key] = add(sums[key], value) if key in sums else value
    return len(sums)


def run_serial(cfg: Config, corpus: Path | None, results: Results) -> Counter[str] | None:
    """Measure the serial workloads; return the reference word counts (when counted)."""
    reference = None
    if cfg.wants("wordcount") and corpus is not None:
        seconds, reference = timed(lambda: word_count(corpus))
        results.put("serial", "wordcount_s", seconds)
        report("serial", f"word count: {seconds:.2f} s ({len(reference):,} distinct words)")
    if cfg.wants("rbk"):
        seconds, keys = timed(lambda: reduce_by_key_count(cfg.rbk_pairs))
        check_rbk_keys("serial", keys, cfg.rbk_pairs)
        results.put("serial", "rbk_s", seconds)
        report("serial", f"reduce_by_key + count: {seconds:.2f} s ({keys:,} keys)")
    return reference
