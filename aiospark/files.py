"""Files shipped to every worker with ``Context.add_file`` / ``add_py_file`` (Spark's SparkFiles).

>>> path = f"{tmp_dir}/lookup.txt"
>>> _ = open(path, "w").write("42")
>>> ctx.add_file(path)
>>> def read(_):
...     from aiospark import files
...     return open(files.get("lookup.txt")).read()
>>> await ctx.parallelize([0], 1).map(read).collect()
['42']
"""

from __future__ import annotations

import os
import re

from aiospark.taskcontext import current_task_context

_SAFE_NAME = re.compile(r"^[A-Za-z0-9._+-]{1,255}$")

#: In the driver: name -> the path given to add_file.
driver_files: dict[str, str] = {}


def check_name(name: str) -> str:
    """A shipped file's name must be a plain file name, never a path.

    >>> check_name("model.pkl")
    'model.pkl'
    >>> check_name("../etc/passwd")
    Traceback (most recent call last):
    ...
    ValueError: invalid file name '../etc/passwd': use a plain name without directories
    """
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or name in (".", ".."):
        raise ValueError(f"invalid file name {name!r}: use a plain name without directories")
    return name


def root_directory() -> str | None:
    """The directory holding shipped files, in a task; None in the driver."""
    context = current_task_context()
    return None if context is None else getattr(context, "files_dir", None)


def get(name: str) -> str:
    """The absolute path of a file shipped with ``add_file``, wherever this runs.

    >>> get("lookup.txt").endswith("lookup.txt")
    True
    """
    check_name(name)
    root = root_directory()
    if root is not None:
        return os.path.join(root, name)
    if name in driver_files:
        return os.path.abspath(driver_files[name])
    raise FileNotFoundError(f"no file named {name!r} was added with add_file")
