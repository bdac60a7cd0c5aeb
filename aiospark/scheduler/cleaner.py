"""What the driver no longer references, to clean up on every process (Spark's ``ContextCleaner``).

The driver registers each object whose state outlives it elsewhere: a
``ShuffleDependency`` (its map outputs on the shuffle services), a persisted
RDD (its cached blocks on the workers), a ``Broadcast`` (its value on the
workers and its pickled blob in the driver) and a checkpointed RDD (its
files in the checkpoint directory).  ``weakref.finalize`` tells the cleaner
when one is garbage-collected; the cleaner queues what to clean and hands it
out in batches.  It does no I/O: the driver's cleaning task
(``scheduler/cleaning.py``) does that.

Finalizers run on whatever thread triggered the collection, even inside the
event loop's own code, so ``collected`` only appends to a deque (atomic under
the GIL) and calls ``wake``, which must be safe to call from any thread.

>>> cleaner = Cleaner()
>>> class Thing: pass
>>> thing = Thing()
>>> cleaner.watch(thing, "shuffle", 7)
>>> cleaner.pending
0
>>> del thing  # the last reference: the finalizer runs
>>> cleaner.pending
1
>>> batch = cleaner.take()
>>> batch.shuffles, batch.rdds, batch.broadcasts, batch.checkpoints
([7], [], [], [])
>>> cleaner.take().empty
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import weakref
from collections import deque
from collections.abc import Callable
from typing import Literal

#: What a registered object leaves behind: a shuffle's map outputs, a persisted RDD's
#: cached blocks, a broadcast's copies, a checkpointed RDD's files.
Kind = Literal["shuffle", "rdd", "broadcast", "checkpoint"]

KINDS: tuple[Kind, ...] = ("shuffle", "rdd", "broadcast", "checkpoint")


@dataclasses.dataclass
class Batch:
    """Things to clean: shuffle ids, RDD ids (blocks), broadcast ids, checkpoint directories."""

    shuffles: list[int] = dataclasses.field(default_factory=list)
    rdds: list[int] = dataclasses.field(default_factory=list)
    broadcasts: list[int] = dataclasses.field(default_factory=list)
    checkpoints: list[str] = dataclasses.field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Whether there is nothing to clean."""
        return not (self.shuffles or self.rdds or self.broadcasts or self.checkpoints)

    def __len__(self) -> int:
        return len(self.shuffles) + len(self.rdds) + len(self.broadcasts) + len(self.checkpoints)


class Cleaner:
    """Weak references to what leaves state on the cluster; a queue of what to clean.

    Parameters
    ----------
    wake : callable, optional
        Called (from any thread, possibly inside a garbage collection) after
        something was queued; the driver's cleaning task sets its event there.
    enabled : bool, default True
        When False, ``watch`` does nothing (``Context(cleanup=False)``).

    Examples
    --------
    >>> woken = []
    >>> cleaner = Cleaner(wake=lambda: woken.append(1))
    >>> class Rdd: pass
    >>> a, b = Rdd(), Rdd()
    >>> cleaner.watch(a, "rdd", 1)
    >>> cleaner.watch(b, "checkpoint", "/tmp/ckpt/rdd-2")
    >>> del a, b
    >>> len(woken), cleaner.take(max_items=1).rdds, cleaner.pending
    (2, [1], 1)
    >>> cleaner.take().checkpoints
    ['/tmp/ckpt/rdd-2']
    """

    def __init__(self, wake: Callable[[], None] | None = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self.wake: Callable[[], None] = wake or (lambda: None)
        self._queue: deque[tuple[Kind, int | str]] = deque()
        #: how many of each kind were handed out by ``take``
        self.cleaned: dict[str, int] = dict.fromkeys(KINDS, 0)

    def watch(self, obj: object, kind: Kind, key: int | str) -> None:
        """Queue ``(kind, key)`` for cleaning once ``obj`` is garbage-collected.

        Parameters
        ----------
        obj : object
            What the driver's program holds (weakly referenced here).
        kind : {"shuffle", "rdd", "broadcast", "checkpoint"}
            What to clean.
        key : int or str
            The shuffle, RDD or broadcast id, or the checkpoint directory.

        Examples
        --------
        >>> cleaner = Cleaner(enabled=False)
        >>> class Thing: pass
        >>> thing = Thing()
        >>> cleaner.watch(thing, "broadcast", 3)
        >>> del thing
        >>> cleaner.pending
        0
        """
        if not self.enabled:
            return
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        # weakref.finalize keeps itself alive until it runs or its object dies.
        finalizer = weakref.finalize(obj, self._collected, kind, key)
        finalizer.atexit = False  # at exit the whole application is deleted anyway

    def _collected(self, kind: Kind, key: int | str) -> None:
        # Runs in a garbage collection, on any thread: no locks, no I/O.
        self._queue.append((kind, key))
        # The loop may be closed: what was queued stays queued.
        with contextlib.suppress(Exception):
            self.wake()

    @property
    def pending(self) -> int:
        """How many things wait to be cleaned."""
        return len(self._queue)

    def take(self, max_items: int = 1000) -> Batch:
        """Up to ``max_items`` queued things, grouped by kind, in the order they came.

        Parameters
        ----------
        max_items : int, default 1000
            The batch's size at most.

        Returns
        -------
        Batch
            What to clean now (empty when nothing is queued).

        Examples
        --------
        >>> cleaner = Cleaner()
        >>> cleaner._collected("shuffle", 1); cleaner._collected("broadcast", 2)
        >>> cleaner._collected("shuffle", 1)  # a duplicate is cleaned once
        >>> batch = cleaner.take()
        >>> batch.shuffles, batch.broadcasts, len(batch), cleaner.cleaned["shuffle"]
        ([1], [2], 2, 1)
        """
        batch = Batch()
        lists: dict[str, list[int] | list[str]] = {
            "shuffle": batch.shuffles, "rdd": batch.rdds,
            "broadcast": batch.broadcasts, "checkpoint": batch.checkpoints,
        }
        seen: set[tuple[str, int | str]] = set()
        while self._queue and len(seen) < max_items:
            kind, key = self._queue.popleft()
            if (kind, key) in seen:
                continue
            seen.add((kind, key))
            lists[kind].append(key)  # type: ignore[arg-type]
            self.cleaned[kind] += 1
        return batch
