"""Interactive log mining: keep a log's ERROR lines cached on the cluster, then ask questions.

    python examples/log_mining.py              # writes a sample log (50,000 lines) and mines it
    python examples/log_mining.py app.log db   # your log, and a word to look for (default 'db')

A log line is ``date time LEVEL service: message``, as in the sample
(``2024-05-14 14:03:59 ERROR db: connection refused by db-2``).  It prints how
many ERROR lines there are (the first query reads the log and caches them), then
how many mention the word, by service and by hour, each answered from the cache:

    sample log: /tmp/aiospark-sample-50000-1.log
    ERROR lines: 3,178 (reads the log, caches them: 130 ms)
    mentioning 'db': 1,431 (from the cache: 4 ms)
    by service: api 531, auth 507, billing 496, db 1,123, search 521
    'db' by hour:
      09:00     96 ###
      ...
      14:00    720 ##########################
      ...

The point is the interactive session: a query takes a line and comes back in
milliseconds, because the errors stay in the workers' memory.  From this
directory, in the asyncio REPL (in ``aiospark shell`` ``ctx`` is already there):

    $ cd examples && python -m asyncio
    >>> import aiospark, log_mining
    >>> path = log_mining.sample_log()  # a temporary file; or the path of your own log
    >>> ctx = await aiospark.Context(workers=2).start()
    >>> errors = log_mining.error_lines(ctx, path)  # lazy: nothing has run yet
    >>> await errors.count()  # reads the log once and caches the ERROR lines
    3178
    >>> await errors.filter(lambda line: "db" in line).count()  # from the cache
    1431
    >>> await errors.filter(lambda line: "timeout" in line).take(1)
    ['2024-05-14 09:00:23 ERROR db: timeout after 2148 ms calling billing']
    >>> await log_mining.errors_by_hour(errors, "db")
    {9: 96, 10: 98, 11: 60, 12: 93, 13: 89, 14: 720, 15: 97, 16: 93, 17: 85}
    >>> await log_mining.errors_by_service(errors)
    {'api': 531, 'auth': 507, 'billing': 496, 'db': 1123, 'search': 521}
    >>> await ctx.stop()
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import tempfile
import time
from datetime import datetime, timedelta

import aiospark

SERVICES = ("api", "auth", "billing", "db", "search")
#: What each level says; ``{ms}``, ``{host}``, ``{user}`` and ``{service}`` are filled in.
MESSAGES = {
    "INFO": ("request served in {ms} ms", "user {user} logged in", "cache warmed"),
    "WARN": ("slow request: {ms} ms", "retrying {service} (attempt 2)"),
    "ERROR": (
        "timeout after {ms} ms calling {service}",
        "connection refused by {host}",
        "user {user} not found",
        "out of memory on {host}",
    ),
}
LEVELS, WEIGHTS = ("INFO", "WARN", "ERROR"), (85, 10, 5)
START = datetime(2024, 5, 14, 9, 0, 0)  # the sample log covers 09:00 to 18:00
SPAN = timedelta(hours=9)
#: 14:00 to 15:00: the database refuses connections (the incident the queries find).
INCIDENT = (14, "db", "connection refused by db-{n}")
TIME = re.compile(r"\b(\d\d):\d\d:\d\d\b")


# -- the sample log --------------------------------------------------------------------------


def sample_lines(lines: int = 50_000, seed: int = 1) -> list[str]:
    """A web service's log, INFO/WARN/ERROR lines in time order; the same for the same seed.

    >>> sample_lines(3, seed=2)[0]
    '2024-05-14 09:00:00 ERROR api: timeout after 795 ms calling billing'
    """
    rng = random.Random(seed)
    out = []
    for i in range(lines):
        when = START + SPAN * i / lines
        level = rng.choices(LEVELS, WEIGHTS)[0]
        service = rng.choice(SERVICES)
        message = rng.choice(MESSAGES[level])
        if when.hour == INCIDENT[0] and rng.random() < 0.12:
            level, service, message = "ERROR", INCIDENT[1], INCIDENT[2]
        text = message.format(
            ms=rng.randint(100, 5000),
            host=f"{rng.choice(SERVICES)}-{rng.randint(1, 4)}",
            user=f"u{rng.randint(1000, 9999)}",
            service=rng.choice(SERVICES),
            n=rng.randint(1, 4),
        )
        out.append(f"{when:%Y-%m-%d %H:%M:%S} {level} {service}: {text}")
    return out


def sample_log(path: str | None = None, lines: int = 50_000, seed: int = 1) -> str:
    """Write the sample log (by default in the temporary directory); returns its path."""
    if path is None:
        path = os.path.join(tempfile.gettempdir(), f"aiospark-sample-{lines}-{seed}.log")
    draft = f"{path}.{os.getpid()}.tmp"
    with open(draft, "w", encoding="utf-8") as f:
        f.write("\n".join(sample_lines(lines, seed)) + "\n")
    os.replace(draft, path)  # a reader never sees half a log
    return path


# -- what a line says ------------------------------------------------------------------------


def is_error(line: str) -> bool:
    """True for an ERROR line.

    >>> is_error("2024-05-14 09:00:42 ERROR db: disk full"), is_error("... INFO db: ERROR 0")
    (True, False)
    """
    return line.split(" ", 3)[2:3] == ["ERROR"]


def hour_of(line: str) -> int | None:
    """The hour of a line's first ``hh:mm:ss`` time, or None.

    >>> hour_of("2024-05-14 14:03:59 ERROR db: ..."), hour_of("no time")
    (14, None)
    """
    found = TIME.search(line)
    return int(found.group(1)) if found else None


def service_of(line: str) -> str:
    """The service a line is from: the word after the level, before its colon.

    >>> service_of("2024-05-14 09:00:42 ERROR billing: timeout"), service_of("ERROR")
    ('billing', '?')
    """
    fields = line.split(" ", 4)
    return fields[3].rstrip(":") if len(fields) > 3 else "?"


# -- on the cluster --------------------------------------------------------------------------


def error_lines(ctx: aiospark.Context, path: str) -> aiospark.RDD:
    """The ERROR lines of the log at ``path``, cached once the first query has read them."""
    return ctx.text_file(path).filter(is_error).cache()


async def count_mentioning(errors: aiospark.RDD, text: str) -> int:
    """How many of ``errors`` contain ``text``."""
    return await errors.filter(lambda line: text in line).count()


async def errors_by_hour(errors: aiospark.RDD, text: str = "") -> dict[int, int]:
    """``{hour: how many of errors contain text}``, by hour (lines without a time left out)."""
    hours = errors.filter(lambda line: text in line).map(hour_of).filter(lambda h: h is not None)
    return dict(sorted((await hours.count_by_value()).items()))


async def errors_by_service(errors: aiospark.RDD) -> dict[str, int]:
    """``{service: how many errors}``, by service name."""
    return dict(sorted((await errors.map(service_of).count_by_value()).items()))


# -- the command line ------------------------------------------------------------------------


def bar(count: int, most: int, width: int = 26) -> str:
    """A bar of ``#`` as long as ``count`` is against ``most``."""
    return "#" * max(1, round(width * count / most)) if count else ""


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", nargs="?", help="a log file (default: write a sample log)")
    parser.add_argument("word", nargs="?", default="db", help="what to look for (default: db)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    args = parser.parse_args(argv)
    path = args.log or sample_log()
    if not args.log:
        print(f"sample log: {path}")

    async with aiospark.Context(workers=args.workers) as ctx:
        errors = error_lines(ctx, path)
        start = time.perf_counter()
        total = await errors.count()
        print(
            f"ERROR lines: {total:,} (reads the log, caches them: "
            f"{1000 * (time.perf_counter() - start):.0f} ms)"
        )
        start = time.perf_counter()
        mentioning = await count_mentioning(errors, args.word)
        print(
            f"mentioning {args.word!r}: {mentioning:,} (from the cache: "
            f"{1000 * (time.perf_counter() - start):.0f} ms)"
        )
        services, hours = await asyncio.gather(
            errors_by_service(errors), errors_by_hour(errors, args.word)
        )
    print("by service: " + ", ".join(f"{name} {n:,}" for name, n in services.items()))
    print(f"{args.word!r} by hour:")
    most = max(hours.values(), default=0)
    for hour, count in hours.items():
        print(f"  {hour:02d}:00 {count:6d} {bar(count, most)}")


if __name__ == "__main__":
    asyncio.run(main())
