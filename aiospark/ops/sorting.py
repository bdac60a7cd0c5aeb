"""Ordering: sorting by key with a range partitioner, top-k and ordered takes.

Mixed into ``aiospark.RDD``.
"""

from __future__ import annotations


class SortOps:
    """Ordering."""
