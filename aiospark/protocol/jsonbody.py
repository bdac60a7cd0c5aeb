"""JSON from the network, decoded with bounds: nothing a client sends makes it fail with a 500.

``json.loads`` alone lets a client nest arrays until the decoder hits Python's
recursion limit (``RecursionError``), send an integer too long to convert
(``ValueError``, past 4,300 digits) or bytes that are not UTF-8.  ``loads``
turns each of those into a ``JSONBodyError`` (a ``ValueError``) with a clear
message, and refuses nesting deeper than ``MAX_DEPTH`` and integers longer
than ``MAX_INT_DIGITS`` digits (aiospark's messages need neither).
``read_json`` answers 400 with that message in a request handler.

>>> loads(b'{"a": [1, 2.5, "x"]}')
{'a': [1, 2.5, 'x']}
>>> loads(b"[" * 100_000)
Traceback (most recent call last):
...
aiospark.protocol.jsonbody.JSONBodyError: JSON nested deeper than 64 levels
>>> loads(b"1" * 5000)
Traceback (most recent call last):
...
aiospark.protocol.jsonbody.JSONBodyError: JSON integer longer than 40 digits
>>> loads(b'"\\xff"')
Traceback (most recent call last):
...
aiospark.protocol.jsonbody.JSONBodyError: body is not UTF-8: invalid start byte at byte 1
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

#: Deepest nesting of arrays and objects accepted.
MAX_DEPTH = 64
#: Longest integer accepted, in digits (a signed 64-bit integer has 19).
MAX_INT_DIGITS = 40


_LONG_DIGITS = re.compile(rf"\d{{{MAX_INT_DIGITS + 1}}}")


class JSONBodyError(ValueError):
    """JSON that is malformed, not UTF-8, too deep, or holds too long an integer."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JSONBodyError(f"JSON integer longer than {MAX_INT_DIGITS} digits")
    return int(text)


def _depth_ok(value: Any, limit: int) -> bool:
    """Whether ``value`` nests at most ``limit`` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return True


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON, or raise ``JSONBodyError`` saying what is wrong with it."""
    if isinstance(data, str):
        text = data
    else:
        raw = bytes(data)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONBodyError(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from None
    # Cheap bound first: fewer brackets than the limit cannot nest deeper than it.
    shallow = text.count("[") + text.count("{") <= MAX_DEPTH
    try:
        if _LONG_DIGITS.search(text) is None:  # the common case: the C decoder alone
            value = json.loads(text)
        else:
            value = json.loads(text, parse_int=_parse_int)
    except RecursionError:
        raise JSONBodyError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise JSONBodyError(f"body is not valid JSON: {exc}") from None
    except JSONBodyError:
        raise
    except ValueError as exc:  # e.g. a float the decoder refuses
        raise JSONBodyError(f"body is not valid JSON: {exc}") from None
    if not shallow and not _depth_ok(value, MAX_DEPTH):
        raise JSONBodyError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def bad_request(error: str) -> web.HTTPBadRequest:
    """A 400 whose body is ``{"error": error}``."""
    return web.HTTPBadRequest(text=json.dumps({"error": error}), content_type="application/json")


async def read_json(request: web.Request) -> Any:
    """The request's body as JSON; 400 with the reason when it is not acceptable JSON."""
    try:
        body = await request.read()
    except ConnectionError:  # the client went away mid-body: nobody to answer
        raise web.HTTPBadRequest(text='{"error": "connection lost"}') from None
    try:
        return loads(body)
    except JSONBodyError as exc:
        raise bad_request(str(exc)) from None
