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
