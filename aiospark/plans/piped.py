"""Piping records through an external command (``RDD.pipe``)."""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from aiospark.batching import batched
from aiospark.lineage import Node, OneToOneDependency, Plan, Split, TaskContext


class Piped(Plan):
    """Each split's records piped through an external command, one ``str(record)`` per line."""

    def __init__(
        self, parent: Node, command: str | Sequence[str], env: dict[str, str] | None,
        check_code: bool,
    ) -> None:
        argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        if not argv:
            raise ValueError("pipe() needs a command")
        if env is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        ):
            raise TypeError("pipe(): env must map str names to str values")
        super().__init__([OneToOneDependency(parent)])
        self.parent = parent
        self.argv = argv
        self.env = dict(env) if env else None
        self.check_code = check_code

    def compute_splits(self) -> list[Split]:
        return self.parent.splits()

    def compute(self, split: Split, tctx: TaskContext) -> Iterator[Any]:
        return run_pipe(
            self.parent.iterator(split, tctx), self.argv, self.env, self.check_code, tctx.check
        )

    def preferred_locations(self, split: Split) -> list[str]:
        return self.parent.preferred_locations(split)


#: Records joined into one write to the command's stdin.
_PIPE_BATCH = 512
#: Bytes read from the command's stdout at a time.
_PIPE_READ = 1 << 16
#: Seconds between cancellation checks while waiting for the command's output.
_PIPE_POLL = 0.2


def run_pipe(
    records: Iterator[Any],
    argv: list[str],
    env: dict[str, str] | None,
    check_code: bool,
    check: Callable[[], None] | None = None,
) -> Iterator[str]:
    """Run ``argv`` with ``records`` as its input lines; yield its output lines.

    The records are read and written in the calling (task) thread, so user
    code upstream sees its task's context (broadcasts, accumulators); a
    helper thread drains the command's stdout meanwhile, so neither side can
    block the other however much the command buffers.

    >>> list(run_pipe(iter(["b", 1, "a\\n"]), ["sort"], None, True))
    ['1', 'a', 'b']
    """
    full_env = {**os.environ, **env} if env else None
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=full_env)
    stdin, stdout = proc.stdin, proc.stdout
    assert stdin is not None and stdout is not None
    chunks: queue.SimpleQueue[bytes | BaseException | None] = queue.SimpleQueue()

    def drain_stdout() -> None:  # the only user of stdout, which it closes
        try:
            fd = stdout.fileno()
            while data := os.read(fd, _PIPE_READ):
                chunks.put(data)
        except BaseException as exc:
            chunks.put(exc)
        finally:
            chunks.put(None)
            stdout.close()

    threading.Thread(target=drain_stdout, name=f"pipe-{argv[0]}", daemon=True).start()
    partial = b""

    def lines_of(data: bytes | BaseException) -> list[str]:
        nonlocal partial
        if isinstance(data, BaseException):
            raise data
        complete, newline, rest = data.rpartition(b"\n")
        if not newline:
            partial += data
            return []
        text = (partial + complete).decode("utf-8")
        partial = rest
        return text.split("\n")

    finished = False
    eof = False
    try:
        it = iter(records)
        try:
            for batch in batched(it, _PIPE_BATCH):
                text = "\n".join([str(record).rstrip("\n") for record in batch])
                try:
                    stdin.write(text.encode("utf-8") + b"\n")
                    stdin.flush()
                except BrokenPipeError:
                    break  # the command stopped reading: it will not want the rest
                while not eof:  # pass on what the command has written so far
                    try:
                        data = chunks.get_nowait()
                    except queue.Empty:
                        break
                    if data is None:
                        eof = True
                    else:
                        yield from lines_of(data)
        finally:
            with contextlib.suppress(OSError):  # unflushed input for a command that is gone
                stdin.close()
        while not eof:
            try:
                data = chunks.get(timeout=_PIPE_POLL)
            except queue.Empty:
                if check is not None:
                    check()
                continue
            if data is None:
                eof = True
            else:
                if check is not None:
                    check()
                yield from lines_of(data)
        if partial:
            yield partial.decode("utf-8")
        code = proc.wait()
        finished = True
        if check_code and code != 0:
            raise RuntimeError(f"pipe(): command {shlex.join(argv)!r} exited with code {code}")
    finally:
        if not finished:  # an error, a cancellation, or the consumer stopped early
            proc.kill()
            proc.wait()
