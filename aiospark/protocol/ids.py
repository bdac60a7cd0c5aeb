"""Identifiers that arrive in requests and end up in paths: checked before any use."""

from __future__ import annotations

import re

_APP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_app_id(app_id: str) -> str:
    """Refuse app ids that could escape a directory they name (shuffle files, results).

    >>> check_app_id("app-1f2e")
    'app-1f2e'
    >>> check_app_id("../etc")
    Traceback (most recent call last):
    ...
    ValueError: invalid app id '../etc'
    """
    if not isinstance(app_id, str) or not _APP_ID.match(app_id):
        raise ValueError(f"invalid app id {app_id!r}")
    return app_id


#: Most digits of a numeric id in a URL (ids are counters: far below 10**18).
MAX_ID_DIGITS = 18


def parse_id(text: str, name: str) -> int:
    """A non-negative integer id from a URL: ASCII digits only, at most ``MAX_ID_DIGITS``.

    ``str.isdigit`` and ``int`` accept other digits (``"²"``, ``"٣"``), signs,
    spaces and underscores; ids accept none of them.

    >>> parse_id("42", "shuffle")
    42
    >>> parse_id("²", "shuffle")
    Traceback (most recent call last):
    ...
    ValueError: shuffle must be a non-negative integer of at most 18 ASCII digits, got '²'
    """
    if (not isinstance(text, str) or not 0 < len(text) <= MAX_ID_DIGITS
            or not text.isascii() or not text.isdigit()):
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ValueError(f"{name} must be a non-negative integer of at most "
                         f"{MAX_ID_DIGITS} ASCII digits, got {shown!r}")
    return int(text)
