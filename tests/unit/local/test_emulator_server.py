"""The embedded emulator's HTTP server (infra/local/emulator.py, keep_alive_handler): botocore's
pooled connections are kept open across requests, a body is read to its end whether sent with a
length or chunked (so the next request on the connection starts where it should), and HEAD keeps
the length the app gives."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from infra.local.emulator import keep_alive_handler


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    answer = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {len(body)}:".encode() + body
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "999")])
    return [answer]


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    httpd = make_server("127.0.0.1", 0, echo, threaded=True, request_handler=keep_alive_handler())
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", httpd.server_port
    finally:
        httpd.shutdown()


def test_one_connection_carries_many_requests(server: tuple[str, int]) -> None:
    connection = http.client.HTTPConnection(*server, timeout=5)
    for index in range(3):
        connection.request("POST", f"/item/{index}", body=b"x" * index)
        response = connection.getresponse()
        assert response.read() == f"POST /item/{index} {index}:".encode() + b"x" * index
        assert response.getheader("Content-Length") == str(len(f"POST /item/{index} {index}:") + index)
        assert response.getheader("Connection") is None
    first_socket = connection.sock
    connection.request("GET", "/again")
    assert connection.getresponse().read() == b"GET /again 0:"
    assert connection.sock is first_socket, "the connection was kept open"
    connection.close()


def test_a_chunked_body_is_read_to_its_end(server: tuple[str, int]) -> None:
    connection = http.client.HTTPConnection(*server, timeout=5)
    connection.request("PUT", "/object", body=iter([b"abc", b"defg"]), encode_chunked=True)
    assert connection.getresponse().read() == b"PUT /object 7:abcdefg"
    connection.request("PUT", "/next", body=b"z")
    assert connection.getresponse().read() == b"PUT /next 1:z"
    connection.close()


def test_head_keeps_the_length_the_app_gives(server: tuple[str, int]) -> None:
    connection = http.client.HTTPConnection(*server, timeout=5)
    connection.request("HEAD", "/object")
    response = connection.getresponse()
    assert response.read() == b""
    assert response.getheader("Content-Length") == "999"
    connection.request("GET", "/after-head")
    assert connection.getresponse().read() == b"GET /after-head 0:"
    connection.close()
