"""The three reasons a ported PySpark test does not simply run, as pytest marks.

Every test of the port that does not run as is carries one of these, so the
tally in ``README.md`` can be recounted with ``grep``.
"""

from __future__ import annotations

import pytest


def needs_jvm(why: str) -> pytest.MarkDecorator:
    """Skip: the PySpark test exercises the JVM, py4j or Hadoop, which aiospark has not."""
    return pytest.mark.skip(reason=f"needs the JVM/Hadoop: {why}")


def not_applicable(why: str) -> pytest.MarkDecorator:
    """Skip: a PySpark feature aiospark deliberately has not (docs/migration.md says why)."""
    return pytest.mark.skip(reason=f"not applicable: {why}")


def pending(feature: str) -> pytest.MarkDecorator:
    """Expected failure until ``feature`` lands; strict, so the marker must then go."""
    return pytest.mark.xfail(strict=True, reason=f"needs {feature}: issue 15, other branch")


JOB_GROUPS = "job groups (set_job_group, cancel_job_group, cancel_all_jobs)"
STATUS_TRACKER = "the status tracker (ctx.status_tracker())"
BARRIER = "barrier execution (rdd.barrier(), BarrierTaskContext)"
LOCAL_PROPERTIES = "local properties (ctx.set_local_property)"
