"""Text input: find the files, cut them into byte-range splits, read the lines of a split.

This is the synchronous core behind ``textFile``: the driver calls :func:`expand_paths`
and :func:`plan_text_splits`, each task calls :func:`read_text_lines` on its split.

The split rules are those of Hadoop's ``FileInputFormat`` / ``LineRecordReader`` as
used by Spark: a split owns every line whose first byte lies inside its byte range, a
line that crosses the end of a split is read to its end by that split, and the next
split skips it. Over all the splits of a file, every line is produced exactly once.

>>> import fsspec
>>> fs = fsspec.filesystem("memory")
>>> fs.pipe("/doctest-text-module/a.txt", "first line\\nsecond\\nthird\\n".encode())
>>> fs, paths = expand_paths("memory:///doctest-text-module")
>>> paths
['/doctest-text-module/a.txt']
>>> splits = plan_text_splits(fs, paths, min_partitions=2)
>>> [(s.start, s.length) for s in splits]
[(0, 12), (12, 12)]
>>> [list(read_text_lines(fs, s)) for s in splits]
[['first line', 'second'], ['third']]
>>> fs.rm("/doctest-text-module", recursive=True)
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import fsspec

from aiospark.io.locations import block_locations, hosts_for_range
from aiospark.io.paths import compression_of, expand_paths, open_input

__all__ = [
    "TextSplit",
    "check_encoding",
    "expand_paths",
    "open_input",
    "plan_text_splits",
    "read_text_lines",
]

#: Hadoop's SPLIT_SLOP: the last split of a file may be up to 10% larger than the others.
_SPLIT_SLOP = 1.1
#: Each chunk read is decoded and split in windows of about this many bytes: small
#: enough for the decoded text and its lines to stay in the CPU cache.
_WINDOW = 1 << 16


@dataclass(frozen=True)
class TextSplit:
    """One byte range ``[start, start + length)`` of one file.

    When ``compression`` is set (an fsspec compression name such as ``"gzip"``) the
    split is the whole file: ``start`` is 0 and ``length`` is the compressed size.
    ``hosts`` are where the filesystem reports the range's bytes to be (see
    ``aiospark.io.locations``); the scheduler prefers workers there.

    >>> TextSplit("/data/part-0.txt", 0, 1024)
    TextSplit(path='/data/part-0.txt', start=0, length=1024, compression=None, hosts=())
    >>> TextSplit("/data/big.txt.gz", 0, 999, "gzip").compression
    'gzip'
    """

    path: str
    start: int
    length: int
    compression: str | None = None
    hosts: tuple[str, ...] = ()


def plan_text_splits(
    fs: fsspec.AbstractFileSystem,
    paths: list[str],
    min_partitions: int,
    block_size: int = 32 * 2**20,
) -> list[TextSplit]:
    """Cut files into byte-range splits the way Hadoop's ``FileInputFormat`` does.

    ``goal = total_size // max(min_partitions, 1)`` and
    ``split_size = max(1, min(goal, block_size))``. Each file is cut into splits of
    ``split_size`` bytes while more than 1.1 split sizes remain; the rest is the last
    split. An empty file gives one split of length 0; a compressed file (by extension,
    see ``aiospark.io.paths.compression_of``) gives one split covering the whole file,
    with ``compression`` set. Splits come file by file, in the order of ``paths``. When
    the filesystem reports block locations, each split gets the hosts holding most of
    its bytes (``aiospark.io.locations``).

    >>> import fsspec
    >>> fs = fsspec.filesystem("memory")
    >>> fs.pipe("/doctest-plan/a.txt", b"x" * 1000)
    >>> fs.pipe("/doctest-plan/b.txt", b"")
    >>> splits = plan_text_splits(fs, ["/doctest-plan/a.txt", "/doctest-plan/b.txt"], 3)
    >>> [(s.path[-5:], s.start, s.length) for s in splits]
    [('a.txt', 0, 333), ('a.txt', 333, 333), ('a.txt', 666, 334), ('b.txt', 0, 0)]
    >>> fs.rm("/doctest-plan", recursive=True)
    """
    sizes = [int(fs.size(p)) for p in paths]
    total = sum(sizes)
    goal = total // max(min_partitions, 1)
    split_size = max(1, min(goal, block_size))
    splits: list[TextSplit] = []
    for p, size in zip(paths, sizes, strict=True):
        blocks = block_locations(fs, p, size)
        compression = compression_of(p)
        if compression is not None:
            ranges = [(0, size)]
        elif size == 0:
            ranges = [(0, 0)]
        else:
            ranges = []
            remaining = size
            while remaining / split_size > _SPLIT_SLOP:
                ranges.append((size - remaining, split_size))
                remaining -= split_size
            ranges.append((size - remaining, remaining))
        splits.extend(
            TextSplit(p, start, length, compression, hosts_for_range(blocks, start, length))
            for start, length in ranges
        )
    return splits


def balanced_min_partitions(planned: int, parallelism: int) -> int:
    """``min_partitions`` that fills every wave of tasks when a plan is only a few waves long.

    Hadoop's rule gives 3 splits of 32 MiB for a 96 MiB file; with 2 cores the
    third runs alone while the other core idles, a third of the job.  A plan of
    ``planned`` splits shorter than 4 waves of ``parallelism`` tasks whose last
    wave is not full asks instead for the next multiple of ``parallelism``
    (smaller splits, never more than 4 waves); longer plans keep Hadoop's rule.

    >>> balanced_min_partitions(3, 2), balanced_min_partitions(4, 2), balanced_min_partitions(9, 2)
    (4, 4, 9)
    >>> balanced_min_partitions(5, 4), balanced_min_partitions(1, 1)
    (8, 1)
    """
    if parallelism <= 1 or planned >= 4 * parallelism:
        return planned
    return -(-planned // parallelism) * parallelism


def check_encoding(encoding: str) -> None:
    r"""Refuse, in the driver, an encoding that text lines cannot be read in.

    >>> check_encoding("latin-1")
    >>> check_encoding("utf-16")
    Traceback (most recent call last):
    ...
    ValueError: encoding 'utf-16' is not supported for text lines: ...
    >>> check_encoding("no-such-codec")
    Traceback (most recent call last):
    ...
    LookupError: unknown encoding: no-such-codec
    """
    _line_encodings(encoding)


def _line_encodings(encoding: str) -> tuple[str, str]:
    """Codec names for the first block of a file and for the rest.

    Lines are cut on the byte ``\\n`` before decoding, which is only right for
    encodings in which ``\\n`` is that byte and never part of another character
    (UTF-8, Latin-1, cp1252, ...). ``utf-8-sig`` is accepted: its BOM is dropped from
    the start of the file.
    """
    name = codecs.lookup(encoding).name
    if name == "utf-8-sig":
        return name, "utf-8"
    if "\n".encode(name) != b"\n":
        raise ValueError(
            f"encoding {encoding!r} is not supported for text lines: "
            "newline must be the single byte 0x0A"
        )
    return name, name


def read_text_lines(
    fs: fsspec.AbstractFileSystem,
    split: TextSplit,
    encoding: str = "utf-8",
    errors: str = "strict",
    check: Callable[[], None] | None = None,
    chunk_size: int = 1 << 20,
) -> Iterator[str]:
    r"""Iterate over the lines of ``split``, without their ``\n`` or ``\r\n`` terminator.

    The split yields each line whose first byte lies in ``[start, start + length)``; a
    line crossing the end is read to its end. A final line without ``\n`` is a line; a
    file ending in ``\n`` has no empty line after it. A compressed split reads the
    whole decompressed file. The file is read ``chunk_size`` bytes at a time and
    ``check`` (if given) is called before each read; it may raise to stop the reading.

    The encoding must be one where ``\n`` is the byte 0x0A and never part of another
    character (UTF-8, Latin-1, cp1252, ...; ``utf-8-sig`` drops a BOM at the start of
    the file); others raise ``ValueError``. The result is a lazy iterator: the file is
    opened at the first ``next()`` and closed when the lines are exhausted, when reading
    fails, or when the iterator is dropped.

    Raises ``FileNotFoundError`` naming a missing file, and ``UnicodeDecodeError`` with a
    note naming the file on undecodable bytes (when ``errors="strict"``).

    >>> import fsspec
    >>> fs = fsspec.filesystem("memory")
    >>> fs.pipe("/doctest-read/a.txt", "héllo\r\nwörld\n☃ no newline".encode())
    >>> list(read_text_lines(fs, TextSplit("/doctest-read/a.txt", 0, 29)))
    ['héllo', 'wörld', '☃ no newline']
    >>> list(read_text_lines(fs, TextSplit("/doctest-read/a.txt", 0, 3)))
    ['héllo']
    >>> list(read_text_lines(fs, TextSplit("/doctest-read/a.txt", 3, 26)))
    ['wörld', '☃ no newline']
    >>> fs.rm("/doctest-read", recursive=True)
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")
    if split.compression is not None and split.start != 0:
        raise ValueError(f"a compressed split must start at 0: {split}")
    if split.start < 0 or split.length < 0:
        raise ValueError(f"negative split bounds: {split}")
    first_encoding, encoding = _line_encodings(encoding)
    # The consumer iterates a C-level chain over lists of lines: much cheaper per line
    # than resuming a Python generator for each one.
    return itertools.chain.from_iterable(
        _line_blocks(fs, split, first_encoding, encoding, errors, check, chunk_size)
    )


def _line_blocks(
    fs: fsspec.AbstractFileSystem,
    split: TextSplit,
    first_encoding: str,
    encoding: str,
    errors: str,
    check: Callable[[], None] | None,
    chunk_size: int,
) -> Iterator[list[str]]:
    """The lines of ``split``, as successive lists."""
    path = split.path
    decompressed = split.compression is not None
    if decompressed:
        start, last = 0, None  # the whole stream
    else:
        start, last = split.start, split.start + split.length - 1
    # ``last`` is the offset of the split's last byte: the split's last line is the one
    # whose newline is the first at or after ``last`` (or the unterminated end of the
    # file). Its first line starts just after the first newline at or after
    # ``start - 1``, that is at ``start`` itself when the byte before is a newline.
    enc = first_encoding if start == 0 else encoding

    def decode(buf: bytes | memoryview, buf_pos: int) -> str:
        try:
            return str(buf, enc, errors)
        except UnicodeDecodeError as exc:
            where = "decompressed byte offset" if decompressed else "byte offset"
            exc.add_note(f"in {path} ({where} {buf_pos + exc.start})")
            raise

    def lines_of(buf: bytes | memoryview, buf_pos: int) -> list[str]:
        """The lines of ``buf``, which ends with a newline, at file offset ``buf_pos``."""
        text = decode(buf, buf_pos)
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        lines.pop()  # the empty string after the final newline
        return lines

    with open_input(fs, path, split.compression) as f:
        if last is not None and last < start:
            return  # an empty split
        skipping = start > 0
        pos = start - 1 if skipping else 0  # file offset of the next chunk
        if pos:
            f.seek(pos)
        read = f.read
        pending: list[bytes] = []  # the start of a line whose newline is not read yet
        pending_pos = start  # file offset of pending[0]
        while True:
            if check is not None:
                check()
            chunk = read(chunk_size)
            if not chunk:
                if pending:  # the file's last line, without a newline
                    line = decode(b"".join(pending), pending_pos)
                    yield [line[:-1] if line.endswith("\r") else line]
                return
            chunk_pos = pos
            pos += len(chunk)
            if skipping:
                i = chunk.find(b"\n")
                if i < 0:
                    continue
                skipping = False
                chunk_pos += i + 1
                if last is not None and chunk_pos > last:
                    return  # no line starts inside the split
                chunk = chunk[i + 1 :]
                pending_pos = chunk_pos
                if not chunk:
                    continue
            # ``end`` is the index just after the newline of the last complete line to
            # take from this chunk; ``done`` when that line is the split's last.
            done = False
            if last is not None and pos > last:
                end = chunk.find(b"\n", max(last - chunk_pos, 0)) + 1
                done = end > 0
                if not done:
                    end = chunk.rfind(b"\n") + 1
            else:
                end = chunk.rfind(b"\n") + 1
            if end == 0:  # no newline: a long line goes on
                pending.append(chunk)
                continue
            i = 0
            if pending:
                i = chunk.find(b"\n") + 1
                pending.append(chunk[:i])
                yield lines_of(b"".join(pending), pending_pos)
                enc = encoding
            view = memoryview(chunk)
            while i < end:
                j = chunk.rfind(b"\n", i, min(i + _WINDOW, end))
                if j < 0:  # a line longer than the window
                    j = chunk.find(b"\n", i, end)
                yield lines_of(view[i : j + 1], chunk_pos + i)
                enc = encoding
                i = j + 1
            if done:
                return
            pending_pos = chunk_pos + end
            pending = [chunk[end:]] if end < len(chunk) else []
