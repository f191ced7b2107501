"""TLS between the services and NATS, as the prod overlay sets it up (NATS_TLS_CA, tls://).

Given nats-server with a certificate signed by a private CA and the generated users, a service
that trusts that CA connects, as its own user, both ways the runtime connects (the event store
and a plain connection such as the case service's key store); one that does not trust the CA
is refused before it sends its password.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import nats
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from eventsourcing.persistence import OperationalError, StoredEvent
from eventsourcing.utils import Environment

from deploy.tests.secured_nats import Credentials, secured_server
from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.natsserver import NatsServer
from stafett_runtime.settings import Settings


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("stafett test CA"))
        .issuer_name(_name("stafett test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("nats"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.crt", folder / "tls.crt", folder / "tls.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def credentials() -> Credentials:
    return Credentials()


@pytest.fixture
def tls_server(
    tmp_path: Path, credentials: Credentials, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[NatsServer, Path]]:
    ca, cert, key = make_certificates(tmp_path / "certs")
    for name, value in credentials.server_environment().items():
        monkeypatch.setenv(name, value)
    server = secured_server(
        tmp_path / "nats",
        extra=f'tls {{\n  cert_file: "{cert}"\n  key_file: "{key}"\n}}',
        log_file=tmp_path / "nats.log",
    )
    server.start()
    try:
        yield server, ca
    finally:
        server.stop()


def test_given_tls_then_a_service_that_trusts_the_ca_stores_events_and_opens_connections(
    tls_server: tuple[NatsServer, Path], credentials: Credentials
) -> None:
    server, ca = tls_server
    env = {
        **credentials.service_env("consent", f"tls://127.0.0.1:{server.port}"),
        "NATS_TLS_CA": str(ca),
    }
    store = JetStreamFactory(Environment("consent", env))
    try:
        recorder = store.application_recorder()
        aggregate = uuid4()
        recorder.insert_events([StoredEvent(aggregate, 1, "deploy.tests:Noted", b"{}")])
        assert len(recorder.select_events(aggregate)) == 1
    finally:
        store.close()

    async def plain_connection() -> bool:
        options = Settings.from_env("consent", env).nats_options("consent-keys")
        nc = await nats.connect(**options)
        try:
            return nc.is_connected and nc.connected_url is not None
        finally:
            await nc.close()

    assert asyncio.run(plain_connection())


def test_given_tls_then_a_service_that_does_not_trust_the_ca_cannot_connect(
    tls_server: tuple[NatsServer, Path], credentials: Credentials
) -> None:
    server, _ = tls_server
    env = {
        **credentials.service_env("consent", f"tls://127.0.0.1:{server.port}"),
        "NATS_TIMEOUT": "2",  # it retries the handshake until then; each attempt fails
    }
    with pytest.raises(OperationalError, match="cannot connect"):
        JetStreamFactory(Environment("consent", env))
