"""TLS: `serve --tls-cert/--tls-key` (from flags or the environment) with grpcurl and a Python client, and mutual
TLS with `--tls-client-ca`: a client without a certificate of that CA gets no answer. Certificates are made here."""

from __future__ import annotations

import datetime
import ipaddress
import time
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.helpers import COMMUNITIES, GRPCURL, address, clean_env, run

pytestmark = pytest.mark.e2e


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(folder: Path, stem: str, key, cert: x509.Certificate) -> tuple[Path, Path]:
    key_path, cert_path = folder / f"{stem}.key", folder / f"{stem}.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _issue(common_name, ca_key, ca_name, *, server: bool, ca: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_name or _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return key, builder.sign(ca_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    ca_key, ca_cert = _issue("communities test CA", None, None, server=False, ca=True)
    other_ca_key, other_ca_cert = _issue("someone else's CA", None, None, server=False, ca=True)
    paths = {"ca": _write(folder, "ca", ca_key, ca_cert)[0]}
    paths["server"], paths["server_key"] = _write(
        folder, "server", *_issue("localhost", ca_key, ca_cert.subject, server=True)
    )
    paths["client"], paths["client_key"] = _write(
        folder, "client", *_issue("game-1", ca_key, ca_cert.subject, server=False)
    )
    paths["stranger"], paths["stranger_key"] = _write(
        folder, "stranger", *_issue("stranger", other_ca_key, other_ca_cert.subject, server=False)
    )
    return paths


def grpcurl_tls(server_address: str, *args: str):
    return run([GRPCURL, *args, server_address, "list"], timeout=20)


def wait_serving(server, credentials: grpc.ChannelCredentials, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert server.poll() is None, server.describe()
        with grpc.secure_channel(server.address, credentials) as channel:
            try:
                status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING and "serving communities.v1" in server.stderr():
                    return
            except grpc.RpcError:
                pass
        assert time.monotonic() < deadline, f"not serving over TLS\n{server.describe()}"
        time.sleep(0.1)


def test_tls_from_flags(e2e, certs):
    server = e2e.server(
        "--tls-cert",
        str(certs["server"]),
        "--tls-key",
        str(certs["server_key"]),
        database=e2e.sqlite_url(),
        ready=False,
    )
    wait_serving(server, grpc.ssl_channel_credentials(certs["ca"].read_bytes()))
    assert "TLS on" in server.stderr()
    listed = grpcurl_tls(server.address, "-cacert", str(certs["ca"])).ok()
    assert "communities.v1.Communities" in listed.stdout
    # The server's certificate is not trusted by default, and plaintext is not spoken.
    assert grpcurl_tls(server.address).returncode != 0
    assert grpcurl_tls(server.address, "-plaintext").returncode != 0


def test_mutual_tls_from_the_environment(e2e, certs):
    listen = address()
    server = e2e.server(
        database=e2e.sqlite_url(),
        env={
            "COMMUNITIES_LISTEN": listen,
            "COMMUNITIES_TLS_CERT": str(certs["server"]),
            "COMMUNITIES_TLS_KEY": str(certs["server_key"]),
            "COMMUNITIES_TLS_CLIENT_CA": str(certs["ca"]),
        },
        ready=False,
    )
    ca = certs["ca"].read_bytes()
    wait_serving(
        server, grpc.ssl_channel_credentials(ca, certs["client_key"].read_bytes(), certs["client"].read_bytes())
    )
    assert "mutual TLS" in server.stderr()
    ok = grpcurl_tls(
        server.address, "-cacert", str(certs["ca"]), "-cert", str(certs["client"]), "-key", str(certs["client_key"])
    )
    assert "communities.v1.Users" in ok.ok().stdout
    # Without a client certificate, or with one of another CA: no answer.
    assert grpcurl_tls(server.address, "-cacert", str(certs["ca"])).returncode != 0
    stranger = grpcurl_tls(
        server.address, "-cacert", str(certs["ca"]), "-cert", str(certs["stranger"]), "-key", str(certs["stranger_key"])
    )
    assert stranger.returncode != 0, stranger.describe()


def test_tls_needs_both_files(e2e, certs):
    result = run(
        [COMMUNITIES, "serve", "--listen", address(), "--tls-cert", str(certs["server"])],
        env=clean_env(COMMUNITIES_DATABASE=e2e.sqlite_url()),
        timeout=60,
    )
    assert result.returncode == 1 and "error: TLS needs both --tls-cert and --tls-key" in result.stderr, (
        result.describe()
    )
