"""Input paths: expanding paths, globs and lists; codecs by extension; opening files.

Every input method (``text_file``, ``whole_text_files``, ``binary_files``,
``pickle_file``) resolves its ``path`` argument in the driver with
:func:`expand_paths`, through fsspec, so any fsspec URL works (``s3://``,
``gs://``, ``hdfs://``, ``file://``, ``memory://`` ...) with the context's
``storage_options``.  Tasks open the files with :func:`open_input`.

>>> import fsspec
>>> fs = fsspec.filesystem("memory")
>>> fs.pipe("/doctest-paths/logs/a.log.gz", b"")
>>> _, paths = expand_paths("memory:///doctest-paths/logs/*.gz")
>>> paths, compression_of(paths[0])
(['/doctest-paths/logs/a.log.gz'], 'gzip')
>>> fs.rm("/doctest-paths", recursive=True)
"""

from __future__ import annotations

import errno
import posixpath
from typing import Any

import fsspec
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.utils import infer_compression

from aiospark.io import codecs  # noqa: F401 - registers the "deflate" codec (.deflate files)

__all__ = [
    "compression_of",
    "expand_paths",
    "for_workers",
    "is_process_local",
    "open_input",
    "protocols",
]

_GLOB_CHARS = frozenset("*?[")

#: Extensions of codecs fsspec supports when their package is installed:
#: extension -> (codec name, package to install).
_OPTIONAL_CODECS = {"zst": ("zstd", "zstandard"), "lz4": ("lz4", "lz4")}


def protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    """The protocol names of a filesystem, as a tuple.

    >>> protocols(fsspec.filesystem("file"))
    ('file', 'local')
    """
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


def is_process_local(fs: fsspec.AbstractFileSystem) -> bool:
    """Whether the filesystem's files live in this process only (``memory://``).

    Workers are other processes: they cannot see such files, so inputs on them
    are shipped with the tasks (:func:`for_workers`) and outputs are refused.

    >>> is_process_local(fsspec.filesystem("memory")), is_process_local(fsspec.filesystem("file"))
    (True, False)
    """
    return "memory" in protocols(fs)


def compression_of(path: str) -> str | None:
    """The fsspec codec name for ``path``'s extension, or ``None`` for an uncompressed file.

    ``ValueError`` names the file and the package to install when the extension
    is a known codec's whose package is missing (``.zst`` without ``zstandard``).

    >>> compression_of("logs/day-1.txt.bz2"), compression_of("logs/day-1.txt")
    ('bz2', None)
    """
    compression = infer_compression(path)
    if compression is not None:
        return compression
    ext = path.rsplit(".", 1)[-1].lower() if "." in posixpath.basename(path) else ""
    if ext in _OPTIONAL_CODECS:
        codec, package = _OPTIONAL_CODECS[ext]
        raise ValueError(
            f"cannot read {path}: its {codec} compression needs the {package!r} package "
            f"(pip install {package})"
        )
    return None


def _is_hidden(name: str) -> bool:
    return name.startswith(("_", "."))


def _split_entries(path: str | list[str]) -> list[str]:
    if isinstance(path, str):
        entries = [p.strip() for p in path.split(",")]
    else:
        entries = [str(p).strip() for p in path]
    entries = [p for p in entries if p]
    if not entries:
        raise ValueError(f"no input path given: {path!r}")
    return entries


def _files_under(fs: fsspec.AbstractFileSystem, root: str) -> list[str]:
    """Files below directory ``root``, skipping any whose relative path has a hidden part."""
    root = root.rstrip("/")
    out = []
    for name in fs.find(root, withdirs=False):
        rel = name[len(root) :] if name.startswith(root) else posixpath.basename(name)
        if not any(_is_hidden(part) for part in rel.split("/") if part):
            out.append(name)
    return out


def _expand_one(fs: fsspec.AbstractFileSystem, entry: str, path: str) -> list[str]:
    if _GLOB_CHARS.intersection(path):
        matches = fs.glob(path, detail=True)
        visible = {
            name: info
            for name, info in matches.items()
            if not _is_hidden(posixpath.basename(name.rstrip("/")))
        }
        if not visible:
            raise FileNotFoundError(errno.ENOENT, "Input pattern matches 0 files", entry)
        out = []
        for name, info in visible.items():
            if info.get("type") == "directory":
                out.extend(_files_under(fs, name))
            else:
                out.append(name)
        return out
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "Input path does not exist", entry) from None
    if info.get("type") == "directory":
        return _files_under(fs, info.get("name", path))
    return [info.get("name", path)]


def expand_paths(
    path: str | list[str], storage_options: dict | None = None
) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    """Resolve input paths to a filesystem and the sorted list of the files they name.

    ``path`` is one path or URL, a comma-separated string of them, or a list. Each entry
    may be a file, a directory (every file below it, recursively, except those whose
    name, or the name of a directory on the way, starts with ``_`` or ``.``, such as
    ``_SUCCESS``), or a glob (``*``, ``?``, ``[...]``; hidden matches are skipped too, and
    matched directories are expanded). A file named explicitly is taken even if hidden.

    Raises ``FileNotFoundError`` (naming the entry) for an entry that matches nothing,
    and ``ValueError`` if the entries are not all on the same filesystem (protocol).
    The returned paths are in the filesystem's own form, ready for ``fs.open``.

    >>> import fsspec
    >>> fs = fsspec.filesystem("memory")
    >>> for name in ["a.txt", "b.txt", "_SUCCESS", ".a.txt.crc"]:
    ...     fs.pipe(f"/doctest-expand/{name}", b"x\\n")
    >>> expand_paths("memory:///doctest-expand")[1]
    ['/doctest-expand/a.txt', '/doctest-expand/b.txt']
    >>> expand_paths("memory:///doctest-expand/b.txt,memory:///doctest-expand/a*")[1]
    ['/doctest-expand/a.txt', '/doctest-expand/b.txt']
    >>> expand_paths("memory:///doctest-expand/nope")
    Traceback (most recent call last):
    ...
    FileNotFoundError: [Errno 2] Input path does not exist: 'memory:///doctest-expand/nope'
    >>> fs.rm("/doctest-expand", recursive=True)
    """
    entries = _split_entries(path)
    options = storage_options or {}
    first_fs: fsspec.AbstractFileSystem | None = None
    first_entry = ""
    files: set[str] = set()
    for entry in entries:
        fs, stripped = fsspec.core.url_to_fs(entry, **options)
        if first_fs is None:
            first_fs, first_entry = fs, entry
        elif protocols(fs) != protocols(first_fs):
            raise ValueError(
                "all input paths must be on the same filesystem, but "
                f"{first_entry!r} is on {protocols(first_fs)[0]!r} and "
                f"{entry!r} is on {protocols(fs)[0]!r}"
            )
        fs.invalidate_cache()  # see files other processes (the workers) wrote since
        files.update(_expand_one(fs, entry, stripped))
    assert first_fs is not None
    return first_fs, sorted(files)


def open_input(fs: fsspec.AbstractFileSystem, path: str, compression: str | None) -> Any:
    """Open a file for reading, decompressing; a missing file's error names its path.

    >>> fs = fsspec.filesystem("memory")
    >>> open_input(fs, "/doctest-open/missing.txt", None)
    Traceback (most recent call last):
    ...
    FileNotFoundError: ...missing.txt...
    """
    try:
        return fs.open(path, "rb", compression=compression)
    except FileNotFoundError as exc:
        if path in str(exc):
            raise
        raise FileNotFoundError(errno.ENOENT, "No such file", path) from exc


class ShippedFiles(MemoryFileSystem):
    """A private in-memory filesystem holding copies of some files; it pickles with them.

    What :func:`for_workers` gives tasks instead of the driver's ``memory://``
    filesystem, whose files exist in the driver's process only.

    >>> import pickle
    >>> shipped = pickle.loads(pickle.dumps(ShippedFiles({"/doctest/a.txt": b"one"})))
    >>> shipped.cat_file("/doctest/a.txt"), fsspec.filesystem("memory").exists("/doctest/a.txt")
    (b'one', False)
    """

    cachable = False  # each instance has its own files

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(files=files)
        self.store: dict[str, Any] = {}  # shadows MemoryFileSystem's process-wide store
        self.pseudo_dirs = [""]
        for path, data in files.items():
            self.pipe_file(path, data)


def for_workers(
    fs: fsspec.AbstractFileSystem, paths: list[str]
) -> fsspec.AbstractFileSystem:
    """The filesystem tasks should read ``paths`` through.

    ``fs`` itself, except for a process-local filesystem (``memory://``): then a
    :class:`ShippedFiles` holding a copy of the files, which travels to the
    workers with the tasks (so keep such inputs small).

    >>> mem = fsspec.filesystem("memory")
    >>> mem.pipe("/doctest-ship/a.txt", b"shipped\\n")
    >>> shipped = for_workers(mem, ["/doctest-ship/a.txt"])
    >>> mem.rm("/doctest-ship", recursive=True)
    >>> shipped.cat_file("/doctest-ship/a.txt")
    b'shipped\\n'
    >>> for_workers(fsspec.filesystem("file"), []) is fsspec.filesystem("file")
    True
    """
    if not is_process_local(fs) or isinstance(fs, ShippedFiles):
        return fs
    return ShippedFiles({p: fs.cat_file(p) for p in paths})
