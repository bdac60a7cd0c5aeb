"""Count the words of text files on an embedded aiospark cluster and print the top ones.

    python examples/wordcount.py README.md [more files, dirs or globs ...] [--top 10]

It prints the most frequent words and their counts, most frequent first:

          19  the
          15  and
    ...
"""

from __future__ import annotations

import argparse
import asyncio
import operator

import aiospark


async def word_count(paths: list[str], top: int, workers: int | None) -> list[tuple[str, int]]:
    async with aiospark.Context(workers=workers) as ctx:
        counts = (
            ctx.text_file(",".join(paths))
            .flat_map(str.split)
            .map(lambda word: (word, 1))
            .reduce_by_key(operator.add)
        )
        pairs = await counts.collect()
    return sorted(pairs, key=lambda kv: (-kv[1], kv[0]))[:top]


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="files, directories or globs to read")
    parser.add_argument("--top", type=int, default=10, help="how many words to print")
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    args = parser.parse_args(argv)
    for word, count in await word_count(args.paths, args.top, args.workers):
        print(f"{count:8d}  {word}")


if __name__ == "__main__":
    asyncio.run(main())
