"""What the driver ships to its workers: files, modules, broadcast variables, accumulators.

``Context`` gets these methods from ``ShippingOps``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiospark.validation import check_path

if TYPE_CHECKING:
    from aiospark.scheduler.runner import Scheduler
    from aiospark.shared import Accumulator, AccumulatorParam, Broadcast


class ShippingOps:
    """``Context``'s files, modules, broadcast variables and accumulators.

    Mixed into ``Context``, which provides ``storage_options`` and ``_require_started``.
    """

    storage_options: dict[str, Any]

    def _require_started(self) -> Scheduler:  # provided by Context
        raise NotImplementedError

    def add_file(self, path: str, recursive: bool = False) -> None:
        """Ship a file (any fsspec path) to every worker; tasks find it with ``files.get(name)``.

        The file is read in the driver when this is called, and shipped under its
        base name; a later ``add_file`` of another file with that name replaces it.
        A directory is shipped whole with ``recursive=True`` (as in PySpark):
        ``files.get(its base name)`` is then a directory holding its files.

        Parameters
        ----------
        path : str
            The file's (or directory's) path or fsspec URL.
        recursive : bool, default False
            Allow a directory, shipping every file under it.

        Raises
        ------
        ValueError
            When a base name is not a plain file name, or ``path`` is a directory
            and ``recursive`` is false.
        RuntimeError
            When the context is not started.

        See Also
        --------
        Context.add_py_file : For modules that tasks import.

        Examples
        --------
        >>> path = f"{tmp_dir}/settings.txt"
        >>> _ = open(path, "w").write("debug=1")
        >>> ctx.add_file(path)
        >>> def setting(_):
        ...     from aiospark import files
        ...     return open(files.get("settings.txt")).read()
        >>> await ctx.parallelize([0]).map(setting).collect()
        ['debug=1']
        >>> os.makedirs(f"{tmp_dir}/conf-dir/sub", exist_ok=True)
        >>> _ = open(f"{tmp_dir}/conf-dir/sub/level.txt", "w").write("info")
        >>> ctx.add_file(f"{tmp_dir}/conf-dir", recursive=True)
        >>> def level(_):
        ...     from aiospark import files
        ...     return open(os.path.join(files.get("conf-dir"), "sub", "level.txt")).read()
        >>> await ctx.parallelize([0]).map(level).collect()
        ['info']
        """
        self._ship(check_path(path, "add_file"), python=False, recursive=recursive)

    def add_py_file(self, path: str) -> None:
        """Ship a ``.py`` module (or a ``.zip``/``.egg``/``.whl`` of them) that tasks can import.

        The file is read in the driver when this is called and put on the
        workers' import path; tasks started afterwards can import it.

        Parameters
        ----------
        path : str
            The file's path or fsspec URL.

        Raises
        ------
        ValueError
            When the file's base name is not a plain file name.
        RuntimeError
            When the context is not started.

        See Also
        --------
        Context.add_file : For data files.

        Examples
        --------
        >>> path = f"{tmp_dir}/doctest_helpers.py"
        >>> _ = open(path, "w").write("def triple(x):\\n    return 3 * x\\n")
        >>> ctx.add_py_file(path)
        >>> def use(x):
        ...     import doctest_helpers
        ...     return doctest_helpers.triple(x)
        >>> await ctx.parallelize([1, 2]).map(use).collect()
        [3, 6]
        """
        self._ship(check_path(path, "add_py_file"), python=True)

    def _ship(self, path: str, python: bool, recursive: bool = False) -> None:
        from aiospark import files

        scheduler = self._require_started()
        shipped = files.read_for_shipping(path, self.storage_options, recursive)
        for name, data in shipped:
            scheduler.add_file(name, data, python)
        files.driver_files[shipped[0][0].split("/")[0]] = path

    def broadcast(self, value: Any) -> Broadcast:
        """Ship a read-only value to every worker once; tasks read it as ``.value``.

        Each worker fetches it the first time one of its tasks needs it (from a
        peer that already has it when there is one) and keeps it for later tasks.

        Parameters
        ----------
        value : object
            The value; it is pickled at once, so later changes to it are not seen
            by tasks.

        Returns
        -------
        Broadcast
            A handle to pass to tasks (in closures); read it as ``.value``.

        Raises
        ------
        RuntimeError
            When the context is not started.

        See Also
        --------
        Broadcast.unpersist, Broadcast.destroy

        Examples
        --------
        >>> words = ctx.broadcast({"spark", "asyncio"})
        >>> await ctx.parallelize(["spark", "jvm", "asyncio"]).filter(
        ...     lambda w: w in words.value).collect()
        ['spark', 'asyncio']
        """
        return self._require_started().shared.new_broadcast(value)

    def accumulator(self, value: Any, accum_param: AccumulatorParam | None = None) -> Accumulator:
        """A counter or sum that tasks add to; updates count once per partition.

        ``accum_param`` says how to add values (default: ``+``, with
        ``value * 0`` as the zero).

        Parameters
        ----------
        value : object
            The initial value, in the driver.
        accum_param : AccumulatorParam or None, optional
            How values are added, and the zero each task starts from.  Default:
            ``+``, with ``value * 0`` as the zero (numbers, numpy arrays).

        Returns
        -------
        Accumulator
            The accumulator: tasks call ``.add(term)`` (or ``+=``), the driver
            reads ``.value``.

        Raises
        ------
        TypeError
            When ``accum_param`` is not an ``AccumulatorParam``.
        RuntimeError
            When the context is not started.

        Examples
        --------
        >>> errors = ctx.accumulator(0)
        >>> await ctx.parallelize(["ok", "bad", "bad"]).foreach(
        ...     lambda s: errors.add(1) if s == "bad" else None)
        >>> errors.value
        2
        """
        return self._require_started().shared.new_accumulator(value, accum_param)
