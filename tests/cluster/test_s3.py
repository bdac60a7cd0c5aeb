"""Reading and writing S3 for real: a moto server on loopback, s3fs, a real cluster.

The workers get no AWS credentials from their environment (the fixture removes
them before the cluster starts), so everything they read or write goes through
the context's ``storage_options``.
"""

from __future__ import annotations

import asyncio
import bz2
import gzip
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
import pytest_asyncio

import aiospark
from tests.conftest import wait_for_idle

s3fs = pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]

BUCKET = "aiospark-test"
ACCESS_KEY = "AKIDAIOSPARKTEST"
#: Recognisable, so a leak into logs or status JSON is easy to find.
SECRET_KEY = "s3cr3t-" + uuid.uuid4().hex

#: Environment that would otherwise give the workers credentials of their own.
_AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                  "AWS_PROFILE", "AWS_DEFAULT_PROFILE")


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on a free loopback port, with one bucket; always stopped."""
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )
        client.create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def storage_options(endpoint: str) -> dict:
    return {
        "key": ACCESS_KEY,
        "secret": SECRET_KEY,
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }


@pytest.fixture(scope="module")
def no_aws_environment(tmp_path_factory):
    """Credentials neither in the environment nor in files: storage options are the only way."""
    empty = tmp_path_factory.mktemp("no-aws") / "none"
    with pytest.MonkeyPatch.context() as mp:
        for name in _AWS_VARIABLES:
            mp.delenv(name, raising=False)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
        mp.setenv("AWS_CONFIG_FILE", str(empty))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def s3_ctx(s3_endpoint, no_aws_environment):
    """A cluster whose only S3 credentials are its storage options (speculation on)."""
    options = storage_options(s3_endpoint)
    async with aiospark.Context(workers=2, storage_options=options, speculation=True) as ctx:
        yield ctx


@pytest.fixture
def s3(s3_endpoint):
    """The driver's view of the bucket, and a fresh prefix in it for one test."""
    fs = s3fs.S3FileSystem(**storage_options(s3_endpoint), skip_instance_cache=True)
    prefix = f"{BUCKET}/{uuid.uuid4().hex[:10]}"
    yield fs, prefix
    fs.invalidate_cache()
    if fs.exists(prefix):
        fs.rm(prefix, recursive=True)


def listing(fs, prefix: str) -> list[str]:
    fs.invalidate_cache()
    return sorted(p[len(prefix) + 1 :] for p in fs.find(prefix))


async def test_text_file_reads_globs_lists_and_gzip_objects(s3_ctx, s3):
    fs, prefix = s3
    expected = {}
    for i in range(4):
        lines = [f"file {i} line {n} ✓" for n in range(2000 + i)]
        text = "\r\n".join(lines) if i == 2 else "\n".join(lines) + "\n"
        fs.pipe(f"{prefix}/logs/day-{i}.txt", text.encode())
        expected[f"day-{i}.txt"] = lines
    gz_lines = [f"compressed {n}" for n in range(500)]
    fs.pipe(f"{prefix}/logs/day-9.txt.gz", gzip.compress(("\n".join(gz_lines)).encode()))
    fs.pipe(f"{prefix}/logs/_SUCCESS", b"")
    fs.pipe(f"{prefix}/other/notes.txt", b"elsewhere\n")

    everything = [line for name in sorted(expected) for line in expected[name]] + gz_lines
    rdd = s3_ctx.text_file(f"s3://{prefix}/logs/day-*", min_partitions=13)
    assert rdd.get_num_partitions() >= 13  # byte ranges of S3 objects
    assert await rdd.collect() == everything
    assert await s3_ctx.text_file(f"s3://{prefix}/logs").count() == len(everything)
    both = f"s3://{prefix}/other/notes.txt,s3://{prefix}/logs/day-[1]*"
    assert await s3_ctx.text_file(both).collect() == expected["day-1.txt"] + ["elsewhere"]
    with pytest.raises(FileNotFoundError, match="no-such-prefix"):
        s3_ctx.text_file(f"s3://{prefix}/no-such-prefix/*.txt")


async def test_save_as_text_file_round_trip(s3_ctx, s3):
    fs, prefix = s3
    data = [f"record {i} é" for i in range(5000)]
    out = f"s3://{prefix}/out"
    await s3_ctx.parallelize(data, 4).save_as_text_file(out)
    assert listing(fs, f"{prefix}/out") == ["_SUCCESS"] + [f"part-{i:05d}" for i in range(4)]
    assert await s3_ctx.text_file(out).collect() == data
    with pytest.raises(FileExistsError, match="already exists"):
        await s3_ctx.parallelize([1]).save_as_text_file(out)
    await s3_ctx.parallelize(data[:10], 2).save_as_text_file(out, compression="gzip",
                                                            overwrite=True)
    assert listing(fs, f"{prefix}/out") == ["_SUCCESS", "part-00000.gz", "part-00001.gz"]
    assert gzip.decompress(fs.cat(f"{prefix}/out/part-00001.gz")).decode().split("\n")[0] == (
        "record 5 é"
    )
    assert await s3_ctx.text_file(out).collect() == data[:10]


async def test_save_as_pickle_file_round_trip(s3_ctx, s3):
    fs, prefix = s3
    data = [(i, {"square": i * i}, None if i % 7 else b"\x00") for i in range(3000)]
    out = f"s3://{prefix}/pickled"
    await s3_ctx.parallelize(data, 3).save_as_pickle_file(out, batch_size=100,
                                                          compression="bz2")
    assert listing(fs, f"{prefix}/pickled") == ["_SUCCESS"] + [
        f"part-{i:05d}.bz2" for i in range(3)
    ]
    bz2.decompress(fs.cat(f"{prefix}/pickled/part-00000.bz2"))  # really bz2
    back = s3_ctx.pickle_file(out)
    assert back.get_num_partitions() == 3
    assert await back.collect() == data


async def test_whole_text_files_and_binary_files(s3_ctx, s3):
    fs, prefix = s3
    texts = {f"{prefix}/docs/{name}": text for name, text in
             [("a.md", "# alpha\n"), ("b.md", "béta, no newline"), ("c.md", "")]}
    for path, text in texts.items():
        fs.pipe(path, text.encode())
    zipped = gzip.compress(b"zipped\n")
    fs.pipe(f"{prefix}/docs/d.md.gz", zipped)
    got = await s3_ctx.whole_text_files(f"s3://{prefix}/docs", 2).collect()
    assert got == [(f"s3://{p}", t) for p, t in texts.items()] + [
        (f"s3://{prefix}/docs/d.md.gz", "zipped\n")
    ]
    raw = dict(await s3_ctx.binary_files(f"s3://{prefix}/docs/*.gz").collect())
    assert raw == {f"s3://{prefix}/docs/d.md.gz": zipped}  # not decompressed


def _first_to_create(path: str) -> bool:
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


async def test_speculative_loser_cannot_replace_a_committed_part(s3_ctx, s3, s3_endpoint,
                                                                 tmp_path):
    """On S3 a straggler's file is an object like any other: it must not become a part."""
    fs, prefix = s3
    out = f"{prefix}/spec"
    marker = str(tmp_path / "slow-attempt")
    options = storage_options(s3_endpoint)

    def tagged(index, records):
        records = list(records)  # no more cancellation checks: a true zombie
        tag = "fast"
        if index == 0 and _first_to_create(marker):
            import s3fs as worker_s3fs

            bucket = worker_s3fs.S3FileSystem(**options, skip_instance_cache=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                bucket.invalidate_cache()
                if bucket.exists(f"{out}/_SUCCESS"):
                    break
                time.sleep(0.02)
            tag = "slow"
        for x in records:
            yield f"{tag} {x}"

    rdd = s3_ctx.parallelize(range(40), 4).map_partitions_with_index(tagged)
    await rdd.save_as_text_file(f"s3://{out}")
    await wait_for_idle(s3_ctx, timeout=40)
    assert os.path.exists(marker)
    assert listing(fs, out) == ["_SUCCESS"] + [f"part-{i:05d}" for i in range(4)]
    assert fs.cat(f"{out}/part-00000").decode() == "".join(f"fast {x}\n" for x in range(10))


# -- secrets ---------------------------------------------------------------------------------

_DRIVER = textwrap.dedent(
    """
    import asyncio, json, sys, traceback
    import aiospark, s3fs

    endpoint, prefix, key, secret = sys.argv[1:5]
    options = {"key": key, "secret": secret,
               "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}

    async def main():
        async with aiospark.Context(workers=2, storage_options=options,
                                    log_level="DEBUG") as ctx:
            lines = await ctx.text_file(f"s3://{prefix}/in/*.txt", 4).count()
            await ctx.parallelize(range(100), 2).save_as_text_file(f"s3://{prefix}/out")
            gone = ctx.text_file(f"s3://{prefix}/in/b.txt")
            s3fs.S3FileSystem(**options).rm(f"{prefix}/in/b.txt")
            try:
                await gone.count()
            except Exception:
                print("EXPECTED FAILURE:", traceback.format_exc())
            async with ctx._session.get(ctx.ui_web_url + "/v1/status") as resp:
                status = await resp.json()
            print("STATUS", json.dumps(status))
            print("LINES", lines)

    asyncio.run(main())
    """
)


async def test_secret_key_never_in_logs_or_status(s3_endpoint, s3, no_aws_environment, tmp_path):
    fs, prefix = s3
    fs.pipe(f"{prefix}/in/a.txt", b"one\ntwo\n")
    fs.pipe(f"{prefix}/in/b.txt", b"three\n")
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER)
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(script), s3_endpoint, prefix, ACCESS_KEY, SECRET_KEY],
        capture_output=True, text=True, timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    out, err = proc.stdout, proc.stderr  # the children log to the driver's stderr
    assert proc.returncode == 0, err[-3000:]
    assert "LINES 3" in out
    status = json.loads(out.split("STATUS ", 1)[1].splitlines()[0])
    assert len(status["workers"]) == 2
    assert "EXPECTED FAILURE" in out and "b.txt" in out
    # the logs really are there: every process at DEBUG, boto's request logging included
    # (which shows the access key id in each request's signature, but not the secret)
    assert "worker" in err and "master serving at" in err and "botocore" in err
    assert ACCESS_KEY in err
    for where, text in (("stdout", out), ("stderr", err), ("status", json.dumps(status))):
        assert SECRET_KEY not in text, f"the secret key appears in the driver's {where}"
    assert listing(fs, f"{prefix}/out")[0] == "_SUCCESS"
