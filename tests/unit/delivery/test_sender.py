"""The HTTP sender against real servers on loopback: it connects to the checked address only,
verifies TLS for the partner's host name, and bounds what it reads."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from functions.delivery.sender import EXCERPT_CHARS, post
from switchboard_core.endpoints import CheckedEndpoint
from tests.unit.delivery.support import Answer, Receiver


def issue(name: str, key, issuer_name: str, issuer_key, *, ca: bool) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def tls_receiver(tmp_path: Path):
    """An HTTPS endpoint on 127.0.0.1 whose certificate names `partner.test`, from a test CA."""
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = issue("Test CA", ca_key, "Test CA", ca_key, ca=True)
    leaf = issue("partner.test", leaf_key, "Test CA", ca_key, ca=False)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.key").write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    server_names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    receiver = Receiver(tls=context)
    yield receiver, str(tmp_path / "ca.pem"), server_names
    receiver.stop()


def endpoint(host: str, port: int, *addresses: str, scheme: str = "https") -> CheckedEndpoint:
    return CheckedEndpoint(
        url=f"{scheme}://{host}:{port}/hooks?x=1", scheme=scheme, host=host, port=port, addresses=addresses
    )


def test_tls_goes_to_the_checked_address_and_verifies_the_partners_name(tls_receiver):
    receiver, ca, server_names = tls_receiver
    port = receiver.server.server_address[1]
    # partner.test resolves nowhere: the sender must not resolve it, only connect to 127.0.0.1.
    result = post(endpoint("partner.test", port, "127.0.0.1"), b"{}", {"x-test": "1"}, 2, ca_certs=ca)
    assert (result.status_code, result.error, result.excerpt) == (200, None, "ok")
    assert server_names == ["partner.test"]
    (request,) = receiver.requests
    assert request.headers["host"] == f"partner.test:{port}" and request.path == "/hooks?x=1"


def test_a_certificate_for_another_name_is_refused(tls_receiver):
    receiver, ca, _ = tls_receiver
    port = receiver.server.server_address[1]
    result = post(endpoint("other.test", port, "127.0.0.1"), b"{}", {}, 2, ca_certs=ca)
    assert result.status_code is None and result.error.startswith("TLS error")
    assert receiver.requests == []


def test_a_certificate_from_an_untrusted_authority_is_refused(tls_receiver):
    receiver, _, _ = tls_receiver
    result = post(endpoint("partner.test", receiver.server.server_address[1], "127.0.0.1"), b"{}", {}, 2)
    assert result.error.startswith("TLS error") and receiver.requests == []


def test_the_next_checked_address_is_tried_when_one_refuses_the_connection():
    receiver = Receiver(host="127.0.0.1")
    try:
        port = receiver.server.server_address[1]
        result = post(endpoint("localhost", port, "127.0.0.2", "127.0.0.1", scheme="http"), b"{}", {}, 2)
        assert result.status_code == 200 and len(receiver.requests) == 1
    finally:
        receiver.stop()


def test_only_the_start_of_a_long_answer_is_read_and_kept():
    receiver = Receiver()
    try:
        receiver.answer(Answer(500, body=b"x" * (4 * 1024 * 1024)))
        port = receiver.server.server_address[1]
        result = post(endpoint("127.0.0.1", port, "127.0.0.1", scheme="http"), b"{}", {}, 2)
        assert result.status_code == 500 and result.excerpt == "x" * EXCERPT_CHARS
    finally:
        receiver.stop()
