"""``aiospark`` / ``python -m aiospark``: run one role of the cluster.

Each role is one process with one event loop; its command line names the role,
so ``ps`` shows what every process is.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile

from aiospark.memory import parse_size
from aiospark.runtime import run


def _secret(args: argparse.Namespace) -> str:
    if getattr(args, "secret_file", None):
        with open(args.secret_file, encoding="utf-8") as f:
            secret = f.read().strip()
    else:
        secret = os.environ.get("AIOSPARK_SECRET", "")
    if not secret:
        raise SystemExit(
            "aiospark: no cluster secret: set AIOSPARK_SECRET or pass --secret-file"
        )
    return secret


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=0, help="port to bind (default: any free port)")
    p.add_argument("--advertise-host", default=None,
                   help="address other machines use to reach this process (default: the "
                   "bound address; this machine's host name when bound to 0.0.0.0)")
    p.add_argument("--secret-file", help="file holding the cluster secret "
                   "(default: the AIOSPARK_SECRET environment variable)")
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--fd", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--log-level", default="WARNING", help="logging level (default: WARNING)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiospark", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)

    master = sub.add_parser("master", help="run the cluster master")
    _common(master)
    master.add_argument("--worker-timeout", type=float, default=10.0,
                        help="seconds without heartbeat before a worker is lost (default: 10)")
    master.add_argument("--session-dir", default=None, help=argparse.SUPPRESS)

    worker = sub.add_parser("worker", help="run a worker")
    _common(worker)
    worker.add_argument("--master", required=True, help="master URL, http://host:port")
    worker.add_argument("--shuffle-url", required=True, help="this host's shuffle service URL")
    worker.add_argument("--shuffle-dir", default=None,
                        help="the shuffle service's directory, when on this host")
    worker.add_argument("--work-dir", default=None, help="scratch directory (default: a temp dir)")
    worker.add_argument("--cores", type=int, default=1, help="tasks run at once (default: 1)")
    worker.add_argument(
        "--memory", type=parse_size, default=0,
        help="memory budget for cached blocks and task buffers, e.g. 2g "
        "(default: the worker's share by cores of 60%% of the machine's memory)",
    )
    worker.add_argument("--worker-id", default=None)
    worker.add_argument("--heartbeat-interval", type=float, default=1.0)

    shuffle = sub.add_parser("shuffle-service", help="run this host's shuffle service")
    _common(shuffle)
    shuffle.add_argument("--dir", required=True, help="directory holding map outputs")
    shuffle.add_argument("--cleanup", action="store_true", help="remove --dir on exit")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format=f"%(asctime)s {args.role} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    args.secret = _secret(args)
    if args.role == "master":
        from aiospark.master.app import run_master

        run(lambda: run_master(args))
    elif args.role == "worker":
        from aiospark.worker.app import run_worker

        # Pin str/bytes hashing so user classes hash alike on every worker.
        if os.environ.get("PYTHONHASHSEED") != "0":
            os.environ["PYTHONHASHSEED"] = "0"
            os.execv(sys.executable, [sys.executable, "-m", "aiospark", *sys.argv[1:]])
        if args.work_dir is None:
            args.work_dir = tempfile.mkdtemp(prefix="aiospark-worker-")
        run(lambda: run_worker(args))
        # Do not wait for user code still running on task threads (it was cancelled).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    elif args.role == "shuffle-service":
        from aiospark.shuffle.service import run_shuffle_service

        run(lambda: run_shuffle_service(args))
