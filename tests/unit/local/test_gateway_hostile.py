"""Hostile requests over real HTTP on loopback: the local gateway (infra/local/gateway.py) served
as the local runtime serves it (werkzeug's threaded server, the gateway's request handler), with
the real ingest and admin functions behind it against moto.

Requests are written byte for byte on a socket, so they can be what no HTTP client library
would send: CR/LF and NUL inside headers, a header without a colon, 70 KB header lines, 200
headers, raw non-UTF-8 bytes and overlong encodings in the path and the query, conflicting
Content-Lengths, broken chunked encoding, a body shorter than its Content-Length. Every one
gets an answer (never a hung connection) and no answer is a 5xx.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from werkzeug.serving import make_server

from infra import topology
from infra.local.gateway import Gateway, GatewayRequestHandler
from infra.local.lambdas import LocalFunctions
from infra.local.samples import build_sample, demo_credentials
from switchboard_core import aws
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from tests.hostile import HOSTILE_BODIES, HOSTILE_IDS

CLIENT_TIMEOUT = 30  # seconds: a request not answered by then counts as a hung connection
BODY_TIMEOUT = 1.0  # the gateway's wait for a body that stopped coming, shortened for the test


@dataclass
class Served:
    port: int
    connection: str
    credentials: dict[str, str]


@pytest.fixture
def served(aws_world, monkeypatch) -> Iterator[Served]:
    names = aws_world.names
    connection = "con_00000000000000ab"
    credentials = demo_credentials("telegram")
    ConnectionStore(aws.resource("dynamodb").Table(names.table("connections"))).put(
        Connection(id=connection, provider="telegram", tenant="acme", created_at=datetime.now(UTC))
    )
    CredentialStore(aws.client("secretsmanager"), topology.secrets_prefix("test")).create(
        connection, credentials, "acme"
    )
    functions = LocalFunctions(names.mapping(), "test")
    monkeypatch.setattr(GatewayRequestHandler, "timeout", BODY_TIMEOUT)
    server = make_server(
        "127.0.0.1", 0, Gateway(functions.invoke), threaded=True, request_handler=GatewayRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(server.server_port, connection, credentials)
    finally:
        server.shutdown()
        thread.join(timeout=10)


def exchange(port: int, raw: bytes, *, half_close: bool = False) -> tuple[int, bytes]:
    """Write `raw` on a fresh connection and read the answer: (status, body). A status of 0 is
    no HTTP/1.x answer (allowed only where the request line reads as HTTP/0.9); a client
    timeout fails the test (a hung connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if _complete(received):
                    break
        except TimeoutError:
            pytest.fail(f"no answer within {CLIENT_TIMEOUT} s to {raw[:120]!r}")
        except ConnectionResetError:
            pass
    if not received.startswith(b"HTTP/"):
        # Nothing, or an HTTP/0.9 answer (body only) to a request line that reads as one:
        # "GET /path" cut short by a CR/LF inside the target.
        return 0, b""
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _complete(received: bytes) -> bool:
    head, separator, body = received.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def request(method: str, target: bytes, headers: list[bytes], body: bytes = b"", *, length: bool = True) -> bytes:
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close", *headers]
    if length:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def assert_not_a_server_error(status: int, body: bytes, what: str) -> None:
    assert status < 500, (what, status, body[:300])
    if 400 <= status < 500 and body:
        document = json.loads(body)  # every refusal is JSON (the gateway's or a function's)
        assert document.get("error") or document.get("message"), (what, document)


def telegram_request(
    served: Served, *, target: bytes | None = None, extra: list[bytes] = (), body: bytes | None = None
):
    url = f"http://127.0.0.1:{served.port}/webhooks/telegram/{served.connection}"
    sample = build_sample("telegram", None, served.credentials, url)
    headers = [f"{k}: {v}".encode() for k, v in sample.headers.items()]
    path = f"/webhooks/telegram/{served.connection}".encode()
    return request("POST", target or path, [*headers, *extra], sample.body if body is None else body)


def test_a_well_formed_request_is_accepted(served):
    status, body = exchange(served.port, telegram_request(served))
    assert status == 200, body


def test_hostile_bodies_get_a_4xx(served):
    for name, hostile in HOSTILE_BODIES.items():
        status, body = exchange(served.port, telegram_request(served, body=hostile))
        assert_not_a_server_error(status, body, name)
        assert status == 400, (name, body)


HOSTILE_HEADER_LINES = {
    "nul-in-value": [b"X-Extra: a\x00b"],
    "bare-cr-in-value": [b"X-Extra: a\rb"],
    "no-colon": [b"this line has no colon"],
    "obs-fold": [b"X-Extra: a", b" folded onto the line before"],
    "empty-name": [b": value"],
    "space-before-colon": [b"X-Extra : a"],
    "non-utf8-value": [b"X-Extra: \xff\xfe\xc0\xae"],
    "utf8-value": ["X-Extra: \u202e\U0001f4a9".encode()],
    "very-long-line": [b"X-Extra: " + b"x" * 70_000],
    "long-value": [b"X-Extra: " + b"x" * 16_000],
    "many-headers": [f"X-H{i}: {i}".encode() for i in range(200)],
    "duplicate-secret": [b"X-Telegram-Bot-Api-Secret-Token: forged"],
    "duplicate-content-type": [b"Content-Type: text/xml"],
    "injected-host": [b"X-Forwarded-Host: evil.example\r\nX-Injected: 1"],
    "forwarded-proto-garbage": [b"X-Forwarded-Proto: \x01\x02", b"X-Forwarded-Port: -1"],
    "cookies": [b"Cookie: a=\xff; ; =; b"],
    "authorization-garbage": [b"Authorization: Bearer \x00\xff"],
}


def test_hostile_header_lines_are_answered_without_a_5xx(served):
    for name, lines in HOSTILE_HEADER_LINES.items():
        status, body = exchange(served.port, telegram_request(served, extra=lines))
        assert status != 0, name
        assert_not_a_server_error(status, body, name)


HOSTILE_TARGETS = {
    "non-utf8-path": b"/webhooks/telegram/\xff\xfe",
    "overlong-dot-dot": b"/webhooks/telegram/%C0%AE%C0%AE%2F%C0%AE%C0%AE",
    "encoded-surrogate": b"/webhooks/telegram/%ED%A0%80",
    "nul": b"/webhooks/telegram/con%00",
    "dot-segments": b"/webhooks/telegram/../../admin/connections",
    "encoded-slash": b"/webhooks/telegram/..%2F..%2Fadmin",
    "double-slash": b"//webhooks//telegram//",
    "absolute-form": b"http://evil.example/webhooks/telegram/con_1",
    "asterisk": b"*",
    "no-leading-slash": b"webhooks/telegram/con_1",
    "query-non-utf8": b"/webhooks/telegram/con_1?a=\xff&b=%ff%fe&c=%ED%A0%80",
    "query-only": b"/webhooks/telegram/con_1?",
    "fragment": b"/webhooks/telegram/con_1#frag",
    "10kb-id": b"/webhooks/telegram/" + b"c" * 10_240,
    "admin-traversal": b"/admin/connections/..%2F..%2Fkeys",
}
HOSTILE_TARGETS.update(
    {
        f"id-{name}": b"/webhooks/telegram/" + value.encode("utf-8", "surrogatepass")
        for name, value in HOSTILE_IDS.items()
    }
)


def test_hostile_request_targets_are_answered_without_a_5xx(served):
    for (name, target), method in itertools.product(HOSTILE_TARGETS.items(), ("POST", "GET")):
        status, body = exchange(
            served.port, telegram_request(served, target=target) if method == "POST" else request("GET", target, [])
        )
        assert status != 0 or b" " in target or b"\r" in target or b"\n" in target, (name, method)
        assert_not_a_server_error(status, body, f"{method} {name}")


def test_conflicting_content_lengths_are_a_4xx(served):
    raw = telegram_request(served).replace(b"Connection: close", b"Connection: close\r\nContent-Length: 3", 1)
    status, body = exchange(served.port, raw)
    assert_not_a_server_error(status, body, "two Content-Lengths")


def test_malformed_content_lengths_are_a_4xx(served):
    for value in (b"-1", b"abc", b"1e3", b"99999999999999999999999", b" 12 ", b"0x10"):
        malformed_content_length(served, value)


def malformed_content_length(served: Served, value: bytes) -> None:
    raw = request(
        "POST", f"/webhooks/telegram/{served.connection}".encode(), [b"Content-Length: " + value], b"{}", length=False
    )
    status, body = exchange(served.port, raw, half_close=True)
    assert_not_a_server_error(status, body, f"Content-Length {value!r}")


def test_broken_chunked_bodies_are_a_4xx(served):
    for chunked in (
        b"zz\r\nabc\r\n0\r\n\r\n",
        b"-5\r\nabc\r\n0\r\n\r\n",
        b"5\r\nabc",
        b"ffffffffffffffffff\r\nab\r\n0\r\n\r\n",
    ):
        broken_chunked(served, chunked)


def broken_chunked(served: Served, chunked: bytes) -> None:
    raw = request(
        "POST",
        f"/webhooks/telegram/{served.connection}".encode(),
        [b"Transfer-Encoding: chunked", b"Content-Type: application/json"],
        chunked,
        length=False,
    )
    status, body = exchange(served.port, raw, half_close=True)
    assert status != 0, chunked
    assert_not_a_server_error(status, body, f"chunked {chunked!r}")


def test_a_body_shorter_than_its_content_length_gets_a_408_not_a_hung_connection(served):
    # The client stops sending but keeps the connection open: the gateway stops waiting.
    raw = request(
        "POST", f"/webhooks/telegram/{served.connection}".encode(), [b"Content-Length: 100"], b"{}", length=False
    )
    status, body = exchange(served.port, raw)
    assert status == 408, body
    assert json.loads(body)["error"]["code"] == "request_timeout"


def test_a_body_cut_short_by_the_client_is_a_400(served):
    raw = request(
        "POST", f"/webhooks/telegram/{served.connection}".encode(), [b"Content-Length: 100"], b"{}", length=False
    )
    status, body = exchange(served.port, raw, half_close=True)
    assert status == 400, body


def test_admin_routes_refuse_hostile_credentials_without_a_5xx(served):
    for authorization in (b"Bearer \xff\xfe", b"Bearer " + b"k" * 10_000, b"Basic ..%2F", b"Bearer sbk_\x00", b""):
        raw = request("GET", b"/admin/connections/..%2F..%2Fcon_1", [b"Authorization: " + authorization])
        status, body = exchange(served.port, raw)
        assert status in (401, 403), (authorization[:40], status, body)
