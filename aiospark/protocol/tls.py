"""TLS for every HTTP connection between aiospark processes, when configured.

The configuration is three environment variables, so that every process of a
cluster (and the children an embedded cluster starts) sees the same one:
``AIOSPARK_TLS_CERT`` and ``AIOSPARK_TLS_KEY`` (PEM files: this process's
certificate chain and key; servers need both) and ``AIOSPARK_TLS_CA`` (PEM file
of the authority that signed the cluster's certificates; clients trust it, and
the system's store when it is unset).  With a certificate configured, servers
speak HTTPS only and URLs use ``https://``.

>>> scheme({})
'http'
>>> scheme({"AIOSPARK_TLS_CERT": "c.pem", "AIOSPARK_TLS_KEY": "k.pem"})
'https'
>>> scheme({"AIOSPARK_TLS_CERT": "c.pem"})
Traceback (most recent call last):
...
ValueError: AIOSPARK_TLS_CERT and AIOSPARK_TLS_KEY must be set together
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

CERT, KEY, CA = "AIOSPARK_TLS_CERT", "AIOSPARK_TLS_KEY", "AIOSPARK_TLS_CA"


def _settings(env: Mapping[str, str] | None) -> tuple[str, str, str]:
    env = os.environ if env is None else env
    cert, key, ca = env.get(CERT, ""), env.get(KEY, ""), env.get(CA, "")
    if bool(cert) != bool(key):
        raise ValueError(f"{CERT} and {KEY} must be set together")
    return cert, key, ca


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process serves HTTPS."""
    return bool(_settings(env)[0])


def scheme(env: Mapping[str, str] | None = None) -> str:
    """``https`` when TLS is configured, else ``http``."""
    return "https" if enabled(env) else "http"


def master_http_url(master: str) -> str:
    """``aiospark://host:port`` (or ``http://host:port``) to the master's HTTP URL.

    >>> master_http_url("aiospark://10.0.0.5:7077")
    'http://10.0.0.5:7077'
    >>> master_http_url("ftp://x")
    Traceback (most recent call last):
    ...
    ValueError: master URL must look like aiospark://host:port, got 'ftp://x'
    """
    default = f"{scheme()}://"  # aiospark:// is https:// when TLS is configured
    for prefix, replacement in (("aiospark://", default), ("http://", "http://"),
                                ("https://", "https://")):
        if master.startswith(prefix):
            return replacement + master[len(prefix):].rstrip("/")
    raise ValueError(f"master URL must look like aiospark://host:port, got {master!r}")


def server_context(env: Mapping[str, str] | None = None) -> ssl.SSLContext | None:
    """The server side's context, or None without TLS; a clear error for unreadable files."""
    cert, key, _ = _settings(env)
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the TLS certificate {cert} / key {key}: {exc}") from exc
    return context


def client_context(env: Mapping[str, str] | None = None) -> ssl.SSLContext | bool:
    """What aiohttp clients pass as ``ssl=``: a context trusting the cluster's CA, or True."""
    _, _, ca = _settings(env)
    if not ca:
        return True
    try:
        return ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the TLS authority {ca}: {exc}") from exc
