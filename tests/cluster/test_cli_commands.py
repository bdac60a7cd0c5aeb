"""``aiospark local``, ``status``, ``submit`` and ``shell``, as a user runs them: real
processes, no secret configured (they share the user's local secret), a fresh home."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import aiospark
from tests.conftest import pid_alive, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]

AIOSPARK = [sys.executable, "-m", "aiospark"]


def user_env(home: Path) -> dict[str, str]:
    """This process's environment with a fresh home and no aiospark settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOSPARK_")}
    env.update(XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
    return env


class Foreground:
    """A long-running command whose output lines are read as they come."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.out.put),
                         daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err.append),
                         daemon=True).start()

    @staticmethod
    def _pump(stream, put) -> None:
        for line in stream:
            put(line.rstrip("\n"))

    def read_until(self, marker: str, timeout: float = 60) -> list[str]:
        lines = []
        while not lines or marker not in lines[-1]:
            try:
                lines.append(self.out.get(timeout=timeout))
            except queue.Empty:
                raise AssertionError(f"no {marker!r} within {timeout}s; got {lines}\n"
                                     + "\n".join(self.err[-20:])) from None
        return lines

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """``aiospark local --workers 2`` running for the module's tests."""
    home = tmp_path_factory.mktemp("home")
    env = user_env(home)
    running = Foreground([*AIOSPARK, "local", "--workers", "2", "--port", "0"], env)
    try:
        hint = running.read_until("Press Ctrl-C")
        url = re.search(r"master at (aiospark://\S+)", hint[0]).group(1)
        yield SimpleNamespace(url=url, env=env, hint=hint, home=home, process=running)
    finally:
        running.stop(signal.SIGINT)


def run(argv: list[str], env: dict[str, str], stdin: str = "", timeout: float = 90
        ) -> subprocess.CompletedProcess:
    return subprocess.run([*AIOSPARK, *argv], env=env, input=stdin, text=True,
                          capture_output=True, timeout=timeout)


async def test_local_prints_how_to_connect_with_a_private_local_secret(local, monkeypatch):
    secret_file = local.home / "config" / "aiospark" / "secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert any(f"aiospark shell --master {local.url}" in line for line in local.hint)
    assert any(f"AIOSPARK_SECRET_FILE={secret_file}" in line for line in local.hint)
    async with aiospark.Context(local.url, secret=secret_file.read_text().strip()) as ctx:
        await wait_until(lambda: len(ctx._scheduler.links) == 2, 20, "both workers")
        assert await ctx.parallelize(range(100), 4).map(lambda x: x * x).sum() == 328350
    # A driver of the same user on the same machine finds the local secret by itself.
    for name in ("AIOSPARK_SECRET", "AIOSPARK_SECRET_FILE", "AIOSPARK_MASTER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(local.home / "config"))
    async with aiospark.Context(local.url) as ctx:
        assert await ctx.parallelize(range(10), 2).sum() == 45


def test_status_prints_the_workers_as_a_table_or_json(local):
    table = run(["status", "--master", local.url], local.env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"master {local.url}") and "2 workers" in lines[0]
    header = next(line for line in lines if line.startswith("WORKER"))
    rows = lines[lines.index(header) + 1:][:2]
    assert all(row.startswith("worker-") and "alive" in row for row in rows), lines

    as_json = run(["status", "--json"], {**local.env, "AIOSPARK_MASTER": local.url})
    assert as_json.returncode == 0, as_json.stderr
    status = json.loads(as_json.stdout)
    assert len(status["workers"]) == 2 and status["cores"] == 2

    refused = run(["status", "--master", local.url], {**local.env, "AIOSPARK_SECRET": "wrong"})
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith("--secret-file"), refused.stderr
    assert "refused the cluster secret" in refused.stderr and refused.stdout == ""


def test_submit_runs_an_app_whose_context_connects_to_the_master(local, tmp_path):
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent("""
        import asyncio, sys
        import aiospark

        async def main():
            async with aiospark.Context() as ctx:
                print("master", ctx.master)
                print("args", sys.argv[1:])
                print("sum", await ctx.range(int(sys.argv[1])).sum())
            if "--fail" in sys.argv:
                sys.exit(3)

        asyncio.run(main())
    """))
    done = run(["submit", "--master", local.url, str(app), "100", "--verbose"], local.env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"master {local.url}", "args ['100', '--verbose']",
                                        "sum 4950"]
    failed = run(["submit", "--master", local.url, str(app), "10", "--fail"], local.env)
    assert failed.returncode == 3 and "sum 45" in failed.stdout
    missing = run(["submit", "--master", local.url, str(tmp_path / "nope.py")], local.env)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_submit_runs_a_program_written_for_the_embedded_cluster_unchanged(local, tmp_path):
    # getting-started.md's first_job.py says Context(workers=2): submit runs it as it is,
    # the cluster's workers replacing the embedded ones, named by its file on the status page.
    app = tmp_path / "first_job.py"
    app.write_text(textwrap.dedent("""
        import asyncio
        import aiospark

        async def main():
            async with aiospark.Context(workers=2, worker_memory="256m") as ctx:
                print("master", ctx.master)
                print("sum", await ctx.parallelize(range(1, 1001), 4).map(lambda x: x * x).sum())

        asyncio.run(main())
    """))
    done = run(["submit", "--master", local.url, "--log-level", "info", str(app)], local.env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"master {local.url}", "sum 333833500"]
    notes = [line for line in done.stderr.splitlines() if "workers=" in line]
    assert len(notes) == 1 and "ignored" in notes[0], done.stderr
    quiet = run(["submit", "--master", local.url, str(app)], local.env)
    assert quiet.returncode == 0 and "workers=" not in quiet.stderr, quiet.stderr
    status = json.loads(run(["status", "--json", "--master", local.url], local.env).stdout)
    assert "first_job.py" in {a["name"] for a in status["apps"]}, status["apps"]


def test_shell_has_a_connected_ctx_and_top_level_await(local):
    script = "\n".join([
        "print('parallelism', ctx.default_parallelism)",
        "total = await ctx.parallelize(range(10), 2).map(lambda x: x * 2).sum()",
        "print('total', total)",
        "1 / 0",
        "print('still here', await asyncio.sleep(0, result=7))",
        "",
    ])
    done = run(["shell", "--master", local.url], local.env, stdin=script)
    assert done.returncode == 0, done.stderr
    assert "parallelism 2" in done.stdout and "total 90" in done.stdout, done.stdout
    assert "ZeroDivisionError" in done.stderr and "still here 7" in done.stdout
    assert f"ctx is connected to {local.url}" in done.stderr


def test_shell_without_master_starts_an_embedded_cluster(tmp_path):
    done = run(["shell", "--workers", "1"], user_env(tmp_path),
               stdin="print('sum', await ctx.range(10).sum())\n")
    assert done.returncode == 0, done.stderr
    assert "sum 45" in done.stdout and "an embedded cluster" in done.stderr


def test_local_stops_every_process_on_sigterm(tmp_path):
    running = Foreground([*AIOSPARK, "local", "--workers", "1", "--port", "0"],
                         user_env(tmp_path))
    try:
        running.read_until("Press Ctrl-C")
        children = started_by(running.proc.pid)  # forked by its zygote, or spawned
        roles = [_role(pid) for pid in children]
        assert sorted(r for r in roles if r != "zygote") == ["master", "shuffle-service",
                                                              "worker"]
    finally:
        code = running.stop(signal.SIGTERM)
    assert code == 0, "\n".join(running.err)
    assert not [pid for pid in children if pid_alive(pid)]


def _role(pid: int) -> str:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return argv[2].decode().removeprefix("aiospark.") if argv[2] != b"aiospark" else (
        argv[3].decode())


def started_by(pid: int) -> list[int]:
    """Live processes of an embedded cluster whose driver is ``pid`` (``--parent-pid``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--parent-pid" in argv and argv[argv.index(b"--parent-pid") + 1:][:1] == [
                    str(pid).encode()] and pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def test_local_stopped_while_starting_stops_every_process(tmp_path):
    # The stop signal is caught from before the first process starts: a SIGTERM while
    # the cluster starts is a clean stop (exit 0), not a death leaving orphans behind.
    running = Foreground([*AIOSPARK, "local", "--workers", "2", "--port", "0"],
                         user_env(tmp_path))
    try:
        deadline = time.monotonic() + 60
        while not children_of(running.proc.pid):
            assert running.proc.poll() is None and time.monotonic() < deadline, running.err
            time.sleep(0.005)
    finally:
        code = running.stop(signal.SIGTERM)
    assert code == 0, "\n".join(running.err)
    assert started_by(running.proc.pid) == []


def test_a_port_in_use_is_one_line_and_exit_code_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for argv in (["master", "--port", port], ["local", "--workers", "1", "--port", port]):
            done = run(argv, user_env(tmp_path))
            assert done.returncode == 1, done.stderr
            line = done.stderr.splitlines()[-1]  # after the master's log lines
            assert line == (f"aiospark {argv[0]}: error: cannot listen on 127.0.0.1:{port}: "
                            "Address already in use")
