"""Exceptions users may see or catch."""

from __future__ import annotations

import linecache
import re


class AiosparkError(Exception):
    """Base of aiospark's own errors."""


class JobFailed(AiosparkError):
    """A job gave up: a task failed too often for a reason that is not the user's code."""


class JobCancelled(AiosparkError):
    """The job was cancelled (its context stopped, or it was cancelled on request)."""


class TaskCancelled(AiosparkError):
    """Raised inside a task whose job was cancelled; never reaches users."""


class UserCodeError(AiosparkError, RuntimeError):
    """User code in a task raised something that cannot reach the driver as itself.

    A ``StopIteration`` would silently end whichever iteration it surfaced in
    (truncating a partition) and cannot be set on an asyncio future; a
    ``SystemExit``, ``KeyboardInterrupt`` or other ``BaseException`` that is
    not an ``Exception`` would escape the driver's event loop.  The task fails
    with this error instead (retried like any failure), and the original
    exception is its ``__cause__``.  Being a ``RuntimeError``, it is what
    PySpark raises for a ``StopIteration`` in user code.

    >>> error = UserCodeError.wrapping(SystemExit(3))
    >>> error, error.__cause__
    (UserCodeError('user code in a task raised SystemExit: 3'), SystemExit(3))
    >>> isinstance(UserCodeError.wrapping(StopIteration()), RuntimeError)
    True
    """

    @classmethod
    def wrapping(cls, error: BaseException) -> UserCodeError:
        """A ``UserCodeError`` naming ``error``'s type (and message), with ``error`` as its cause.

        Parameters
        ----------
        error : BaseException
            What the user's code raised.

        Returns
        -------
        UserCodeError
            A new error (not raised), whose message names ``error``'s type and
            message and whose ``__cause__`` is ``error``.

        Examples
        --------
        >>> print(UserCodeError.wrapping(StopIteration()))
        user code in a task raised StopIteration
        """
        text = str(error)
        detail = f": {text}" if text else ""
        wrapper = cls(f"user code in a task raised {type(error).__name__}{detail}")
        wrapper.__cause__ = error
        return wrapper


def reduce_in_driver(f, values, *initial):
    """``functools.reduce(f, values, *initial)`` for the driver's half of an action.

    ``aggregate``, ``fold``, ``reduce`` and the tree actions merge the partitions'
    results with the user's function in the driver, inside a coroutine, where a
    ``StopIteration`` it raises would surface as the puzzling "coroutine raised
    StopIteration".  It becomes a ``UserCodeError`` (a ``RuntimeError``, as in
    PySpark) naming it, with it as the cause; other exceptions pass unchanged.

    >>> import operator
    >>> reduce_in_driver(operator.add, [1, 2, 3], 10)
    16
    >>> def stop(a, b):
    ...     raise StopIteration
    >>> reduce_in_driver(stop, [1, 2])
    Traceback (most recent call last):
    ...
    aiospark.errors.UserCodeError: user code in the driver raised StopIteration
    """
    import functools

    try:
        return functools.reduce(f, values, *initial)
    except StopIteration as exc:
        raise UserCodeError("user code in the driver raised StopIteration") from exc
class BarrierError(JobFailed):
    """Barrier execution cannot go on: a barrier stage needs more slots than the
    cluster has, its lineage is of a kind barrier mode refuses, or a ``barrier()`` /
    ``all_gather()`` call cannot complete (timed out, mismatched calls, the stage
    attempt is over).  See docs/scheduling.md, "Barrier execution"."""


class ClusterError(AiosparkError):
    """The cluster could not be started or reached."""


class SerializationError(AiosparkError, TypeError):
    """A function or value could not be pickled to ship it to the workers."""


class FetchFailed(AiosparkError):
    """A reducer could not fetch map outputs; the scheduler recomputes them."""

    def __init__(self, shuffle_id: int, map_ids: list[int], url: str, reason: str) -> None:
        super().__init__(f"fetch of shuffle {shuffle_id} maps {map_ids} from {url}: {reason}")
        self.shuffle_id = shuffle_id
        self.map_ids = map_ids
        self.url = url
        self.reason = reason

    def __reduce__(self):  # keep the fields across pickling
        return (FetchFailed, (self.shuffle_id, self.map_ids, self.url, self.reason))


class RemoteTraceback(Exception):
    """Carries a worker's formatted traceback as the ``__cause__`` of a user error."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n\n" + self.text


_FRAME_LINE = re.compile(r'^( *)File "([^"]+)", line (\d+), in ')


def with_source_lines(text: str) -> str:
    """A worker's traceback ``text`` with the source lines it lacks read from this machine.

    A worker prints a frame's source line only when it has the file; a driver
    on another machine that shipped the user's function usually has it, so the
    missing lines are filled in from the driver's copy (``linecache``).  Frames
    that have their line, or whose file the driver lacks, are left as they are.

    >>> import inspect
    >>> line = inspect.getsourcelines(AiosparkError)[1]
    >>> text = f'Traceback (most recent call last):\\n  File "{__file__}", line {line}, in f'
    >>> print(with_source_lines(text))
    Traceback (most recent call last):
      File ".../aiospark/errors.py", line ..., in f
        class AiosparkError(Exception):
    """
    lines = text.split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        out.append(line)
        match = _FRAME_LINE.match(line)
        if match is None:
            continue
        indent = match.group(1) + "  "
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if following.startswith(indent) and not _FRAME_LINE.match(following):
            continue  # the worker printed the source line
        source = linecache.getline(match.group(2), int(match.group(3))).strip()
        if source:
            out.append(indent + source)
    return "\n".join(out)
