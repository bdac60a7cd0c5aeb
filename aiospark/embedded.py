"""The embedded cluster: a master, a shuffle service and N workers as local child processes.

Everything binds to loopback and shares a secret generated for the session.
The master's and shuffle service's listening sockets are created here and
inherited by the children, so every process starts at once, already knowing
every address.  The driver supervises them: a process that dies is started
again (a restarted master or shuffle service on the same socket, so the same
address).  A master or shuffle service that stops answering (stopped with
SIGSTOP, or hung) is killed and so restarted too: ``Liveness`` decides when.
Children watch the driver and exit when it dies; ``stop`` terminates them and
removes the session's temporary directory.

The processes are forked from a zygote (``aiospark.zygote``), which imports the
roles' modules once: a cluster starts in a fraction of the time six interpreters
take, and its processes share memory.  They keep the command lines, arguments and
inherited sockets they would have if spawned, which they are when the zygote is
gone or ``AIOSPARK_FORK=0`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time

from aiospark.protocol import tls
from aiospark.sockets import listening_socket
from aiospark.zygote.client import AsyncForkedProcess
from aiospark.zygote.launcher import ZygoteLauncher

log = logging.getLogger("aiospark.embedded")

#: A process that dies more than MAX_RESTARTS times in RESTART_WINDOW seconds stays dead.
MAX_RESTARTS = 5
RESTART_WINDOW = 60
#: Seconds between liveness probes of the master and the shuffle service, and a probe's bound.
PROBE_INTERVAL = 1.0
PROBE_TIMEOUT = 3.0


class Liveness:
    """When to kill a role that no longer answers, so that it is restarted.

    A process seen stopped (SIGSTOP, a debugger) twice in a row is hung for
    sure; one that has answered its health probe before and then misses
    ``max_misses`` in a row (about 20 s) is hung too.  A process still
    starting (it never answered) is left alone: a slow start is not a hang.

    >>> live = Liveness(max_misses=2)
    >>> live.probed(answered=False, stopped=False)  # still starting
    False
    >>> live.probed(answered=True, stopped=False)
    False
    >>> live.probed(answered=False, stopped=False), live.probed(answered=False, stopped=False)
    (False, True)
    >>> stopped = Liveness()
    >>> stopped.probed(answered=False, stopped=True), stopped.probed(answered=False, stopped=True)
    (False, True)
    """

    def __init__(self, max_misses: int = 5, max_stopped: int = 2) -> None:
        self.max_misses = max_misses
        self.max_stopped = max_stopped
        self.answered_once = False
        self.misses = 0
        self.stopped = 0

    def probed(self, answered: bool, stopped: bool) -> bool:
        """One probe's outcome; True when the process is to be killed (and counts restart)."""
        self.stopped = self.stopped + 1 if stopped else 0
        if answered:
            self.answered_once = True
            self.misses = 0
        elif self.answered_once:
            self.misses += 1
        if self.stopped >= self.max_stopped or self.misses >= self.max_misses:
            self.answered_once, self.misses, self.stopped = False, 0, 0
            return True
        return False


def driver_python_path() -> str:
    """The driver's ``sys.path`` as a ``PYTHONPATH``, so workers import what the driver can.

    Functions from the user's own modules are pickled by reference; on a local
    cluster they should just work, as they would in the driver.
    """
    entries = [os.getcwd() if p == "" else p for p in sys.path]
    return os.pathsep.join(dict.fromkeys(p for p in entries if p and os.path.exists(p)))


class EmbeddedCluster:
    """Starts and stops the local processes of one session."""

    def __init__(
        self,
        workers: int,
        secret: str,
        *,
        cores_per_worker: int = 1,
        worker_timeout: float = 10.0,
        log_level: str = "WARNING",
        worker_memory: int | None = None,
        master_port: int = 0,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.num_workers = workers
        self.secret = secret
        self.cores_per_worker = cores_per_worker
        self.worker_timeout = worker_timeout
        self.log_level = log_level
        self.worker_memory = worker_memory
        self.master_port = master_port
        self.root = ""
        self.master_url = ""
        self.shuffle_url = ""
        self.processes: dict[str, asyncio.subprocess.Process | AsyncForkedProcess] = {}
        self.zygote: ZygoteLauncher | None = None
        self._roles: dict[str, tuple[list[str], tuple[int, ...]]] = {}
        self._watchers: set[asyncio.Task] = set()
        self._restarts: dict[str, list[float]] = {}
        self._sockets: list[socket.socket] = []
        self._stopping = False
        self._probes: asyncio.Task | None = None

    def _command(self, role: str, *args: str) -> list[str]:
        return [
            sys.executable, "-m", "aiospark", role, "--host", "127.0.0.1",
            "--parent-pid", str(os.getpid()), "--log-level", self.log_level, *args,
        ]

    def _env(self) -> dict[str, str]:
        env = {
            # Everything is given on the command line: not the user's settings file.
            **{k: v for k, v in os.environ.items() if k != "AIOSPARK_CONFIG"},
            "AIOSPARK_SECRET": self.secret,
            "PYTHONHASHSEED": "0",
            "PYTHONPATH": driver_python_path(),
        }
        # One core per worker: keep numpy's BLAS from starting a thread per core in each.
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(variable, "1")
        return env

    async def _spawn(self, name: str, argv: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        """Start ``argv``: forked from the zygote when there is one, else spawned."""
        proc: asyncio.subprocess.Process | AsyncForkedProcess | None = None
        if self.zygote is not None:
            proc = await self.zygote.fork(argv, pass_fds)
        if proc is None:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=self._env(),
                pass_fds=pass_fds,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the REPL is the driver's, not theirs
            )
        self.processes[name] = proc
        self._roles[name] = (argv, pass_fds)
        watcher = asyncio.create_task(self._supervise(name, proc))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _supervise(
        self, name: str, proc: asyncio.subprocess.Process | AsyncForkedProcess
    ) -> None:
        """Restart a process that dies while the cluster runs (bounded, to stop crash loops)."""
        code = await proc.wait()
        if self._stopping or self.processes.get(name) is not proc:
            return
        now = time.monotonic()
        recent = [t for t in self._restarts.get(name, []) if now - t < RESTART_WINDOW]
        if len(recent) >= MAX_RESTARTS:
            log.error("%s exited (code %s) %d times in %ds; not restarting it again",
                      name, code, len(recent), RESTART_WINDOW)
            return
        self._restarts[name] = [*recent, now]
        log.warning("%s exited with code %s; restarting it", name, code)
        argv, pass_fds = self._roles[name]
        if name.startswith("worker-"):
            argv = self._worker_command(int(name.split("-")[1]))  # a new identity
        await self._spawn(name, argv, pass_fds)

    async def start(self) -> str:
        """Start every process; returns the master's URL (workers register on their own)."""
        self.root = tempfile.mkdtemp(prefix="aiospark-session-")
        shuffle_dir = os.path.join(self.root, "shuffle")
        # Kept open while the cluster runs, so a restarted master or shuffle
        # service serves on the same address.
        self._sockets = [listening_socket(port=self.master_port), listening_socket()]
        master_sock, shuffle_sock = self._sockets
        try:
            scheme = tls.scheme()
            self.master_url = "{}://{}:{}".format(scheme, *master_sock.getsockname()[:2])
            self.shuffle_url = "{}://{}:{}".format(scheme, *shuffle_sock.getsockname()[:2])
            m_fd, s_fd = master_sock.fileno(), shuffle_sock.fileno()
            self.zygote = ZygoteLauncher(self.root)
            if not await self.zygote.start(self._env()):
                self.zygote = None
            await self._spawn(
                "master",
                self._command(
                    "master", "--fd", str(m_fd), "--worker-timeout", str(self.worker_timeout),
                    "--session-dir", self.root,
                ),
                (m_fd,),
            )
            await self._spawn(
                "shuffle-service",
                self._command(
                    "shuffle-service", "--fd", str(s_fd), "--dir", shuffle_dir, "--cleanup"
                ),
                (s_fd,),
            )
            for i in range(self.num_workers):
                await self.start_worker(i)
            self._probes = asyncio.create_task(self._probe_roles())
        except BaseException:
            await self.stop()
            raise
        return self.master_url

    async def _probe_roles(self) -> None:
        """Kill a master or shuffle service that stopped answering: ``_supervise`` restarts it."""
        import aiohttp

        from aiospark.protocol.auth import auth_headers
        from aiospark.runtime import process_stopped

        roles = {"master": self.master_url, "shuffle-service": self.shuffle_url}
        liveness = {name: Liveness() for name in roles}
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
        async with aiohttp.ClientSession(
            headers=auth_headers(self.secret), timeout=timeout,
            connector=aiohttp.TCPConnector(ssl=tls.client_context()),
        ) as session:
            while not self._stopping:
                for name, url in roles.items():
                    proc = self.processes.get(name)
                    if proc is None or proc.returncode is not None:
                        continue  # dead: _supervise restarts it
                    answered = True
                    try:
                        async with session.get(f"{url}/v1/health") as resp:
                            await resp.read()
                    except (aiohttp.ClientError, OSError, TimeoutError):
                        answered = False
                    if liveness[name].probed(answered, process_stopped(proc.pid)):
                        log.warning("%s (pid %d) stopped answering; killing it to restart it",
                                    name, proc.pid)
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                await asyncio.sleep(PROBE_INTERVAL)

    def _worker_command(self, index: int) -> list[str]:
        shuffle_dir = os.path.join(self.root, "shuffle")
        return self._command(
            "worker",
            "--master", self.master_url,
            "--shuffle-url", self.shuffle_url,
            "--shuffle-dir", shuffle_dir,
            "--work-dir", os.path.join(self.root, f"worker-{index}"),
            "--cores", str(self.cores_per_worker),
            *(["--memory", str(self.worker_memory)] if self.worker_memory else []),
            "--worker-id", f"worker-{index}-{os.urandom(3).hex()}",
            "--drain-timeout", "0",  # the driver is stopping: no one waits for its tasks
        )

    async def start_worker(self, index: int) -> None:
        """Start (or add) worker number ``index``."""
        await self._spawn(f"worker-{index}", self._worker_command(index))

    def pids(self) -> dict[str, int]:
        """Process ids by role name."""
        return {name: p.pid for name, p in self.processes.items()}

    async def stop(self, timeout: float = 5.0) -> None:
        """Terminate every process (SIGKILL after ``timeout``) and remove temporary files."""
        self._stopping = True
        if self._probes is not None:
            self._probes.cancel()
        for watcher in list(self._watchers):
            watcher.cancel()
        procs = [p for p in self.processes.values() if p.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        if procs:
            await asyncio.wait(
                [asyncio.ensure_future(p.wait()) for p in procs], timeout=timeout
            )
            for proc in procs:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            for proc in procs:
                with contextlib.suppress(Exception):
                    await proc.wait()
        self.processes.clear()
        if self.zygote is not None:
            await self.zygote.stop()
            self.zygote = None
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
