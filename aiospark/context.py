"""The ``Context``: the entry point, connected to a cluster or running an embedded one.

>>> isinstance(ctx.default_parallelism, int)
True
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import importlib
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from aiospark import offload
from aiospark.errors import ClusterError
from aiospark.jobgroups import JobGroupOps, LocalProperties
from aiospark.jobpath import JobPath
from aiospark.memory import parse_size
from aiospark.progress import ProgressBar, ProgressStream, interactive
from aiospark.protocol import tls
from aiospark.protocol.frames import CODECS, available_codecs
from aiospark.protocol.tls import master_http_url
from aiospark.scheduler.cleaner import Cleaner, Kind
from aiospark.scheduler.pools import DEFAULT_POOL, Policy
from aiospark.shipping import ShippingOps
from aiospark.sources import SourceOps
from aiospark.validation import check_partitions, check_path, positive_int

if TYPE_CHECKING:
    import aiohttp

    from aiospark.rdd import RDD
    from aiospark.scheduler.cleaning import CleaningTask
    from aiospark.scheduler.runner import JobHandle, Scheduler

log = logging.getLogger(__name__)

#: How long ``start`` waits for the cluster before giving up.
START_TIMEOUT = 60.0

#: What a started driver uses, imported by ``start`` on the helper thread, so that
#: importing ``aiospark.Context`` (often first done inside the event loop) stays light.
DRIVER_MODULES = (
    "aiohttp",
    "aiospark.protocol.auth",
    "aiospark.rdd",
    "aiospark.scheduler.runner",
    "aiospark.embedded",
)


def import_driver_modules() -> None:
    """Import ``DRIVER_MODULES`` (a third of a second when none is loaded yet).

    >>> import_driver_modules()
    """
    for name in DRIVER_MODULES:
        importlib.import_module(name)


def default_app_name() -> str:
    """The program's file name (``python app.py``, ``aiospark submit app.py``), else "aiospark".

    A REPL, a notebook or ``python -m module`` has no program file of its own.

    >>> default_app_name()   # doctests run under pytest's ``__main__.py``
    'aiospark'
    """
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py"):
        return "aiospark"
    name = os.path.basename(path)
    return "aiospark" if name == "__main__.py" else name


class Context(SourceOps, ShippingOps, JobGroupOps):
    """A connection to an aiospark cluster; creates RDDs and runs their jobs.

    ``Context()`` starts an embedded cluster of real local processes (one
    master, one shuffle service and ``workers`` workers); ``Context("aiospark://host:port")``,
    or the ``AIOSPARK_MASTER`` environment variable, connects to a running
    master instead.

    Jobs share the cluster: ``scheduler_mode="fair"`` (the default) gives each
    free task slot to the job furthest below its fair share, so a small job
    runs while a big one still has tasks waiting; ``"fifo"`` runs jobs in
    submission order, a later job getting slots only when the earlier ones
    have no task waiting.  Under FAIR, ``pools`` groups jobs (see below), and
    ``ctx.pool(name)`` chooses the pool of the jobs submitted inside it
    (docs/scheduling.md has the rules).

    Use it as ``async with Context() as ctx:``, or call ``await ctx.start()``
    and ``await ctx.stop()`` yourself (in the ``python -m asyncio`` REPL, or a
    web service's startup and shutdown hooks).  Nothing starts before that:
    the constructor only checks its arguments.

    Parameters
    ----------
    master : str or None, optional
        The master to connect to, as ``aiospark://host:port`` (or ``http://``,
        ``https://``).  Default: the ``AIOSPARK_MASTER`` environment variable,
        and when that is unset too, an embedded cluster.
    workers : int or None, optional
        Worker processes of the embedded cluster (default: one per CPU).  Only
        for the embedded cluster: refused with a ``master`` argument, ignored
        (with an INFO log line) when the master comes from ``AIOSPARK_MASTER``,
        as under ``aiospark submit``, so the program runs unchanged.
    secret : str or None, optional
        The cluster secret.  Default: a new random one for the embedded
        cluster; for a remote master, ``AIOSPARK_SECRET`` or the file named by
        ``AIOSPARK_SECRET_FILE``, else, for a master on this machine, this
        user's local secret (as for ``aiospark shell``).
    app_name : str or None, optional
        The application's name, as the status page shows it.  Default: the
        program's file name (``app.py``, also under ``aiospark submit``), or
        ``"aiospark"`` in a REPL or notebook.
    max_task_attempts : int, default 4
        Tries per task before the job fails.
    locality_wait : float, default 3.0
        Seconds a task waits for the busy worker holding its cached data
        before running elsewhere (as in Spark: fetching a cached split from
        another worker costs more than a short wait).
    speculation : bool, default False
        Launch a second copy of a task running far longer than its stage's
        median; the first copy to finish wins.
    task_kill_timeout : float or None, default 1.0
        Seconds a cancelled task may run on (say inside one long C call or a
        blocking sleep) before the worker process running it is killed and
        restarted, its cached blocks then recomputed from lineage.  ``None``
        never kills: the task's core then stays taken until the task ends by
        itself.
    worker_timeout : float, default 10.0
        Seconds of silence before the embedded master declares a worker lost.
    worker_memory : int, str or None, optional
        Each embedded worker's budget for cached blocks and task buffers, in
        bytes or as a size such as ``"2g"``; past it blocks are evicted or
        spilled and shuffles spill to disk.  Default: 60% of the machine's
        memory shared among the workers.  Only for the embedded cluster
        (remote workers take ``--memory``), like ``workers``.
    shuffle_compression : {"auto", "lz4", "zlib", None}, default "auto"
        How shuffle data are compressed: ``"auto"`` uses lz4, when installed,
        for clusters spanning several hosts and nothing on one host; ``None``
        never compresses.
    storage_options : dict or None, optional
        Options passed to fsspec for every path the context reads or writes.
    log_level : str, default "WARNING"
        The log level of the embedded cluster's processes.
    progress_bar : bool or None, optional
        Show a status line on stderr once a job has run half a second (each
        stage's tasks done, running and in all), updated as the job runs.
        Default: on in interactive sessions, off in scripts and tests.
    scheduler_mode : {"fair", "fifo"}, default "fair"
        How jobs share the task slots (see above).
    pools : mapping or None, optional
        The FAIR scheduler's pools: ``{name: {"weight": w, "min_share": n,
        "mode": "fair" | "fifo"}}``, each key optional (defaults 1, 0,
        ``"fair"``).  A pool gets slots in proportion to its weight, and up to
        ``min_share`` slots before that.
    cleanup : bool, default True
        Clean up, while the context lives, what the program no longer
        references: the map outputs of shuffles whose RDDs were
        garbage-collected, the cached blocks of collected persisted RDDs, the
        copies of collected broadcasts and the checkpoint files of collected
        checkpointed RDDs (Spark's ``ContextCleaner``).  Keep an RDD to keep
        its shuffle output and cached blocks.  With ``False`` they stay until
        ``stop()`` (docs/caching.md, docs/shuffles.md).
    barrier_timeout : float, default 3600.0
        Seconds a ``BarrierTaskContext.barrier()`` or ``all_gather()`` call
        waits for the other tasks of its barrier stage before it fails (and
        the stage is retried).  Spark's default is 365 days; a failed task or
        a lost worker makes the waiting calls fail at once anyway
        (docs/scheduling.md, "Barrier execution").

    Raises
    ------
    ValueError
        For an invalid argument: ``workers`` not a positive int, ``workers``
        or ``worker_memory`` with a ``master`` argument, a negative
        ``task_kill_timeout``, a ``barrier_timeout`` not above 0, an unknown or uninstalled
        ``shuffle_compression`` codec, or a bad ``scheduler_mode`` or pool.

    See Also
    --------
    Context.start : Start the cluster (or connect to it).
    Context.pool : Choose the scheduling pool of the jobs submitted in a block.

    Examples
    --------
    >>> web = Context(pools={"batch": {"weight": 1},
    ...                      "interactive": {"weight": 4, "min_share": 1}})
    >>> web.scheduler_mode
    'fair'
    >>> Context(scheduler_mode="lifo")
    Traceback (most recent call last):
    ...
    ValueError: scheduler_mode must be 'fair' or 'fifo', got 'lifo'
    >>> async with Context(workers=1) as small:
    ...     await small.parallelize([1, 2, 3]).map(lambda x: x * 10).collect()
    [10, 20, 30]
    """

    def __init__(
        self,
        master: str | None = None,
        *,
        workers: int | None = None,
        secret: str | None = None,
        app_name: str | None = None,
        max_task_attempts: int = 4,
        locality_wait: float = 3.0,
        speculation: bool = False,
        task_kill_timeout: float | None = 1.0,
        worker_timeout: float = 10.0,
        worker_memory: int | str | None = None,
        shuffle_compression: str | None = "auto",
        storage_options: dict[str, Any] | None = None,
        log_level: str = "WARNING",
        progress_bar: bool | None = None,
        scheduler_mode: str = "fair",
        pools: Mapping[str, Mapping[str, Any]] | None = None,
        cleanup: bool = True,
        barrier_timeout: float = 3600.0,
    ) -> None:
        if workers is not None:
            positive_int(workers, "workers")
        if not master and os.environ.get("AIOSPARK_MASTER"):
            # The master comes from outside the program (``aiospark submit``): the
            # program runs unchanged, its embedded-cluster settings unused.
            master = os.environ["AIOSPARK_MASTER"]
            ignored = [f"{name}=" for name, value in (("workers", workers),
                       ("worker_memory", worker_memory)) if value is not None]
            if ignored:
                log.info("%s ignored: running against the master %s (AIOSPARK_MASTER)",
                         " and ".join(ignored), master)
            workers = worker_memory = None
        master = master or None
        if master is not None and workers is not None:
            raise ValueError("workers= applies to the embedded cluster, not to a remote master")
        self.master = master
        self.app_name = app_name or default_app_name()
        self.app_id = f"app-{uuid.uuid4().hex[:16]}"
        self.storage_options = dict(storage_options or {})
        self._workers = workers or os.cpu_count() or 1
        self._secret = secret
        self._max_attempts = max_task_attempts
        self._locality_wait = locality_wait
        self._speculation = speculation
        if task_kill_timeout is not None and not task_kill_timeout >= 0:
            raise ValueError(f"task_kill_timeout must be >= 0 seconds or None, "
                             f"got {task_kill_timeout!r}")
        self._kill_timeout = task_kill_timeout
        if not barrier_timeout > 0:
            raise ValueError(f"barrier_timeout must be > 0 seconds, got {barrier_timeout!r}")
        self._barrier_timeout = float(barrier_timeout)
        self._worker_timeout = worker_timeout
        if worker_memory is not None and master is not None:
            raise ValueError("worker_memory= applies to the embedded cluster; give remote "
                             "workers --memory instead")
        self._worker_memory = None if worker_memory is None else parse_size(worker_memory)
        choices = ("auto", None, *CODECS)
        if shuffle_compression not in choices:
            raise ValueError(f"shuffle_compression must be one of {choices}, "
                             f"got {shuffle_compression!r}")
        if shuffle_compression not in ("auto", None, *available_codecs()):
            raise ValueError(f"shuffle_compression={shuffle_compression!r} needs the "
                             f"{shuffle_compression} package: pip install {shuffle_compression}")
        self._shuffle_compression = shuffle_compression
        self._log_level = log_level
        Policy(scheduler_mode, pools)  # refuse a bad mode or pool now, not at start()
        self.scheduler_mode = scheduler_mode
        self._pools = {name: dict(settings) for name, settings in (pools or {}).items()}
        #: the pool of the jobs submitted from the current asyncio task (see ``pool``)
        self._pool: contextvars.ContextVar[str] = contextvars.ContextVar(
            f"aiospark_pool_{self.app_id}", default=DEFAULT_POOL
        )
        #: local properties and job group, per asyncio task (``aiospark.jobgroups``)
        self._local = LocalProperties(f"aiospark_properties_{self.app_id}")
        self._cluster: Any = None
        self._session: aiohttp.ClientSession | None = None
        self._scheduler: Scheduler | None = None
        self._checkpoint_dir: str | None = None
        self._progress_bar = progress_bar
        self._progress_task: asyncio.Task | None = None
        self._next_rdd = 0
        self._next_shuffle = 0
        #: what the program no longer references, to clean up (``cleanup=``)
        self._cleaner = Cleaner(enabled=bool(cleanup))
        self._cleaning: CleaningTask | None = None
        #: The one path every action's jobs take (``aiospark.jobpath``).
        self.jobs = JobPath(self._submit_job)
        self._started = False
        self._start_time: int | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> Context:
        """Start the embedded cluster or connect to the master; returns ``self``.

        Idempotent: starting a started context does nothing.  Must be called (or
        ``async with`` used) before anything runs a job.

        Returns
        -------
        Context
            ``self``, started, so that ``ctx = await Context().start()`` works.

        Raises
        ------
        ClusterError
            When the cluster does not start (or a remote master is not reached)
            within ``START_TIMEOUT`` seconds, or a remote master's secret is not
            given anywhere.

        See Also
        --------
        Context.stop : The reverse.

        Examples
        --------
        >>> c = await Context(workers=1).start()
        >>> c.default_parallelism
        2
        >>> await c.stop()
        """
        if self._started:
            return self
        from aiospark.protocol.auth import auth_headers, new_secret

        cluster_start = None
        if self.master is None:
            from aiospark.embedded import EmbeddedCluster

            secret = self._secret or new_secret()
            self._cluster = EmbeddedCluster(
                self._workers, secret, worker_timeout=self._worker_timeout,
                log_level=self._log_level, worker_memory=self._worker_memory,
            )
            # Its processes start while this one imports the driver's modules.
            cluster_start = asyncio.ensure_future(self._cluster.start())
        try:
            await offload.run(import_driver_modules)
            import aiohttp

            from aiospark.scheduler.runner import Scheduler

            if cluster_start is not None:
                master_url = await cluster_start
            else:
                master_url = master_http_url(self.master)
                # Off the loop: it may read a file and resolve the master's host name.
                secret = self._secret or await offload.run(_secret_from_environment, master_url)
            self._session = aiohttp.ClientSession(
                headers=auth_headers(secret),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                connector=aiohttp.TCPConnector(limit=0, ssl=tls.client_context()),
            )
            self._scheduler = Scheduler(
                self.app_id,
                master_url,
                self._session,
                max_attempts=self._max_attempts,
                locality_wait=self._locality_wait,
                speculation=self._speculation,
                kill_timeout=self._kill_timeout,
                app_name=self.app_name,
                scheduler_mode=self.scheduler_mode,
                pools=self._pools,
                watch=self.watch,
                barrier_timeout=self._barrier_timeout,
            )
            async with asyncio.timeout(START_TIMEOUT):
                await self._scheduler.start()
            wanted = self._workers if self._cluster is not None else 1
            await self._scheduler.wait_for_workers(wanted, START_TIMEOUT)
        except BaseException as exc:
            if cluster_start is not None and not cluster_start.done():
                cluster_start.cancel()  # it stops what it started
                await asyncio.wait([cluster_start])
            await self._shutdown()
            if isinstance(exc, TimeoutError):
                raise ClusterError(
                    f"the cluster did not start within {START_TIMEOUT:.0f}s"
                ) from None
            raise
        self._started = True
        self._start_time = time.time_ns() // 1_000_000
        from aiospark.scheduler.cleaning import CleaningTask

        self._cleaning = CleaningTask(self._cleaner, self._scheduler, self._remove_checkpoint)
        self._cleaning.start()
        show_bar = interactive() if self._progress_bar is None else self._progress_bar
        if show_bar:
            bar = ProgressBar(self._scheduler.progress.subscribe(),
                              status=self._scheduler.jobs.running_reports)
            self._progress_task = asyncio.create_task(bar.run())
        return self

    async def stop(self) -> None:
        """Cancel running jobs, disconnect, and stop the embedded cluster if there is one.

        Running jobs fail with ``JobCancelled``.  Does nothing on a context that is
        not started.

        See Also
        --------
        Context.start : The reverse.

        Examples
        --------
        >>> c = await Context(workers=1).start()
        >>> await c.stop()
        """
        self._started = False
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._progress_task is not None:
            self._progress_task.cancel()
            self._progress_task = None
        if self._cleaning is not None:
            await self._cleaning.stop()
            self._cleaning = None
        shuffle_urls = set()
        if self._scheduler is not None:
            shuffle_urls = {w.shuffle_url for w in self._scheduler.known.values()}
            await self._scheduler.stop()
        if self._session is not None and self._cluster is None:
            # A standalone cluster outlives this driver: free its shuffle files now.
            await asyncio.gather(*(self._delete_shuffle_files(url) for url in shuffle_urls))
        if self._session is not None:
            await self._session.close()
        if self._cluster is not None:
            await self._cluster.stop()
        self._scheduler = None
        self._session = None
        self._cluster = None
        self._cleaner.take(self._cleaner.pending + 1)  # the application's files are gone with it

    async def _delete_shuffle_files(self, shuffle_url: str) -> None:
        import aiohttp

        assert self._session is not None
        url = f"{shuffle_url}/v1/shuffle/{self.app_id}"
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with self._session.delete(url, timeout=aiohttp.ClientTimeout(total=2)):
                pass

    def _remove_checkpoint(self, directory: str) -> None:
        from aiospark.io.checkpoint import remove_checkpoint

        remove_checkpoint(directory, self.storage_options)

    async def _clean_now(self) -> None:
        """Clean up everything the cleaner queued so far (tests and benchmarks call it
        after ``gc.collect()``; the cleaning task does it by itself meanwhile)."""
        if self._cleaning is not None:
            await self._cleaning.drain()

    async def __aenter__(self) -> Context:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- properties -----------------------------------------------------------------------

    @property
    def default_parallelism(self) -> int:
        """Partitions used when none are given: the cluster's cores (at least 2).

        >>> ctx.default_parallelism >= 2
        True
        """
        cores = self._scheduler.total_cores if self._scheduler is not None else 0
        return max(cores, 2)

    @property
    def default_min_partitions(self) -> int:
        """Minimum partitions of ``text_file`` when none are given: ``min(parallelism, 2)``.

        >>> ctx.default_min_partitions
        2
        """
        return min(self.default_parallelism, 2)

    @contextlib.contextmanager
    def pool(self, name: str | None) -> Iterator[str]:
        """Run the jobs submitted inside the ``with`` block in scheduling pool ``name``.

        The asyncio form of Spark's ``sc.setLocalProperty("spark.scheduler.pool",
        name)``: the choice lives in a ``contextvars.ContextVar``, so each
        asyncio task has its own (a task created inside the block keeps it;
        concurrent request handlers do not see each other's).  ``None`` is the
        default pool.  A pool not given to ``Context(pools=...)`` gets the
        default settings.  Pools only matter with ``scheduler_mode="fair"``.

        Parameters
        ----------
        name : str or None
            The pool's name; ``None`` is the default pool, ``"default"``.

        Returns
        -------
        contextlib.AbstractContextManager of str
            A context manager; ``with`` gives the pool's name, and leaving the
            block restores the pool that was current before.

        Raises
        ------
        ValueError
            When ``name`` is neither ``None`` nor a non-empty str.

        See Also
        --------
        Context.current_pool : The pool in effect here.

        Examples
        --------
        >>> with ctx.pool("interactive") as name:
        ...     await ctx.parallelize(range(10), 2).count()
        10
        >>> name, ctx.current_pool
        ('interactive', 'default')

        Concurrent asyncio tasks each keep their own pool:

        >>> async def count_in(pool):
        ...     with ctx.pool(pool):
        ...         await ctx.parallelize(range(4), 2).count()
        ...         return ctx.current_pool
        >>> await asyncio.gather(count_in("batch"), count_in("interactive"))
        ['batch', 'interactive']
        """
        if name is None:
            name = DEFAULT_POOL
        if not isinstance(name, str) or not name:
            raise ValueError(f"a pool name must be a non-empty str or None, got {name!r}")
        token = self._pool.set(name)
        try:
            yield name
        finally:
            self._pool.reset(token)

    @property
    def current_pool(self) -> str:
        """The pool jobs submitted from here go to (``"default"`` outside ``pool(...)``).

        >>> ctx.current_pool
        'default'
        """
        return self._pool.get()

    def _require_started(self) -> Scheduler:
        if self._scheduler is None or not self._started:
            raise RuntimeError(
                "the Context is not started: use 'async with Context() as ctx' "
                "or 'await ctx.start()'"
            )
        return self._scheduler

    # -- RDD sources ------------------------------------------------------------------------

    @property
    def application_id(self) -> str:
        """This driver's id on the cluster (also the name of its shuffle directories).

        >>> ctx.application_id.startswith("app-")
        True
        """
        return self.app_id

    @property
    def start_time(self) -> int:
        """When the context started, in milliseconds since the epoch (PySpark's ``startTime``).

        Raises
        ------
        RuntimeError
            When the context is not started.

        Examples
        --------
        >>> import time
        >>> 0 < ctx.start_time <= time.time() * 1000
        True
        """
        self._require_started()
        assert self._start_time is not None
        return self._start_time

    @property
    def ui_web_url(self) -> str | None:
        """The master's URL (its ``/v1/status`` serves the cluster's state), once started.

        >>> ctx.ui_web_url.startswith("http://127.0.0.1:")
        True
        """
        return None if self._scheduler is None else self._scheduler.master_url

    async def status_page_link(self) -> str:
        """A link that opens the master's live status page in a browser, once.

        The link carries a one-time token (valid 10 minutes) that the page
        trades for a session cookie; it never contains the cluster secret.
        See docs/status-page.md.

        Returns
        -------
        str
            What awaiting gives: the link, an absolute URL on the master.

        Raises
        ------
        RuntimeError
            When the context is not started.

        Examples
        --------
        >>> link = await ctx.status_page_link()
        >>> link.startswith(ctx.ui_web_url + "/ui/login?token=")
        True
        """
        scheduler = self._require_started()
        assert self._session is not None
        async with self._session.post(f"{scheduler.master_url}/v1/ui/tokens") as resp:
            resp.raise_for_status()
            answer = await resp.json()
        return scheduler.master_url + answer["path"]

    def set_checkpoint_dir(self, path: str) -> None:
        """Where ``rdd.checkpoint()`` writes; any fsspec path the workers can reach.

        The directory is created (in the driver) if it does not exist.

        Parameters
        ----------
        path : str
            A directory path or fsspec URL, opened with the context's
            ``storage_options``.

        See Also
        --------
        RDD.checkpoint : Marks an RDD to be saved there.

        Examples
        --------
        >>> ctx.set_checkpoint_dir(f"{tmp_dir}/ckpt")
        """
        import fsspec

        path = check_path(path, "set_checkpoint_dir")
        fs, root = fsspec.core.url_to_fs(path, **self.storage_options)
        fs.makedirs(root, exist_ok=True)
        self._checkpoint_dir = path.rstrip("/")

    def progress(self) -> ProgressStream:
        """An async iterator of this driver's job events, from now until ``close()``.

        Events are dicts: ``job_started``, ``stage_started``, ``task_finished``
        (with ``finished`` and ``tasks`` counts for its stage), ``task_failed``,
        ``job_finished``, ``job_failed``, ``job_cancelled``.

        Returns
        -------
        ProgressStream
            An async iterator of event dicts (``async for event in stream``); its
            ``drain()`` gives the events received so far without waiting, and
            ``close()`` stops it.

        Raises
        ------
        RuntimeError
            When the context is not started.

        Examples
        --------
        >>> events = ctx.progress()
        >>> await ctx.parallelize(range(6), 3).sum()
        15
        >>> [e["finished"] for e in events.drain() if e["event"] == "task_finished"]
        [1, 2, 3]
        >>> events.close()
        """
        return self._require_started().progress.subscribe()

    async def run_job(
        self,
        rdd: RDD,
        partition_func: Callable[[Iterator[Any]], Iterable[Any]],
        partitions: Iterable[int] | None = None,
        allow_local: bool = False,
    ) -> list[Any]:
        """Run ``partition_func(iterator)`` on some partitions of ``rdd``; the items it returns.

        PySpark's ``runJob``: the iterables the function returns, one per
        partition, are concatenated in the order of ``partitions``.

        Parameters
        ----------
        rdd : RDD
            An RDD of this context.
        partition_func : callable
            ``partition_func(iterator)`` returns an iterable of results; it runs on
            the workers, once per partition.
        partitions : iterable of int or None, optional
            The partitions to run on (default: all), each in
            ``range(rdd.get_num_partitions())``.
        allow_local : bool, default False
            Accepted for PySpark compatibility (ignored, as in PySpark).

        Returns
        -------
        list
            What awaiting gives: the items of every partition's result, in order.

        Raises
        ------
        ValueError
            When a partition is out of range, or ``rdd`` belongs to another context.

        Examples
        --------
        >>> rdd = ctx.parallelize(range(6), 3)
        >>> await ctx.run_job(rdd, lambda part: [x * x for x in part])
        [0, 1, 4, 9, 16, 25]
        >>> await ctx.run_job(rdd, lambda part: [x * x for x in part], [0, 2])
        [0, 1, 16, 25]
        """
        from aiospark.jobpath import partition_results

        if rdd.ctx is not self:
            raise ValueError(f"run_job(): {rdd!r} belongs to another Context")
        wanted = check_partitions(partitions, rdd.get_num_partitions())
        parts = await self.jobs.run(rdd, functools.partial(partition_results, partition_func),
                                    wanted)
        return await offload.concat_parts(parts)

    # -- what RDDs ask of their context (``lineage.Driver``) ---------------------------------

    def get_checkpoint_dir(self) -> str | None:
        """The directory ``set_checkpoint_dir`` set, or None.

        Part of what RDDs ask of their context (the ``lineage.Driver`` protocol).

        Returns
        -------
        str or None
            The checkpoint directory, without a trailing ``/``, or ``None`` before
            ``set_checkpoint_dir``.

        Examples
        --------
        >>> ctx.set_checkpoint_dir(f"{tmp_dir}/ckpt-dir")
        >>> ctx.get_checkpoint_dir() == f"{tmp_dir}/ckpt-dir"
        True
        """
        return self._checkpoint_dir

    def new_rdd_id(self) -> int:
        """A fresh RDD id (each RDD takes one when it is made).

        Part of the ``lineage.Driver`` protocol; users need not call it.

        Returns
        -------
        int
            An id no other RDD of this context has (they increase from 1).

        Examples
        --------
        >>> ctx.new_rdd_id() < ctx.new_rdd_id()
        True
        """
        self._next_rdd += 1
        return self._next_rdd

    def new_shuffle_id(self) -> int:
        """A fresh shuffle id (each shuffle dependency takes one when it is made).

        Part of the ``lineage.Driver`` protocol; users need not call it.

        Returns
        -------
        int
            An id no other shuffle of this context has (they increase from 1).

        Examples
        --------
        >>> ctx.new_shuffle_id() < ctx.new_shuffle_id()
        True
        """
        self._next_shuffle += 1
        return self._next_shuffle

    def shuffle_codec(self) -> str | None:
        """The codec for a new shuffle's data: ``auto`` compresses (lz4) only across hosts.

        On one host shuffle data never leave the page cache, and compressing
        them costs more CPU than it saves (docs/benchmarks.md has the figures).

        Part of the ``lineage.Driver`` protocol: each shuffle dependency asks it
        once, when it is made.

        Returns
        -------
        str or None
            ``"lz4"`` or ``"zlib"``, or ``None`` for no compression: what
            ``shuffle_compression`` says, ``"auto"`` giving lz4 when installed and
            the cluster's workers are on more than one host.

        Examples
        --------
        >>> print(ctx.shuffle_codec())  # the doctests' cluster is on one host
        None
        """
        mode = self._shuffle_compression
        if mode != "auto":
            return mode
        if "lz4" not in available_codecs() or self._scheduler is None:
            return None
        hosts = {w.host for w in self._scheduler.state.workers.values()}
        return "lz4" if len(hosts) > 1 else None

    def forget_rdd(self, rdd_id: int) -> None:
        """Drop the cached splits of RDD ``rdd_id`` on every worker (``RDD.unpersist``).

        Part of the ``lineage.Driver`` protocol; ``RDD.unpersist`` calls it.  The
        workers drop the blocks in the background; nothing happens before the
        context is started.

        Parameters
        ----------
        rdd_id : int
            The RDD's ``id``.

        Examples
        --------
        >>> rdd = ctx.parallelize([1]).cache()
        >>> ctx.forget_rdd(rdd.id)
        """
        if self._scheduler is not None:
            self._scheduler.unpersist(rdd_id)

    def watch(self, obj: object, kind: Kind, key: int | str) -> None:
        """Clean ``(kind, key)`` up on the cluster once ``obj`` is garbage-collected.

        Part of the ``lineage.Driver`` protocol: shuffle dependencies, persisted
        and checkpointed RDDs and broadcasts call it when they are made; users
        need not.  Does nothing with ``Context(cleanup=False)``.

        Parameters
        ----------
        obj : object
            What the program holds (weakly referenced).
        kind : {"shuffle", "rdd", "broadcast", "checkpoint"}
            What it leaves on the cluster: a shuffle's map outputs, an RDD's
            cached blocks, a broadcast's copies, a checkpoint's files.
        key : int or str
            The shuffle, RDD or broadcast id, or the checkpoint directory.

        Examples
        --------
        >>> rdd = ctx.parallelize(range(4), 2).map(lambda x: (x % 2, x)).reduce_by_key(
        ...     lambda a, b: a + b)
        >>> await rdd.collect()
        [(0, 2), (1, 4)]
        >>> del rdd  # its shuffle's files are deleted in the background
        """
        self._cleaner.watch(obj, kind, key)

    def _submit_job(
        self, rdd: RDD, func: Callable, partitions: list[int] | None = None
    ) -> JobHandle:
        return self._require_started().submit(
            rdd, func, partitions, self._pool.get(), self._job_properties())


def _secret_from_environment(master_url: str) -> str:
    from aiospark import security
    from aiospark.config import ConfigError

    try:
        return security.client_secret(None, master_url).value
    except ConfigError as exc:  # AIOSPARK_SECRET_FILE cannot be read, or is empty
        raise ClusterError(str(exc)) from None
