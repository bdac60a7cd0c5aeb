"""Talking to a master from the command line: its HTTP URL, its status JSON."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from aiospark.commands.failure import CommandFailed
from aiospark.protocol import tls
from aiospark.protocol.auth import auth_headers


def http_url(master: str) -> str:
    """The HTTP(S) URL of the master at ``master`` (``aiospark://host:port`` or ``http://``).

    >>> http_url("aiospark://10.0.0.5:7077")
    'http://10.0.0.5:7077'
    """
    from aiospark.protocol.tls import master_http_url

    return master_http_url(master)


def aiospark_url(url: str) -> str:
    """The ``aiospark://host:port`` form of a master's HTTP URL, as drivers are given it.

    >>> aiospark_url("http://127.0.0.1:7077")
    'aiospark://127.0.0.1:7077'
    """
    return "aiospark://" + url.split("://", 1)[1]


def session(secret: str) -> aiohttp.ClientSession:
    """A client session that proves ``secret`` on every request.

    >>> async with session("s3cr3t") as client:
    ...     client.headers["Authorization"]
    'Bearer s3cr3t'
    """
    return aiohttp.ClientSession(
        headers=auth_headers(secret), timeout=aiohttp.ClientTimeout(total=10),
        connector=aiohttp.TCPConnector(ssl=tls.client_context()),
    )


async def fetch_status(client: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """``GET /v1/status`` of the master at ``url``; ``CommandFailed`` saying why not.

    >>> async with session("wrong") as client:
    ...     await fetch_status(client, ctx._scheduler.master_url)
    Traceback (most recent call last):
    ...
    aiospark.commands.failure.CommandFailed: the master at http://... refused the cluster secret ...
    """
    try:
        async with client.get(f"{url}/v1/status") as resp:
            if resp.status == 401:
                raise CommandFailed(f"the master at {url} refused the cluster secret (401): "
                                    "give the cluster's one with --secret-file")
            if resp.status != 200:
                raise CommandFailed(f"the master at {url} answered {resp.status}: "
                                    f"{(await resp.text())[:200]}")
            return await resp.json()
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise CommandFailed(f"cannot reach the master at {url}: {exc or type(exc).__name__}"
                            ) from None


async def wait_for_workers(
    client: aiohttp.ClientSession, url: str, count: int, timeout: float
) -> dict[str, Any]:
    """Poll the master's status until ``count`` workers are registered; returns it.

    >>> async with session(ctx._cluster.secret) as client:
    ...     status = await wait_for_workers(client, ctx._cluster.master_url, 2, 30)
    >>> len(status["workers"])
    2
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = await fetch_status(client, url)
            registered = len(status.get("workers", []))
            if registered >= count:
                return status
            problem = f"only {registered} of {count} workers registered with {url}"
        except CommandFailed as exc:
            problem = str(exc)
        if time.monotonic() > deadline:
            raise CommandFailed(f"{problem} (waited {timeout:.0f}s)")
        await asyncio.sleep(0.05)
