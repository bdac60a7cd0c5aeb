"""Settings of the ``aiospark`` commands: flags, then environment variables, then a
TOML file, then defaults.

Every option is declared once, in ``OPTIONS``: its flag, environment variable,
TOML key, default and the commands that take it (docs/configuration.md lists
them all).  ``resolve`` takes each value from the first source that sets it and
checks it, so a bad value is refused the same way wherever it came from, by a
``ConfigError`` that names its source:

>>> settings = resolve("worker", {"master": "aiospark://10.0.0.5:7077", "memory": "2g"}, {})
>>> settings.master, settings.memory, settings.cores
('aiospark://10.0.0.5:7077', 2147483648, 1)
>>> settings.source("cores")
'default'
>>> resolve("worker", {"master": "aiospark://10.0.0.5"}, {"AIOSPARK_WORKER_MEMORY": "lots"})
Traceback (most recent call last):
...
aiospark.config.ConfigError: AIOSPARK_WORKER_MEMORY: bad memory size 'lots': use bytes or...

The TOML file (``--config FILE`` or ``AIOSPARK_CONFIG``) holds top-level keys,
which apply to every command that has the option, and one table per command,
whose keys apply to that command only and win over the top-level ones::

    secret_file = "/etc/aiospark/secret"
    master_url = "aiospark://10.0.0.5:7077"

    [worker]
    cores = 2
    memory = "4g"
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from aiospark.memory import parse_size

#: The server processes of a cluster.
ROLES = ("master", "worker", "shuffle-service")
#: Every command, in the order ``aiospark --help`` lists them.
COMMANDS = (*ROLES, "local", "submit", "status", "shell")
CLIENTS = ("submit", "status", "shell")
#: Names of the log levels ``--log-level`` accepts (any case).
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MASTER_PORT = 7077
SHUFFLE_PORT = 7337


class ConfigError(ValueError):
    """A bad setting; ``str()`` is one line naming the option (flag, variable or key).

    >>> str(ConfigError("--cores", "must be at least 1, got 0"))
    '--cores: must be at least 1, got 0'
    """

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


# -- value checks: each takes a string (flag, variable) or a TOML value ---------------------


def text(value: Any) -> str:
    """A non-empty string.

    >>> text("w-1")
    'w-1'
    >>> text(3)
    Traceback (most recent call last):
    ...
    ValueError: expected a string, got int
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def path(value: Any) -> str:
    """A file system path, ``~`` expanded.

    >>> path("~/x") == os.path.join(os.path.expanduser("~"), "x")
    True
    """
    return os.path.expanduser(text(value))


def integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    """A check for an integer in ``[low, high]``.

    >>> integer(1)("4"), integer(0, 65535)(80)
    (4, 80)
    >>> integer(1)("four")
    Traceback (most recent call last):
    ...
    ValueError: expected an integer, got 'four'
    """

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"expected an integer, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
        if number < low or (high is not None and number > high):
            bound = f"at least {low}" if high is None else f"between {low} and {high}"
            raise ValueError(f"must be {bound}, got {number}")
        return number

    check.__name__ = "integer"
    return check


def seconds(zero_ok: bool = False) -> Callable[[Any], float]:
    """A check for a duration in seconds (positive, or also zero).

    >>> seconds()("2.5"), seconds(zero_ok=True)(0)
    (2.5, 0.0)
    >>> seconds()("0")
    Traceback (most recent call last):
    ...
    ValueError: must be more than 0 seconds, got 0.0
    """

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"expected a number of seconds, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"expected a number of seconds, got {value!r}") from None
        if number != number or number < 0 or (number == 0 and not zero_ok):
            least = "0 or more" if zero_ok else "more than 0"
            raise ValueError(f"must be {least} seconds, got {number}")
        return number

    return check


def size(value: Any) -> int:
    """Bytes, from an integer or a size such as ``512m`` or ``2g``.

    >>> size("1k"), size(2048)
    (1024, 2048)
    """
    try:
        return parse_size(value)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def level(value: Any) -> str:
    """A logging level name, any case.

    >>> level("info")
    'INFO'
    >>> level("loud")
    Traceback (most recent call last):
    ...
    ValueError: unknown log level 'loud': use one of debug, info, warning, error, critical
    """
    name = text(value).upper()
    if name not in LEVELS:
        choices = ", ".join(n.lower() for n in LEVELS)
        raise ValueError(f"unknown log level {value!r}: use one of {choices}")
    return name


def log_format(value: Any) -> str:
    """``logfmt`` or ``json``.

    >>> log_format("JSON")
    'json'
    """
    name = text(value).lower()
    if name not in ("logfmt", "json"):
        raise ValueError(f"unknown log format {value!r}: use logfmt or json")
    return name


def host(value: Any) -> str:
    """A host name or IP address (IPv6 with or without brackets).

    >>> host("0.0.0.0"), host("[::1]"), host("node-7.example")
    ('0.0.0.0', '::1', 'node-7.example')
    >>> host("http://x")
    Traceback (most recent call last):
    ...
    ValueError: expected a host name or IP address, got 'http://x'
    """
    name = text(value)
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    with_colons = ":" in name
    if with_colons:
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            raise ValueError(f"expected a host name or IP address, got {value!r}") from None
        return name
    if any(c in name for c in "/@ ?#") or name.startswith("-"):
        raise ValueError(f"expected a host name or IP address, got {value!r}")
    return name


def _url(value: Any, schemes: tuple[str, ...], default_port: int | None, example: str) -> str:
    raw = text(value)
    parts = urllib.parse.urlsplit(raw)
    problem = ""
    if parts.scheme not in schemes:
        problem = f"the scheme must be {' or '.join(s + '://' for s in schemes)}"
    elif not parts.hostname:
        problem = "it names no host"
    elif parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        problem = "it must be only scheme, host and port"
    else:
        try:
            port = parts.port or default_port
        except ValueError:
            port = None
        if port is None:
            problem = "it needs a valid port"
    if problem:
        raise ValueError(f"bad URL {raw!r} ({problem}), e.g. {example}")
    shown = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{shown}:{port}"


def master_url(value: Any) -> str:
    """A master's URL: ``aiospark://host[:port]`` (port 7077 by default) or ``http(s)://``.

    >>> master_url("aiospark://10.0.0.5"), master_url("http://[::1]:9000/")
    ('aiospark://10.0.0.5:7077', 'http://[::1]:9000')
    >>> master_url("10.0.0.5:7077")
    Traceback (most recent call last):
    ...
    ValueError: bad URL '10.0.0.5:7077' (the scheme must be aiospark:// or http:// or ...
    """
    return _url(value, ("aiospark", "http", "https"), MASTER_PORT,
                "aiospark://10.0.0.5:7077")


def service_url(value: Any) -> str:
    """A shuffle service's URL, ``http(s)://host:port``.

    >>> service_url("http://node-2:7337")
    'http://node-2:7337'
    """
    return _url(value, ("http", "https"), None, "http://10.0.0.6:7337")


# -- the options ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Option:
    """One setting: where it can come from, its default, how it is checked."""

    key: str
    flag: str
    help: str
    commands: tuple[str, ...]
    default: Any = None
    parse: Callable[[Any], Any] = text
    env: str | None = None
    dest: str = ""
    metavar: str | None = None
    #: a switch such as ``--json`` (no value)
    switch: bool = False
    #: passed by the embedded cluster only: no variable, no TOML key, not in ``--help``
    internal: bool = False
    #: the default as ``--help`` shows it, when ``default`` is computed or None
    shown_default: str | None = None

    @property
    def attr(self) -> str:
        return self.dest or self.key


ALL = COMMANDS

OPTIONS: tuple[Option, ...] = (
    Option("config", "--config", "TOML file with settings", ALL, env="AIOSPARK_CONFIG",
           parse=path, metavar="FILE"),
    Option("log_level", "--log-level", "log level: debug, info, warning, error", ROLES,
           default="INFO", parse=level, env="AIOSPARK_LOG_LEVEL", metavar="LEVEL"),
    Option("log_level", "--log-level", "log level: debug, info, warning, error",
           ("local", *CLIENTS),
           default="WARNING", parse=level, env="AIOSPARK_LOG_LEVEL", metavar="LEVEL"),
    Option("log_format", "--log-format", "log line format: logfmt or json", ALL,
           default="logfmt", parse=log_format, env="AIOSPARK_LOG_FORMAT", metavar="FORMAT"),
    Option("secret_file", "--secret-file", "file holding the cluster secret (AIOSPARK_SECRET "
           "gives the secret itself)", ALL, parse=path, env="AIOSPARK_SECRET_FILE",
           metavar="FILE", shown_default="the local secret, on loopback only"),
    # TLS for every HTTP connection (aiospark.protocol.tls reads the variables).
    Option("tls_cert", "--tls-cert", "PEM certificate chain: serve HTTPS only (with --tls-key)",
           ALL, parse=path, env="AIOSPARK_TLS_CERT", metavar="FILE", shown_default="no TLS"),
    Option("tls_key", "--tls-key", "PEM private key of --tls-cert", ALL, parse=path,
           env="AIOSPARK_TLS_KEY", metavar="FILE", shown_default="no TLS"),
    Option("tls_ca", "--tls-ca", "PEM authority the cluster's certificates are signed by "
           "(what clients trust)", ALL, parse=path, env="AIOSPARK_TLS_CA", metavar="FILE",
           shown_default="the system's trust store"),
    # Where the roles listen.
    Option("host", "--host", "address to listen on", ROLES, default="127.0.0.1", parse=host,
           env="AIOSPARK_HOST"),
    Option("port", "--port", "port to listen on (0: any free port)", ("master", "local"),
           default=MASTER_PORT, parse=integer(0, 65535)),
    Option("port", "--port", "port to listen on (0: any free port)", ("shuffle-service",),
           default=SHUFFLE_PORT, parse=integer(0, 65535)),
    Option("port", "--port", "port to listen on (0: any free port)", ("worker",),
           default=0, parse=integer(0, 65535)),
    Option("control_port", "--control-port", "port of the worker's supervisor, where drivers "
           "ask it to kill a runaway task (0: any free port)", ("worker",), default=0,
           parse=integer(0, 65535)),
    Option("advertise_host", "--advertise-host", "address other machines use to reach this "
           "process", ROLES, parse=host, env="AIOSPARK_ADVERTISE_HOST", metavar="HOST",
           shown_default="--host; this machine's name when --host is 0.0.0.0"),
    # The master.
    Option("master_url", "--master", "the master's URL, aiospark://host:port", ("worker",),
           dest="master", parse=master_url, env="AIOSPARK_MASTER", metavar="URL",
           shown_default="required"),
    Option("master_url", "--master", "the master's URL, aiospark://host:port", ("status",),
           dest="master", parse=master_url, env="AIOSPARK_MASTER", metavar="URL",
           default=f"aiospark://127.0.0.1:{MASTER_PORT}"),
    Option("master_url", "--master", "the master's URL, aiospark://host:port", ("submit", "shell"),
           dest="master", parse=master_url, env="AIOSPARK_MASTER", metavar="URL",
           shown_default="an embedded cluster of local processes"),
    Option("worker_timeout", "--worker-timeout", "seconds without a heartbeat before a worker "
           "is lost", ("master", "local"), default=10.0, parse=seconds(),
           env="AIOSPARK_WORKER_TIMEOUT", metavar="SECONDS"),
    # Workers.
    Option("cores", "--cores", "tasks the worker runs at once", ("worker",), default=1,
           parse=integer(1), env="AIOSPARK_WORKER_CORES", metavar="N"),
    Option("memory", "--memory", "memory budget for cached blocks and task buffers, e.g. 2g",
           ("worker", "local"), default=0, parse=size, env="AIOSPARK_WORKER_MEMORY",
           metavar="SIZE", shown_default="60% of the machine's memory, shared by cores"),
    Option("shuffle_url", "--shuffle-url", "URL of this host's shuffle service", ("worker",),
           parse=service_url, env="AIOSPARK_SHUFFLE_URL", metavar="URL",
           shown_default="none: the worker serves its own map outputs"),
    Option("shuffle_dir", "--shuffle-dir", "the shuffle service's directory (with "
           "--shuffle-url)", ("worker",), parse=path, env="AIOSPARK_SHUFFLE_DIR", metavar="DIR",
           shown_default="~/.cache/aiospark/shuffle"),
    Option("work_dir", "--work-dir", "the worker's scratch directory (removed on exit)",
           ("worker",), parse=path, env="AIOSPARK_WORK_DIR", metavar="DIR",
           shown_default="a new temporary directory"),
    Option("worker_id", "--worker-id", "the worker's name in the cluster", ("worker",),
           env="AIOSPARK_WORKER_ID", metavar="ID", shown_default="worker-<random>"),
    Option("heartbeat_interval", "--heartbeat-interval", "seconds between heartbeats",
           ("worker",), default=1.0, parse=seconds(), metavar="SECONDS"),
    Option("connect_timeout", "--connect-timeout", "seconds without reaching the master "
           "(unreachable, or refusing the secret) after which the worker exits with status 1",
           ("worker",), default=None, parse=seconds(), env="AIOSPARK_CONNECT_TIMEOUT",
           metavar="SECONDS", shown_default="retry forever"),
    Option("drain_timeout", "--drain-timeout", "on SIGTERM, seconds to let running tasks "
           "finish before handing them back (0: stop at once)", ("worker",), default=60.0,
           parse=seconds(zero_ok=True), env="AIOSPARK_DRAIN_TIMEOUT", metavar="SECONDS"),
    # Shuffle services.
    Option("shuffle_dir", "--dir", "directory of the map outputs to serve",
           ("shuffle-service",), dest="dir", parse=path, env="AIOSPARK_SHUFFLE_DIR",
           metavar="DIR", shown_default="~/.cache/aiospark/shuffle"),
    Option("cleanup", "--cleanup", "remove the directory on exit", ("shuffle-service",),
           default=False, switch=True),
    # The embedded cluster (local), and drivers.
    Option("workers", "--workers", "worker processes of the embedded cluster", ("local",),
           parse=integer(1), env="AIOSPARK_WORKERS", metavar="N", shown_default="one per CPU"),
    Option("workers", "--workers", "worker processes when no --master is given",
           ("shell",), parse=integer(1), env="AIOSPARK_WORKERS", metavar="N",
           shown_default="one per CPU"),
    Option("json", "--json", "print the master's status JSON instead of a table", ("status",),
           default=False, switch=True),
    # Set by the embedded cluster for its children.
    Option("parent_pid", "--parent-pid", "", ROLES, parse=integer(1), internal=True),
    Option("fd", "--fd", "", ("master", "shuffle-service"), parse=integer(0), internal=True),
    Option("session_dir", "--session-dir", "", ("master",), parse=path, internal=True),
)


def options_for(command: str) -> list[Option]:
    """The options ``command`` takes, in ``--help`` order.

    >>> [o.flag for o in options_for("status")]  # doctest: +NORMALIZE_WHITESPACE
    ['--config', '--log-level', '--log-format', '--secret-file',
     '--tls-cert', '--tls-key', '--tls-ca', '--master', '--json']
    """
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    return [o for o in OPTIONS if command in o.commands]


def default_shuffle_dir(environ: Mapping[str, str] | None = None) -> str:
    """This user's default shuffle directory: ``$XDG_CACHE_HOME/aiospark/shuffle``.

    >>> default_shuffle_dir({"XDG_CACHE_HOME": "/c"})
    '/c/aiospark/shuffle'
    """
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "aiospark", "shuffle")


class Settings(argparse.Namespace):
    """Resolved settings: one attribute per option, and where each value came from."""

    def __init__(self, command: str) -> None:
        super().__init__()
        self.command = command
        self._sources: dict[str, tuple[str, str]] = {}

    def _set(self, option: Option, value: Any, kind: str, label: str) -> None:
        setattr(self, option.attr, value)
        self._sources[option.attr] = (kind, label)

    def source(self, attr: str) -> str:
        """``flag``, ``env``, ``file`` or ``default``: where ``attr``'s value came from.

        >>> resolve("worker", {"cores": "2"}, {}).source("cores")
        'flag'
        """
        return self._sources[attr][0]

    def label(self, attr: str) -> str:
        """The flag, variable or file key ``attr`` came from, for error messages.

        >>> resolve("master", {}, {"AIOSPARK_HOST": "0.0.0.0"}).label("host")
        'AIOSPARK_HOST'
        """
        return self._sources[attr][1]


def load_file(file: str, command: str, where: str = "--config") -> dict[str, tuple[Any, str]]:
    """The keys of a TOML settings file that apply to ``command``: key -> (value, label).

    Unknown keys and tables are errors (a typo must not pass unnoticed); a top-level
    key of an option that ``command`` does not take is ignored, as the file may be
    shared by every role of a machine.  ``where`` names the option that gave ``file``.

    >>> file = os.path.join(tmp_dir, "aiospark.toml")
    >>> with open(file, "w") as f:
    ...     _ = f.write('cores = 2\\nport = 9\\n[worker]\\nport = 7000\\n')
    >>> load_file(file, "worker")["port"][0], load_file(file, "status")
    (7000, {})
    """
    try:
        with open(file, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(where, f"cannot read {file}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(where, f"{file} is not valid TOML: {exc}") from None
    known = {o.key for o in OPTIONS if not o.internal and o.key != "config"}
    mine = {o.key for o in options_for(command) if not o.internal and o.key != "config"}
    found: dict[str, tuple[Any, str]] = {}
    tables = {}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in COMMANDS:
                raise ConfigError(f"[{key}] in {file}",
                                  f"unknown table: use one of {', '.join(COMMANDS)}")
            tables[key] = value
        elif key not in known:
            raise ConfigError(f"{key} in {file}", "unknown key (see docs/configuration.md)")
        elif key in mine:
            found[key] = (value, f"{key} in {file}")
    for key, value in tables.get(command, {}).items():
        if key not in mine:
            raise ConfigError(f"{key} in [{command}] of {file}",
                              f"aiospark {command} has no such setting")
        found[key] = (value, f"{key} in [{command}] of {file}")
    return found


def resolve(
    command: str, flags: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Settings:
    """The settings of ``command``: each from its flag, else its variable, else the
    TOML file, else its default; checked, or a ``ConfigError`` naming the source.

    ``flags`` maps attribute names to the values given on the command line
    (None when a flag was not given).

    >>> resolve("status", {}, {"AIOSPARK_MASTER": "aiospark://node-1"}).master
    'aiospark://node-1:7077'
    >>> s = resolve("status", {"master": "http://127.0.0.1:9000"},
    ...             {"AIOSPARK_MASTER": "aiospark://node-1"})
    >>> s.master, s.label("master")
    ('http://127.0.0.1:9000', '--master')
    """
    environ = os.environ if environ is None else environ
    settings = Settings(command)
    options = options_for(command)
    config = options[0]
    assert config.key == "config"
    found = _first(config, flags, environ, {})
    file_values: dict[str, tuple[Any, str]] = {}
    if found is None:
        settings._set(config, None, "default", "default")
    else:
        try:
            file = path(found[0])
        except ValueError as exc:
            raise ConfigError(found[2], str(exc)) from None
        settings._set(config, file, found[1], found[2])
        file_values = load_file(file, command, found[2])
    for option in options[1:]:
        found = _first(option, flags, environ, file_values)
        if found is None:
            settings._set(option, option.default, "default", "default")
            continue
        value, kind, label = found
        try:
            checked = bool(value) if option.switch else option.parse(value)
        except ValueError as exc:
            raise ConfigError(label, str(exc)) from None
        settings._set(option, checked, kind, label)
    return settings


def _first(
    option: Option, flags: Mapping[str, Any], environ: Mapping[str, str],
    file_values: Mapping[str, tuple[Any, str]],
) -> tuple[Any, str, str] | None:
    """(value, source kind, label) from the first source that sets ``option``."""
    given = flags.get(option.attr)
    if given is not None and given is not False:
        return given, "flag", option.flag
    if option.internal:
        return None
    if option.env and environ.get(option.env):
        return environ[option.env], "env", option.env
    if option.key in file_values:
        value, label = file_values[option.key]
        if option.switch and not isinstance(value, bool):
            raise ConfigError(label, f"expected true or false, got {value!r}")
        return value, "file", label
    return None
