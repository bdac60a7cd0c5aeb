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
import posixpath
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


def check_relative_name(name: str) -> str:
    """A shipped file's name inside a shipped directory: plain names joined by ``/``.

    >>> check_relative_name("conf/app/settings.ini")
    'conf/app/settings.ini'
    >>> check_relative_name("conf/../../etc/passwd")
    Traceback (most recent call last):
    ...
    ValueError: invalid file name '..': use a plain name without directories
    """
    if not isinstance(name, str):
        raise ValueError(f"invalid file name {name!r}")
    for part in name.split("/"):
        check_name(part)
    return name


def read_for_shipping(
    path: str, storage_options: dict, recursive: bool
) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of the file at ``path``, or of every file under it when a directory.

    A directory ships as ``<its base name>/<path inside it>`` names, so tasks
    find it with ``files.get(base name)``; it needs ``recursive=True``, as in
    PySpark's ``addFile``.

    >>> folder = f"{tmp_dir}/doctest-ship"
    >>> os.makedirs(f"{folder}/sub", exist_ok=True)
    >>> _ = open(f"{folder}/a.txt", "w").write("a")
    >>> _ = open(f"{folder}/sub/b.txt", "w").write("b")
    >>> read_for_shipping(folder, {}, recursive=True)
    [('doctest-ship/a.txt', b'a'), ('doctest-ship/sub/b.txt', b'b')]
    >>> read_for_shipping(folder, {}, recursive=False)
    Traceback (most recent call last):
    ...
    ValueError: .../doctest-ship is a directory: add it with recursive=True
    """
    import fsspec

    fs, root = fsspec.core.url_to_fs(path, **storage_options)
    base = check_name(posixpath.basename(str(root).rstrip("/")))
    if not fs.isdir(root):
        with fs.open(root, "rb") as f:
            return [(base, f.read())]
    if not recursive:
        raise ValueError(f"{path} is a directory: add it with recursive=True")
    top = str(root).rstrip("/")
    shipped = []
    for found in sorted(fs.find(root)):
        name = f"{base}/{posixpath.relpath(found, top)}"
        with fs.open(found, "rb") as f:
            shipped.append((check_relative_name(name), f.read()))
    if not shipped:
        raise ValueError(f"{path} is a directory without files: nothing to ship")
    return shipped


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
