"""The cluster secret: every request between processes must prove it knows it."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

HEADER = "Authorization"
_SCHEME = "Bearer "


def new_secret() -> str:
    """A fresh random secret for a session.

    >>> len(new_secret()) >= 32
    True
    """
    return secrets.token_urlsafe(32)


def auth_headers(secret: str) -> dict[str, str]:
    """Headers that authenticate a request.

    >>> auth_headers("s3cr3t")
    {'Authorization': 'Bearer s3cr3t'}
    """
    return {HEADER: _SCHEME + secret}


def is_authorized(header_value: str | None, secret: str) -> bool:
    """Constant-time check of an ``Authorization`` header against the secret.

    >>> is_authorized("Bearer abc", "abc"), is_authorized("Bearer abd", "abc")
    (True, False)
    >>> is_authorized(None, "abc")
    False

    A header that is not UTF-8 (aiohttp keeps its bytes as surrogates) is simply wrong:

    >>> is_authorized("Bearer " + b"\\xff".decode("utf-8", "surrogateescape"), "abc")
    False
    """
    if not header_value or not header_value.startswith(_SCHEME):
        return False
    given = header_value[len(_SCHEME) :].encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, secret.encode("utf-8", "surrogateescape"))


#: Probes answered without the secret (Kubernetes cannot send it); they reveal nothing.
LIVE_PATH = "/v1/live"
READY_PATH = "/v1/ready"


def auth_middleware(
    secret: str,
    ready: Callable[[], bool] | None = None,
    allow: Callable[[web.Request], bool] | None = None,
) -> Callable[..., Any]:
    """aiohttp middleware refusing (401) any request that lacks the secret.

    Two probe paths are answered here, before the check: ``/v1/live`` (200
    while the process serves) and ``/v1/ready`` (200 when ``ready()`` is true,
    else 503: a worker not yet registered, or draining).  Both answer only
    ``{"live": ...}`` / ``{"ready": ...}``.

    ``allow(request)``, when given, may let a request through without the
    header: the master's status page lets a browser in with a session cookie
    (``aiospark.master.ui``).
    """
    from aiohttp import web  # here: the rest of this module serves drivers before aiohttp

    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method == "GET" and request.path == LIVE_PATH:
            return web.json_response({"live": True})
        if request.method == "GET" and request.path == READY_PATH:
            is_ready = ready is None or bool(ready())
            return web.json_response({"ready": is_ready}, status=200 if is_ready else 503)
        authorized = is_authorized(request.headers.get(HEADER), secret)
        if not authorized and not (allow is not None and allow(request)):
            refused = web.json_response(
                {"error": "missing or wrong cluster secret"}, status=401
            )
            refused.force_close()  # no kept-alive connections for whoever lacks the secret
            return refused
        return await handler(request)

    return check
