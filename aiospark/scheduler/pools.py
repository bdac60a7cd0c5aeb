"""Who gets the next free task slot: FAIR or FIFO scheduling between jobs, in pools.

A pure policy, consulted by the scheduler's state machine
(``aiospark.scheduler.state``) each time it has a free slot and queued tasks
of several jobs.  It follows Spark's ``FairSchedulingAlgorithm`` and
``FIFOSchedulingAlgorithm``:

- ``"fifo"``: jobs in submission order; a later job gets slots only when
  every earlier job has no task waiting.  Pools are not used.
- ``"fair"``: jobs are grouped in pools.  The next slot goes to the pool
  furthest below its share: first a pool running fewer tasks than its
  ``min_share`` (the lowest ``running / min_share`` first), else the lowest
  ``running / weight``.  Inside that pool, jobs are FIFO or FAIR (the pool's
  ``mode``); between the jobs of a FAIR pool, the one running fewest tasks.

Running tasks count everything a job or pool runs, whether or not it still
has tasks waiting; only those with waiting tasks compete for the slot.

>>> policy = Policy("fair", {"batch": {"weight": 1}, "web": {"weight": 4, "min_share": 1}})
>>> turn = policy.round(pool_of={1: "batch", 2: "web"}, running={1: 8, 2: 0})
>>> turn.next([1, 2])      # "web" is below its min_share
2
>>> turn.launched(2)
>>> turn.next([1, 2])      # 1 task / weight 4 = 0.25 < 8 tasks / weight 1
2
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Collection, Mapping
from typing import Any

FAIR = "fair"
FIFO = "fifo"
MODES = (FAIR, FIFO)
#: The pool of jobs submitted outside any ``Context.pool(...)`` block.
DEFAULT_POOL = "default"


@dataclasses.dataclass(frozen=True)
class Pool:
    """A pool's settings (Spark's ``weight``, ``minShare`` and ``schedulingMode``).

    ``weight``: its share of the slots relative to other pools (a pool of
    weight 2 gets twice the slots of a pool of weight 1 when both have work).
    ``min_share``: slots it gets before any pool's weight counts.  ``mode``:
    how its own jobs share its slots, ``"fair"`` or ``"fifo"``.

    >>> Pool("web", weight=4, min_share=1)
    Pool(name='web', weight=4, min_share=1, mode='fair')
    >>> Pool("web", weight=0)
    Traceback (most recent call last):
    ...
    ValueError: pool 'web': weight must be a positive number, got 0
    """

    name: str
    weight: float = 1
    min_share: int = 0
    mode: str = FAIR

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a pool name must be a non-empty str, got {self.name!r}")
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise ValueError(
                f"pool {self.name!r}: weight must be a positive number, got {weight!r}"
            )
        share = self.min_share
        if isinstance(share, bool) or not isinstance(share, int) or share < 0:
            raise ValueError(
                f"pool {self.name!r}: min_share must be an int >= 0, got {share!r}"
            )
        if self.mode not in MODES:
            raise ValueError(
                f"pool {self.name!r}: mode must be 'fair' or 'fifo', got {self.mode!r}"
            )


@functools.lru_cache(maxsize=1024)
def _default_pool(name: str) -> Pool:
    """A pool nobody configured (remembered for a while, not forever: names may be many)."""
    return Pool(name)


def make_pools(spec: Mapping[str, Mapping[str, Any] | Pool] | None) -> dict[str, Pool]:
    """Pools from ``{name: {"weight": ..., "min_share": ..., "mode": ...}}`` (each key optional).

    >>> make_pools({"web": {"weight": 4}})["web"].weight
    4
    >>> make_pools({"web": {"wieght": 4}})
    Traceback (most recent call last):
    ...
    ValueError: pool 'web': unknown setting 'wieght' (use weight, min_share, mode)
    """
    pools: dict[str, Pool] = {}
    for name, settings in (spec or {}).items():
        if isinstance(settings, Pool):
            pools[name] = dataclasses.replace(settings, name=name)
            continue
        if not isinstance(settings, Mapping):
            raise ValueError(f"pool {name!r}: settings must be a dict, got {settings!r}")
        for key in settings:
            if key not in ("weight", "min_share", "mode"):
                raise ValueError(
                    f"pool {name!r}: unknown setting {key!r} (use weight, min_share, mode)"
                )
        pools[name] = Pool(name, **settings)
    return pools


def fair_key(running: int, min_share: int, weight: float) -> tuple[bool, float]:
    """Spark's fair comparison as a sort key: the smallest key gets the next slot.

    Below its ``min_share`` ("needy") comes first, by ``running / min_share``;
    then the others by ``running / weight``.

    >>> sorted([fair_key(2, 0, 1), fair_key(0, 2, 1), fair_key(3, 0, 4)])
    [(False, 0.0), (True, 0.75), (True, 2.0)]
    """
    if running < min_share:
        return (False, running / min_share)
    return (True, running / weight)


class Policy:
    """The scheduling mode and pools of one driver.

    ``mode`` is ``"fair"`` (the default) or ``"fifo"``; ``pools`` maps names
    to settings (see ``make_pools``).  A pool used but not configured gets
    ``Pool(name)``'s defaults: weight 1, no min_share, FAIR between its jobs.
    """

    def __init__(
        self, mode: str = FAIR, pools: Mapping[str, Mapping[str, Any] | Pool] | None = None
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"scheduler_mode must be 'fair' or 'fifo', got {mode!r}")
        self.mode = mode
        self.pools = make_pools(pools)

    def pool(self, name: str) -> Pool:
        """The settings of pool ``name`` (the defaults when it is not configured)."""
        pool = self.pools.get(name)
        return _default_pool(name) if pool is None else pool

    def round(self, pool_of: Mapping[int, str], running: Mapping[int, int]) -> Round:
        """Start choosing for a batch of free slots.

        ``pool_of``: job id -> pool name, for every job that runs or waits;
        ``running``: job id -> tasks it runs now (missing: none).
        """
        return Round(self, pool_of, running)


class Round:
    """Choices for one scheduling pass: ``next`` picks a job, ``launched`` counts its new task.

    Cost: ``next`` is O(jobs with waiting tasks), whatever the number of
    waiting tasks.
    """

    def __init__(
        self, policy: Policy, pool_of: Mapping[int, str], running: Mapping[int, int]
    ) -> None:
        self._policy = policy
        self._pool_of = pool_of
        self._running = dict(running)
        self._fifo = policy.mode == FIFO
        self._pool_running: dict[str, int] = {}
        #: the one pool every job is in, if so (then there is no choice between pools)
        self._only_pool: Pool | None = None
        if not self._fifo:
            names = set(pool_of.values())
            if len(names) <= 1:
                self._only_pool = policy.pool(names.pop() if names else DEFAULT_POOL)
            for job_id, count in self._running.items():
                name = pool_of.get(job_id, DEFAULT_POOL)
                self._pool_running[name] = self._pool_running.get(name, 0) + count

    def next(self, waiting: Collection[int]) -> int:
        """Which of the jobs ``waiting`` (ids, non-empty) gets the next slot."""
        if len(waiting) == 1 or self._fifo:
            return min(waiting)
        running = self._running
        pool = self._only_pool
        if pool is None:
            pool_of = self._pool_of
            by_pool: dict[str, list[int]] = {}
            for job_id in waiting:
                by_pool.setdefault(pool_of.get(job_id, DEFAULT_POOL), []).append(job_id)
            pool_running = self._pool_running
            pool = min(
                (self._policy.pool(name) for name in by_pool),
                key=lambda p: (
                    *fair_key(pool_running.get(p.name, 0), p.min_share, p.weight), p.name
                ),
            )
            waiting = by_pool[pool.name]
        if pool.mode == FIFO:
            return min(waiting)
        return min(waiting, key=lambda j: (running.get(j, 0), j))

    def launched(self, job_id: int) -> None:
        """``job_id`` got a slot: it runs one more task."""
        self._running[job_id] = self._running.get(job_id, 0) + 1
        if not self._fifo:
            name = self._pool_of.get(job_id, DEFAULT_POOL)
            self._pool_running[name] = self._pool_running.get(name, 0) + 1
