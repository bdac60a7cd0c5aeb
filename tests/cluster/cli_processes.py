"""Cluster roles started as real processes with the ``aiospark`` command line.

Each ``Role`` keeps reading its stderr (so a chatty process never blocks on a
full pipe) and keeps the lines, for tests about logs; ``Roles`` stops every
process it started, even when the test failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import resource
import signal
import subprocess
import sys
import threading
from typing import Any

from aiospark.logs import parse_logfmt

SECRET = "cli-test-secret"
SERVING = re.compile(r"serving (?:\S+ )?at (https?://[^\s\"]+)")
#: a worker's serving line names the process running its tasks (its executor)
EXECUTOR_PID = re.compile(r"\bexecutor_pid\"?[=:] ?(\d+)")


def stop_all(procs: list[subprocess.Popen]) -> None:
    """Terminate every process, then wait for each (killing one that lingers 10 s)."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def role_env(**extra: str) -> dict[str, str]:
    """The environment of a role: the test secret, hashing pinned (no re-exec)."""
    return {**os.environ, "AIOSPARK_SECRET": SECRET, "PYTHONHASHSEED": "0", **extra}


class Role:
    """One ``python -m aiospark <role> ...`` process."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.lines: list[str] = []
        self.url = ""
        self.executor_pid = 0
        self._serving = asyncio.Event()
        self._pump = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            text = line.decode(errors="replace").rstrip("\n")
            self.lines.append(text)
            found = SERVING.search(text)
            if found and not self.url:
                self.url = found.group(1)
                executor = EXECUTOR_PID.search(text)
                self.executor_pid = int(executor.group(1)) if executor else 0
                self._serving.set()
        self._serving.set()  # exited: stop waiting

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def task_pid(self) -> int:
        """The process that runs this worker's tasks (its first executor)."""
        return self.executor_pid or self.proc.pid

    async def serving(self, timeout: float = 30.0) -> str:
        """Wait until the process logs the URL it serves at; returns it."""
        async with asyncio.timeout(timeout):
            await self._serving.wait()
        if not self.url:
            raise AssertionError(f"{self.name} exited ({self.proc.returncode}) before serving:"
                                 "\n" + "\n".join(self.lines[-20:]))
        return self.url

    def events(self) -> list[dict[str, str]]:
        """The process's log lines parsed as logfmt."""
        return [parse_logfmt(line) for line in self.lines if line.strip()]

    async def wait(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit (and its stderr to be read); its exit code."""
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
            await self._pump
        return code

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)


class Roles:
    """Starts roles and stops every one of them at the end (SIGKILL past a bound)."""

    def __init__(self, **env: str) -> None:
        self.env = role_env(**env)
        self.started: list[Role] = []

    async def start(self, role: str, *args: str, name: str = "", serve: bool = True,
                    env: dict[str, Any] | None = None) -> Role:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiospark", role, *args,
            env={**self.env, **(env or {})}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        started = Role(name or role, proc)
        self.started.append(started)
        if serve:
            await started.serving()
        return started

    async def cluster(self, tmp_path, workers: int = 1, *worker_args: str) -> tuple[str, str]:
        """A master and a shuffle service on free ports, and ``workers`` workers;
        returns the master's ``aiospark://`` URL and the shuffle service's URL."""
        master = await self.start("master", "--port", "0", "--worker-timeout", "5")
        shuffle = await self.start("shuffle-service", "--port", "0",
                                   "--dir", str(tmp_path / "shuffle"))
        for i in range(workers):
            await self.worker(master.url, shuffle.url, tmp_path, f"w{i}", *worker_args)
        return master.url.replace("http://", "aiospark://"), shuffle.url

    async def worker(self, master_url: str, shuffle_url: str, tmp_path, worker_id: str,
                     *args: str, env: dict[str, Any] | None = None) -> Role:
        """A worker named ``worker_id`` using the shuffle service at ``shuffle_url``."""
        return await self.start(
            "worker", "--master", master_url, "--shuffle-url", shuffle_url,
            "--shuffle-dir", str(tmp_path / "shuffle"), "--work-dir", str(tmp_path / worker_id),
            "--worker-id", worker_id, *args, name=worker_id, env=env,
        )

    async def close(self) -> None:
        for role in self.started:
            if role.proc.returncode is None:
                role.signal(signal.SIGTERM)
        for role in self.started:
            try:
                await role.wait(20)
            except TimeoutError:
                role.signal(signal.SIGKILL)
                await role.proc.wait()
            role._pump.cancel()


@contextlib.asynccontextmanager
async def roles(**env: str):
    """``Roles`` whose processes are all stopped on the way out."""
    started = Roles(**env)
    try:
        yield started
    finally:
        await started.close()


def start_serving(
    role: str, *args: str, secret: str, fd_limit: int | None = None
) -> tuple[subprocess.Popen, str]:
    """Start ``aiospark <role> *args`` (blocking); return the process and the URL it serves.

    A worker's process gets ``control_url`` (its supervisor's).  ``fd_limit``
    caps the role's open files.  The caller stops the process.
    """

    def limit() -> None:
        if fd_limit is not None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, hard))

    proc = subprocess.Popen(
        [sys.executable, "-m", "aiospark", role, "--log-level", "INFO", *args],
        env={**os.environ, "AIOSPARK_SECRET": secret},
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=limit,
    )
    lines: queue.Queue = queue.Queue()

    def pump() -> None:  # keep reading, so a chatty process never blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    while True:
        line = lines.get(timeout=30)
        if not line:
            raise AssertionError(f"{role} exited before serving")
        found = re.search(r"serving (?:\S+ )?at (http://[^\s\"]+)", line)
        if found:
            control = re.search(r"control_url=(http://\S+)", line)
            if control:  # a worker: its supervisor serves there
                proc.control_url = control.group(1)  # type: ignore[attr-defined]
            return proc, found.group(1)
