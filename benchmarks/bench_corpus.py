"""The word-count input: a deterministic text of Zipf-distributed words.

A fixed seed draws a vocabulary of 50,000 distinct lower-case pseudo-words of
2 to 10 letters, ranked in a seeded random order, then lines of 6 to 14 words
(10 on average) whose words follow a Zipf law (frequency of rank r
proportional to 1/r).  The file is written to
``benchmarks/data/`` (git-ignored) with a small JSON sidecar describing it,
and reused by later runs that ask for the same size and seed.
"""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

import numpy as np

#: Bump when the generator changes, so stale files are regenerated.
FORMAT_VERSION = 1
VOCABULARY_SIZE = 50_000
ZIPF_EXPONENT = 1.0
LINE_WORDS = (6, 14)  # inclusive bounds; mean 10
WORD_LETTERS = (2, 10)  # inclusive bounds
LINES_PER_CHUNK = 50_000
LETTERS = np.array(list(string.ascii_lowercase))


def corpus_path(data_dir: Path, size_mb: float, seed: int) -> Path:
    """Where the corpus of this size and seed lives."""
    return data_dir / f"words-{size_mb:g}mb-seed{seed}.txt"


def ensure_corpus(data_dir: Path, size_mb: float, seed: int) -> tuple[Path, bool]:
    """Return (path, reused): the existing corpus when it matches, else a freshly written one."""
    path = corpus_path(data_dir, size_mb, seed)
    wanted = _description(size_mb, seed)
    if _matches(path, wanted):
        return path, True
    data_dir.mkdir(parents=True, exist_ok=True)
    written = write_corpus(path, int(size_mb * 1_000_000), seed)
    sidecar = {**wanted, "bytes": written}
    _sidecar(path).write_text(json.dumps(sidecar, indent=1) + "\n")
    return path, False


def _description(size_mb: float, seed: int) -> dict[str, object]:
    return {
        "version": FORMAT_VERSION,
        "size_mb": size_mb,
        "seed": seed,
        "vocabulary": VOCABULARY_SIZE,
        "zipf_exponent": ZIPF_EXPONENT,
    }


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _matches(path: Path, wanted: dict[str, object]) -> bool:
    """Whether ``path`` exists, was made with ``wanted`` and has the size its sidecar records."""
    try:
        meta = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return False
    same = all(meta.get(k) == v for k, v in wanted.items())
    return same and path.exists() and path.stat().st_size == meta.get("bytes")


def vocabulary(rng: np.random.Generator, size: int = VOCABULARY_SIZE) -> list[str]:
    """``size`` distinct pseudo-words of 2 to 10 letters, in a seeded random rank order."""
    words: set[str] = set()
    while len(words) < size:
        length = int(rng.integers(WORD_LETTERS[0], WORD_LETTERS[1] + 1))
        words.add("".join(rng.choice(LETTERS, size=length)))
    ordered = sorted(words)  # a set's order depends on the hash seed; a sorted list does not
    return [ordered[i] for i in rng.permutation(len(ordered))]


def zipf_cumulative(size: int, exponent: float = ZIPF_EXPONENT) -> np.ndarray:
    """Cumulative, normalised Zipf weights of ranks 1..size."""
    weights = 1.0 / np.arange(1, size + 1, dtype=np.float64) ** exponent
    cumulative = np.cumsum(weights)
    return cumulative / cumulative[-1]


def text_chunk(rng: np.random.Generator, words: list[str], cumulative: np.ndarray) -> bytes:
    """``LINES_PER_CHUNK`` lines of Zipf-drawn words, newline-terminated, as UTF-8."""
    lengths = rng.integers(LINE_WORDS[0], LINE_WORDS[1] + 1, size=LINES_PER_CHUNK)
    ranks = np.searchsorted(cumulative, rng.random(int(lengths.sum())), side="right")
    tokens = [words[r] for r in np.minimum(ranks, len(words) - 1).tolist()]
    ends = np.cumsum(lengths).tolist()
    starts = [0, *ends[:-1]]
    lines = [" ".join(tokens[a:b]) for a, b in zip(starts, ends, strict=True)]
    return ("\n".join(lines) + "\n").encode()


def write_corpus(path: Path, target_bytes: int, seed: int) -> int:
    """Write at most ``target_bytes`` bytes of whole lines to ``path``; return the size."""
    rng = np.random.default_rng(seed)
    words = vocabulary(rng)
    cumulative = zipf_cumulative(len(words))
    written = 0
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        while written < target_bytes:
            chunk = text_chunk(rng, words, cumulative)
            room = target_bytes - written
            last = len(chunk) >= room
            if last:
                chunk = chunk[: chunk.rfind(b"\n", 0, room + 1) + 1]
            out.write(chunk)
            written += len(chunk)
            if last:
                break
    os.replace(partial, path)
    return written
