"""The cluster secret of the command line, and where processes may listen.

The secret comes from, in order: ``--secret-file``, the ``AIOSPARK_SECRET``
variable (the secret itself), the ``AIOSPARK_SECRET_FILE`` variable, the config
file's ``secret_file``.  Without any of those, processes that only listen on and
talk to loopback share the *local secret*: a random one kept in
``~/.config/aiospark/secret`` (mode 600, made on first use), so that
``aiospark master``, ``aiospark worker`` and ``aiospark shell`` work together on
one machine with no setup while other users of the machine stay out.  Listening
on any other address without a configured secret is refused at start-up.

A driver's ``Context`` connecting to a running master finds its secret here too
(``client_secret`` without settings): ``secret=``, then ``AIOSPARK_SECRET``, then
``AIOSPARK_SECRET_FILE``, then, for a master on loopback, the local secret if
there is one (a driver never makes one).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import os
import secrets
import socket
import stat
import urllib.parse
from collections.abc import Mapping

from aiospark.config import ConfigError, Settings, path
from aiospark.errors import ClusterError

log = logging.getLogger("aiospark.security")

SECRET_VARIABLE = "AIOSPARK_SECRET"
SECRET_FILE_VARIABLE = "AIOSPARK_SECRET_FILE"


@dataclasses.dataclass(frozen=True)
class Secret:
    """A cluster secret and where it came from."""

    value: str
    #: the flag or variable that gave it, or "local secret"
    source: str
    #: the file it was read from, if any
    file: str | None = None

    @property
    def configured(self) -> bool:
        """Whether it was given (a flag, variable or file), not the local secret."""
        return self.source != "local secret"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost")
    (True, True, True)
    >>> is_loopback("0.0.0.0"), is_loopback("10.1.2.3"), is_loopback("::")
    (False, False, False)
    """
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )


def read_secret_file(file: str, where: str) -> str:
    """The secret in ``file`` (surrounding whitespace dropped); warns when every user
    of the machine may read it; a ``ConfigError`` naming ``where`` when it cannot be read.

    >>> read_secret_file("/nonexistent/secret", "--secret-file")
    Traceback (most recent call last):
    ...
    aiospark.config.ConfigError: --secret-file: cannot read the secret file /nonexistent/secret...
    """
    try:
        with open(file, encoding="utf-8") as f:
            mode = os.fstat(f.fileno()).st_mode
            value = f.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(where, f"cannot read the secret file {file}: {reason}") from None
    if not value:
        raise ConfigError(where, f"the secret file {file} is empty")
    if mode & stat.S_IROTH:
        log.warning("the secret file %s can be read by every user of this machine; "
                    "make it private: chmod 600 %s", file, file)
    return value


def local_secret_file(environ: Mapping[str, str] | None = None) -> str:
    """Where this user's local secret lives.

    >>> local_secret_file({"XDG_CONFIG_HOME": "/cfg"})
    '/cfg/aiospark/secret'
    """
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "aiospark", "secret")


def local_secret(environ: Mapping[str, str] | None = None) -> Secret:
    """This user's local secret, made (mode 600) when there is none yet.

    Safe when several processes start at once: the file appears whole or not at all.

    >>> env = {"XDG_CONFIG_HOME": tmp_dir}
    >>> first = local_secret(env)
    >>> first == local_secret(env), first.configured, oct(os.stat(first.file).st_mode & 0o777)
    (True, False, '0o600')
    """
    file = local_secret_file(environ)
    if not os.path.exists(file):
        folder = os.path.dirname(file)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        # A draft of our own (threads of one process race too), made exclusively.
        draft = f"{file}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(draft, file)  # fails if another process made it first: use theirs
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    return Secret(read_secret_file(file, "the local secret"), "local secret", file)


def configured_secret(settings: Settings | None, environ: Mapping[str, str] | None = None
                      ) -> Secret | None:
    """The secret the settings or the environment give, if any.

    Without ``settings`` (a driver's ``Context``), the environment alone:
    ``AIOSPARK_SECRET``, then the file ``AIOSPARK_SECRET_FILE`` names.

    >>> from aiospark.config import resolve
    >>> configured_secret(resolve("master", {}, {}), {"AIOSPARK_SECRET": "s3cr3t"})
    Secret(value='s3cr3t', source='AIOSPARK_SECRET', file=None)
    >>> configured_secret(resolve("master", {}, {}), {}) is None
    True
    >>> configured_secret(None, {"AIOSPARK_SECRET": " s3cr3t\\n"}).value
    's3cr3t'
    """
    environ = os.environ if environ is None else environ
    if settings is None:
        given_file = environ.get(SECRET_FILE_VARIABLE) or None
        where = SECRET_FILE_VARIABLE
    else:
        given_file = settings.secret_file
        where = settings.label("secret_file")
        if given_file and settings.source("secret_file") == "flag":
            return Secret(read_secret_file(given_file, where), where, given_file)
    if environ.get(SECRET_VARIABLE, "").strip():
        return Secret(environ[SECRET_VARIABLE].strip(), SECRET_VARIABLE)
    if given_file:
        given_file = path(given_file)
        return Secret(read_secret_file(given_file, where), where, given_file)
    return None


def server_secret(settings: Settings, host: str, environ: Mapping[str, str] | None = None
                  ) -> Secret:
    """The secret of a process listening on ``host``: the configured one, or the local
    one on loopback; listening elsewhere without a configured secret is refused.

    >>> from aiospark.config import resolve
    >>> env = {"XDG_CONFIG_HOME": tmp_dir}
    >>> server_secret(resolve("master", {}, env), "127.0.0.1", env).source
    'local secret'
    >>> server_secret(resolve("master", {}, env), "0.0.0.0", env)
    Traceback (most recent call last):
    ...
    aiospark.config.ConfigError: --host: refusing to listen on 0.0.0.0, which is not a ...
    """
    secret = configured_secret(settings, environ)
    if secret is not None:
        return secret
    if not is_loopback(host):
        raise ConfigError(
            "--host",
            f"refusing to listen on {host}, which is not a loopback address, without a "
            "cluster secret: pass --secret-file or set AIOSPARK_SECRET_FILE",
        )
    return local_secret(environ)


def client_secret(settings: Settings | None, url: str,
                  environ: Mapping[str, str] | None = None) -> Secret:
    """The secret for talking to the process at ``url``: the configured one, or the
    local one when ``url`` is on loopback.

    Without ``settings``, the secret of a driver's ``Context`` connecting to the
    master at ``url`` (its ``secret=`` argument aside): the environment's
    (``configured_secret``), else the local secret for a master on loopback, if
    this user has one; a ``ClusterError`` when neither gives one.

    >>> from aiospark.config import resolve
    >>> env = {"XDG_CONFIG_HOME": tmp_dir}
    >>> client_secret(resolve("status", {}, env), "http://10.0.0.5:7077", env)
    Traceback (most recent call last):
    ...
    aiospark.config.ConfigError: --secret-file: talking to http://10.0.0.5:7077 needs the ...
    >>> client_secret(None, "http://10.0.0.5:7077", env)
    Traceback (most recent call last):
    ...
    aiospark.errors.ClusterError: connecting to the master at http://10.0.0.5:7077 needs ...
    """
    secret = configured_secret(settings, environ)
    if secret is not None:
        return secret
    host = urllib.parse.urlsplit(url).hostname or ""
    loopback = is_loopback(host)
    if settings is not None:
        if not loopback:
            raise ConfigError(
                "--secret-file",
                f"talking to {url} needs the cluster secret: pass --secret-file, or set "
                "AIOSPARK_SECRET_FILE or AIOSPARK_SECRET",
            )
        return local_secret(environ)
    local_file = local_secret_file(environ)
    if loopback and os.path.exists(local_file):
        return local_secret(environ)
    missing = f" (nor is there a local secret in {local_file})" if loopback else ""
    raise ClusterError(
        f"connecting to the master at {url} needs the cluster secret{missing}: pass "
        "secret=, or set AIOSPARK_SECRET or AIOSPARK_SECRET_FILE"
    )


def private_directory(folder: str) -> str:
    """Make ``folder`` (and its parents) if needed, readable by this user only.

    >>> import tempfile
    >>> d = private_directory(os.path.join(tempfile.mkdtemp(), "a", "b"))
    >>> oct(os.stat(d).st_mode & 0o777)
    '0o700'
    """
    os.makedirs(folder, mode=0o700, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(folder, 0o700)
    return folder
