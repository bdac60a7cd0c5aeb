"""``aiospark shell``: the asyncio REPL with ``ctx``, a started ``aiospark.Context``.

As in ``python -m asyncio``, the event loop runs in the main thread and the
console reads lines in another; each input is compiled with top-level ``await``
allowed and runs on the loop (a coroutine as a task), so ``await ctx...`` works
and objects bound to the loop can be used from any line.  Ctrl-C cancels the
running line; Ctrl-D or ``exit()`` leaves, stopping the context.
"""

from __future__ import annotations

import ast
import asyncio
import code
import concurrent.futures
import contextlib
import inspect
import sys
import threading
import traceback
import types
from collections.abc import Coroutine
from typing import Any

import aiospark
from aiospark import security
from aiospark.commands.failure import CommandFailed
from aiospark.commands.http import http_url
from aiospark.config import Settings
from aiospark.errors import ClusterError


class _Escaped:
    """A ``SystemExit`` or ``KeyboardInterrupt`` raised by a line, carried out of its task
    (raised inside a task, they would stop the event loop itself)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def _contained(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        return await coro
    except (SystemExit, KeyboardInterrupt) as exc:
        return _Escaped(exc)


class AsyncConsole(code.InteractiveConsole):
    """An interactive console whose lines run on ``loop``, with top-level ``await``.

    >>> loop = asyncio.new_event_loop()
    >>> runner = threading.Thread(target=loop.run_forever)
    >>> runner.start()
    >>> console = AsyncConsole({"asyncio": asyncio}, loop)
    >>> console.push("x = await asyncio.sleep(0, result=42)")
    False
    >>> console.locals["x"]
    42
    >>> _ = loop.call_soon_threadsafe(loop.stop); runner.join(); loop.close()
    """

    def __init__(self, namespace: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(namespace, filename="<aiospark shell>")
        self.compile.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        self.loop = loop
        #: the task running the current line, if it awaits something
        self.running: asyncio.Task | None = None

    def runcode(self, code: types.CodeType) -> None:
        done: concurrent.futures.Future = concurrent.futures.Future()
        self.loop.call_soon_threadsafe(self._start, code, done)
        try:
            done.result()
        except SystemExit:
            raise
        except BaseException as exc:
            self.show_user_traceback(exc)

    def show_user_traceback(self, exc: BaseException) -> None:
        """Print ``exc`` as the plain REPL does: from the line's own frame on.

        The frames of the console's machinery (this module, ``concurrent.futures``,
        asyncio) come before the first frame of the typed code and are left out;
        the frames the line called (aiospark's included) are kept.

        >>> console = AsyncConsole({}, asyncio.new_event_loop())
        >>> console.write = lambda text: print(text, end="")
        >>> try:
        ...     exec(compile("undefined_name", "<aiospark shell>", "exec"))
        ... except NameError as exc:
        ...     console.show_user_traceback(exc)
        Traceback (most recent call last):
          File "<aiospark shell>", line 1, in <module>
        NameError: name 'undefined_name' is not defined
        """
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != self.filename:
            tb = tb.tb_next
        sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
        if sys.version_info >= (3, 12):
            sys.last_exc = exc  # pragma: no cover - 3.12+
        lines = traceback.format_exception(type(exc), exc, tb)
        self.write("".join(lines))

    def _start(self, code: types.CodeType, done: concurrent.futures.Future) -> None:
        """On the loop: run the line; a coroutine becomes the running task."""
        try:
            value = types.FunctionType(code, self.locals)()
        except BaseException as exc:
            done.set_exception(exc)
            return
        if not inspect.iscoroutine(value):
            done.set_result(value)
            return
        self.running = task = self.loop.create_task(_contained(value))

        def finished(task: asyncio.Task) -> None:
            self.running = None
            if task.cancelled():
                done.set_exception(KeyboardInterrupt())
            elif task.exception() is not None:
                done.set_exception(task.exception())
            elif isinstance(task.result(), _Escaped):
                done.set_exception(task.result().error)
            else:
                done.set_result(task.result())

        task.add_done_callback(finished)

    def interrupt(self) -> bool:
        """Cancel the running line (Ctrl-C); False when none runs.

        >>> AsyncConsole({}, asyncio.new_event_loop()).interrupt()
        False
        """
        task = self.running
        if task is None or task.done():
            return False
        task.cancel()
        return True


def _make_context(settings: Settings) -> aiospark.Context:
    if settings.master is None:
        return aiospark.Context(workers=settings.workers, app_name="aiospark shell")
    secret = security.client_secret(settings, http_url(settings.master))
    return aiospark.Context(settings.master, secret=secret.value, app_name="aiospark shell")


def banner(ctx: aiospark.Context) -> str:
    """The first lines the shell prints.

    >>> print(banner(ctx).splitlines()[1])
    Top-level await works, e.g.  await ctx.range(1000).sum()
    """
    where = ctx.master or "an embedded cluster"
    return (f"aiospark shell on Python {sys.version.split()[0]}: ctx is connected to {where} "
            f"(default parallelism {ctx.default_parallelism}).\n"
            "Top-level await works, e.g.  await ctx.range(1000).sum()")


def shell(settings: Settings) -> int:
    """Run the REPL until Ctrl-D or ``exit()``; exit 0.

    >>> from aiospark.config import resolve
    >>> shell(resolve("shell", {"master": "aiospark://127.0.0.1", "workers": "2"}, {}))
    Traceback (most recent call last):
    ...
    aiospark.commands.failure.CommandFailed: --workers applies to an embedded cluster, not to ...
    """
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())

    if settings.master is not None and settings.workers is not None:
        raise CommandFailed("--workers applies to an embedded cluster, not to --master")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ctx = _make_context(settings)
    try:
        loop.run_until_complete(ctx.start())
    except ClusterError as exc:
        loop.close()
        raise CommandFailed(str(exc)) from None
    namespace = {"__name__": "__console__", "__doc__": None, "asyncio": asyncio,
                 "aiospark": aiospark, "ctx": ctx}
    console = AsyncConsole(namespace, loop)

    def interact() -> None:
        try:
            console.interact(banner=banner(ctx), exitmsg="")
        except SystemExit:
            pass
        finally:
            loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=interact, name="aiospark-shell", daemon=True).start()
    while True:
        try:
            loop.run_forever()
        except KeyboardInterrupt:
            if not console.interrupt():
                console.write("\nKeyboardInterrupt (Ctrl-D or exit() leaves the shell)\n")
            continue
        break
    try:
        loop.run_until_complete(ctx.stop())
    finally:
        loop.close()
    return 0
