"""The scheduler's pure core driven by a simulation: no sockets, no processes.

A cluster of simulated workers runs one big job (a shuffle-map stage and the
result stage reading it).  Each running task finishes in the order it was
launched; every finish is fed to the state machine, which answers with the
next launch.  Prints the placement decisions (``Launch`` commands) per second.

    python benchmarks/bench_scheduler_sim.py [--workers 1000] [--cores 4] [--tasks 100000]

The time is this process's CPU time (other processes on a busy machine do not
count), for the whole run: the simulation's own bookkeeping, a deque append and
pop per task, is included.
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from types import SimpleNamespace
from typing import Any

from aiospark.scheduler import state as core

try:
    from aiospark.scheduler import events
except ImportError:  # before the events API (to measure older commits)
    events = None  # type: ignore[assignment]


def make_stage(stage_id: int, partitions: int, parents: list[Any], shuffle_id: int | None,
               hosts: int) -> Any:
    """A stage as the state machine sees it; a map stage prefers one host per partition."""
    if shuffle_id is not None:
        def preferred(partition: int, cache: Any) -> list[str]:
            return [f"host-{partition % hosts}"]
    else:
        def preferred(partition: int, cache: Any) -> list[str]:
            return []
    return SimpleNamespace(id=stage_id, num_partitions=partitions, parents=parents,
                           shuffle_id=shuffle_id, preferred=preferred)


class Driver:
    """Feeds events through the state's one entry point (or, on older code, its methods)."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.events = events if hasattr(state, "handle") else None

    def worker_added(self, worker_id: str, host: str, cores: int) -> list[Any]:
        if self.events is not None:
            return self.state.handle(self.events.WorkerAdded(worker_id, host, cores))
        return self.state.worker_added(worker_id, host, cores)

    def submit(self, job_id: int, stage: Any, partitions: list[int]) -> list[Any]:
        if self.events is not None:
            return self.state.handle(self.events.JobSubmitted(job_id, stage, tuple(partitions)))
        return self.state.submit_job(job_id, stage, partitions)

    def succeeded(self, task_id: int, result: Any = None, map_output: Any = None) -> list[Any]:
        if self.events is not None:
            return self.state.handle(self.events.TaskFinished(task_id, result, map_output))
        return self.state.task_succeeded(task_id, result=result, map_output=map_output)


def run(workers: int, cores: int, tasks: int) -> tuple[int, float]:
    """Run the simulation; return (launches, CPU seconds it took)."""
    clock = SimpleNamespace(now=0.0)
    state = core.SchedulerState(clock=lambda: clock.now, locality_wait=0.0)
    driver = Driver(state)
    hosts = max(1, workers // 4)
    maps = tasks // 2
    map_stage = make_stage(1, maps, [], 7, hosts)
    result_stage = make_stage(2, tasks - maps, [map_stage], None, hosts)
    running: deque[Any] = deque()
    launches = 0

    def apply(commands: list[Any]) -> None:
        nonlocal launches
        for command in commands:
            if isinstance(command, core.Launch):
                launches += 1
                running.append(command)

    start = time.process_time()
    for i in range(workers):
        apply(driver.worker_added(f"w{i}", f"host-{i % hosts}", cores))
    apply(driver.submit(1, result_stage, list(range(tasks - maps))))
    while running:
        launch = running.popleft()
        clock.now += 0.0001
        output = None
        if launch.stage.shuffle_id is not None:
            output = core.MapOutput(launch.worker_id, f"http://{launch.worker_id}", (1,))
        apply(driver.succeeded(launch.task_id, result=launch.partition, map_output=output))
    spent = time.process_time() - start
    assert not state.jobs, "the job did not finish"
    return launches, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--cores", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args()
    launches, spent = run(args.workers, args.cores, args.tasks)
    print(f"{args.workers} workers x {args.cores} cores, {args.tasks} tasks: "
          f"{launches} launches in {spent:.2f} s of CPU time: "
          f"{launches / spent:,.0f} task decisions/s")


if __name__ == "__main__":
    main()
