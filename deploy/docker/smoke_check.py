"""The host side of deploy/docker/smoke.sh: wait for the cluster's workers, run a job.

    python deploy/docker/smoke_check.py workers aiospark://127.0.0.1:7077 2 [--timeout 60]
    python deploy/docker/smoke_check.py job aiospark://127.0.0.1:7077 [--timeout 120]

Both read the cluster secret the usual way (AIOSPARK_SECRET_FILE).  `workers`
polls `aiospark status --json` until exactly N workers are alive, and fails
after --timeout seconds.  `job` connects a Context to the master, counts words
through a shuffle (reduce_by_key, map outputs served by the shuffle service)
and sums squares, and checks both against plain Python.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import subprocess
import sys
import time


def status(master: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "aiospark", "status", "--json", "--master", master],
        capture_output=True, text=True, timeout=30,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or f"aiospark status exited {done.returncode}")
    return json.loads(done.stdout)


def alive(master: str) -> list[dict]:
    return [w for w in status(master)["workers"] if w.get("state") == "alive"]


def succeeded(master: str) -> dict[str, int]:
    return {w["worker_id"]: w.get("tasks_succeeded", 0) for w in alive(master)}


def wait_for_workers(master: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        try:
            workers = alive(master)
            last = f"{len(workers)} alive: {[w['worker_id'] for w in workers]}"
            if len(workers) == count:
                print(f"smoke: {count} workers alive: {', '.join(w['url'] for w in workers)}")
                return
        except (RuntimeError, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
            last = f"status failed: {exc}"
        if time.monotonic() > deadline:
            raise SystemExit(f"smoke: not {count} workers after {timeout:.0f} s ({last})")
        time.sleep(0.5)


async def job(master: str) -> None:
    import aiospark

    words = [f"w{i % 37}" for i in range(20_000)]
    numbers = range(1, 10_001)
    async with aiospark.Context(master, app_name="docker-smoke") as ctx:
        counts = dict(await ctx.parallelize(words, 8)
                      .map(lambda w: (w, 1)).reduce_by_key(lambda a, b: a + b).collect())
        squares = await ctx.parallelize(numbers, 6).map(lambda x: x * x).sum()
    assert counts == dict(collections.Counter(words)), counts
    assert squares == sum(x * x for x in numbers), squares
    print(f"smoke: job ok ({len(counts)} words counted through the shuffle, sum of squares "
          f"{squares})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    w = sub.add_parser("workers")
    w.add_argument("master")
    w.add_argument("count", type=int)
    w.add_argument("--timeout", type=float, default=60)
    j = sub.add_parser("job")
    j.add_argument("master")
    j.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    if args.what == "workers":
        wait_for_workers(args.master, args.count, args.timeout)
    else:
        before = succeeded(args.master)
        asyncio.run(asyncio.wait_for(job(args.master), args.timeout))
        # the workers report their counters with their heartbeats (every second): wait,
        # 10 s at most, until they have grown and then hold still for one heartbeat
        deadline = time.monotonic() + 10
        after = succeeded(args.master)
        while time.monotonic() < deadline:
            time.sleep(1.2)
            now = succeeded(args.master)
            if now == after and sum(now.values()) > sum(before.values()):
                break
            after = now
        ran = {worker: n - before.get(worker, 0) for worker, n in after.items()}
        print(f"smoke: tasks per worker: {ran}")


if __name__ == "__main__":
    main()
