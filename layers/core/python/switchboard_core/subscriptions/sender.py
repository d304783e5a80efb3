"""One HTTP POST to a partner endpoint, to the address the SSRF guard checked.

urllib3 (which boto3 already brings, so no layer grows) rather than urllib: its connection
pools take the address to connect to and, separately, the host name for TLS (SNI and
certificate check) and the Host header. So the send never resolves the host again (a
DNS-rebinding host could answer differently the second time) and still verifies the
partner's certificate for its own name. No redirects (a 3xx is an answer like any other
non-2xx), no urllib3 retries (the delivery schedule retries), a deadline for the whole
exchange, and at most 64 KiB of the answer read.

The deadline is wall-clock time, not urllib3's timeouts alone: those bound each socket
operation, so an endpoint that drips its answer a byte at a time would keep the attempt (and
the delivery Lambda) going long past it. A timer shuts the connection's socket down when the
time is up, which makes whatever recv or send is blocked on it return at once, in any phase
(sending, status line and headers, body) and for plain or TLS sockets alike; the status is
kept if it came in time. Before the socket exists the phases are single waits that urllib3's
timeouts already bound: the connect, then the TLS handshake, which gets only the time left
(CPython bounds a whole handshake by the socket's timeout). Chosen over setting the socket
timeout before each read (http.client reads through a buffered file it makes itself, so every
read would need a wrapper around the socket) and over running the send in a worker thread
(the abandoned thread would still hold the socket, which has to be shut down anyway).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError, SSLError

from switchboard_core.endpoints import CheckedEndpoint

MAX_RESPONSE_BYTES = 64 * 1024
READ_CHUNK_BYTES = 1024  # small reads, so a slow answer's body is kept up to where the deadline cut it
EXCERPT_CHARS = 512
USER_AGENT = "Switchboard-Webhooks/1.0"
CONNECT_FAILED = "could not connect"  # refused, unreachable: the next checked address may answer


@dataclass(frozen=True)
class SendResult:
    """What one attempt got: an HTTP status (any), or the error that kept an answer from coming."""

    status_code: int | None
    latency_ms: int
    error: str | None = None
    excerpt: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender(Protocol):
    def __call__(
        self, endpoint: CheckedEndpoint, body: bytes, headers: dict[str, str], timeout: float
    ) -> SendResult: ...


def host_header(endpoint: CheckedEndpoint) -> str:
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    default = 443 if endpoint.scheme == "https" else 80
    return host if endpoint.port == default else f"{host}:{endpoint.port}"


def request_target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def post(
    endpoint: CheckedEndpoint, body: bytes, headers: dict[str, str], timeout: float, *, ca_certs: str | None = None
) -> SendResult:
    """POST `body` to `endpoint`, connecting to its checked addresses only (the next one when
    one cannot be connected to), within `timeout` seconds in all. TLS trusts the system's
    certificate authorities (`ca_certs`: a bundle instead, for tests)."""
    started = time.monotonic()
    error = "no address to connect to"
    for address in endpoint.addresses:
        result = _post_to(address, endpoint, body, headers, started, timeout, ca_certs)
        if result.error is None or not result.error.startswith(CONNECT_FAILED):
            return result
        error = result.error
    return SendResult(status_code=None, latency_ms=_elapsed_ms(started), error=error)


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


class Deadline:
    """The wall-clock end of one exchange: when it comes, the watched socket is shut down."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.fired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, at - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(0.001, self.at - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.fired:
                _shut_down(sock)

    def disarm(self) -> None:
        """Before the socket is closed: a timer firing later must not touch it."""
        self._timer.cancel()
        with self._lock:
            self._sock = None

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._sock is not None:
                _shut_down(self._sock)


def _shut_down(sock: socket.socket) -> None:
    try:
        # The plain socket's shutdown even for TLS: SSLSocket.shutdown would drop its SSL object
        # under the thread reading from it. The fd-level shutdown wakes that thread with an EOF.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _DeadlineConnection(HTTPConnection):
    """urllib3's connection, its socket shut down by `deadline` (passed through the pool)."""

    def __init__(self, *args: Any, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        sock.settimeout(self.deadline.remaining())  # a TLS handshake next gets only what is left
        return sock

    def connect(self) -> None:
        super().connect()
        self.deadline.watch(self.sock)


class _DeadlineHTTPSConnection(_DeadlineConnection, HTTPSConnection):
    pass


def _post_to(
    address: str,
    endpoint: CheckedEndpoint,
    body: bytes,
    headers: dict[str, str],
    started: float,
    timeout: float,
    ca_certs: str | None,
) -> SendResult:
    deadline = Deadline(started + timeout)
    limits = urllib3.Timeout(connect=deadline.remaining(), read=deadline.remaining())
    pool: urllib3.HTTPConnectionPool
    if endpoint.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address.split("%", 1)[0],
            endpoint.port,
            timeout=limits,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
            server_hostname=endpoint.host,
            assert_hostname=endpoint.host,
            deadline=deadline,
        )
        pool.ConnectionCls = _DeadlineHTTPSConnection
    else:  # plain http: the local runtime's loopback endpoints only (check_endpoint refuses it elsewhere)
        pool = urllib3.HTTPConnectionPool(
            address.split("%", 1)[0], endpoint.port, timeout=limits, retries=False, maxsize=1, deadline=deadline
        )
        pool.ConnectionCls = _DeadlineConnection
    try:
        response = pool.urlopen(
            "POST",
            request_target(endpoint.url),
            body=body,
            headers={**headers, "Host": host_header(endpoint)},
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
            timeout=limits,
        )
        # A head the deadline cut short has its status but may have its last header cut too
        # (a Retry-After of 120 read as 12): keep none of them then.
        head_complete = not deadline.fired
        received = bytearray()
        try:
            while len(received) < MAX_RESPONSE_BYTES and not deadline.fired:
                chunk = response.read(READ_CHUNK_BYTES, decode_content=False)
                if not chunk:
                    break
                received.extend(chunk)
        except (HTTPError, OSError):
            pass  # the body broke off (or the deadline cut it) after the status came: keep the status
        finally:
            response.release_conn()
        excerpt = bytes(received[:MAX_RESPONSE_BYTES]).decode("utf-8", "replace")[:EXCERPT_CHARS]
        return SendResult(
            status_code=response.status,
            latency_ms=_elapsed_ms(started),
            excerpt=excerpt,
            headers={k.lower(): v for k, v in response.headers.items()} if head_complete else {},
        )
    except NewConnectionError as exc:  # before ConnectTimeoutError: urllib3 makes it a subclass
        return SendResult(None, _elapsed_ms(started), error=f"{CONNECT_FAILED}: {_reason(exc)}")
    except (HTTPError, OSError) as exc:
        # Once the deadline has shut the socket down, whatever broke is the deadline's doing.
        if deadline.fired or _timed_out(exc):
            error = f"timeout: no answer within {timeout:g} s"
        elif isinstance(exc, SSLError):
            error = f"TLS error: {_reason(exc)}"
        else:
            error = f"connection error: {_reason(exc)}"
        return SendResult(None, _elapsed_ms(started), error=error)
    finally:
        deadline.disarm()
        pool.close()


def _timed_out(exc: BaseException) -> bool:
    """Whether a socket timeout is behind `exc`. A body the endpoint reads too slowly times the
    send out inside http.client, which urllib3 reports as ProtocolError("Connection aborted.",
    TimeoutError) -- sometimes just before the deadline's own timer fires."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (TimeoutError, ConnectTimeoutError, ReadTimeoutError)):
            return True
        pending.extend(a for a in current.args if isinstance(a, BaseException))
        pending.extend(c for c in (current.__cause__, current.__context__) if c is not None)
    return False


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
