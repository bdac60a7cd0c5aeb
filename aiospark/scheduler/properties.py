"""The local properties a job carries: the names aiospark itself reads (PySpark's).

``Context.set_local_property`` and ``Context.set_job_group`` set them
(``aiospark.jobgroups``); the scheduler copies them onto each job when it is
submitted, shows the group and description on the status page, cancels by
group, and ships them to the job's tasks (``TaskContext.get_local_property``).

>>> job_labels({GROUP: "nightly", DESCRIPTION: "load the logs"})
('nightly', 'load the logs')
>>> job_labels({})
('', '')
"""

from __future__ import annotations

from collections.abc import Mapping

#: The job group (``Context.set_job_group``), by which ``cancel_job_group`` finds jobs.
GROUP = "spark.jobGroup.id"
#: The job's description (``set_job_description``, or ``set_job_group``'s second argument).
DESCRIPTION = "spark.job.description"
#: ``set_job_group(..., interrupt_on_cancel=...)``, kept for the tasks to read.
INTERRUPT_ON_CANCEL = "spark.job.interruptOnCancel"
#: The scheduling pool (``Context.pool``): PySpark's ``setLocalProperty`` name for it.
POOL = "spark.scheduler.pool"


def job_labels(properties: Mapping[str, str]) -> tuple[str, str]:
    """``(group, description)`` of a job with these properties (``""`` when unset)."""
    return properties.get(GROUP) or "", properties.get(DESCRIPTION) or ""
