"""Sampling with seeds that reproduce PySpark's choices.

Mixed into ``aiospark.RDD``.
"""

from __future__ import annotations


class SampleOps:
    """Sampling with seeds that reproduce PySpark's choices.."""
