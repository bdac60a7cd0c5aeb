"""The master's status page: a browser login, the page itself, and its live feed.

A browser cannot send the ``Authorization: Bearer`` header every other
request carries, and the secret must never appear in a page or a URL. So a
browser logs in once, in one of two ways, and gets a session cookie
(``HttpOnly``, ``SameSite=Strict``, ``Secure`` over TLS, 12 hours):

- a one-time link: a client holding the secret asks ``POST /v1/ui/tokens``
  for a token (single use, valid 10 minutes) and opens
  ``/ui/login?token=...``; ``Context.status_page_link()`` does both;
- a form: ``/ui/login`` asks for the secret (posted in the body, never in a
  URL), e.g. pasted from the secret file.

The cookie opens only read-only ``GET`` routes: the page, its script, its
event stream, ``/v1/status`` and ``/metrics``; every other route still
needs the secret itself.  Sessions live in the master's memory (a restart
logs everyone out) and are stored hashed.  Pages are sent with a strict
Content-Security-Policy (no inline script, nothing from other origins), no
framing and no referrer to other origins; a login or logout posted from
another origin is refused.  The page receives the ``GET /v1/status`` snapshot as
server-sent events (``/ui/events``) whenever the cluster changes, at most
``1 / UPDATE_INTERVAL`` times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import pathlib
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from aiospark.protocol.auth import HEADER, is_authorized

COOKIE = "aiospark_session"
SESSION_SECONDS = 12 * 3600
TOKEN_SECONDS = 600
#: Sessions and unused tokens kept at most (the oldest go first).
MAX_SESSIONS = 1000
#: The page's feed sends at most one snapshot per this many seconds...
UPDATE_INTERVAL = 0.25
#: ...and a comment line when nothing changed for this long (keeps proxies from timing out).
KEEPALIVE_SECONDS = 15.0
STATIC = pathlib.Path(__file__).with_name("static")
#: Files the page may load, and their types.
ASSETS = {"status.js": "text/javascript", "style.css": "text/css"}

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not "no-referrer": with it, browsers send ``Origin: null`` on the page's own form
    # posts, and the same-origin check below refuses every login and logout.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: Routes open without any credential: the login page and its stylesheet; ``/`` and
#: ``/ui/`` only redirect (to the login page unless the request is authenticated).
_PUBLIC = frozenset({("GET", "/"), ("GET", "/ui/"), ("GET", "/ui/login"),
                     ("POST", "/ui/login"), ("GET", "/ui/static/style.css")})
#: Routes a session cookie opens.
_WITH_COOKIE = frozenset({("GET", "/ui/events"), ("GET", "/ui/static/status.js"),
                          ("GET", "/v1/status"), ("GET", "/metrics"), ("POST", "/ui/logout")})
_MESSAGES = {
    "": "",
    "bad-secret": "That is not the cluster secret.",
    "bad-token": "This login link was already used or has expired: ask for a new one.",
    "logged-out": "You are logged out.",
}


def _key(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


class Sessions:
    """Browser sessions of the status page, and one-time login tokens.

    >>> sessions = Sessions("s3cr3t", clock=lambda: 0.0)
    >>> token = sessions.new_token()
    >>> sid = sessions.redeem(token)
    >>> sessions.valid(sid), sessions.redeem(token)   # a token works once
    (True, None)
    >>> sessions.login("wrong"), sessions.valid(sessions.login("s3cr3t"))
    (None, True)
    """

    def __init__(self, secret: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._secret = secret
        self._clock = clock
        #: hash of a session id / token -> when it expires
        self._sessions: dict[str, float] = {}
        self._tokens: dict[str, float] = {}

    def _add(self, table: dict[str, float], ttl: float) -> str:
        now = self._clock()
        for key in [k for k, expires in table.items() if expires <= now]:
            del table[key]
        while len(table) >= MAX_SESSIONS:
            del table[next(iter(table))]
        value = secrets.token_urlsafe(32)
        table[_key(value)] = now + ttl
        return value

    def new_token(self) -> str:
        """A one-time login token."""
        return self._add(self._tokens, TOKEN_SECONDS)

    def redeem(self, token: str) -> str | None:
        """A new session for a valid token (which is used up), else None."""
        expires = self._tokens.pop(_key(token), None)
        if expires is None or expires <= self._clock():
            return None
        return self._add(self._sessions, SESSION_SECONDS)

    def login(self, attempt: str) -> str | None:
        """A new session when ``attempt`` is the cluster secret, else None."""
        if not hmac.compare_digest(attempt.encode("utf-8", "surrogateescape"),
                                   self._secret.encode("utf-8", "surrogateescape")):
            return None
        return self._add(self._sessions, SESSION_SECONDS)

    def valid(self, session_id: str | None) -> bool:
        """True for a live session."""
        if not session_id:
            return False
        expires = self._sessions.get(_key(session_id))
        return expires is not None and expires > self._clock()

    def end(self, session_id: str | None) -> None:
        """Log a session out."""
        if session_id:
            self._sessions.pop(_key(session_id), None)


class Changes:
    """A version number bumped whenever the cluster changes, that streams can wait on.

    >>> changes = Changes()
    >>> changes.bump(); changes.version
    1
    >>> await changes.wait(seen=0, timeout=1.0)   # already newer: at once
    1
    """

    def __init__(self) -> None:
        self.version = 0
        self._event = asyncio.Event()

    def bump(self) -> None:
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seen: int, timeout: float) -> int:
        """The version once it differs from ``seen``, or after ``timeout`` seconds."""
        if self.version == seen:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
        return self.version


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={**_HEADERS, "Location": location})


def _same_origin(request: web.Request) -> bool:
    """False when the browser says the request comes from a page of another origin."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.host


class StatusPage:
    """The page's routes, given the snapshot function and the change counter of a master."""

    def __init__(self, secret: str, snapshot: Callable[[], dict[str, Any]],
                 changes: Changes) -> None:
        self.secret = secret
        self.sessions = Sessions(secret)
        self.snapshot = snapshot
        self.changes = changes
        self._closing = False
        self._cache: tuple[int, bytes] = (-1, b"")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.root),
            web.get("/ui/", self.index),
            web.get("/ui/login", self.login_page),
            web.post("/ui/login", self.login),
            web.post("/ui/logout", self.logout),
            web.get("/ui/events", self.events),
            web.get("/ui/static/{name}", self.asset),
            web.post("/v1/ui/tokens", self.new_token),
        ]

    def setup(self, app: web.Application) -> None:
        app.add_routes(self.routes())
        app.on_shutdown.append(self._close_streams)

    async def _close_streams(self, _app: web.Application) -> None:
        self._closing = True
        self.changes.bump()

    # -- authentication -------------------------------------------------------------------

    def allow(self, request: web.Request) -> bool:
        """For ``auth_middleware``: the requests a browser may make without the header."""
        route = (request.method, request.path)
        if route in _PUBLIC:
            return True
        return route in _WITH_COOKIE and self.sessions.valid(request.cookies.get(COOKIE))

    def _authenticated(self, request: web.Request) -> bool:
        return is_authorized(request.headers.get(HEADER), self.secret) or self.sessions.valid(
            request.cookies.get(COOKIE)
        )

    def _logged_in(self, request: web.Request, session_id: str) -> web.Response:
        response = _redirect("/ui/")
        response.set_cookie(COOKIE, session_id, max_age=SESSION_SECONDS, path="/",
                            httponly=True, samesite="Strict", secure=request.secure)
        return response

    # -- handlers -------------------------------------------------------------------------

    async def root(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/ui/")

    async def index(self, request: web.Request) -> web.Response:
        if not self._authenticated(request):
            raise web.HTTPSeeOther("/ui/login", headers=_HEADERS)
        return self._file("index.html", "text/html")

    async def login_page(self, request: web.Request) -> web.Response:
        token = request.query.get("token")
        if token is None:
            return self._login_form(request.query.get("message", ""), 200)
        session_id = self.sessions.redeem(token)
        if session_id is None:
            return self._login_form("bad-token", 401)
        return self._logged_in(request, session_id)

    async def login(self, request: web.Request) -> web.Response:
        if not _same_origin(request):
            raise web.HTTPForbidden(text="cross-origin login refused")
        try:
            form = await request.post()
        except (UnicodeDecodeError, ValueError):  # not UTF-8, or a malformed form
            raise web.HTTPBadRequest(text="the form is not valid UTF-8 form data") from None
        attempt = form.get("secret")
        if not isinstance(attempt, str):
            raise web.HTTPBadRequest(text="the form needs a 'secret' field")
        session_id = self.sessions.login(attempt)
        if session_id is None:
            return self._login_form("bad-secret", 401)
        return self._logged_in(request, session_id)

    async def logout(self, request: web.Request) -> web.Response:
        if not _same_origin(request):
            raise web.HTTPForbidden(text="cross-origin logout refused")
        self.sessions.end(request.cookies.get(COOKIE))
        response = _redirect("/ui/login?message=logged-out")
        response.del_cookie(COOKIE, path="/")
        return response

    async def new_token(self, request: web.Request) -> web.Response:
        """A one-time login link (the caller proved the secret with the header)."""
        token = self.sessions.new_token()
        return web.json_response({"token": token, "path": f"/ui/login?token={token}",
                                  "expires_in": TOKEN_SECONDS})

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS:  # the only files served: nothing else can be named
            raise web.HTTPNotFound(text="no such file")
        return self._file(name, ASSETS[name])

    async def events(self, request: web.Request) -> web.StreamResponse:
        """The status snapshot as server-sent events, again whenever the cluster changes."""
        session_id = request.cookies.get(COOKIE)
        with_header = is_authorized(request.headers.get(HEADER), self.secret)
        response = web.StreamResponse(headers={
            **_HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        seen = -1
        with contextlib.suppress(ConnectionError):
            while not self._closing and (with_header or self.sessions.valid(session_id)):
                version = await self.changes.wait(seen, KEEPALIVE_SECONDS)
                if self._closing:
                    break
                if version == seen:
                    await response.write(b": keepalive\n\n")
                    continue
                seen = version
                await response.write(b"data: " + self._snapshot_json(version) + b"\n\n")
                await asyncio.sleep(UPDATE_INTERVAL)
        return response

    # -- helpers --------------------------------------------------------------------------

    def _snapshot_json(self, version: int) -> bytes:
        """The snapshot as one line of JSON, made once per version for every open page."""
        if self._cache[0] != version:
            self._cache = (version, json.dumps(self.snapshot()).encode())
        return self._cache[1]

    def _file(self, name: str, content_type: str) -> web.Response:
        return web.Response(body=(STATIC / name).read_bytes(), headers=_HEADERS,
                            content_type=content_type, charset="utf-8")

    def _login_form(self, message: str, status: int) -> web.Response:
        text = (STATIC / "login.html").read_text()
        note = _MESSAGES.get(message, "")  # fixed texts only: nothing from the request
        html = text.replace("{message}", note)
        return web.Response(text=html, status=status, headers=_HEADERS,
                            content_type="text/html")
