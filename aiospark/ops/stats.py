"""Numeric and aggregate actions: statistics, histograms, tree aggregation.

Mixed into ``aiospark.RDD``.
"""

from __future__ import annotations


class StatOps:
    """Numeric and aggregate actions."""
