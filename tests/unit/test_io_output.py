"""Tests for aiospark.io.output (the commit protocol) and aiospark.io.paths (shipping)."""

from __future__ import annotations

import gzip
import os
import pickle
import uuid

import fsspec
import pytest

from aiospark.io.output import OutputCommitter, write_part, write_text_part
from aiospark.io.paths import ShippedFiles, compression_of, for_workers


def listing(root) -> list[str]:
    """Every file below ``root``, relative, sorted."""
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root) for f in names
    )


def test_only_accepted_attempts_become_parts(tmp_path):
    out = tmp_path / "out"
    committer = OutputCommitter.create(str(out))
    # partition 0 written twice (a retry or a speculative copy), partition 1 once
    first = write_text_part(committer, None, 0, iter(["first attempt"]))
    second = write_text_part(committer, None, 0, iter(["second attempt"]))
    other = write_text_part(committer, None, 1, iter(["p1"]))
    assert first != second
    assert listing(out) == sorted(
        os.path.relpath(p, out) for p in (first, second, other)
    ), "attempts write only under _temporary"
    committer.commit_job([second, other])  # the scheduler accepted the second attempt
    assert listing(out) == ["_SUCCESS", "part-00000", "part-00001"]
    assert (out / "part-00000").read_text() == "second attempt\n"
    assert (out / "part-00001").read_text() == "p1\n"


def test_failed_attempt_removes_what_it_wrote(tmp_path):
    out = tmp_path / "out"
    committer = OutputCommitter.create(str(out))

    def records():
        yield from (f"line {i}" for i in range(5000))  # several batches get written
        raise RuntimeError("task died halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        write_text_part(committer, "gzip", 3, records())
    assert listing(out) == []
    committer.abort_job()
    assert listing(out) == [] and not (out / "_temporary").exists()


def test_straggler_after_the_commit_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    committer = OutputCommitter.create(str(out))
    accepted = write_part(committer, None, 0, lambda f: f.write(b"winner\n"))
    committer.commit_job([accepted])
    # the loser of a speculative race finishes after the job; its directory was removed,
    # which a local filesystem refuses and an object store would not: try both ways
    with pytest.raises(FileNotFoundError):
        write_part(committer, None, 0, lambda f: f.write(b"loser\n"))
    os.makedirs(committer.staging)
    late = write_part(committer, None, 0, lambda f: f.write(b"loser\n"))
    assert not os.path.exists(late)
    assert (out / "part-00000").read_bytes() == b"winner\n"


def test_compressed_parts_and_extensions(tmp_path):
    out = tmp_path / "out"
    committer = OutputCommitter.create(str(out))
    written = [
        write_text_part(committer, "gzip", i, iter([f"{i}-a", f"{i}-b"])) for i in range(2)
    ]
    committer.commit_job(written)
    assert listing(out) == ["_SUCCESS", "part-00000.gz", "part-00001.gz"]
    assert gzip.decompress((out / "part-00001.gz").read_bytes()) == b"1-a\n1-b\n"
    assert compression_of(str(out / "part-00001.gz")) == "gzip"


def test_existing_output_and_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old").write_text("keep me")
    with pytest.raises(FileExistsError, match="already exists"):
        OutputCommitter.create(str(out))
    assert (out / "old").read_text() == "keep me"
    committer = OutputCommitter.create(f"file://{out}", overwrite=True)
    assert listing(out) == [] and committer.staging.startswith(str(out))


def test_memory_output_is_refused():
    with pytest.raises(ValueError, match="memory://"):
        OutputCommitter.create(f"memory:///out-{uuid.uuid4().hex}")


def test_shipped_files_travel_with_the_filesystem():
    mem = fsspec.filesystem("memory")
    root = f"/test-ship-{uuid.uuid4().hex}"
    mem.pipe(f"{root}/a.txt", b"alpha\n")
    mem.pipe(f"{root}/sub/b.txt.gz", gzip.compress(b"beta\n"))
    paths = [f"{root}/a.txt", f"{root}/sub/b.txt.gz"]
    shipped = for_workers(mem, paths)
    assert isinstance(shipped, ShippedFiles)
    mem.rm(root, recursive=True)  # a worker's process-wide memory store is empty
    copy = pickle.loads(pickle.dumps(shipped))
    assert copy is not shipped
    assert copy.cat_file(paths[0]) == b"alpha\n"
    with copy.open(paths[1], "rb", compression="gzip") as f:
        assert f.read() == b"beta\n"
    assert copy.size(paths[0]) == 6
    assert not mem.exists(paths[0]), "shipped files stay out of the process-wide store"
    assert for_workers(copy, paths) is copy
