"""The machine the figures come from: what it is, and how much parallel work it really does.

A 2-vCPU virtual machine does not always deliver two cores' worth of work: the
host may time-share them.  ``CapacityProbe`` measures it, with the same
plain-Python loop run alone and then in N processes at once.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import statistics
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench_baseline import reduce_by_key_count

#: Pairs per calibration run (~0.13 s of plain Python here).
CALIBRATION_PAIRS = 1_000_000


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "aiospark": _version("aiospark"),
        "uvloop": _version("uvloop"),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def machine_line(info: dict[str, Any]) -> str:
    """The machine in one line."""
    return (
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory_gib']} GiB, "
        f"Python {info['python']}, aiospark {info['aiospark']}, uvloop {info['uvloop']}"
    )


def spin(pairs: int) -> float:
    """Seconds of one run of the serial reduce_by_key loop (the calibration work)."""
    start = time.perf_counter()
    reduce_by_key_count(pairs)
    return time.perf_counter() - start


class CapacityProbe:
    """Measures, again and again during a run, how much parallel work the machine delivers.

    One sample is ``workers x (time of one run alone) / (wall time of ``workers`` runs
    at once)`` of the same plain-Python loop: ``workers`` on a machine that gives every
    process a full core, less when the host shares its cores out.  It bounds the
    speedup any engine can reach, and it changes over time on a shared virtual machine,
    so the benchmark takes a sample next to every timed data run.
    """

    def __init__(self, workers: int, pairs: int = CALIBRATION_PAIRS) -> None:
        self.workers = workers
        self.pairs = pairs
        self.samples: list[float] = []
        self._pool: Any = None

    def __enter__(self) -> CapacityProbe:
        self._pool = multiprocessing.get_context("spawn").Pool(self.workers)
        self._pool.map(spin, [1000] * self.workers)  # start the processes before timing
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.terminate()
        self._pool.join()

    def sample(self) -> float:
        """Take one sample (about three runs of the loop); returns it."""
        alone = self._pool.apply(spin, (self.pairs,))
        start = time.perf_counter()
        self._pool.map(spin, [self.pairs] * self.workers, chunksize=1)
        capacity = self.workers * alone / (time.perf_counter() - start)
        self.samples.append(capacity)
        return capacity

    def summary(self) -> dict[str, float]:
        """Median, minimum and maximum of the samples taken."""
        if not self.samples:
            return {}
        return {
            "parallel_capacity": statistics.median(self.samples),
            "parallel_capacity_min": min(self.samples),
            "parallel_capacity_max": max(self.samples),
        }
