"""``aiospark submit app.py [args]``: run a driver program against a cluster.

The program runs in this process as ``__main__`` (with ``sys.argv`` set to the
program and its arguments), after ``AIOSPARK_MASTER`` and ``AIOSPARK_SECRET``
are set from the settings, so that the ``aiospark.Context()`` it makes connects
to that master, however its code names the cluster.
"""

from __future__ import annotations

import logging
import os
import runpy
import sys

from aiospark import security
from aiospark.commands.http import http_url
from aiospark.config import ConfigError, Settings

log = logging.getLogger("aiospark.cli")


def driver_environment(settings: Settings) -> dict[str, str]:
    """The variables that point an ``aiospark.Context()`` at ``--master`` (none without).

    >>> from aiospark.config import resolve
    >>> driver_environment(resolve("submit", {}, {}))
    {}
    """
    if settings.master is None:
        return {}
    secret = security.client_secret(settings, http_url(settings.master))
    return {"AIOSPARK_MASTER": settings.master, "AIOSPARK_SECRET": secret.value}


def submit(settings: Settings) -> int:
    """Run ``settings.app`` as ``__main__``; its exit status is this command's.

    >>> from aiospark.config import resolve
    >>> settings = resolve("submit", {}, {})
    >>> settings.app, settings.app_args = "no-such-app.py", []
    >>> submit(settings)
    Traceback (most recent call last):
    ...
    aiospark.config.ConfigError: APP: no such file: no-such-app.py
    """
    app = settings.app
    if not os.path.isfile(app):
        raise ConfigError("APP", f"no such file: {app}")
    os.environ.update(driver_environment(settings))
    if settings.master is not None:
        os.environ.pop("AIOSPARK_SECRET_FILE", None)  # the secret above wins
        log.info("running %s against %s", app, settings.master)
    sys.argv = [app, *settings.app_args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(app)))
    runpy.run_path(app, run_name="__main__")
    return 0
