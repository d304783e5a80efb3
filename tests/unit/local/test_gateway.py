"""infra/local/gateway.py over real HTTP on loopback (werkzeug's server, as the local runtime
runs it): bodies are bounded before they are buffered, and logs never show query strings.

The functions behind the gateway are a recording stand-in; a WSGI middleware counts the
bytes the gateway reads from the request body, so "bounded" is a count, not a timing."""

from __future__ import annotations

import base64
import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.serving import make_server

from infra.local.gateway import Gateway

LIMIT = 64 * 1024


class CountingInput:
    """A WSGI input stream that counts what is read through it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.bytes_read += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self._stream.readline(size)
        self.bytes_read += len(data)
        return data


@dataclass
class Running:
    port: int
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    inputs: list[CountingInput] = field(default_factory=list)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)


@pytest.fixture
def gateway() -> Iterator[Running]:
    running = Running(port=0)

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        running.calls.append((function, event))
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps({"ok": True})}

    app = Gateway(invoke, log=running.logs.append, max_body_bytes=LIMIT)

    def counting(environ: dict[str, Any], start_response: Any) -> Any:
        counter = CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = counter
        running.inputs.append(counter)
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, counting, threaded=True)
    running.port = server.server_port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        server.shutdown()
        thread.join(timeout=10)


def answer(connection: http.client.HTTPConnection) -> tuple[int, Any]:
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    return response.status, json.loads(raw) if raw else None


def chunks(total: int, size: int = 8 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"x" * piece


# --- request size -------------------------------------------------------------------------------------


def test_a_declared_content_length_above_the_limit_is_413_before_reading(gateway):
    connection = gateway.connection()
    connection.putrequest("POST", "/webhooks/twilio/con_1")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(300 * 1024 * 1024))  # the 300 MB POST
    connection.endheaders()
    connection.send(b"{" + b" " * (128 * 1024))  # a first part of it; the rest never needs to come
    status, body = answer(connection)
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert str(300 * 1024 * 1024) in body["error"]["message"] and str(LIMIT) in body["error"]["message"]
    assert gateway.inputs[0].bytes_read == 0
    assert gateway.calls == []


def test_a_chunked_body_above_the_limit_is_read_only_to_limit_plus_one(gateway):
    connection = gateway.connection()
    connection.request(
        "POST",
        "/webhooks/twilio/con_1",
        body=chunks(4 * LIMIT),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    status, body = answer(connection)
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert gateway.inputs[0].bytes_read == LIMIT + 1
    assert gateway.calls == []


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_of_exactly_the_limit_reaches_the_function_whole(gateway, chunked):
    connection = gateway.connection()
    headers = {"Content-Type": "application/octet-stream"}
    if chunked:
        connection.request(
            "POST",
            "/webhooks/twilio/con_1",
            body=chunks(LIMIT),
            encode_chunked=True,
            headers={**headers, "Transfer-Encoding": "chunked"},
        )
    else:
        connection.request("POST", "/webhooks/twilio/con_1", body=b"x" * LIMIT, headers=headers)
    status, body = answer(connection)
    assert (status, body) == (200, {"ok": True})
    [(function, event)] = gateway.calls
    assert function == "ingest"
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == b"x" * LIMIT


def test_one_byte_over_with_a_content_length_is_413(gateway):
    connection = gateway.connection()
    connection.request(
        "POST", "/webhooks/twilio/con_1", body=b"x" * (LIMIT + 1), headers={"Content-Type": "application/octet-stream"}
    )
    status, body = answer(connection)
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert gateway.inputs[0].bytes_read == 0


def test_the_default_limit_is_the_ingest_limit():
    from infra import topology

    assert Gateway(lambda function, event: None)._max_body_bytes == topology.MAX_BODY_BYTES


# --- logs -------------------------------------------------------------------------------------------------


def test_logs_show_the_path_without_the_query_string(gateway):
    connection = gateway.connection()
    connection.request(
        "GET", "/webhooks/meta/con_1?hub.mode=subscribe&hub.verify_token=vt-s3cret-0123&hub.challenge=1158201444"
    )
    status, _ = answer(connection)
    assert status == 200
    [(_, event)] = gateway.calls
    assert "hub.verify_token=vt-s3cret-0123" in event["rawQueryString"]  # the function still gets it
    [line] = gateway.logs
    assert line.startswith("GET /webhooks/meta/con_1 -> 200 ")
    assert "vt-s3cret-0123" not in line and "?" not in line and "hub." not in line


def test_refusals_are_logged_without_the_query_string_too(gateway):
    connection = gateway.connection()
    connection.request("POST", "/webhooks/meta/con_1?token=q-s3cret", body=b"x" * (LIMIT + 1))
    status, _ = answer(connection)
    assert status == 413
    assert gateway.logs == [line for line in gateway.logs if "q-s3cret" not in line and "?" not in line]
    assert gateway.logs[0].startswith("POST /webhooks/meta/con_1 -> 413 ")
