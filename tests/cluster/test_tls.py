"""TLS: with a certificate configured, every process serves HTTPS only and jobs still run."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import operator
import os
import ssl
import subprocess
import sys

import aiohttp
import pytest

import aiospark
from aiospark.protocol import tls

x509 = pytest.importorskip("cryptography.x509", reason="cryptography makes the test certificates")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


def _write_pem(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A throwaway CA and a certificate it signed for 127.0.0.1 and localhost."""
    root = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aiospark test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aiospark node")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return {
        tls.CA: _write_pem(root / "ca.pem", ca.public_bytes(pem)),
        tls.CERT: _write_pem(root / "node.pem", cert.public_bytes(pem)),
        tls.KEY: _write_pem(root / "node.key", key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())),
    }


async def test_a_cluster_over_tls_runs_jobs_and_refuses_plain_http(certificates, monkeypatch):
    for name, value in certificates.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIOSPARK_SHUFFLE_LOCAL_READS", "0")  # fetch through the service
    async with aiospark.Context(workers=2) as ctx:
        master = ctx._scheduler.master_url
        assert master.startswith("https://127.0.0.1:")
        links = list(ctx._scheduler.links.values())
        assert all(link.info.url.startswith("https://") for link in links)
        assert all(link.info.shuffle_url.startswith("https://") for link in links)
        # a shuffle, a broadcast and a large result: every path between processes
        table = ctx.broadcast({i: i * i for i in range(100)})
        pairs = ctx.parallelize(range(20_000), 4).map(lambda i: (i % 100, table.value[i % 100]))
        sums = dict(await pairs.reduce_by_key(operator.add).collect())
        assert sums == {k: 200 * k * k for k in range(100)}
        big = await ctx.parallelize(range(1_500_000), 2).map(str).collect()  # fetched by URL
        assert len(big) == 1_500_000
        plain = master.replace("https://", "http://")
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"{plain}/v1/live") as resp:
                    await resp.read()
            # a client that does not trust the cluster's CA refuses the certificate
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                async with session.get(f"{master}/v1/live", ssl=ssl.create_default_context()):
                    pass
            trusted = tls.client_context()
            async with session.get(f"{master}/v1/live", ssl=trusted) as resp:
                assert resp.status == 200


@pytest.mark.asyncio(loop_scope="session")
async def test_half_a_configuration_is_an_error():
    with pytest.raises(ValueError, match="must be set together"):
        tls.server_context({tls.CERT: "/nonexistent.pem"})
    with pytest.raises(ValueError, match="cannot load the TLS certificate"):
        tls.server_context({tls.CERT: "/nonexistent.pem", tls.KEY: "/nonexistent.key"})


async def test_standalone_roles_take_tls_flags(certificates, tmp_path):
    from tests.cluster.cli_processes import SECRET, roles

    flags = ["--tls-cert", certificates[tls.CERT], "--tls-key", certificates[tls.KEY],
             "--tls-ca", certificates[tls.CA]]
    async with roles() as started:
        master = await started.start("master", "--port", "0", *flags)
        assert master.url.startswith("https://127.0.0.1:")
        shuffle = await started.start("shuffle-service", "--port", "0", "--dir",
                                      str(tmp_path / "shuffle"), *flags)
        assert shuffle.url.startswith("https://")
        worker = await started.worker(master.url, shuffle.url, tmp_path, "w0", *flags)
        assert worker.url.startswith("https://")
        status = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiospark", "status", "--master", master.url, "--json",
            "--tls-ca", certificates[tls.CA], env={**os.environ, "AIOSPARK_SECRET": SECRET},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(status.communicate(), 60)
        assert status.returncode == 0, err.decode()
        assert [w["worker_id"] for w in json.loads(out)["workers"]] == ["w0"]
        untrusting = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiospark", "status", "--master", master.url,
            env={**os.environ, "AIOSPARK_SECRET": SECRET},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(untrusting.communicate(), 60)
        assert untrusting.returncode != 0 and b"certificate" in err.lower()
