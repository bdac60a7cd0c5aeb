"""``aiospark`` / ``python -m aiospark``: run one role of a cluster, or use one.

Each role is one process with one event loop; its command line names the role,
so ``ps`` shows what every process is.  Settings come from flags, then
``AIOSPARK_*`` environment variables, then a TOML file, then defaults
(``aiospark.config``; docs/configuration.md lists them all).  A bad setting
stops the command with exit code 2 and one line naming it:

>>> main(["worker", "--master", "aiospark://127.0.0.1:7077", "--memory", "lots"])
Traceback (most recent call last):
...
SystemExit: 2
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, NoReturn

from aiospark import config, logs
from aiospark.commands.failure import CommandFailed
from aiospark.config import ConfigError, Option
from aiospark.protocol import tls

#: command -> (one-line summary, what it does, "module:function" running it)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "master": (
        "run the cluster's master",
        "Run the master: workers register with it, drivers connect to it.",
        "roles:master",
    ),
    "worker": (
        "run a worker",
        "Run a worker that registers with the master at --master and runs tasks. "
        "Workers may join and leave at any time; on SIGTERM a worker drains: it takes "
        "no new tasks, lets running ones finish (up to --drain-timeout), leaves the "
        "cluster and exits 0.",
        "roles:worker",
    ),
    "shuffle-service": (
        "run this host's shuffle service",
        "Serve the map outputs the workers of this host write to --dir, so that they "
        "outlive the workers.",
        "roles:shuffle_service",
    ),
    "local": (
        "run an embedded cluster in the foreground",
        "Run a master, a shuffle service and --workers workers on this machine until "
        "Ctrl-C or SIGTERM, printing the master's URL and how to connect to it.",
        "local:local",
    ),
    "submit": (
        "run a driver program against a cluster",
        "Run the Python program APP (with ARGS) so that its aiospark.Context() connects "
        "to --master with the cluster secret; without --master it starts an embedded "
        "cluster as usual. Options go before APP.",
        "submit:submit",
    ),
    "status": (
        "show the cluster's workers and applications",
        "Print the status of the master at --master as a table, or its JSON with --json.",
        "status:status",
    ),
    "shell": (
        "the asyncio REPL with a connected ctx",
        "Start Python's asyncio REPL (top-level await) with `ctx`, an aiospark.Context "
        "connected to --master, or to an embedded cluster without --master.",
        "shell:shell",
    ),
}

EPILOG = ("Settings: flags win over AIOSPARK_* environment variables, which win over "
          "the TOML file given by --config or AIOSPARK_CONFIG, which wins over defaults. "
          "See docs/configuration.md.")


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _help(option: Option) -> str:
    if option.internal:
        return argparse.SUPPRESS
    if option.shown_default is not None:
        shown = option.shown_default
    elif option.switch:
        shown = "off"
    elif option.default is None:
        shown = "none"
    else:
        shown = str(option.default).lower() if option.key == "log_level" else str(option.default)
    where = [f"default: {shown}"]
    if option.env:
        where.append(f"env {option.env}")
    if option.key != "config":
        where.append(f"config key {option.key}")
    return f"{option.help} [{'; '.join(where)}]".replace("%", "%%")


def build_parser() -> Parser:
    """The parser of every command, built from ``aiospark.config.OPTIONS``.

    >>> parser = build_parser()
    >>> vars(parser.parse_args(["worker", "--cores", "2"]))["cores"]
    '2'
    """
    parser = Parser(prog="aiospark", description="Run one role of an aiospark cluster, "
                    "or use one.", epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    for name, (summary, description, _) in COMMANDS.items():
        command = sub.add_parser(name, help=summary, description=description, epilog=EPILOG)
        for option in config.options_for(name):
            if option.switch:
                command.add_argument(option.flag, dest=option.attr, action="store_true",
                                     default=None, help=_help(option))
            else:
                command.add_argument(option.flag, dest=option.attr, default=None,
                                     metavar=option.metavar, help=_help(option))
        if name == "submit":
            command.add_argument("app", metavar="APP", help="the program to run (a .py file)")
            command.add_argument("app_args", metavar="ARGS", nargs=argparse.REMAINDER,
                                 help="its arguments")
    return parser


def _fail(command: str, message: str, code: int) -> NoReturn:
    sys.stderr.write(f"aiospark {command}: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def _use_tls(settings: Any) -> None:
    """Export the TLS settings for ``protocol.tls`` (and child processes); check they load."""
    for key, variable in (("tls_cert", tls.CERT), ("tls_key", tls.KEY), ("tls_ca", tls.CA)):
        value = getattr(settings, key, None)
        if value:
            os.environ[variable] = str(value)
    tls.server_context()
    tls.client_context()


def main(argv: list[str] | None = None) -> None:
    """Run the command ``argv`` names (default: this process's arguments); exits."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    command = args.command
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "app", "app_args")}
    try:
        settings = config.resolve(command, flags)
    except ConfigError as exc:
        _fail(command, str(exc), 2)
    settings.argv = argv
    settings.app = getattr(args, "app", None)
    settings.app_args = getattr(args, "app_args", [])
    try:
        _use_tls(settings)
    except ValueError as exc:
        _fail(command, str(exc), 2)
    role = command if command in config.ROLES or command == "local" else "driver"
    logs.configure(role, settings.log_level, settings.log_format)
    module, function = COMMANDS[command][2].split(":")
    run = getattr(importlib.import_module(f"aiospark.commands.{module}"), function)
    try:
        code = run(settings)
    except ConfigError as exc:
        _fail(command, str(exc), 2)
    except CommandFailed as exc:
        _fail(command, str(exc), 1)
    raise SystemExit(code)
