"""The HTTP sender against real servers on loopback: it connects to the checked address only,
verifies TLS for the partner's host name, bounds what it reads, and keeps its deadline against
endpoints that drip their answer or read the request slowly."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from switchboard_core.endpoints import CheckedEndpoint
from switchboard_core.subscriptions.sender import EXCERPT_CHARS, post
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
def tls(tmp_path: Path):
    """A server TLS context whose certificate names `partner.test`, the test CA's bundle, and the
    server names the clients asked for (SNI)."""
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
    return context, str(tmp_path / "ca.pem"), server_names


@pytest.fixture
def tls_receiver(tls):
    """An HTTPS endpoint on 127.0.0.1 whose certificate names `partner.test`, from a test CA."""
    context, ca, server_names = tls
    receiver = Receiver(tls=context)
    yield receiver, ca, server_names
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


Serve = Callable[[socket.socket, threading.Event], None]


class Hostile:
    """An endpoint on 127.0.0.1 (TLS with `tls`) that serves each connection with `serve`, and
    notes when a client hangs up on it (a send fails or a read finds the connection closed)."""

    def __init__(self, serve: Serve, tls: ssl.SSLContext | None = None) -> None:
        self.serve, self.tls = serve, tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.hung_up = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            try:
                conn.settimeout(5)
                if self.tls is not None:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                self.serve(conn, self.stopping)
            except OSError:
                if not self.stopping.is_set():
                    self.hung_up.set()
            finally:
                conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()


def read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)


def drip(answer: bytes, *, fast: int = 0) -> Serve:
    """Read the request, send the answer's first `fast` bytes at once, then the rest a byte every 0.3 s."""

    def serve(conn: socket.socket, stopping: threading.Event) -> None:
        read_request(conn)
        conn.sendall(answer[:fast])
        for byte in answer[fast:]:
            if stopping.wait(0.3):
                return
            conn.sendall(bytes([byte]))

    return serve


def read_slowly(conn: socket.socket, stopping: threading.Event) -> None:
    """Take the request in at 64 KiB every 0.3 s, and never answer. (Megabytes sit in the socket
    buffers, so it finds out late that the client hung up.)"""
    while not stopping.wait(0.3):
        if not conn.recv(65536):
            raise ConnectionResetError("the client hung up")


@pytest.fixture
def hostile(request, tls) -> Iterator[Callable[[Serve], tuple[CheckedEndpoint, str | None, Hostile]]]:
    """Start a hostile endpoint over the test's scheme (param): its endpoint, CA bundle and server."""
    scheme = request.param
    context, ca, _ = tls
    servers: list[Hostile] = []

    def start(serve: Serve) -> tuple[CheckedEndpoint, str | None, Hostile]:
        server = Hostile(serve, context if scheme == "https" else None)
        servers.append(server)
        return endpoint("partner.test", server.port, "127.0.0.1", scheme=scheme), ca, server

    yield start
    for server in servers:
        server.stop()


def timed_post(target: CheckedEndpoint, body: bytes, timeout: float, ca: str | None):
    began = time.monotonic()
    result = post(target, body, {}, timeout, ca_certs=ca)
    return result, time.monotonic() - began


SCHEMES = pytest.mark.parametrize("hostile", ["http", "https"], indirect=True)


@SCHEMES
def test_a_status_line_dripped_a_byte_at_a_time_is_a_timeout_at_the_deadline(hostile):
    target, ca, server = hostile(drip(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    result, took = timed_post(target, b"{}", 1.0, ca)
    assert (result.status_code, result.error) == (None, "timeout: no answer within 1 s")
    # Generous upper bounds (a loaded machine wakes the timer late): undripped, these answers take 12 s to minutes.
    assert 1.0 <= took < 3.0 and 1000 <= result.latency_ms < 3000
    assert server.hung_up.wait(5)  # the sender let go of the connection: nothing keeps it open


@SCHEMES
def test_a_body_dripped_after_a_prompt_status_keeps_the_status_and_what_came(hostile):
    head = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\nContent-Length: 1000\r\n\r\n"
    target, ca, server = hostile(drip(head + b"b" * 1000, fast=len(head)))
    result, took = timed_post(target, b"{}", 1.0, ca)
    assert (result.status_code, result.error, result.headers["retry-after"]) == (503, None, "120")
    assert result.excerpt.startswith("b") and result.excerpt == "b" * len(result.excerpt)  # as far as it came
    assert 1.0 <= took < 3.0
    assert server.hung_up.wait(5)


@SCHEMES
def test_headers_dripped_after_the_status_line_keep_the_status_but_no_header(hostile):
    head = b"HTTP/1.1 503 Service Unavailable\r\n"
    target, ca, _ = hostile(drip(head + b"Retry-After: 120\r\nContent-Length: 0\r\n\r\n", fast=len(head)))
    result, took = timed_post(target, b"{}", 1.0, ca)
    # The status came in time; the deadline cut "Retry-After: 120" short, so no header is trusted.
    assert (result.status_code, result.error, result.headers) == (503, None, {})
    assert 1.0 <= took < 3.0


@SCHEMES
def test_an_endpoint_reading_the_request_slowly_is_a_timeout_at_the_deadline(hostile):
    target, ca, _ = hostile(read_slowly)
    result, took = timed_post(target, b"x" * (16 * 1024 * 1024), 1.0, ca)
    assert (result.status_code, result.error) == (None, "timeout: no answer within 1 s")
    assert 1.0 <= took < 3.0


@SCHEMES
def test_a_prompt_answer_is_not_held_to_the_deadline(hostile):
    target, ca, _ = hostile(drip(b"HTTP/1.1 204 No Content\r\nX-Seen: 1\r\n\r\n", fast=1000))
    result, took = timed_post(target, b"{}", 5.0, ca)
    assert (result.status_code, result.error, result.headers["x-seen"]) == (204, None, "1")
    assert took < 4  # not held to the 5 s deadline


def test_a_send_timed_out_inside_http_client_is_reported_as_the_timeout():
    """urllib3 wraps a socket timeout while the body is written as ProtocolError('Connection
    aborted.', TimeoutError); that can land a moment before the deadline's timer fires."""
    from urllib3.exceptions import ProtocolError

    from switchboard_core.subscriptions.sender import _timed_out

    assert _timed_out(ProtocolError("Connection aborted.", TimeoutError("timed out")))
    assert not _timed_out(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))
