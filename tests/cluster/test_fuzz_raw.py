"""Raw-socket abuse of every role: malformed requests, slow and idle clients.

A standalone master, shuffle service and worker (executor and supervisor) are
started with the CLI, plus a master whose file descriptor limit is 1,024.
Requests no HTTP library would send (invalid UTF-8 in headers and bodies,
malformed heads, JSON nested 100,000 deep, 5,000-digit integers, Unicode
digits in ids) must get a 4xx, never a 5xx; connections that never finish
their request head must be closed within ``HEADER_TIMEOUT`` (plus a margin);
``/v1/health`` must answer promptly while 1,000+ idle connections are open;
no answer may hold a server's event loop (a concurrent ``/v1/health`` stays fast).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import struct
import subprocess
import time

import aiohttp
import pytest

from aiospark.protocol.auth import auth_headers
from aiospark.protocol.connections import HEADER_TIMEOUT
from aiospark.worker.broadcasts import ARRIVAL_WAIT_SECONDS
from tests.cluster.cli_processes import start_serving, stop_all

pytestmark = pytest.mark.cluster

SECRET = "raw-fuzz-secret"
AUTH = auth_headers(SECRET)
AUTH_LINE = f"Authorization: Bearer {SECRET}\r\n".encode()
#: An idle connection must be gone this long after it opened.
CLOSED_WITHIN = HEADER_TIMEOUT + 3.0
#: ``/v1/health`` must answer within this while the server is being abused.
PROMPT = 2.0
IDLE_CONNECTIONS = 1_100


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        top = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


def _start(role: str, *args: str, fd_limit: int | None = None) -> tuple[subprocess.Popen, str]:
    return start_serving(role, *args, secret=SECRET, fd_limit=fd_limit)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    _raise_fd_limit(4 * IDLE_CONNECTIONS + 1000)
    root = tmp_path_factory.mktemp("rawfuzz")
    shuffle_root = root / "shuffle"
    procs: list[subprocess.Popen] = []
    try:
        master, master_url = _start("master", "--port", "0")
        procs.append(master)
        small, small_url = _start("master", "--port", "0", fd_limit=1024)
        procs.append(small)
        shuffle, shuffle_url = _start("shuffle-service", "--port", "0", "--dir",
                                      str(shuffle_root))
        procs.append(shuffle)
        worker, worker_url = _start(
            "worker", "--master", master_url, "--shuffle-url", shuffle_url,
            "--shuffle-dir", str(shuffle_root), "--work-dir", str(root / "work"),
        )
        procs.append(worker)
        # One map output of shuffle 1 of "rawapp": 2 reducers.
        directory = shuffle_root / "rawapp" / "1"
        directory.mkdir(parents=True)
        (directory / "0.index").write_bytes(struct.pack("<3Q", 0, 0, 0))
        (directory / "0.data").write_bytes(b"")
        yield {"master": master_url, "small-master": small_url, "shuffle-service": shuffle_url,
               "worker": worker_url, "worker-supervisor": worker.control_url,
               "shuffle_root": str(shuffle_root), "procs": procs}
        assert all(p.poll() is None for p in procs), "a process died"
    finally:
        stop_all(procs)


ROLES = ["master", "shuffle-service", "worker", "worker-supervisor"]


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def _raw(url: str, data: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send ``data`` as is; the status and body of the answer."""
    reader, writer = await asyncio.open_connection(*_address(url))
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            answer = await reader.read()  # every case closes or is answered with close
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


def _request(method: str, path: str | bytes, *, body: bytes = b"", auth: bool = True,
             headers: bytes = b"") -> bytes:
    if isinstance(path, str):
        path = path.encode()
    return (method.encode() + b" " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + (AUTH_LINE if auth else b"") + headers
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_INT = b'{"worker_id": "w", "running_tasks": ' + b"9" * 5000 + b', "memory_used": 0}'
NOT_UTF8 = b'{"worker_id": "\xff\xfe"}'
JSON = b"Content-Type: application/json\r\n"

#: (name, role, raw request, expected status)
CASES = [
    *[(f"bad-utf8-bearer-{role}", role,
       _request("GET", "/v1/health", auth=False, headers=b"Authorization: Bearer \xff\xfe\r\n"),
       401) for role in ROLES],
    *[(f"no-secret-{role}", role, _request("GET", "/v1/health", auth=False), 401)
      for role in ROLES],
    *[(f"malformed-head-{role}", role, b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400)
      for role in ROLES],
    *[(f"bad-request-line-{role}", role, b"GET\x00/ HTTP/1.1\r\n\r\n", 400) for role in ROLES],
    *[(f"utf8-path-{role}", role, _request("GET", b"/v1/\xff\xfe"), 400) for role in ROLES],
    *[(f"utf8-header-{role}", role,
       _request("GET", "/v1/health", auth=False, headers=b"X-Name: \xff\xfe\r\n"), 401)
      for role in ROLES],
    ("encoded-utf8-app", "shuffle-service", _request("DELETE", "/v1/shuffle/%FF%FE"), 400),
    ("encoded-utf8-events-app", "master", _request("GET", "/v1/events?app=%FF%FE"), 400),
    ("utf8-cookie", "master",
     _request("GET", "/v1/status", auth=False, headers=b"Cookie: aiospark_session=\xff\xfe\r\n"),
     401),
    ("utf8-cookie-page", "master",
     _request("GET", "/ui/", auth=False, headers=b"Cookie: aiospark_session=\xff\xfe\r\n"),
     303),
    ("utf8-login-token", "master", _request("GET", "/ui/login?token=%FF%FE", auth=False), 401),
    *[(f"huge-header-{role}", role,
       _request("GET", "/v1/health", headers=b"X-Big: " + b"a" * 20_000 + b"\r\n"), 400)
      for role in ROLES],
    ("login-not-utf8", "master",
     _request("POST", "/ui/login", auth=False, body=b"secret=\xff\xfe%FF",
              headers=b"Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"),
     400),
    ("deep-json-register", "master", _request("POST", "/v1/workers", body=DEEP, headers=JSON),
     400),
    ("deep-json-jobs", "master",
     _request("POST", "/v1/apps/app-1/jobs", body=DEEP, headers=JSON), 400),
    ("deep-json-kill", "worker-supervisor",
     _request("POST", "/v1/kill", body=DEEP, headers=JSON), 400),
    ("huge-int-heartbeat", "master",
     _request("POST", "/v1/workers/w/heartbeat", body=HUGE_INT, headers=JSON), 400),
    ("huge-int-kill", "worker-supervisor",
     _request("POST", "/v1/kill", body=b'{"app_id": "a", "task_ids": [], "pid": '
              + b"1" * 5000 + b"}", headers=JSON), 400),
    ("not-utf8-json", "master",
     _request("POST", "/v1/workers", body=NOT_UTF8, headers=JSON), 400),
    ("not-utf8-json-kill", "worker-supervisor",
     _request("POST", "/v1/kill", body=NOT_UTF8, headers=JSON), 400),
    ("superscript-shuffle-id", "shuffle-service",
     _request("GET", "/v1/shuffle/rawapp/%C2%B2/0?maps=0"), 400),
    ("arabic-digit-reduce-id", "shuffle-service",
     _request("GET", "/v1/shuffle/rawapp/1/%D9%A3?maps=0"), 400),
    ("superscript-map-id", "shuffle-service",
     _request("GET", "/v1/shuffle/rawapp/1/0?maps=%C2%B2"), 400),
    ("huge-shuffle-id", "shuffle-service",
     _request("GET", "/v1/shuffle/rawapp/" + "9" * 5000 + "/0?maps=0"), 400),
    ("delete-superscript-shuffle", "shuffle-service",
     _request("DELETE", "/v1/shuffle/rawapp/%C2%B2"), 400),
    ("superscript-task-id", "worker", _request("GET", "/v1/results/app-1/%C2%B2"), 400),
    ("superscript-rdd-id", "worker", _request("GET", "/v1/blocks/app-1/%C2%B2/0"), 400),
    ("arabic-broadcast-id", "worker", _request("GET", "/v1/broadcast/app-1/%D9%A3"), 400),
    ("huge-task-id", "worker", _request("GET", "/v1/results/app-1/" + "9" * 5000), 400),
    ("signed-task-id", "worker", _request("GET", "/v1/results/app-1/+1"), 400),
]


@pytest.mark.parametrize("name,role,data,expected", CASES, ids=[c[0] for c in CASES])
def test_malformed_requests_get_4xx(servers, name, role, data, expected):
    status, body = asyncio.run(_raw(servers[role], data))
    assert status < 500, f"{name}: {status} {body[:300]!r}"
    assert status == expected, f"{name}: {status} {body[:300]!r}"


def test_a_400_names_no_private_path(servers):
    # Map 0 of shuffle 1 exists with 2 reducers: reducer 5 is out of range.
    status, body = asyncio.run(_raw(servers["shuffle-service"],
                                    _request("GET", "/v1/shuffle/rawapp/1/5?maps=0")))
    assert status == 400, body
    assert b"out of range" in body
    assert servers["shuffle_root"].encode() not in body and b"/" not in body.split(b":", 1)[1]


async def _health_seconds(session: aiohttp.ClientSession, url: str) -> float:
    started = time.monotonic()
    async with session.get(f"{url}/v1/health", timeout=aiohttp.ClientTimeout(total=30)) as r:
        assert r.status == 200
    return time.monotonic() - started


def test_a_huge_map_range_is_refused_and_never_holds_the_loop(servers):
    url = servers["shuffle-service"]

    async def main() -> None:
        async with aiohttp.ClientSession(headers=AUTH) as session:
            started = time.monotonic()
            async with session.get(f"{url}/v1/shuffle/rawapp/1/0",
                                   params={"maps": "0-999999"}) as r:
                assert r.status == 400
                assert "more than" in (await r.json())["error"]
            assert time.monotonic() - started < PROMPT
            # The most one request may name, most of them missing: looked up off the loop.
            big = asyncio.create_task(session.get(f"{url}/v1/shuffle/rawapp/1/0",
                                                  params={"maps": "0-99999"}))
            await asyncio.sleep(0)
            waits = [await _health_seconds(session, url) for _ in range(5)]
            async with await big as r:
                assert r.status == 404
                answer = await r.json()
            assert answer["missing_count"] == 99_999 and len(answer["missing_maps"]) == 100
            assert max(waits) < PROMPT, waits

    asyncio.run(main())


def test_a_missing_broadcast_is_a_prompt_404(servers):
    url = servers["worker"]

    async def main() -> None:
        # A driver of the application is connected, so the worker waits for the
        # broadcast to arrive, but no longer than ARRIVAL_WAIT_SECONDS.
        async with (
            aiohttp.ClientSession(headers=AUTH) as session,
            session.ws_connect(f"{url}/v1/driver", params={"app": "bcast-app"}),
        ):
            started = time.monotonic()
            async with session.get(f"{url}/v1/broadcast/bcast-app/7") as r:
                assert r.status == 404
            assert time.monotonic() - started < ARRIVAL_WAIT_SECONDS + 2

    asyncio.run(main())


async def _idle(url: str, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(*_address(url))
    if data:
        writer.write(data)
        await writer.drain()
    return reader, writer


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


@pytest.mark.parametrize("role", ROLES)
def test_idle_and_slow_connections_are_closed(servers, role):
    url = servers[role]

    async def main() -> None:
        started = time.monotonic()
        silent = await _idle(url, b"")
        partial = await _idle(url, b"GET / HTTP/1.1\r\n")
        slow = await _idle(url, b"GET /v1/health HTTP/1.1\r\n")

        async def dribble() -> None:  # one header byte a second: never finishes in time
            for byte in AUTH_LINE:
                if slow[1].is_closing():
                    return
                slow[1].write(bytes([byte]))
                await asyncio.sleep(1)

        dribbler = asyncio.create_task(dribble())
        # After a complete request, a kept-alive connection that starts another and
        # stalls is closed too.
        kept = await _idle(url, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + AUTH_LINE + b"\r\n")
        await kept[0].readuntil(b"\r\n\r\n")
        kept[1].write(b"GET /v1/health HTTP/1.1\r\n")
        try:
            results = await asyncio.gather(
                *(_closed_within(r, CLOSED_WITHIN) for r, _ in (silent, partial, slow, kept)))
        finally:
            dribbler.cancel()
            for _, writer in (silent, partial, slow, kept):
                writer.close()
        assert results == [True, True, True, True], results
        assert time.monotonic() - started >= HEADER_TIMEOUT - 0.5  # not closed at once

    asyncio.run(main())


@pytest.mark.parametrize("role", ["small-master", *ROLES])
def test_health_answers_with_1000_idle_connections_open(servers, role):
    """``small-master`` has 1,024 file descriptors: the idle connections alone would take
    them all; the oldest are closed to make room."""
    url = servers[role]

    async def main() -> None:
        conns = []
        try:
            for _ in range(IDLE_CONNECTIONS):
                # Refused or reset at once is fine: such a connection holds nothing.
                with contextlib.suppress(ConnectionError):
                    conns.append(await _idle(url, b"GET / HTTP/1.1\r\n"))
            async with aiohttp.ClientSession(headers=AUTH) as session:
                waits = [await _health_seconds(session, url) for _ in range(3)]
                assert max(waits) < PROMPT, waits
                if "master" in role:  # a driver can still connect and watch the cluster
                    async with session.ws_connect(f"{url}/v1/events",
                                                  params={"app": "second-driver"}) as ws:
                        first = await ws.receive_json(timeout=PROMPT)
                        assert first["kind"] == "snapshot"
        finally:
            for _, writer in conns:
                writer.close()

    asyncio.run(main())
