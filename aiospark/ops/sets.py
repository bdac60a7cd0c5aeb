"""Set-like and structural operations: union, distinct, zip, cartesian, coalesce.

Mixed into ``aiospark.RDD``.
"""

from __future__ import annotations


class SetOps:
    """Set-like and structural operations."""
