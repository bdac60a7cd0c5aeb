"""Job groups, job descriptions and local properties: PySpark's, in asyncio form.

``Context`` gets these methods from ``JobGroupOps``.  PySpark keeps a
SparkContext's local properties per *thread*; aiospark keeps them per
*asyncio task*, in a ``contextvars.ContextVar``:

- what one task sets (``set_job_group``, ``set_local_property`` ...) holds for
  the rest of that task, and for the tasks it creates afterwards (they start
  with a copy), never for tasks running beside it: two request handlers of a
  web server each have their own group;
- a coroutine awaited directly runs in its caller's task and shares its
  properties; one run by ``asyncio.gather`` or ``create_task`` is a new task,
  whose changes its creator does not see.

A job takes the properties in effect when it is submitted: the status page
shows its group and description, ``cancel_job_group`` finds it by its group,
and its tasks read them with ``TaskContext.get().get_local_property(key)``.

>>> with ctx.job_group("reports", "the daily report"):
...     await ctx.parallelize([1]).map(
...         lambda _: aiospark.TaskContext.get().get_local_property("spark.jobGroup.id")).collect()
['reports']
>>> print(ctx.get_local_property("spark.jobGroup.id"))
None
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiospark.errors import JobCancelled
from aiospark.scheduler.pools import DEFAULT_POOL
from aiospark.scheduler.properties import DESCRIPTION, GROUP, INTERRUPT_ON_CANCEL, POOL

if TYPE_CHECKING:
    from aiospark.scheduler.runner import Scheduler
    from aiospark.scheduler.tracker import StatusTracker

_NONE: dict[str, str] = {}


class LocalProperties:
    """One context's local properties, per asyncio task.

    The variable holds a dict that is never changed in place (each change sets
    a new one), so a job can keep the one current at its submission.

    >>> props = LocalProperties("demo")
    >>> token = props.update({"a": "1"})
    >>> props.get("a"), props.current()
    ('1', {'a': '1'})
    >>> props.reset(token)
    >>> props.current()
    {}
    """

    def __init__(self, name: str) -> None:
        self._var: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar(
            name, default=_NONE)

    def get(self, key: str) -> str | None:
        """The value of ``key`` here, or None."""
        return self._var.get().get(key)

    def current(self) -> dict[str, str]:
        """Every property set here (do not change the dict: it is shared)."""
        return self._var.get()

    def update(self, changes: dict[str, str | None]) -> contextvars.Token[dict[str, str]]:
        """Set these properties (None removes one); returns the token restoring the others."""
        merged = dict(self._var.get())
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return self._var.set(merged)

    def reset(self, token: contextvars.Token[dict[str, str]]) -> None:
        """Restore the properties as they were before the change ``token`` came from."""
        self._var.reset(token)


def _text(value: object, what: str, optional: bool = True) -> str | None:
    """``value`` when it is a str (or None, if ``optional``), else ``TypeError``."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str{' or None' if optional else ''}, "
                        f"got {type(value).__name__}")
    return value


class JobGroupOps:
    """``Context``'s job groups, descriptions, local properties and status tracker.

    Mixed into ``Context``, which provides ``_local`` (``LocalProperties``),
    ``_pool`` (the pool's ``ContextVar``) and ``_require_started``.
    """

    _local: LocalProperties
    _pool: contextvars.ContextVar[str]

    def _require_started(self) -> Scheduler:  # provided by Context
        raise NotImplementedError

    def _job_properties(self) -> dict[str, str]:
        """The properties a job submitted here carries (with its pool, when not the default)."""
        properties = self._local.current()
        pool = self._pool.get()
        if pool != DEFAULT_POOL:
            properties = {**properties, POOL: pool}
        return properties

    def set_local_property(self, key: str, value: str | None) -> None:
        """Set a local property for the jobs submitted from this asyncio task from now on.

        As PySpark's ``sc.setLocalProperty``, per asyncio task rather than per
        thread (see ``aiospark.jobgroups``).  ``"spark.scheduler.pool"`` chooses
        the scheduling pool, like ``Context.pool``.

        Parameters
        ----------
        key : str
            The property's name.
        value : str or None
            Its value; None removes it.

        Raises
        ------
        TypeError
            When ``key`` is not a str, or ``value`` neither a str nor None.

        See Also
        --------
        Context.get_local_property : Read one back.
        Context.job_group : Set a job group for a ``with`` block only.

        Examples
        --------
        >>> ctx.set_local_property("team", "search")
        >>> await ctx.parallelize([1], 1).map(
        ...     lambda _: aiospark.TaskContext.get().get_local_property("team")).collect()
        ['search']
        >>> ctx.set_local_property("team", None)
        >>> print(ctx.get_local_property("team"))
        None
        """
        key = _text(key, "a local property's key", optional=False)  # type: ignore[assignment]
        value = _text(value, f"the value of local property {key!r}")
        if key == POOL:
            self._pool.set(value or DEFAULT_POOL)
        else:
            self._local.update({key: value})

    def get_local_property(self, key: str) -> str | None:
        """A local property set in this asyncio task (or inherited by it), or None.

        Parameters
        ----------
        key : str
            The property's name.

        Returns
        -------
        str or None
            Its value, None when it is not set here.

        Examples
        --------
        >>> ctx.set_job_description("nightly load")
        >>> ctx.get_local_property("spark.job.description")
        'nightly load'
        >>> ctx.set_job_description(None)
        """
        if key == POOL:
            pool = self._pool.get()
            return None if pool == DEFAULT_POOL else pool
        return self._local.get(key)

    def set_job_group(
        self, group_id: str, description: str | None, interrupt_on_cancel: bool = False
    ) -> None:
        """Put the jobs submitted from this asyncio task from now on in job group ``group_id``.

        ``cancel_job_group(group_id)`` cancels the group's running jobs; the
        status page shows the group and ``description`` beside each job.  As
        PySpark's ``sc.setJobGroup``, per asyncio task rather than per thread:
        concurrent tasks each keep their own group (see ``aiospark.jobgroups``).

        Parameters
        ----------
        group_id : str
            The group's name.
        description : str or None
            The jobs' description (``spark.job.description``); None sets none.
        interrupt_on_cancel : bool, optional
            Accepted for PySpark's sake and kept as the property
            ``spark.job.interruptOnCancel``; it changes nothing: a cancelled
            job's tasks are always stopped as every cancelled task is (at the
            next record they read, or by restarting their executor after
            ``Context(task_kill_timeout=...)``).

        Raises
        ------
        TypeError
            When ``group_id`` is not a str, or ``description`` neither a str nor None.

        See Also
        --------
        Context.job_group : The same for a ``with`` block only.
        Context.clear_job_group : Leave the group.

        Examples
        --------
        >>> ctx.set_job_group("etl", "load the logs")
        >>> def group_of_job(_):
        ...     return aiospark.TaskContext.get().get_local_property("spark.jobGroup.id")
        >>> await ctx.parallelize([1], 1).map(group_of_job).collect()
        ['etl']
        >>> ctx.clear_job_group()
        """
        group_id = _text(group_id, "group_id", optional=False)  # type: ignore[assignment]
        description = _text(description, "description")
        self._local.update({GROUP: group_id, DESCRIPTION: description,
                            INTERRUPT_ON_CANCEL: "true" if interrupt_on_cancel else "false"})

    def clear_job_group(self) -> None:
        """Stop putting this asyncio task's jobs in a job group, and drop their description.

        Examples
        --------
        >>> ctx.set_job_group("etl", "load the logs")
        >>> ctx.clear_job_group()
        >>> print(ctx.get_local_property("spark.jobGroup.id"),
        ...       ctx.get_local_property("spark.job.description"))
        None None
        """
        self._local.update({GROUP: None, DESCRIPTION: None, INTERRUPT_ON_CANCEL: None})

    def set_job_description(self, value: str | None) -> None:
        """Describe the jobs submitted from this asyncio task from now on (None: no description).

        The status page shows it above each job's call site; tasks read it as
        the local property ``spark.job.description``.

        Parameters
        ----------
        value : str or None
            The description.

        Raises
        ------
        TypeError
            When ``value`` is neither a str nor None.

        Examples
        --------
        >>> ctx.set_job_description("count the words")
        >>> def description_of_job(_):
        ...     return aiospark.TaskContext.get().get_local_property("spark.job.description")
        >>> await ctx.parallelize(["a"], 1).map(description_of_job).collect()
        ['count the words']
        >>> ctx.set_job_description(None)
        """
        self._local.update({DESCRIPTION: _text(value, "a job description")})

    @contextlib.contextmanager
    def job_group(self, group_id: str, description: str | None = None) -> Iterator[str]:
        """Put the jobs submitted inside the ``with`` block in job group ``group_id``.

        ``set_job_group`` for a block: leaving it restores this asyncio task's
        local properties as they were when it began (undoing any set inside).

        Parameters
        ----------
        group_id : str
            The group's name.
        description : str or None, optional
            The jobs' description.

        Returns
        -------
        contextlib.AbstractContextManager of str
            ``with`` gives ``group_id``.

        Examples
        --------
        >>> with ctx.job_group("adhoc", "a quick look") as group:
        ...     await ctx.parallelize(range(3)).count()
        3
        >>> group, ctx.get_local_property("spark.jobGroup.id")
        ('adhoc', None)

        Concurrent asyncio tasks each keep their own group:

        >>> async def group_of_task(name):
        ...     with ctx.job_group(name):
        ...         await asyncio.sleep(0)
        ...         return ctx.get_local_property("spark.jobGroup.id")
        >>> await asyncio.gather(group_of_task("a"), group_of_task("b"))
        ['a', 'b']
        """
        group_id = _text(group_id, "group_id", optional=False)  # type: ignore[assignment]
        token = self._local.update({GROUP: group_id, DESCRIPTION: _text(description, "description"),
                                    INTERRUPT_ON_CANCEL: "false"})
        try:
            yield group_id
        finally:
            self._local.reset(token)

    async def cancel_job_group(self, group_id: str) -> None:
        """Cancel every running job of job group ``group_id``, whichever asyncio task runs it.

        The actions awaiting them raise ``JobCancelled``; their tasks on the
        workers are stopped as any cancelled task is.  Jobs submitted to the
        group afterwards run normally.

        Parameters
        ----------
        group_id : str
            The group (``set_job_group``, ``job_group``).

        Examples
        --------
        >>> import time
        >>> async def slow_count():   # 100 s of work, checking its cancellation often
        ...     with ctx.job_group("slow"):
        ...         return await ctx.parallelize(range(100_000), 2).map(
        ...             lambda x: time.sleep(0.001)).count()
        >>> async def cancel_once_submitted():
        ...     while not ctx.status_tracker().get_job_ids_for_group("slow"):
        ...         await asyncio.sleep(0.01)
        ...     await ctx.cancel_job_group("slow")
        >>> await asyncio.gather(slow_count(), cancel_once_submitted())
        Traceback (most recent call last):
        ...
        aiospark.errors.JobCancelled: job group 'slow' was cancelled
        """
        self._cancel(self._require_started().jobs.running_ids(group_id),
                     f"job group {group_id!r} was cancelled")

    async def cancel_all_jobs(self) -> None:
        """Cancel every running job of this context; their actions raise ``JobCancelled``.

        Examples
        --------
        >>> import time
        >>> slow = ctx.parallelize(range(100_000), 2).map(lambda x: time.sleep(0.001))
        >>> async def cancel_once_submitted():
        ...     while not ctx.status_tracker().get_active_job_ids():
        ...         await asyncio.sleep(0.01)
        ...     await ctx.cancel_all_jobs()
        >>> await asyncio.gather(slow.count(), cancel_once_submitted())
        Traceback (most recent call last):
        ...
        aiospark.errors.JobCancelled: all jobs were cancelled (cancel_all_jobs)
        """
        self._cancel(self._require_started().jobs.running_ids(),
                     "all jobs were cancelled (cancel_all_jobs)")

    def _cancel(self, job_ids: list[int], reason: str) -> None:
        scheduler = self._require_started()
        for job_id in job_ids:
            scheduler.cancel_job(job_id, JobCancelled(reason))

    def status_tracker(self) -> StatusTracker:
        """The driver's running and recent jobs and their stages (PySpark's ``statusTracker``).

        Returns
        -------
        StatusTracker
            Read-only views, read from the scheduler when called.

        Raises
        ------
        RuntimeError
            When the context is not started.

        Examples
        --------
        >>> tracker = ctx.status_tracker()
        >>> with ctx.job_group("tracked-once"):
        ...     await ctx.parallelize(range(4), 2).count()
        4
        >>> [job_id] = tracker.get_job_ids_for_group("tracked-once")
        >>> tracker.get_job_info(job_id).status
        'SUCCEEDED'
        """
        from aiospark.scheduler.tracker import StatusTracker

        scheduler = self._require_started()
        return StatusTracker(scheduler.jobs, scheduler.state)
